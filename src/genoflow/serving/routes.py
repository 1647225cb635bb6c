"""HTTP routes: thin functions; the work is in `scoring`, `patients`, `vcf_upload`, `refresh`."""

from __future__ import annotations

import math
import posixpath

from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile

from genoflow.serving.audit import SUBJECTS_STATE_KEY
from genoflow.serving.auth import key_unless_public, require_api_key
from genoflow.serving.errors import InputProblem
from genoflow.serving.limits import ScoringSlots
from genoflow.serving.metrics import MODEL_STATE_KEY
from genoflow.serving.patients import PatientValues
from genoflow.serving.schemas import BatchPrediction, BatchRequest, Prediction, PredictRequest
from genoflow.serving.scoring import model_for, predict_many, predict_one
from genoflow.serving.vcf_upload import VcfCaps, genotypes_from_vcf

__all__ = ["router"]

router = APIRouter()
protected = [Depends(require_api_key)]


def key_unless(name: str) -> list:
    """A route an operator may open without a key (``GENOFLOW_SERVING_PUBLIC_ROUTES``)."""
    return [Depends(key_unless_public(name))]


VCF_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["vcf"],
    "properties": {
        "vcf": {"type": "string", "format": "binary", "description": "single-sample VCF, plain or gzip"},
        "target": {"type": "string"}, "ignore_unknown": {"type": "boolean", "default": True},
    },
    "additionalProperties": {"type": "string", "description": "the model's covariates (GET /models): a number, or "
                             "a level of a categorical covariate; optional read-QC values, e.g. mean_phred"},
}}}}}


@router.get("/health", dependencies=key_unless("health"))
async def health() -> dict:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/ready", dependencies=key_unless("ready"))
async def ready(request: Request) -> JSONResponse:
    """200 once every served target has a model; 503 (with what is missing, and why when the registry says) before."""
    store = request.app.state.store
    missing = store.missing()
    body = {"ready": not missing, "missing": missing,
            "reasons": {t: store.unserved_reason(t) for t in missing if store.unserved_reason(t)},
            "models": {t: m.describe() for t, m in store.snapshot().items()}}
    return JSONResponse(body, status_code=503 if missing else 200)


@router.get("/metrics", dependencies=key_unless("metrics"))
async def metrics(request: Request) -> Response:
    """Prometheus exposition: request counts and latency by route, risks served, model versions."""
    content, content_type = request.app.state.metrics.render()
    return Response(content, media_type=content_type)


# FastAPI's documentation routes, here so that they follow the key like any other ("docs" makes them public).
# Behind a key, a browser's /docs page cannot fetch /openapi.json; use curl with the key, or make "docs" public.
@router.get("/openapi.json", dependencies=key_unless("docs"), include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=key_unless("docs"), include_in_schema=False)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")


@router.get("/redoc", dependencies=key_unless("docs"), include_in_schema=False)
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")


@router.get("/models", dependencies=protected)
async def models(request: Request) -> dict:
    """What each served model needs: its covariates and the variants it uses (contig:pos:ref:alt)."""
    out = {}
    for target, m in request.app.state.store.snapshot().items():
        out[target] = {**m.describe(),
                       "required_covariates": [c.name for c in m.covariates if not c.imputed],
                       "optional_covariates": [*(c.name for c in m.covariates if c.imputed), *m.spec.read_qc],
                       "categorical_levels": {c.name: list(c.levels) for c in m.covariates if c.kind == "categorical"},
                       "variants": [f"{v['contig']}:{v['pos']}:{v['ref']}:{v['alt']}" for v in m.spec.input_variants]}
    return out


# A response carries ``risk`` (binary target) or ``prediction`` (quantitative), never a null other one.
@router.post("/predict", dependencies=protected, response_model=Prediction, response_model_exclude_unset=True)
async def predict(body: PredictRequest, request: Request) -> dict:
    """Risk (or predicted value) of one patient from covariates and genotype dosages (JSON)."""
    model = _model(request, body.target)
    patient = PatientValues(body.covariates, body.genotypes)
    _note_subjects(request, [patient])
    result = await _slots(request).run(predict_one, model, patient, ignore_unknown=body.ignore_unknown)
    _observe(request, model, [result])
    return result


@router.post("/predict/batch", dependencies=protected, response_model=BatchPrediction,
             response_model_exclude_unset=True)
async def predict_batch(body: BatchRequest, request: Request) -> dict:
    """Risks (or predicted values) of up to ``max_batch`` patients in one call (one vectorised prediction)."""
    limit = request.app.state.settings.max_batch
    if len(body.patients) > limit:
        raise InputProblem([f"{len(body.patients)} patients in one batch; at most {limit} "
                            "(GENOFLOW_SERVING_MAX_BATCH)"], status=413)
    model = _model(request, body.target)
    patients = [PatientValues(p.covariates, p.genotypes) for p in body.patients]
    result = await _slots(request).run(_score_batch, request, model, patients, [p.id for p in body.patients],
                                       body.ignore_unknown)
    _observe(request, model, result["predictions"])
    return result


@router.post("/predict/vcf", dependencies=protected, response_model=Prediction, openapi_extra=VCF_FORM,
             response_model_exclude_unset=True)
async def predict_vcf(request: Request) -> dict:
    """Risk (or predicted value) of one patient from an uploaded single-sample VCF plus its covariates as form fields.

    Variants the model does not use are skipped unless ``ignore_unknown=false`` (a VCF usually
    holds more than a model's top variants).
    """
    form = await request.form(max_files=1, max_fields=64)
    try:
        upload = form.get("vcf")
        if not isinstance(upload, UploadFile):
            raise InputProblem(["vcf: a single-sample VCF file is required (multipart form field 'vcf')"])
        fields = {k: v for k, v in form.items() if k != "vcf" and isinstance(v, str)}
        ignore_unknown = _form_bool(fields.pop("ignore_unknown", "true"), "ignore_unknown")
        model = _model(request, fields.pop("target", None) or None)
        source = posixpath.basename(upload.filename or "")[:200] or "upload.vcf"
        categorical = {c.name for c in model.covariates if c.kind == "categorical"}
        covariates = {k: _form_value(v, text_value=k in categorical) for k, v in fields.items()}
        # The spooled upload is read in the worker thread, streamed through the caps, never whole.
        result = await _slots(request).run(_score_vcf, request, model, upload.file, source, covariates, ignore_unknown,
                                           VcfCaps.of(request.app.state.settings))
    finally:
        await form.close()
    _observe(request, model, [result])
    return result


def _score_vcf(request: Request, model, stream, source: str, covariates: dict, ignore_unknown: bool,
               caps: VcfCaps) -> dict:
    """Parse the upload and score it: one unit of work for a worker thread."""
    genotypes = genotypes_from_vcf(stream, source, keep=model.variant_columns if ignore_unknown else None, caps=caps)
    patient = PatientValues(covariates, genotypes)
    _note_subjects(request, [patient])
    return predict_one(model, patient, ignore_unknown=ignore_unknown)


def _score_batch(request: Request, model, patients: list[PatientValues], ids: list, ignore_unknown: bool) -> dict:
    """Hash and score a batch: one unit of work for a worker thread (a thousand hashes take milliseconds)."""
    _note_subjects(request, patients)
    return predict_many(model, patients, ids, ignore_unknown=ignore_unknown)


def _note_subjects(request: Request, patients: list[PatientValues]) -> None:
    """Put the keyed hash of each patient's values in the request's audit record (if there is an audit log)."""
    audit = request.app.state.audit
    if audit is not None:
        setattr(request.state, SUBJECTS_STATE_KEY, [audit.subject(p.covariates, p.genotypes) for p in patients])


@router.post("/admin/reload", dependencies=protected)
def reload_models(request: Request) -> JSONResponse:
    """Check the registry alias of every target now and load versions that moved (502 if one failed)."""
    results = request.app.state.refresher.refresh()
    failed = any(r.outcome == "failed" for r in results)
    return JSONResponse({"targets": {r.target: r.as_dict() for r in results}}, status_code=502 if failed else 200)


def _slots(request: Request) -> ScoringSlots:
    return request.app.state.slots


def _model(request: Request, target: str | None):
    store = request.app.state.store
    model = model_for(store, target or request.app.state.settings.default_target)
    setattr(request.state, MODEL_STATE_KEY, f"{model.name}/v{model.version}")  # for the access log line
    return model


def _observe(request: Request, model, results: list[dict]) -> None:
    """Count served risks in the metrics (a quantitative prediction is not a risk)."""
    if "risk" in (results[0] if results else {}):
        request.app.state.metrics.observe_risks(model.target, [r["risk"] for r in results])


def _form_value(text: str, *, text_value: bool):
    """A form field as JSON would carry it: text for a categorical covariate, else a number ('' is absent)."""
    text = text.strip()
    if text_value or not text:
        return text or None
    try:
        value = float(text)
    except ValueError:
        return text  # patients.prepare names it: "expected a number, got 'abc'"
    return value if math.isfinite(value) else text


def _form_bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InputProblem([f"{name}: expected true or false, got {text!r}"])

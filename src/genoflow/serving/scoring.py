"""Score patients with the served model of a target: pick the model, prepare, predict, report."""

from __future__ import annotations

from collections.abc import Sequence

from genoflow.serving.errors import InputProblem, NotReady
from genoflow.serving.model import QUANTITATIVE, ModelStore, ServedModel
from genoflow.serving.patients import PatientValues, prepare

__all__ = ["model_for", "predict_one", "predict_many"]


def model_for(store: ModelStore, target: str) -> ServedModel:
    """The model serving ``target`` (422 for a target not served, 503 while none is loaded, with the
    registry's reason when the target has no champion, e.g. its candidate failed the promotion gate)."""
    if target not in store.targets:
        raise InputProblem([f"target {target!r} is not served; served targets: {', '.join(store.targets)}"])
    model = store.get(target)
    if model is None:
        reason = store.unserved_reason(target)
        if reason:
            raise NotReady([f"no champion model for {target!r}: {reason}"])
        raise NotReady([f"no model is loaded for {target!r} yet (see /ready); retry later"])
    return model


def predict_one(model: ServedModel, patient: PatientValues, *, ignore_unknown: bool) -> dict:
    """The ``/predict`` response for one patient: its ``risk``, or its ``prediction`` for a quantitative target."""
    prepared = prepare(model, [patient], ignore_unknown=ignore_unknown)
    return {_served_field(model): float(model.score(prepared.x)[0]), "target": model.target, "model": model.ref(),
            "dataset_version": model.dataset_version,
            "n_variants_used": int(prepared.n_variants_used[0]),
            "n_variants_missing": int(prepared.n_variants_missing[0])}


def predict_many(model: ServedModel, patients: Sequence[PatientValues], ids: Sequence[str | None], *,
                 ignore_unknown: bool) -> dict:
    """The ``/predict/batch`` response: one matrix, one vectorised prediction for all patients."""
    labels = [f"patients[{i}]" for i in range(len(patients))]
    prepared = prepare(model, patients, ignore_unknown=ignore_unknown, labels=labels)
    field = _served_field(model)
    items = [{"id": pid, field: float(r), "n_variants_used": int(u), "n_variants_missing": int(m)}
             for pid, r, u, m in zip(ids, model.score(prepared.x), prepared.n_variants_used,
                                     prepared.n_variants_missing, strict=True)]
    return {"target": model.target, "model": model.ref(), "dataset_version": model.dataset_version,
            "predictions": items}


def _served_field(model: ServedModel) -> str:
    return "prediction" if model.target_type == QUANTITATIVE else "risk"

"""report: one HTML page per training run, committed under the storage root and logged to MLflow.

Reads the committed outputs of the run (``preprocess``: ``qc_summary.json``, ``samples/``, the
genotype table's QC columns; ``features``: ``features.json``, ``association/<target>/``;
``evaluate``: ``metrics.json``, ``scores/``) and the registry's versions of each target with their
promotion tags, builds the page (:func:`genoflow.reporting.html.build_report_html`) and commits it
to ``<root>/steps/report/<key>/report.html``, the key hashing the run key and the promotion gate
(the decisions depend on it). Then it logs ``report.html`` on each target's candidate MLflow run
(skipped where it is already there). Runs after ``promote_champion`` in the training DAG.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time

__all__ = ["main", "report_key", "gather_inputs"]

log = logging.getLogger("genoflow")

REPORT_FILE = "report.html"


def main(argv: list[str] | None = None) -> int:
    from genoflow.pipeline.runner import build_parser, job_params, report_errors, say

    args = build_parser("report").parse_args(argv)

    def body() -> int:
        say(f"genoflow report: {run(args, job_params(args.params_json))}")
        return 0

    return report_errors("report", body, args.storage_root)


def report_key(dataset_version: str, params: dict) -> str:
    """The run key plus the promotion gate: a new margin gives new decisions, hence a new report."""
    from genoflow.config import run_key

    canonical = json.dumps({"run": run_key(dataset_version, params), "promote": params.get("promote")},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run(args, params: dict) -> str:
    from genoflow.config import Settings, run_key
    from genoflow.errors import InputError
    from genoflow.pipeline.runner import step_uri
    from genoflow.reporting.html import build_report_html
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage

    key = run_key(args.dataset_version, params)
    spark = get_spark(f"genoflow-report-{key}")
    storage = HadoopStorage(spark, args.storage_root)
    upstream = {step: step_uri(args.storage_root, step, args.dataset_version, params)
                for step in ("preprocess", "features", "evaluate")}
    for step, uri in upstream.items():
        if not storage.is_committed(uri):
            raise InputError(uri, f"the {step} step has not committed its output; run the pipeline first")
    settings = Settings()
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    out_uri = storage.uri("steps", "report", report_key(args.dataset_version, params))
    if storage.is_committed(out_uri):
        log.info("report is already committed at %s", out_uri)
    else:
        started = time.time()
        with storage.step_output(out_uri) as output:
            inputs = gather_inputs(spark, storage, upstream, params, run={
                "run_key": key, "dataset_version": args.dataset_version, "git_commit": args.git_commit,
                "storage_root": args.storage_root,
                "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            storage.write_text(output.path(REPORT_FILE), build_report_html(inputs))
            output.write_json("inputs.json", {
                "step": "report", "run_key": key, "dataset_version": args.dataset_version,
                "git_commit": args.git_commit, "storage_root": args.storage_root, "upstream": upstream,
                "params": params, "seconds": round(time.time() - started, 1)})
        log.info("report committed %s in %.1f s", out_uri, time.time() - started)
    metrics = json.loads(storage.read_text(f"{upstream['evaluate']}/metrics.json"))
    _log_to_candidates(storage.read_text(f"{out_uri}/{REPORT_FILE}"), metrics["candidates"])
    return f"{out_uri}/{REPORT_FILE}"


def gather_inputs(spark, storage, upstream: dict, params: dict, *, run: dict) -> dict:
    """Everything :func:`build_report_html` needs, read from the step outputs and the registry."""
    pre, feat, ev = upstream["preprocess"], upstream["features"], upstream["evaluate"]
    qc_summary = json.loads(storage.read_text(f"{pre}/qc_summary.json"))
    features = json.loads(storage.read_text(f"{feat}/features.json"))
    metrics = json.loads(storage.read_text(f"{ev}/metrics.json"))
    targets = list(metrics["candidates"])  # the study's targets, as evaluate saw them
    association = {}
    for target in targets:
        uri = f"{feat}/association/{target}"
        if storage.exists(uri):
            association[target] = spark.read.parquet(uri).select(
                "contig", "pos", "ref", "alt", "gene", "maf", "beta", "se", "p").toPandas()
    return {
        "run": run,
        "params": params,
        "qc_summary": qc_summary,
        "variant_qc": variant_qc_counts(spark, f"{pre}/genotypes", params["preprocess"]),
        "samples": spark.read.parquet(f"{pre}/samples").toPandas(),
        "study": json.loads(storage.read_text(f"{pre}/study.json")) if storage.exists(f"{pre}/study.json") else None,
        "split": {"n_train": features.get("n_train"), "n_test": features.get("n_test")},
        "association": association,
        "selected": {t: features["targets"][t]["spec"]["variants"] for t in targets if t in features["targets"]},
        "metrics": metrics,
        "scores": spark.read.parquet(f"{ev}/scores").toPandas(),
        "registry": registry_state(params, targets, _target_types(metrics)),
    }


def _target_types(metrics: dict) -> dict[str, str]:
    return {m["target"]: m.get("type", "binary") for m in metrics["models"]}


def variant_qc_counts(spark, genotypes_uri: str, p: dict) -> dict:
    """How many variants fail each QC filter (the genotype table keeps every variant with its QC columns)."""
    row = spark.read.parquet(genotypes_uri).selectExpr(
        "count(*) as n",
        f"sum(int(coalesce(call_rate, 0) < {float(p['min_call_rate'])})) as fail_call_rate",
        f"sum(int(coalesce(maf, 0) < {float(p['min_maf'])})) as fail_maf",
        f"sum(int(coalesce(hwe_p, 0) < {float(p['min_hwe_p'])})) as fail_hwe",
        "sum(int(qc_pass)) as n_pass",
    ).first()
    return {k: int(v or 0) for k, v in row.asDict().items()}


def registry_state(params: dict, targets: list[str], types: dict[str, str] | None = None,
                   max_versions: int = 10) -> dict:
    """Per target: the registered model's latest versions with aliases, promotion tags and the gate metric
    (``promote.metric`` for a binary target, ``test_r2`` for a quantitative one)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from genoflow.registry import (
        HELD_OUT_METRIC,
        TAG_MODEL_FAMILY,
        TAG_PROMOTION,
        TAG_PROMOTION_REASON,
        TAG_RUN_KEY,
        filter_literal,
        model_name,
    )

    client = MlflowClient()
    gate = params.get("promote", {})
    out = {}
    for target in targets:
        kind = (types or {}).get(target, "binary")
        metric = gate.get("metric", "test_auc_roc") if kind == "binary" else HELD_OUT_METRIC[kind]
        name = model_name(gate.get("model_name_prefix", "genoflow"), target)
        try:
            model = client.get_registered_model(name)
            versions = client.search_model_versions(f"name = {filter_literal(name)}")
        except MlflowException:
            out[target] = {"model_name": name, "versions": []}
            continue
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        rows = []
        for v in sorted(versions, key=lambda v: -int(v.version))[:max_versions]:
            run = client.get_run(v.run_id)
            rows.append({"version": str(v.version), "run_id": v.run_id,
                         "aliases": sorted(aliases.get(str(v.version), [])),
                         "promotion": v.tags.get(TAG_PROMOTION),
                         "reason": v.tags.get(TAG_PROMOTION_REASON),
                         "metric_value": run.data.metrics.get(metric), "family": run.data.tags.get(TAG_MODEL_FAMILY),
                         "run_key": run.data.tags.get(TAG_RUN_KEY)})
        out[target] = {"model_name": name, "versions": rows}
    return out


def _log_to_candidates(page: str, candidates: dict) -> None:
    """Log the page as ``report.html`` on each candidate run (MlflowClient: the runs stay FINISHED)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, REPORT_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(page)
        for target, run_id in candidates.items():
            if REPORT_FILE in {a.path for a in client.list_artifacts(run_id)}:
                log.info("%s: %s already on run %s", target, REPORT_FILE, run_id)
                continue
            client.log_artifact(run_id, path)
            log.info("%s: logged %s on candidate run %s", target, REPORT_FILE, run_id)

"""A readable summary of one pipeline run, read back from the MLflow tracking store and registry."""

from __future__ import annotations

import json
from pathlib import Path

from genoflow.registry.tracking import TAG_DATASET_VERSION, TAG_MODEL_FAMILY, TAG_RUN_KEY, TAG_TARGET

__all__ = ["print_summary", "collect_summary"]


def collect_summary(tracking_uri: str, experiment: str, run_key: str | None = None) -> dict:
    """Runs, metrics and registry state of pipeline run ``run_key`` (default: the latest one)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment {experiment!r} at {tracking_uri}: has the DAG run yet?")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list", order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`{TAG_RUN_KEY}` = '{run_key}'" if run_key else "")
    runs = [r for r in runs if TAG_RUN_KEY in r.data.tags]
    if not runs:
        raise LookupError(f"no genoflow runs{' for run key ' + run_key if run_key else ''} in {experiment!r}")
    run_key = run_key or runs[0].data.tags[TAG_RUN_KEY]
    runs = [r for r in runs if r.data.tags[TAG_RUN_KEY] == run_key]
    # A run key trains again when its train step reruns (an Airflow retry, committed outputs
    # deleted): the newest run of each (target, family) is the run's result, the older ones history.
    latest = {}
    for r in runs:  # newest first
        latest.setdefault((r.data.tags.get(TAG_TARGET, ""), r.data.tags.get(TAG_MODEL_FAMILY, "")), r)
    superseded = len(runs) - len(latest)
    client = MlflowClient()
    models = []
    for _, r in sorted(latest.items()):
        models.append({
            "target": r.data.tags.get(TAG_TARGET), "family": r.data.tags.get(TAG_MODEL_FAMILY),
            "run_id": r.info.run_id, "candidate": r.data.tags.get("genoflow.candidate") == "true",
            **{k: r.data.metrics.get(k) for k in ("cv_auc_roc", "test_auc_roc", "test_auc_pr", "lambda_gc")},
        })
    registry = []
    for name in sorted({f"genoflow_{m['target']}" for m in models if m["target"]}):
        for version in client.search_model_versions(f"name = '{name}'"):
            if version.run_id in {m["run_id"] for m in models}:
                aliases = client.get_model_version(name, version.version).aliases
                registry.append({"model": name, "version": version.version, "aliases": sorted(aliases),
                                 "decision": version.tags.get("genoflow.promotion"),
                                 "reason": version.tags.get("genoflow.promotion_reason")})
        try:
            champion = client.get_model_version_by_alias(name, "champion")
            registry.append({"model": name, "champion_version": champion.version})
        except Exception:  # noqa: BLE001 - no champion yet is a normal state
            registry.append({"model": name, "champion_version": None})
    reports = [_report_location(client, m["run_id"]) for m in models if m["candidate"]]
    return {"run_key": run_key, "dataset_version": runs[0].data.tags.get(TAG_DATASET_VERSION),
            "git_commit": runs[0].data.tags.get("mlflow.source.git.commit"), "models": models,
            "registry": registry, "tracking_uri": tracking_uri, "reports": [r for r in reports if r],
            "superseded_runs": superseded}


def _report_location(client, run_id: str) -> str | None:
    """Where a person opens the run's HTML report: a local path when artifacts are files, else its URI."""
    if "report.html" not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    uri = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/report.html"
    return uri.removeprefix("file://")


def print_summary(settings, run_key: str | None = None) -> int:
    from genoflow.config import load_params

    params = load_params(settings.params_file)
    s = collect_summary(settings.mlflow_tracking_uri, params["mlflow"]["experiment"], run_key)
    out = [
        "",
        "genoflow — pipeline run summary",
        f"  run key          {s['run_key']}",
        f"  dataset version  {s['dataset_version']}  (DVC hash of data/raw)",
        f"  code commit      {s['git_commit']}",
        "",
        f"  {'target':<20} {'model':<20} {'CV AUC':>7} {'test AUC-ROC':>13} {'test AUC-PR':>12}",
    ]
    for m in s["models"]:
        mark = "  <- candidate" if m["candidate"] else ""
        out.append(f"  {m['target']:<20} {m['family']:<20} {_fmt(m['cv_auc_roc']):>7} "
                   f"{_fmt(m['test_auc_roc']):>13} {_fmt(m['test_auc_pr']):>12}{mark}")
    if s["superseded_runs"]:
        out.append(f"  ({s['superseded_runs']} earlier training run(s) of this run key not shown: the newest of "
                   "each model counts)")
    inflation = {m["target"]: m["lambda_gc"] for m in s["models"] if m.get("lambda_gc") is not None}
    if inflation:
        out.append("  association scan (training split, PCs as covariates): genomic inflation lambda_GC "
                   + ", ".join(f"{t} {v:.3f}" for t, v in sorted(inflation.items())))
    out.append("")
    for r in s["registry"]:
        if "version" in r:
            out.append(f"  registered {r['model']} v{r['version']} [{', '.join(r['aliases']) or 'no alias'}]: "
                       f"{r['decision']} — {r['reason']}")
        else:
            out.append(f"  {r['model']}: champion is v{r['champion_version']}")
    for report in s["reports"][:1]:
        out += ["", "  report (QC, Manhattan/QQ, ROC/PR, calibration, champion comparison):", f"    {report}"]
    truth = Path(settings.home) / "data" / "truth" / "truth.json"
    if truth.exists():
        oracle = json.loads(truth.read_text())
        out.append("")
        out.append(f"  simulation truth (not seen by the pipeline): oracle AUC disease "
                   f"{_fmt(oracle.get('oracle_auc_disease'))}, response {_fmt(oracle.get('oracle_auc_response'))}")
    out += ["", "  Open the UIs: make up   (Airflow http://127.0.0.1:8080, MLflow http://127.0.0.1:5000,",
            "                          model API http://127.0.0.1:8000; the login is printed), make down to stop",
            "  MLflow only:  make mlflow-ui", ""]
    print("\n".join(out))
    return 0


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"

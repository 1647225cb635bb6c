"""A readable summary of one pipeline run, read back from the MLflow tracking store and registry."""

from __future__ import annotations

import json
from pathlib import Path

from genoflow.registry.tracking import (
    TAG_BASELINE,
    TAG_CANDIDATE,
    TAG_DATASET_VERSION,
    TAG_GATE_CHAMPION,
    TAG_MODEL_FAMILY,
    TAG_PROMOTION,
    TAG_PROMOTION_REASON,
    TAG_RUN_KEY,
    TAG_TARGET,
    TAG_TARGET_TYPE,
    filter_literal,
)

__all__ = ["print_summary", "collect_summary", "format_target", "gate_line"]


def collect_summary(tracking_uri: str, experiment: str, run_key: str | None = None) -> dict:
    """Runs, metrics and registry state of pipeline run ``run_key`` (default: the latest one).

    Each model is a dict: ``target``, ``family``, ``baseline`` (``covariates``/``prs`` or None),
    ``target_type``, ``run_id``, ``candidate``, and every ``cv_*``/``test_*``/``gate_*`` metric of
    its run, plus ``gate_champion_version`` on a candidate that was compared with a champion.
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        raise LookupError(f"no MLflow experiment {experiment!r} at {tracking_uri}: has the DAG run yet?")
    runs = mlflow.search_runs([exp.experiment_id], output_format="list", order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`{TAG_RUN_KEY}` = {filter_literal(run_key)}" if run_key else "")
    runs = [r for r in runs if TAG_RUN_KEY in r.data.tags]
    if not runs:
        raise LookupError(f"no genoflow runs{' for run key ' + run_key if run_key else ''} in {experiment!r}")
    run_key = run_key or runs[0].data.tags[TAG_RUN_KEY]
    runs = [r for r in runs if r.data.tags[TAG_RUN_KEY] == run_key]
    # A run key trains again when its train step reruns (an Airflow retry, committed outputs
    # deleted): the newest run of each model is the run's result, the older ones history. A
    # baseline shares its family with a contender, so it is told apart by its baseline tag.
    latest = {}
    for r in runs:  # newest first
        tags = r.data.tags
        latest.setdefault((tags.get(TAG_TARGET, ""), tags.get(TAG_BASELINE, ""), tags.get(TAG_MODEL_FAMILY, "")), r)
    superseded = len(runs) - len(latest)
    client = MlflowClient()
    models = [_model_row(r) for _, r in sorted(latest.items())]
    registry = []
    for name in sorted({f"genoflow_{m['target']}" for m in models if m["target"]}):
        for version in client.search_model_versions(f"name = {filter_literal(name)}"):
            if version.run_id in {m["run_id"] for m in models}:
                aliases = client.get_model_version(name, version.version).aliases
                registry.append({"model": name, "version": version.version, "aliases": sorted(aliases),
                                 "decision": version.tags.get(TAG_PROMOTION),
                                 "reason": version.tags.get(TAG_PROMOTION_REASON)})
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


def _model_row(run) -> dict:
    tags, metrics = run.data.tags, run.data.metrics
    return {
        "target": tags.get(TAG_TARGET), "family": tags.get(TAG_MODEL_FAMILY), "baseline": tags.get(TAG_BASELINE),
        "target_type": tags.get(TAG_TARGET_TYPE, "binary"), "run_id": run.info.run_id,
        "candidate": tags.get(TAG_CANDIDATE) == "true", "gate_champion_version": tags.get(TAG_GATE_CHAMPION),
        **{k: v for k, v in metrics.items() if k.startswith(("cv_", "test_", "gate_")) and "_fold" not in k},
        "lambda_gc": metrics.get("lambda_gc"),
    }


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
    ]
    for target in sorted({m["target"] for m in s["models"] if m["target"]}):
        out += ["", *format_target(target, [m for m in s["models"] if m["target"] == target])]
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
            out.append(f"  {r['model']}: champion is v{r['champion_version']}" if r["champion_version"] else
                       f"  {r['model']}: no champion (the model API answers 503 with the reason above)")
    for report in s["reports"][:1]:
        out += ["", "  report (QC, Manhattan/QQ, ROC/PR, calibration, baselines, the gate):", f"    {report}"]
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


def format_target(target: str, models: list[dict]) -> list[str]:
    """One target's table: each model's CV metric beside its held-out metrics with 95% CIs, the two
    baselines, and the gate's numbers for the candidate."""
    quantitative = any(m["target_type"] == "quantitative" for m in models)
    ordered = sorted(models, key=lambda m: (m["baseline"] is not None, m["baseline"] or "", m["family"] or ""))
    n = next((m.get("test_n") for m in ordered if m.get("test_n")), None)
    if quantitative:
        head = f"  {'model':<28} {'CV R^2':>13} {'held-out R^2 (95% CI)':>24} {'RMSE (95% CI)':>24}"
        rows = [f"  {_label(m):<28} {_cv(m, 'cv_r2'):>13} {_ci(m, 'test_r2'):>24} {_ci(m, 'test_rmse'):>24}"
                f"{_mark(m)}" for m in ordered]
        kind = f"quantitative, {_count(n)} held-out patients"
    else:
        head = (f"  {'model':<28} {'CV AUC':>13} {'held-out AUC (95% CI)':>24} {'AUC-PR':>7} {'Brier':>6} "
                f"{'calib. slope':>12}")
        rows = [f"  {_label(m):<28} {_cv(m, 'cv_auc_roc'):>13} {_ci(m, 'test_auc_roc'):>24} "
                f"{_fmt(m.get('test_auc_pr')):>7} {_fmt(m.get('test_brier')):>6} "
                f"{_fmt(m.get('test_calibration_slope'), 2):>12}{_mark(m)}" for m in ordered]
        prevalence = next((m.get("test_prevalence") for m in ordered if m.get("test_prevalence") is not None), None)
        kind = f"binary, {_count(n)} held-out patients, prevalence {_fmt(prevalence)}"
    out = [f"  {target} ({kind})", head, *rows]
    for m in ordered:
        if m["candidate"]:
            out.append("  " + gate_line(m))
    return out


def gate_line(candidate: dict) -> str:
    """The gate's evidence on a candidate, as evaluate logged it."""
    from genoflow.registry.tracking import GATE_CHAMPION_DELTA, GATE_P_VS_BASELINE

    p, delta = candidate.get(GATE_P_VS_BASELINE), candidate.get(GATE_CHAMPION_DELTA)
    test = "paired squared errors" if candidate["target_type"] == "quantitative" else "paired DeLong"
    vs_champion = (f"vs champion v{candidate['gate_champion_version']} on the same patients {delta:+.4f}"
                   if delta is not None else "no champion to compare with")
    return f"gate: vs the covariates-only baseline one-sided p = {_p(p)} ({test}); {vs_champion}"


def _label(m: dict) -> str:
    return f"baseline: {m['baseline']}" if m["baseline"] else str(m["family"])


def _mark(m: dict) -> str:
    return "  <- candidate" if m["candidate"] else ""


def _cv(m: dict, key: str) -> str:
    value, sd = m.get(key), m.get(f"{key}_sd")
    return "-" if value is None else f"{value:.3f}" + (f" ±{sd:.3f}" if sd is not None else "")


def _ci(m: dict, key: str) -> str:
    value, low, high = m.get(key), m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ({low:.3f}-{high:.3f})" if low is not None and high is not None else "")


def _p(p) -> str:
    return "-" if p is None else f"{p:.2g}"


def _count(n) -> str:
    return "?" if n is None else f"{int(n):,}"


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"

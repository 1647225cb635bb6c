"""The drift monitor's MLflow I/O: the champion it compares with, and the run each check logs.

Tag names are :mod:`genoflow.registry.tracking`'s (one home; dags/drift_monitor.py reads them back).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

from genoflow.monitoring.compute import batch_name
from genoflow.registry.tracking import (
    TAG_AIRFLOW_RUN_ID,
    TAG_COHORT,
    TAG_DATASET_VERSION,
    TAG_DRIFT_DETECTED,
    TAG_DRIFT_REASONS,
    TAG_DRIFT_REPORT,
    TAG_GIT_COMMIT,
    TAG_MONITORED_MODEL,
    TAG_MONITORED_RUN,
    TAG_MONITORED_VERSION,
    TAG_RUN_KEY,
    ensure_experiment,
    filter_literal,
    model_name,
)

__all__ = ["champion_of", "find_drift_run", "log_drift_run"]

log = logging.getLogger("genoflow")


def champion_of(monitor: dict, tracking_uri: str) -> dict:
    """The champion model version of ``<prefix>_<target>``, its run, params and feature spec."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from genoflow.errors import InputError
    from genoflow.features.spec import FeatureSpec

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    name = model_name(monitor["model_name_prefix"], monitor["target"])
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        raise InputError(f"models:/{name}@champion", "no champion to monitor yet: run genomic_risk_training "
                                                      "first") from None
    run = client.get_run(version.run_id)
    tags = run.data.tags
    if TAG_DATASET_VERSION not in tags:
        raise InputError(f"runs:/{version.run_id}", f"has no {TAG_DATASET_VERSION} tag: not a genoflow run")
    params = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/params.json")
    spec = FeatureSpec.from_json(json.dumps(mlflow.artifacts.load_dict(f"runs:/{version.run_id}/feature_spec.json")))
    return {"model_name": name, "version": str(version.version), "run_id": version.run_id,
            "model_uri": f"models:/{name}/{version.version}", "dataset_version": tags[TAG_DATASET_VERSION],
            "run_key": tags.get(TAG_RUN_KEY), "target": monitor["target"], "params": params, "spec": spec}


def find_drift_run(airflow_run_id: str, experiment: str, tracking_uri: str | None = None):
    """The latest finished drift run tagged with ``airflow_run_id`` (None when there is none)."""
    import mlflow

    from genoflow.config import Settings

    mlflow.set_tracking_uri(tracking_uri or Settings().mlflow_tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = mlflow.search_runs([exp.experiment_id], output_format="list", max_results=1,
                              order_by=["attributes.start_time DESC"],
                              filter_string=(f"tags.`{TAG_AIRFLOW_RUN_ID}` = {filter_literal(airflow_run_id)} "
                                             "and attributes.status = 'FINISHED'"))
    return runs[0] if runs else None


def log_drift_run(report: dict, png: bytes, report_uri: str, monitor: dict, *, run_id: str, git_commit: str,
                  settings) -> str:
    """One MLflow run in ``monitor.experiment``: metrics, thresholds, the report and its plot."""
    import mlflow

    experiment_id = ensure_experiment(settings.mlflow_tracking_uri, monitor["experiment"],
                                      settings.mlflow_artifact_root)
    af, score, champion = report["allele_frequency"], report["score"], report["champion"]
    batch = batch_name(report["cohort"]["vcf"])
    tags = {TAG_AIRFLOW_RUN_ID: run_id, TAG_DRIFT_REPORT: report_uri, TAG_COHORT: report["cohort"]["vcf"],
            TAG_MONITORED_MODEL: champion["model_name"], TAG_MONITORED_VERSION: champion["version"],
            TAG_MONITORED_RUN: champion["run_id"], TAG_DATASET_VERSION: champion["dataset_version"],
            TAG_GIT_COMMIT: git_commit, TAG_DRIFT_DETECTED: str(report["drift_detected"]).lower(),
            TAG_DRIFT_REASONS: "; ".join(report["reasons"]) or "none"}
    metrics = {
        "drift_detected": float(report["drift_detected"]),
        "max_af_shift": af["max_abs_af_shift"], "mean_af_shift": af["mean_abs_af_shift"],
        "n_variants_compared": af["n_variants"], "n_variants_significant": af["n_significant"],
        "fraction_variants_significant": af["fraction_significant"], "fst": af["fst"], "mean_chi2": af["mean_chi2"],
        "max_psi": report["max_feature_psi"] if report["max_feature_psi"] is not None else 0.0,
        "score_psi": score["psi"], "score_ks": score["ks"], "score_ks_p": score["ks_p"],
        "n_samples": report["cohort"]["n_samples"], "n_samples_pass_qc": report["cohort"]["n_samples_pass_qc"],
    }
    if report.get("batch_auc_roc") is not None:
        metrics["batch_auc_roc"] = report["batch_auc_roc"]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-{batch}", tags=tags) as run:
        mlflow.log_params({f"monitor.{k}": v for k, v in report["thresholds"].items()})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "drift_report.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "drift_report.png")
            with open(path, "wb") as handle:
                handle.write(png)
            mlflow.log_artifact(path)
    log.info("drift run %s: drift_detected=%s %s", run.info.run_id, report["drift_detected"], report["reasons"])
    return run.info.run_id

"""Experiment set-up and the run tags every genoflow MLflow run carries."""

from __future__ import annotations

__all__ = [
    "ensure_experiment", "model_name",
    "TAG_RUN_KEY", "TAG_DATASET_VERSION", "TAG_GIT_COMMIT", "TAG_TARGET", "TAG_MODEL_FAMILY", "TAG_CANDIDATE",
    "TAG_BASELINE", "TAG_TARGET_TYPE", "TAG_GATE_CHAMPION", "TAG_PROMOTION", "TAG_PROMOTION_REASON",
    "GATE_P_VS_BASELINE", "GATE_CHAMPION_DELTA", "HELD_OUT_METRIC", "filter_literal",
    "TAG_AIRFLOW_RUN_ID", "TAG_DRIFT_REPORT", "TAG_DRIFT_DETECTED", "TAG_DRIFT_REASONS", "TAG_COHORT",
    "TAG_MONITORED_MODEL", "TAG_MONITORED_VERSION", "TAG_MONITORED_RUN",
]

TAG_RUN_KEY = "genoflow.run_key"
TAG_DATASET_VERSION = "genoflow.dataset_version"  # the DVC content hash of the raw cohort
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_TARGET = "genoflow.target"
TAG_MODEL_FAMILY = "genoflow.model_family"
TAG_CANDIDATE = "genoflow.candidate"  # "true" on the run evaluate picked for promotion
TAG_BASELINE = "genoflow.baseline"  # covariates | prs on a baseline run (never a candidate)
TAG_TARGET_TYPE = "genoflow.target_type"  # binary | quantitative

# The promotion gate's evidence, logged by evaluate on the candidate's run (decision 0011).
GATE_P_VS_BASELINE = "gate_p_vs_baseline"  # metric: one-sided paired p, candidate vs the covariates-only baseline
GATE_CHAMPION_DELTA = "gate_champion_delta"  # metric: candidate minus champion on the same test patients
TAG_GATE_CHAMPION = "genoflow.gate.champion_version"  # run tag: the champion version evaluate compared with
# The held-out metric the gate compares, by target type (champion_delta is in this metric).
HELD_OUT_METRIC = {"binary": "test_auc_roc", "quantitative": "test_r2"}

# Model version tags: the gate's decision and why.
TAG_PROMOTION = "genoflow.promotion"  # champion | kept challenger
TAG_PROMOTION_REASON = "genoflow.promotion_reason"

# Drift monitor runs (genoflow.monitoring): the Airflow run that asked, the report, the verdict and
# the batch and champion compared; dags/drift_monitor.py reads them back.
TAG_AIRFLOW_RUN_ID = "genoflow.airflow_run_id"
TAG_DRIFT_REPORT = "genoflow.drift_report"  # the committed report folder's URI
TAG_DRIFT_DETECTED = "genoflow.drift_detected"  # "true" | "false"
TAG_DRIFT_REASONS = "genoflow.drift_reasons"  # "; "-joined, "none" without drift
TAG_COHORT = "genoflow.cohort_vcf"
TAG_MONITORED_MODEL = "genoflow.monitored_model"
TAG_MONITORED_VERSION = "genoflow.monitored_version"
TAG_MONITORED_RUN = "genoflow.monitored_run_id"


def ensure_experiment(tracking_uri: str, name: str, artifact_root: str | None) -> str:
    """Point MLflow at ``tracking_uri`` and return the id of experiment ``name``, creating it.

    The artifact location is set explicitly: with a database backend MLflow would otherwise put
    artifacts under the current working directory of whichever process created the experiment.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Created by a concurrent task between the lookup and the create.
        return mlflow.get_experiment_by_name(name).experiment_id


def model_name(prefix: str, target: str) -> str:
    """The registered model name for a target, e.g. ``genoflow_disease_status``."""
    return f"{prefix}_{target}"


def filter_literal(value: str) -> str:
    """``value`` quoted for an MLflow search filter string (``tags.`x` = <literal>``).

    MLflow's parser takes a string between single or double quotes and has no escape sequence, so
    the value is put between the quote it does not contain, and refused when it holds both (it
    could not be matched, and would otherwise end the literal early and change the query).

    >>> print(filter_literal("disease_status"), filter_literal("it's"))
    'disease_status' "it's"
    """
    value = str(value)
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"filter_literal: {value!r} holds both quote characters; MLflow filter strings cannot match it")

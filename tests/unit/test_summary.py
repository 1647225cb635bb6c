"""genoflow summary reads a run back from a real MLflow tracking store (SQLite in a temp folder)."""

from __future__ import annotations

import time

import mlflow

from genoflow.registry.tracking import TAG_DATASET_VERSION, TAG_MODEL_FAMILY, TAG_RUN_KEY, TAG_TARGET
from genoflow.summary import collect_summary


def _train(family: str, test_auc: float, run_key: str = "k1") -> None:
    with mlflow.start_run(tags={TAG_RUN_KEY: run_key, TAG_TARGET: "disease_status", TAG_MODEL_FAMILY: family,
                                TAG_DATASET_VERSION: "d1"}):
        mlflow.log_metric("test_auc_roc", test_auc)
    time.sleep(0.01)  # distinct start times: the summary orders runs by them


def test_collect_summary__a_retrained_run_key_shows_each_model_once_with_its_newest_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("genoflow-test")
    _train("gbt", 0.70)
    _train("logistic_regression", 0.75)
    _train("gbt", 0.72)  # the train step ran again for the same run key
    _train("gbt", 0.99, run_key="other")

    summary = collect_summary(uri, "genoflow-test", "k1")

    assert [(m["family"], m["test_auc_roc"]) for m in summary["models"]] == [
        ("gbt", 0.72), ("logistic_regression", 0.75)]
    assert summary["superseded_runs"] == 1

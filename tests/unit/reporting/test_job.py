"""The report job's key and entry point (no Spark)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genoflow.config import load_params, run_key
from genoflow.reporting.job import report_key
from tests.conftest import REPO


def test_report_key__follows_the_run_and_the_promotion_gate():
    params = load_params(REPO / "params.yaml")
    key = report_key("v1.dir", params)
    assert report_key("v1.dir", params) == key and len(key) == 16
    assert report_key("v2.dir", params) != key
    stricter = load_params(REPO / "params.yaml", overrides={"promote": {"min_improvement": 0.05}})
    assert run_key("v1.dir", stricter) == run_key("v1.dir", params)  # same trained models...
    assert report_key("v1.dir", stricter) != key  # ...judged differently: another report
    assert report_key("v1.dir", load_params(REPO / "params.yaml", overrides={"monitor": {"alpha": 0.1}})) == key


def test_job__help_without_spark():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "report.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--storage-root" in out and "--dataset-version" in out and "--params-json" in out


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_registry_state__gate_tags_and_the_metric_of_each_target_type(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from genoflow.reporting.job import registry_state

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Artifacts under tmp_path: the default location is ./mlruns of the working directory.
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("report", (tmp_path / "artifacts").as_uri()))
    client = MlflowClient()
    for target, metrics in (("disease_status", {"test_auc_roc": 0.7}), ("ldl", {"test_r2": 0.2})):
        with mlflow.start_run() as run:
            mlflow.log_metrics(metrics)
            mlflow.log_text("flavors: {}\n", "model/MLmodel")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", f"genoflow_{target}").version
        client.set_model_version_tag(f"genoflow_{target}", version, "genoflow.promotion", "kept challenger")
        client.set_model_version_tag(f"genoflow_{target}", version, "genoflow.promotion_reason", "not better")
    params = {"promote": {"metric": "test_auc_roc", "model_name_prefix": "genoflow"}}
    state = registry_state(params, ["disease_status", "ldl", "absent"],
                           {"disease_status": "binary", "ldl": "quantitative"})
    assert [v["metric_value"] for v in state["disease_status"]["versions"]] == [0.7]
    assert [(v["metric_value"], v["promotion"], v["reason"]) for v in state["ldl"]["versions"]] == [
        (0.2, "kept challenger", "not better")]
    assert state["absent"] == {"model_name": "genoflow_absent", "versions": []}
    mlflow.set_tracking_uri(None)

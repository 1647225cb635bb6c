"""genoflow summary reads a run back from a real MLflow tracking store (SQLite in a temp folder)."""

from __future__ import annotations

import time

import mlflow
import pytest

from genoflow.registry.tracking import TAG_DATASET_VERSION, TAG_MODEL_FAMILY, TAG_RUN_KEY, TAG_TARGET
from genoflow.summary import collect_summary


def _train(family: str, test_auc: float, run_key: str = "k1") -> None:
    with mlflow.start_run(tags={TAG_RUN_KEY: run_key, TAG_TARGET: "disease_status", TAG_MODEL_FAMILY: family,
                                TAG_DATASET_VERSION: "d1"}):
        mlflow.log_metric("test_auc_roc", test_auc)
    time.sleep(0.01)  # distinct start times: the summary orders runs by them


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
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


def _run(run_key: str, family: str, metrics: dict, *, baseline: str | None = None, candidate: bool = False,
         kind: str = "binary", target: str = "disease_status", champion: str | None = None) -> None:
    from genoflow.registry.tracking import TAG_BASELINE, TAG_CANDIDATE, TAG_GATE_CHAMPION, TAG_TARGET_TYPE

    tags = {TAG_RUN_KEY: run_key, TAG_TARGET: target, TAG_MODEL_FAMILY: family, TAG_DATASET_VERSION: "d1",
            TAG_TARGET_TYPE: kind, **({TAG_BASELINE: baseline} if baseline else {}),
            **({TAG_CANDIDATE: "true"} if candidate else {}), **({TAG_GATE_CHAMPION: champion} if champion else {})}
    with mlflow.start_run(tags=tags):
        mlflow.log_metrics(metrics)
    time.sleep(0.01)


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_collect_summary__baselines_cis_and_the_gate(tmp_path):
    from genoflow.summary import format_target

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("genoflow-test")
    held_out = {"test_auc_pr": 0.6, "test_brier": 0.21, "test_calibration_slope": 0.93, "test_n": 250,
                "test_prevalence": 0.5}
    _run("k1", "logistic_regression", {"cv_auc_roc": 0.61, "cv_auc_roc_sd": 0.02, "test_auc_roc": 0.585,
                                       "test_auc_roc_ci_low": 0.515, "test_auc_roc_ci_high": 0.655, **held_out,
                                       "gate_p_vs_baseline": 0.041, "gate_champion_delta": -0.012}, candidate=True,
         champion="2")
    _run("k1", "logistic_regression", {"cv_auc_roc": 0.55, "test_auc_roc": 0.53, **held_out}, baseline="covariates")
    _run("k1", "logistic_regression", {"cv_auc_roc": 0.57, "test_auc_roc": 0.56, **held_out}, baseline="prs")

    summary = collect_summary(uri, "genoflow-test", "k1")
    # The baselines share the candidate's family and are still three models, not one.
    assert [(m["baseline"], m["candidate"]) for m in summary["models"]] == [
        (None, True), ("covariates", False), ("prs", False)]
    lines = format_target("disease_status", summary["models"])
    text = "\n".join(lines)
    assert "binary, 250 held-out patients, prevalence 0.500" in lines[0]
    assert "0.610 ±0.020" in text and "0.585 (0.515-0.655)" in text and "0.210" in text and "0.93" in text
    assert "baseline: covariates" in text and "baseline: prs" in text
    assert lines[-1].strip() == ("gate: vs the covariates-only baseline one-sided p = 0.041 (paired DeLong); "
                                 "vs champion v2 on the same patients -0.0120")


def test_format_target__quantitative_r2_and_rmse_with_cis():
    from genoflow.summary import format_target

    model = {"target": "ldl", "family": "linear_regression", "baseline": None, "target_type": "quantitative",
             "run_id": "r", "candidate": True, "gate_champion_version": None, "cv_r2": 0.2, "test_r2": 0.18,
             "test_r2_ci_low": 0.1, "test_r2_ci_high": 0.25, "test_rmse": 1.2, "test_rmse_ci_low": 1.1,
             "test_rmse_ci_high": 1.3, "test_n": 300, "gate_p_vs_baseline": 0.2}
    lines = format_target("ldl", [model])
    assert "quantitative, 300 held-out patients" in lines[0] and "R^2" in lines[1]
    assert "0.180 (0.100-0.250)" in lines[2] and "1.200 (1.100-1.300)" in lines[2]
    assert lines[3].strip() == ("gate: vs the covariates-only baseline one-sided p = 0.2 (paired squared errors); "
                                "no champion to compare with")

"""The training DAG end to end: Airflow (`airflow dags test`) -> spark-submit jobs -> MLflow registry.

Real components only: Airflow 3 on SQLite, pyspark's spark-submit on local[2], MLflow's SQLite
tracking store and registry, DVC with a local remote. The cohort is simulated with known truth.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import trigger
from tests.integration.outcomes import (
    MODEL,
    assert_champion_with_dataset_hash,
    assert_held_out_auc_near_oracle,
    assert_no_raw_ids_downstream,
)
from tests.integration.outcomes import mlflow_client as _client

pytestmark = pytest.mark.integration


def test_first_run__champion_with_dataset_hash(project, first_run):
    assert_champion_with_dataset_hash(project)


def test_first_run__held_out_auc_near_oracle(project, first_run):
    assert_held_out_auc_near_oracle(project)


def test_first_run__a_vcf_cohort_skips_the_reads_tasks(project, first_run):
    """The cohort has a VCF (and FASTQs for read QC): align and call are skipped, no Spark job starts."""
    # (preprocess may have been committed by an earlier run of the session's project: the UI test's)
    assert "preprocess committed" in first_run or "preprocess is already committed" in first_run
    assert "align committed" not in first_run and "call committed" not in first_run
    assert not (project.root / "data" / "steps" / "align").exists()


def test_first_run__no_raw_ids_downstream(project, first_run):
    assert_no_raw_ids_downstream(project.root / "data" / "steps")


def test_rerun__same_data_and_params_reuses_outputs(project, first_run):
    client = _client(project)
    before = client.get_model_version_by_alias(MODEL, "champion").version
    log = trigger(project, logical_date="2026-01-02T00:00:00+00:00")
    for step in ("preprocess", "features", "train", "evaluate", "report"):
        assert f"{step} is already committed" in log, step
    assert client.get_model_version_by_alias(MODEL, "champion").version == before


def test_worse_model__does_not_move_champion(project, first_run):
    client = _client(project)
    before = client.get_model_version_by_alias(MODEL, "champion")
    before_auc = client.get_run(before.run_id).data.metrics["test_auc_roc"]
    # One variant and the clinical covariates only: no read QC, PCs, polygenic scores or burdens.
    worse = {"features": {"top_k": 1, "read_qc": [], "pca_components": 0, "pca_covariates": 0,
                          "prs_thresholds": [], "burden_top_k": 0},
             "train": {"models": ["logistic_regression"]}}
    log = trigger(project, conf=worse, logical_date="2026-01-03T00:00:00+00:00")
    assert "preprocess is already committed" in log  # model tuning reuses the preprocessed cohort

    after = client.get_model_version_by_alias(MODEL, "champion")
    challenger = client.get_model_version_by_alias(MODEL, "challenger")
    assert after.version == before.version
    assert challenger.version != before.version
    assert client.get_run(challenger.run_id).data.metrics["test_auc_roc"] < before_auc
    assert client.get_model_version(MODEL, challenger.version).tags["genoflow.promotion"] == "kept challenger"

"""A cohort of reads through the training DAG: Airflow runs align and call as their own SparkSubmit tasks.

Real components only, as tests/integration/test_training_dag.py: `airflow dags test`, spark-submit on
local[2], MLflow's SQLite registry, DVC. The cohort has FASTQs and no VCF, so ``preprocess.input: auto``
resolves to reads; preprocess, features, training and serving run on the called genotypes unchanged.
"""

from __future__ import annotations

import json

import pytest

from tests.project import make_reads_project, trigger

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reads_project(tmp_path_factory):
    # Few variants on a 20 kb panel, and what this test checks is the reads tasks: one model family, two folds,
    # few PCs and no polygenic scores keep the rest of the run short.
    params = {"study": {"min_minority": 5}, "train": {"models": ["logistic_regression"], "cv_folds": 2},
              "features": {"pca_components": 2, "pca_covariates": 2, "top_k": 10, "prs_thresholds": [],
                           "prs_folds": 0}}
    return make_reads_project(tmp_path_factory.mktemp("reads-project"), params, n_patients=60,
                              panel_length=20_000, coverage=15, sequence_length=300_000, seed=4, n_causal=3)


def test_reads_cohort__align_and_call_run_before_preprocess(reads_project):
    log = trigger(reads_project, logical_date="2026-02-01T00:00:00+00:00")
    for step in ("align", "call", "preprocess", "features", "train", "evaluate"):
        assert f"{step} committed" in log, step
    assert log.index("align committed") < log.index("call committed") < log.index("preprocess committed")
    steps = reads_project.root / "data" / "steps"
    (call,) = (steps / "call").iterdir()
    calling = json.loads((call / "calling.json").read_text())
    assert calling["samples"] == 60 and calling["sites"] > 20
    assert (call / "cohort.vcf.gz.tbi").is_file()
    (preprocess,) = (steps / "preprocess").iterdir()
    summary = json.loads((preprocess / "qc_summary.json").read_text())
    assert summary["n_samples"] == 60 and summary["n_samples_with_reads"] == 60

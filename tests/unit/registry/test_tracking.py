"""MLflow filter strings built with filter_literal: a value is one literal, whatever quotes it holds."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.utils.search_utils import SearchUtils

from genoflow.monitoring.job import TAG_AIRFLOW_RUN_ID, find_drift_run
from genoflow.registry.tracking import filter_literal

HOSTILE = ["x' or tags.a = 'b", 'x" or tags.a = "b', "it's", "manual__2026-01-01T00:00:00+00:00", "a\\'"]


@pytest.mark.parametrize("value", HOSTILE)
def test_filter_literal__a_quote_cannot_change_the_filter(value):
    clauses = SearchUtils.parse_search_filter(
        f"tags.`{TAG_AIRFLOW_RUN_ID}` = {filter_literal(value)} and attributes.status = 'FINISHED'")
    assert clauses == [
        {"type": "tag", "key": TAG_AIRFLOW_RUN_ID, "comparator": "=", "value": value},
        {"type": "attribute", "key": "status", "comparator": "=", "value": "FINISHED"},
    ]


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_find_drift_run__finds_the_run_of_a_run_id_with_a_quote_and_no_other(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("drift", artifact_location=(tmp_path / "artifacts").as_uri())
        ids = {}
        for run_id in ("plain", "x' or tags.a = 'b"):
            with mlflow.start_run(experiment_id=experiment, tags={TAG_AIRFLOW_RUN_ID: run_id}) as run:
                ids[run_id] = run.info.run_id
        assert find_drift_run("x' or tags.a = 'b", "drift", uri).info.run_id == ids["x' or tags.a = 'b"]
        assert find_drift_run("plain' or '1' = '1", "drift", uri) is None
    finally:
        mlflow.set_tracking_uri(None)

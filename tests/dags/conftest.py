"""One DagBag of dags/ for the DAG integrity tests (parsing it is the slow part)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def dagbag():
    os.environ.setdefault("GENOFLOW_HOME", str(REPO))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))

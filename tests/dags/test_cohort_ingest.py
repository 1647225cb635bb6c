"""cohort_ingest DAG integrity: parses light, one ingest task that emits the raw-cohort Asset."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

DAG_ID = "cohort_ingest"


def test_dagbag__no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_dag__ingest_task_emits_the_raw_cohort_asset(dagbag):
    from genoflow_plugins.assets import RAW_COHORT
    from genoflow_plugins.operators import IngestCohortOperator

    dag = dagbag.dags[DAG_ID]
    assert dag.task_ids == ["ingest_cohort"]
    task = dag.get_task("ingest_cohort")
    assert isinstance(task, IngestCohortOperator)
    assert task.outlets == [RAW_COHORT]
    # The training DAG consumes the same Asset object: one declaration (plugins/genoflow_plugins/assets.py).
    assert list(dagbag.dags["genomic_risk_training"].timetable.asset_condition.objects) == task.outlets


def test_dag__conventions(dagbag):
    from genoflow.config import load_params

    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.tags and dag.doc_md
    assert all(task.retries >= 2 for task in dag.tasks)
    assert dag.params["ingest"] == load_params(REPO / "params.yaml")["ingest"]


def test_dag_file__parses_without_heavy_imports():
    code = ("import sys; sys.path.insert(0, 'plugins'); "
            "import runpy; runpy.run_path('dags/cohort_ingest.py'); "
            "heavy = [m for m in ('pyspark', 'mlflow', 'dvc', 'pandas', 'numpy', 'genoflow.ingest') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout

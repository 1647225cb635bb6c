"""drift_monitor DAG integrity: parses, the chain and operators are as specified, params from params.yaml."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

DAG_ID = "drift_monitor"


def test_dagbag__no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_dag__task_chain(dagbag):
    dag = dagbag.dags[DAG_ID]
    order = ["detect_drift", "check_drift", "ingest_drifted_batch"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_dag__operators(dagbag):
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    dag = dagbag.dags[DAG_ID]
    detect = dag.get_task("detect_drift")
    assert isinstance(detect, GenoflowSparkSubmitOperator)
    assert detect.application.endswith("jobs/drift.py")
    assert detect._conn_id == "spark_default"
    args = detect.application_args
    assert args[args.index("--run-id") + 1] == "{{ run_id }}"
    assert "params.monitor" in args[args.index("--monitor-json") + 1]
    assert isinstance(dag.get_task("check_drift"), ShortCircuitOperator)
    trigger = dag.get_task("ingest_drifted_batch")
    assert isinstance(trigger, TriggerDagRunOperator)
    # Retraining goes through the data: the batch is ingested (appended), and its Asset event starts training.
    assert trigger.trigger_dag_id == "cohort_ingest"
    assert trigger.conf["reason"] == "drift"
    assert trigger.conf["ingest"]["mode"] == "append" and "landing_dir" in trigger.conf["ingest"]["landing_dir"]


def test_dag__conventions(dagbag):
    from genoflow.config import load_params

    dag = dagbag.dags[DAG_ID]
    monitor = load_params(REPO / "params.yaml")["monitor"]
    assert dag.catchup is False
    assert dag.tags and dag.doc_md
    assert all(task.retries >= 2 for task in dag.tasks)
    assert dag.schedule == monitor["schedule"] == "@daily"
    assert dag.params["monitor"] == monitor
    for key in ("cohort_vcf", "patient_dir", "alpha", "min_significant_fraction", "max_fst", "psi_threshold",
                "score_psi_threshold"):
        assert key in monitor


def test_dag_file__parses_without_heavy_imports():
    code = ("import sys; sys.path.insert(0, 'plugins'); "
            "import runpy; runpy.run_path('dags/drift_monitor.py'); "
            "heavy = [m for m in ('pyspark', 'mlflow', 'dvc', 'pandas', 'numpy', 'genoflow.monitoring') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout

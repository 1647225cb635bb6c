"""DAG integrity: parses without import errors, and the chain and operators are as specified."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

DAG_ID = "genomic_risk_training"


def test_dagbag__no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_dag__task_chain(dagbag):
    dag = dagbag.dags[DAG_ID]
    reads = ["resolve_dataset_version", "cohort_has_reads", "align_reads", "call_genotypes"]
    order = ["preprocess_cohort", "build_features", "train_models", "evaluate_models", "promote_champion",
             "build_report"]
    assert sorted(dag.task_ids) == sorted(reads + order)
    for upstream, downstream in zip(reads, reads[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    # preprocess follows the reads tasks, or their skip for a VCF cohort
    assert dag.get_task("preprocess_cohort").upstream_task_ids == {"resolve_dataset_version", "call_genotypes"}
    assert dag.get_task("preprocess_cohort").trigger_rule == "none_failed"
    assert dag.get_task("cohort_has_reads").ignore_downstream_trigger_rules is False
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}


def test_dag__operators(dagbag):
    from genoflow_plugins.operators import (
        GenoflowSparkSubmitOperator,
        PromoteChampionOperator,
        ResolveDatasetVersionOperator,
    )

    dag = dagbag.dags[DAG_ID]
    for task_id, job in [("align_reads", "align"), ("call_genotypes", "call"),
                         ("preprocess_cohort", "preprocess"), ("build_features", "features"),
                         ("train_models", "train"), ("evaluate_models", "evaluate"), ("build_report", "report")]:
        task = dag.get_task(task_id)
        assert isinstance(task, GenoflowSparkSubmitOperator)  # ships the library zip (--py-files)
        assert task.application.endswith(f"jobs/{job}.py")
        assert task._conn_id == "spark_default"
    assert isinstance(dag.get_task("resolve_dataset_version"), ResolveDatasetVersionOperator)
    assert isinstance(dag.get_task("promote_champion"), PromoteChampionOperator)


def test_dag__conventions(dagbag):
    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False
    assert dag.tags and dag.doc_md
    assert all(task.retries >= 2 for task in dag.tasks)
    # Params come from params.yaml: every section is a DAG param (overridable per run).
    assert {"preprocess", "features", "train", "promote", "mlflow"} <= set(dag.params)


def test_dag_file__parses_without_heavy_imports():
    code = ("import sys, time; t = time.time(); sys.path.insert(0, 'plugins'); "
            "import runpy; runpy.run_path('dags/genomic_risk_training.py'); "
            "heavy = [m for m in ('pyspark', 'mlflow', 'dvc', 'pandas', 'Bio') if m in sys.modules]; "
            "print(heavy, round(time.time() - t, 2))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    heavy = out.stdout.strip().split("]")[0] + "]"
    assert heavy == "[]", out.stdout


def test_dag__schedule_is_new_cohorts_or_the_retraining_cron(dagbag):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
    from genoflow_plugins.assets import RAW_COHORT

    from genoflow.config import load_params

    dag = dagbag.dags[DAG_ID]
    ingest = load_params(REPO / "params.yaml")["ingest"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert list(dag.timetable.asset_condition.objects) == [RAW_COHORT]
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert dag.timetable.timetable.expression == ingest["retrain_schedule"]
    assert "ingest" not in dag.params  # ingest settings are not training params (nor in the run key)


def test_dag__unpausing_schedules_no_run_before_the_next_cron_slot(dagbag):
    """No start_date: unpausing must not start a retraining for a past slot (catchup=False would)."""
    from airflow.sdk import timezone
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[DAG_ID]))
    first = dag.next_dagrun_info(last_automated_run_info=None)
    assert first.run_after > timezone.utcnow()

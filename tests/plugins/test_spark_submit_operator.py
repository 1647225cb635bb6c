"""GenoflowSparkSubmitOperator resolves spark-submit settings when the task runs, from the run's params."""

from __future__ import annotations

import shutil

from tests.conftest import REPO


def _submitted_conf(tmp_path, monkeypatch, run_params: dict, conf: dict | None = None) -> dict:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("GENOFLOW_PARAMS", raising=False)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    submitted = []  # the conf spark-submit would get (real submissions: tests/integration)
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(dict(self.conf)))
    task = GenoflowSparkSubmitOperator(task_id="run_job", application="jobs/preprocess.py", conf=conf)
    task.execute({"params": run_params})
    return submitted[0]


def test_spark_conf__resolved_at_execute_with_the_runs_spark_section(tmp_path, monkeypatch):
    conf = _submitted_conf(tmp_path, monkeypatch, {"spark": {"spark.sql.shuffle.partitions": "3"}, "reason": "x"})
    assert conf["spark.sql.shuffle.partitions"] == "3"  # the run's value, not params.yaml's "8"
    assert "-XX:TieredStopAtLevel=1" in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.driver.memory"] == "2g"  # params.yaml's, which the run left alone


def test_spark_conf__the_operators_own_conf_wins(tmp_path, monkeypatch):
    conf = _submitted_conf(tmp_path, monkeypatch, {}, conf={"spark.driver.memory": "1g"})
    assert conf["spark.driver.memory"] == "1g"
    assert "spark.driver.extraJavaOptions" in conf


def test_spark_conf__class_archive_is_mapped_once_it_exists_on_the_submitting_machine(tmp_path, monkeypatch):
    from genoflow.spark_submit import ARCHIVE

    assert "SharedArchiveFile" not in _submitted_conf(tmp_path, monkeypatch, {})["spark.driver.extraJavaOptions"]
    (tmp_path / ARCHIVE).parent.mkdir(parents=True)
    (tmp_path / ARCHIVE).write_bytes(b"")
    options = _submitted_conf(tmp_path, monkeypatch, {})["spark.driver.extraJavaOptions"]
    assert f"-XX:SharedArchiveFile={tmp_path / ARCHIVE}" in options.split()


def test_spark_ui__off_for_batch_steps_unless_the_runs_spark_section_turns_it_on(tmp_path, monkeypatch):
    assert _submitted_conf(tmp_path, monkeypatch, {})["spark.ui.enabled"] == "false"
    on = _submitted_conf(tmp_path, monkeypatch, {"spark": {"spark.ui.enabled": True}})
    assert on["spark.ui.enabled"] == "true"  # Spark reads "true"; params may give a YAML boolean


def test_worker_daemon__local_masters_only(tmp_path, monkeypatch):
    from genoflow.spark_submit import LOCAL_DAEMON_CONF

    (key, module), = LOCAL_DAEMON_CONF.items()
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[*]"}')
    assert _submitted_conf(tmp_path, monkeypatch, {})[key] == module
    # A cluster's executors may not have genoflow installed: their daemon stays pyspark's own.
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "spark://master", "port": 7077}')
    assert key not in _submitted_conf(tmp_path, monkeypatch, {})

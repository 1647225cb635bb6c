"""GenoflowSparkSubmitOperator: a cluster's Spark jobs take the library zip with them (--py-files), and bad input
fails once."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_genoflow_spark_submit__ships_the_library_first_to_a_cluster(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "spark://master", "port": 7077}')
    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")  # the operator resolves spark_conf from it
    submitted = []  # what spark-submit would get; the real submission is covered by the integration tests
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.py_files))
    task = GenoflowSparkSubmitOperator(task_id="run_job", application="jobs/preprocess.py", py_files="extra.zip")
    task.execute({"params": {}})
    task.execute({"params": {}})  # executing again (a retry in the same process) does not ship it twice

    library, extra = submitted[-1].split(",")
    assert submitted[0] == submitted[1]
    assert Path(library).parent == tmp_path / ".genoflow" / "py-files" and extra == "extra.zip"
    with zipfile.ZipFile(library) as archive:
        assert "genoflow/pipeline/runner.py" in archive.namelist()


def test_genoflow_spark_submit__a_local_master_imports_the_installed_library(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[*]"}')
    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.py_files))
    GenoflowSparkSubmitOperator(task_id="run_job", application="jobs/preprocess.py", py_files="extra.zip") \
        .execute({"params": {}})
    assert submitted == ["extra.zip"]  # the user's own py-files still go
    assert not (tmp_path / ".genoflow" / "py-files").exists()


def _fake_spark_submit(folder: Path, exit_code: int, line: str) -> None:
    """A spark-submit that prints what a failing genoflow job prints (runner.report_errors) and exits."""
    script = folder / "spark-submit"
    script.write_text(f"#!/bin/sh\necho 'WARN some Spark noise'\necho \"{line}\" >&2\necho 'WARN shutdown'\n"
                      f"exit {exit_code}\n")
    script.chmod(0o755)


def _submit(tmp_path, monkeypatch, exit_code: int, line: str):
    """GenoflowSparkSubmitOperator through the real SparkSubmitHook and a subprocess, on a fake spark-submit."""
    import os

    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_spark_submit(bin_dir, exit_code, line)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "local[1]"}')
    task = GenoflowSparkSubmitOperator(task_id="preprocess_cohort", application="jobs/preprocess.py",
                                       conn_id="spark_default")
    return task.execute({"params": {}})


def test_genoflow_spark_submit__input_error_exit_fails_once_with_the_jobs_line(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from genoflow.errors import INPUT_ERROR_EXIT

    line = "genoflow preprocess: error: params.yaml: features.top_kk: unknown key (did you mean top_k?)"
    with pytest.raises(AirflowFailException) as caught:
        _submit(tmp_path, monkeypatch, INPUT_ERROR_EXIT, line)
    assert str(caught.value) == line


@pytest.mark.parametrize("exit_code", [1, 2])
def test_genoflow_spark_submit__other_failures_keep_their_retries(tmp_path, monkeypatch, exit_code):
    """Exit 2 is an unavailable storage root (a retry may find it back), 1 a crash: AirflowException, not Fail."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    with pytest.raises(AirflowException, match=f"Error code is: {exit_code}") as caught:
        _submit(tmp_path, monkeypatch, exit_code, "genoflow preprocess: error: cannot reach the HDFS NameNode nn:8020")
    assert not isinstance(caught.value, AirflowFailException)


def test_genoflow_spark_submit__success_passes_through(tmp_path, monkeypatch):
    assert _submit(tmp_path, monkeypatch, 0, "genoflow preprocess: committed") is None


@pytest.mark.parametrize(("message", "code", "line"), [
    ("Cannot execute: spark-submit x. Error code is: 3.\nLast spark-submit output:\nA\n"
     "genoflow features: error: s.csv, line 2: bad\nB", 3, "genoflow features: error: s.csv, line 2: bad"),
    ("Cannot execute: spark-submit x. Error code is: 3.", 3, None),
    ("No driver id is known", None, None),
])
def test_submit_exit_code_and_job_error_line__from_the_providers_message(message, code, line):
    from genoflow_plugins.operators import job_error_line, submit_exit_code

    assert submit_exit_code(Exception(message)) == code and job_error_line(Exception(message)) == line

"""GenoflowSparkSubmitOperator: every Spark job takes the library zip with it (--py-files)."""

from __future__ import annotations

import zipfile
from pathlib import Path


def test_genoflow_spark_submit__ships_the_library_first(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from genoflow_plugins.operators import GenoflowSparkSubmitOperator

    monkeypatch.setenv("GENOFLOW_HOME", str(tmp_path))
    submitted = []  # what spark-submit would get; the real submission is covered by the integration tests
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.py_files))
    task = GenoflowSparkSubmitOperator(task_id="run_job", application="jobs/preprocess.py", py_files="extra.zip")
    task.execute({})
    task.execute({})  # executing again (a retry in the same process) does not ship it twice

    library, extra = submitted[-1].split(",")
    assert submitted[0] == submitted[1]
    assert Path(library).parent == tmp_path / ".genoflow" / "py-files" and extra == "extra.zip"
    with zipfile.ZipFile(library) as archive:
        assert "genoflow/pipeline/runner.py" in archive.namelist()

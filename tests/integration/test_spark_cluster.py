"""The Spark standalone cluster fixture and code shipping: executors on the worker import genoflow
from the zip spark-submit ships (--py-files), with a worker Python that has no genoflow of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.packaging import build_py_files

pytestmark = pytest.mark.integration

PROBE = '''
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName(sys.argv[1]).getOrCreate()

def where(rows):
    import genoflow.config
    yield genoflow.config.__file__, sys.executable, genoflow.config.run_key("d", {"rows": sum(1 for _ in rows)})

for origin in sorted(set(spark.sparkContext.parallelize(range(8), 4).mapPartitions(where).collect())):
    print("EXECUTOR", *origin)
spark.stop()
'''


@pytest.fixture(scope="session")
def worker_python(tmp_path_factory) -> Path:
    from tests.services.spark import worker_python

    return worker_python(tmp_path_factory.mktemp("worker-python"))


def submit_probe(master: str, app_name: str, worker_python: Path, tmp_path: Path):
    """spark-submit the probe with the library zip; the (module file, Python, result) each partition saw."""
    library = build_py_files(tmp_path / "py-files")
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "PYSPARK_PYTHON": str(worker_python), "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    result = subprocess.run(["spark-submit", "--master", master, "--py-files", str(library),
                             "--conf", "spark.executor.memory=512m", str(probe), app_name],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    from genoflow.config import run_key

    # Every partition (8 rows in 4 partitions of 2) ran the shipped code in the worker's Python.
    expected = (f"./{library.name}/genoflow/config.py", str(worker_python), run_key("d", {"rows": 2}))
    origins = {tuple(line.split()[1:]) for line in result.stdout.splitlines() if line.startswith("EXECUTOR")}
    return origins, expected


def test_spark_cluster__executors_import_the_shipped_library(spark_cluster, worker_python, tmp_path):
    origins, expected = submit_probe(spark_cluster.master_url, "genoflow-probe", worker_python, tmp_path)
    assert origins == {expected}
    apps = [app for app in spark_cluster.state()["completedapps"] if app["name"] == "genoflow-probe"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"
    assert "Running task" in spark_cluster.executor_logs(apps[0]["id"])


def test_local_mode__python_workers_import_the_shipped_library(worker_python, tmp_path):
    """The embedded default ships the same zip: local[2]'s Python workers import genoflow from it too."""
    origins, expected = submit_probe("local[2]", "genoflow-probe-local", worker_python, tmp_path)
    library_name, python, result = expected
    assert {(Path(f).name, p, r) for f, p, r in origins} == {("config.py", python, result)}
    assert all(library_name.lstrip("./") in f for f, _, _ in origins), origins

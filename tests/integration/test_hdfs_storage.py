"""The pipeline with its storage root on a real HDFS: every job through spark-submit, reading and
writing only hdfs:// URIs, committing by rename, and giving the same results as a file:// root.

The raw cohort is landed on HDFS with genoflow's own `HadoopStorage.put`; MLflow is the project's
SQLite store. Steps are kept small (one target, one model family) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import Settings, load_params, merge_params
from genoflow.pipeline.runner import main, step_uri
from genoflow.spark_submit import spark_conf
from genoflow.storage import HadoopStorage
from tests.conftest import REPO

pytestmark = pytest.mark.integration

STEPS = ("preprocess", "features", "train", "evaluate")
VERSION = "hdfs-it-cohort"
PARAMS = merge_params(load_params(REPO / "params.yaml"), {
    "features": {"top_k": 10},
    "train": {"models": ["logistic_regression"], "cv_folds": 2,
              "grid": {"logistic_regression": {"regParam": [0.1], "elasticNetParam": [0.0]}}},
    "spark": {"spark.driver.memory": "1g"},
})
PARAMS["study"]["targets"] = {"disease_status": "binary"}  # replaced, not merged: one target keeps the run short


class SmallProject:
    """A project folder (params, config, MLflow under .genoflow/) with a small simulated cohort in data/raw."""

    def __init__(self, root: Path):
        from genoflow.simulate import make_demo_cohort

        self.root = root
        (root / "config").symlink_to(REPO / "config")
        make_demo_cohort(root / "data", n_patients=120, sequence_length=200_000, seed=11, n_causal=5,
                         reads_per_patient=10)
        self.env = {**os.environ, "GENOFLOW_HOME": str(root), "SPARK_LOCAL_IP": "127.0.0.1",
                    "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        for name in ("MLFLOW_TRACKING_URI", "GENOFLOW_STORAGE_ROOT", "GENOFLOW_ARTIFACT_ROOT"):
            self.env.pop(name, None)

    def submit(self, step: str, storage_root: str, params: dict = PARAMS) -> subprocess.CompletedProcess:
        """spark-submit jobs/<step>.py the way the DAG's SparkSubmitOperator does."""
        conf = spark_conf(Settings({"GENOFLOW_HOME": str(self.root)}), params)
        cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
        for key, value in conf.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += [str(REPO / "jobs" / f"{step}.py"), "--storage-root", storage_root,
                "--dataset-version", VERSION, "--params-json", json.dumps(params)]
        return subprocess.run(cmd, env=self.env, cwd=self.root, capture_output=True, text=True, timeout=900)

    def run_steps(self, storage_root: str, steps=STEPS) -> dict[str, str]:
        logs = {}
        for step in steps:
            result = self.submit(step, storage_root)
            logs[step] = result.stdout + result.stderr
            assert result.returncode == 0, f"{step} on {storage_root} exited {result.returncode}:\n{logs[step][-5000:]}"
        return logs


@pytest.fixture(scope="module")
def small_project(tmp_path_factory) -> SmallProject:
    return SmallProject(tmp_path_factory.mktemp("hdfs-project"))


@pytest.fixture(scope="module")
def hdfs_root(hdfs, spark, small_project) -> str:
    """The storage root on HDFS with the raw cohort landed under it."""
    root = f"{hdfs.uri}/genoflow-it"
    small_project.env["HADOOP_CONF_DIR"] = str(hdfs.conf_dir)  # as on a cluster: the NameNode's WebHDFS address
    assert HadoopStorage(spark, root).put(small_project.root / "data" / "raw", f"{root}/raw")
    return root


@pytest.fixture(scope="module")
def hdfs_logs(small_project, hdfs_root) -> dict[str, str]:
    return small_project.run_steps(hdfs_root)


def test_put__lands_the_raw_cohort_once(hdfs, spark, hdfs_root, small_project):
    storage = HadoopStorage(spark, hdfs_root)
    local = small_project.root / "data" / "raw"
    assert storage.read_bytes(f"{hdfs_root}/raw/cohort.vcf.gz") == (local / "cohort.vcf.gz").read_bytes()
    assert storage.put(local, f"{hdfs_root}/raw") is False  # already there: left as it is
    assert [n for n in storage.list(hdfs_root) if ".tmp-" in n] == []


def test_pipeline_on_hdfs__every_step_committed(hdfs, hdfs_logs, hdfs_root):
    for step in STEPS:
        uri = step_uri(hdfs_root, step, VERSION, PARAMS)
        assert f"{step} committed {uri}" in hdfs_logs[step], hdfs_logs[step][-3000:]
        path = uri.removeprefix(hdfs.uri)
        names = {s["pathSuffix"] for s in hdfs.webhdfs(path, "LISTSTATUS")["FileStatuses"]["FileStatus"]}
        assert {"_SUCCESS", "inputs.json"} <= names, (step, names)
        siblings = hdfs.webhdfs(path.rsplit("/", 1)[0], "LISTSTATUS")["FileStatuses"]["FileStatus"]
        assert [s["pathSuffix"] for s in siblings] == [uri.rsplit("/", 1)[1]]  # no temporary folders left


def test_pipeline_on_hdfs__same_results_as_file_root(spark, small_project, hdfs_logs, hdfs_root, monkeypatch):
    # The file:// reference runs the same job entry point in-process (saves two JVM start-ups).
    file_root = (small_project.root / "data").as_uri()
    monkeypatch.setenv("GENOFLOW_HOME", str(small_project.root))
    for step in ("preprocess", "features"):
        assert main(step, ["--storage-root", file_root, "--dataset-version", VERSION,
                           "--params-json", json.dumps(PARAMS)]) == 0
    on_hdfs, on_file = HadoopStorage(spark, hdfs_root), HadoopStorage(spark, file_root)
    for step, document in (("preprocess", "qc_summary.json"), ("features", "features.json")):
        a = json.loads(on_hdfs.read_text(f"{step_uri(hdfs_root, step, VERSION, PARAMS)}/{document}"))
        b = json.loads(on_file.read_text(f"{step_uri(file_root, step, VERSION, PARAMS)}/{document}"))
        assert a == b, document
    genotypes = [spark.read.parquet(f"{step_uri(root, 'preprocess', VERSION, PARAMS)}/genotypes")
                 .select("id", "alt_af", "qc_pass").orderBy("id").collect() for root in (hdfs_root, file_root)]
    assert genotypes[0] == genotypes[1] and len(genotypes[0]) > 100


def test_pipeline_on_hdfs__rerun_skips_committed_step(hdfs, small_project, hdfs_logs, hdfs_root):
    uri = step_uri(hdfs_root, "preprocess", VERSION, PARAMS)
    before = hdfs.webhdfs(uri.removeprefix(hdfs.uri))["FileStatus"]["modificationTime"]
    result = small_project.submit("preprocess", hdfs_root)
    assert result.returncode == 0 and "preprocess is already committed" in result.stdout + result.stderr
    assert hdfs.webhdfs(uri.removeprefix(hdfs.uri))["FileStatus"]["modificationTime"] == before

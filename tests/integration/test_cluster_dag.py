"""The same training DAG on a cluster: only configuration differs from the embedded run.

Real components only: Airflow 3 (`airflow dags test`) submits every job with spark-submit to a Spark
standalone master whose worker runs the executors in a Python without genoflow (the library ships
as a zip, --py-files); the storage root is on a real HDFS; MLflow is a tracking server (artifacts
proxied); DVC pushes the cohort to a WebHDFS remote on that HDFS. One DAG run (CI time); its outcomes
are checked with the embedded end-to-end test's assertions (tests/integration/outcomes.py).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import VENV_BIN, make_project, trigger
from tests.integration.outcomes import (
    assert_champion_with_dataset_hash,
    assert_held_out_auc_near_oracle,
    assert_no_raw_ids_downstream,
)

pytestmark = pytest.mark.integration

JOBS = ("preprocess", "features", "train", "evaluate", "report")


@pytest.fixture(scope="module")
def cluster_project(tmp_path_factory, hdfs, spark_cluster, mlflow_server):
    """A project configured for the cluster: Spark connection, storage root, MLflow URI, DVC remote."""
    from tests.services.spark import worker_python

    project = make_project(tmp_path_factory.mktemp("genoflow-cluster"), n_patients=500)
    root = "/genoflow-cluster"
    project.env.update({
        "AIRFLOW_CONN_SPARK_DEFAULT": spark_cluster.master_url,
        "GENOFLOW_STORAGE_ROOT": f"{hdfs.uri}{root}",
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
        "GENOFLOW_ARTIFACT_ROOT": "",  # the server's proxied artifact store
        "HADOOP_CONF_DIR": str(hdfs.conf_dir),  # HDFS client settings, as on any Hadoop client machine
        # What a cluster worker's Python has: the dependencies, not genoflow (driver: this venv).
        "PYSPARK_PYTHON": str(worker_python(tmp_path_factory.mktemp("worker-python"))),
    })
    dvc = str(VENV_BIN / "dvc")
    project.run(dvc, "remote", "add", "-d", "-f", "hdfs", f"{hdfs.webhdfs_dvc_url}/dvc")
    project.run(dvc, "remote", "modify", "hdfs", "user", "root")
    # The cohort lands under the storage root (what an ingest does); DVC versions the same files.
    hdfs.dfs("-mkdir", "-p", root)
    hdfs.dfs("-put", "-t", "4", str(project.root / "data" / "raw"), f"{root}/raw")
    return project


# The model families and grids are the embedded test's business; here one family keeps the run short
# (CI time) while every job still runs on the cluster with its real data.
CONF = {"train": {"models": ["logistic_regression"]}}


@pytest.fixture(scope="module")
def cluster_run(cluster_project) -> dict:
    """One genomic_risk_training run on the cluster: its log and wall time."""
    started = time.monotonic()
    log = trigger(cluster_project, conf=CONF, logical_date="2026-01-01T00:00:00+00:00")
    return {"log": log, "seconds": time.monotonic() - started}


def test_cluster_run__same_outcomes_as_embedded(cluster_project, cluster_run, hdfs, tmp_path):
    assert_champion_with_dataset_hash(cluster_project)
    assert_held_out_auc_near_oracle(cluster_project)
    steps = tmp_path / "steps"
    hdfs.dfs("-get", f"{cluster_project.storage_root}/steps", str(steps))
    assert_no_raw_ids_downstream(steps)
    print(f"cluster DAG run: {cluster_run['seconds']:.0f} s")


def test_cluster_run__dataset_tag_is_the_hash_pushed_to_hdfs(cluster_project, cluster_run, hdfs):
    dataset = assert_champion_with_dataset_hash(cluster_project)
    # DVC 3 stores an object under files/md5/<first 2 hex>/<rest>; a folder's manifest ends in .dir.
    manifest = cluster_project.root / ".dvc" / "cache" / "files" / "md5" / dataset[:2] / dataset[2:]
    entries = json.loads(manifest.read_text())
    remote = f"/dvc/files/md5/{dataset[:2]}/{dataset[2:]}"
    assert hdfs.webhdfs(remote)["FileStatus"]["length"] == manifest.stat().st_size
    # The remote holds exactly this version: its manifest plus one object per distinct file content.
    dirs, files, *_ = hdfs.dfs("-count", "/dvc/files/md5").stdout.split()
    assert int(files) == 1 + len({entry["md5"] for entry in entries})


def test_cluster_run__executors_ran_on_the_worker(cluster_run, spark_cluster):
    apps = spark_cluster.state()["completedapps"]
    for job in JOBS:
        ran = [app for app in apps if app["name"].startswith(f"genoflow-{job}")]
        assert ran and all(app["state"] == "FINISHED" for app in ran), (job, [a["name"] for a in apps])
        assert any("Running task" in spark_cluster.executor_logs(app["id"]) for app in ran), job
    assert f"--master {spark_cluster.master_url}" in cluster_run["log"]

"""Reads to genotypes with the storage root on a real HDFS: align and call through spark-submit, every read
and write an hdfs:// URI (the align tasks write their Parquet files, and the call tasks read their row groups,
through WebHDFS), and the same calls as a file:// root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import Settings, load_params
from genoflow.pipeline.runner import step_uri
from genoflow.spark_submit import spark_conf
from genoflow.storage import HadoopStorage
from tests.conftest import REPO
from tests.reads_peer import run_steps

pytestmark = pytest.mark.integration

VERSION = "test"  # the dataset version tests.reads_peer.run_steps gives the file:// run
PARAMS = load_params(REPO / "params.yaml", {"preprocess": {"input": "reads"}, "study": {"min_minority": 1},
                                            "spark": {"spark.driver.memory": "1g"}})


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Path:
    """6 patients, 30x paired 2 x 150 bp over a 10 kb panel of a 100 kb reference."""
    from genoflow.simulate.reads import make_reads_cohort

    root = tmp_path_factory.mktemp("reads-hdfs")
    (root / "config").symlink_to(REPO / "config")
    make_reads_cohort(root / "data", n_patients=6, panel_length=10_000, coverage=30, sequence_length=100_000,
                      seed=4, n_causal=1)
    return root


def submit(project: Path, step: str, storage_root: str, env: dict) -> subprocess.CompletedProcess:
    """spark-submit jobs/<step>.py as the DAG's operator does."""
    conf = spark_conf(Settings({"GENOFLOW_HOME": str(project)}), PARAMS)
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(REPO / "jobs" / f"{step}.py"), "--storage-root", storage_root, "--dataset-version", VERSION,
            "--params-json", json.dumps(PARAMS)]
    return subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=900)


def called_rows(spark, uri: str) -> list:
    rows = spark.read.parquet(uri).select("contig", "pos", "ref", "alt", "dosages", "gq", "dp").collect()
    return [tuple(bytes(v) if isinstance(v, bytearray) else v for v in row) for row in rows]


def test_align_and_call_on_hdfs__same_calls_as_a_file_root(hdfs, spark, panel):
    root = f"{hdfs.uri}/genoflow-reads-it"
    assert HadoopStorage(spark, root).put(panel / "data" / "raw", f"{root}/raw")
    env = {**os.environ, "GENOFLOW_HOME": str(panel), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "HADOOP_CONF_DIR": str(hdfs.conf_dir),
           "GENOFLOW_ALLOW_DEMO_KEY": "1"}
    for name in ("MLFLOW_TRACKING_URI", "GENOFLOW_STORAGE_ROOT", "GENOFLOW_ARTIFACT_ROOT"):
        env.pop(name, None)
    for step in ("align", "call"):
        result = submit(panel, step, root, env)
        log = (result.stdout + result.stderr)[-5000:]
        (panel / f"{step}.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, f"{step} on HDFS exited {result.returncode}:\n{log}"
    align_uri = step_uri(root, "align", VERSION, PARAMS)
    reads = [s["pathSuffix"] for s in hdfs.webhdfs(f"{align_uri.removeprefix(hdfs.uri)}/reads",
                                                      "LISTSTATUS")["FileStatuses"]["FileStatus"]]
    assert len([n for n in reads if n.endswith(".parquet")]) == 6 and not [n for n in reads if ".tmp-" in n]

    assert run_steps(panel / "data", PARAMS, "align", "call") == 0  # the same steps on a file:// root
    on_hdfs = called_rows(spark, f"{step_uri(root, 'call', VERSION, PARAMS)}/genotypes")
    on_file = called_rows(spark, f"{step_uri((panel / 'data').as_uri(), 'call', VERSION, PARAMS)}/genotypes")
    assert on_hdfs == on_file and len(on_file) > 10  # in genome order on both

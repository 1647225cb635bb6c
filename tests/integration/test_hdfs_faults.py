"""Storage faults on a real HDFS: a NameNode in safe mode or down fails the job with one line naming
it and leaves nothing behind, and the retry after it is back commits; concurrent commits of the same
step never mix or nest outputs.

Jobs run through their entry point (`genoflow.pipeline.runner.main`, what jobs/*.py call) on the
in-process Spark session; the session HDFS is only put into safe mode, a separate instance is stopped.
"""

from __future__ import annotations

import json
import threading

import pytest

from genoflow.config import load_params
from genoflow.pipeline.runner import main, step_uri
from genoflow.storage import HadoopStorage
from tests.conftest import REPO
from tests.services.hdfs import running_hdfs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARAMS = load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    from genoflow.simulate import make_demo_cohort

    root = tmp_path_factory.mktemp("tiny-cohort")
    make_demo_cohort(root, n_patients=40, sequence_length=100_000, seed=5, n_causal=5, reads_per_patient=10)
    return root / "raw"


def land(spark, root: str, raw, service) -> str:
    # The Python workers read the reference by WebHDFS: its address, as a client's hdfs-site.xml gives it.
    spark.sparkContext._jsc.hadoopConfiguration().set(f"dfs.namenode.http-address.{service.namenode}",
                                                      f"127.0.0.1:{service.http_port}")
    HadoopStorage(spark, root).put(raw, f"{root}/raw")
    return root


def run_preprocess(root: str, version: str, capsys) -> tuple[int, list[str]]:
    rc = main("preprocess", ["--storage-root", root, "--dataset-version", version, "--params-json", json.dumps(PARAMS)])
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.startswith("genoflow preprocess: error:")]


def step_folder_entries(spark, root: str, step: str = "preprocess") -> list[str]:
    storage = HadoopStorage(spark, root)
    folder = storage.uri("steps", step)
    return storage.list(folder) if storage.exists(folder) else []


def test_safe_mode__job_fails_naming_the_namenode_then_retry_commits(hdfs, spark, tiny_cohort, capsys):
    root = land(spark, f"{hdfs.uri}/faults-safe-mode", tiny_cohort, hdfs)
    with hdfs.safe_mode():
        rc, errors = run_preprocess(root, "v-safe-mode", capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert hdfs.namenode in errors[0] and "safe mode" in errors[0]
    assert step_folder_entries(spark, root) == []  # nothing partial: no output, no temporary folder

    rc, errors = run_preprocess(root, "v-safe-mode", capsys)
    assert rc == 0 and errors == []
    final = step_uri(root, "preprocess", "v-safe-mode", PARAMS)
    assert HadoopStorage(spark, root).is_committed(final)
    assert step_folder_entries(spark, root) == [final.rsplit("/", 1)[1]]


def test_namenode_down__job_fails_fast_naming_it_then_retry_commits(spark, tiny_cohort, capsys, tmp_path):
    """A separate short-lived HDFS: stopped (both daemons) while the job runs, started again for the retry."""
    state = tmp_path / "hdfs"
    with running_hdfs(state) as instance:
        ports = {"rpc_port": instance.rpc_port, "http_port": instance.http_port}
        root = land(spark, f"{instance.uri}/faults-down", tiny_cohort, instance)
    rc, errors = run_preprocess(root, "v-down", capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert f"cannot reach the HDFS NameNode {instance.namenode}" in errors[0]

    with running_hdfs(state, **ports) as again:
        assert again.uri == instance.uri
        assert step_folder_entries(spark, root) == []
        rc, errors = run_preprocess(root, "v-down", capsys)
        assert rc == 0 and errors == []
        assert HadoopStorage(spark, root).is_committed(step_uri(root, "preprocess", "v-down", PARAMS))


def test_concurrent_commits__separate_temp_folders_one_complete_winner(hdfs, spark):
    storage = HadoopStorage(spark, f"{hdfs.uri}/concurrency")
    final = storage.uri("steps", "features", "samekey")
    both_written = threading.Barrier(2, timeout=600)
    temp_folders, errors = {}, []

    def one_run(name: str):
        try:
            with storage.step_output(final, attempt=f"manual__{name}-try1") as out:
                temp_folders[name] = out.uri
                table = spark.range(2000).selectExpr(f"'{name}' AS writer", "id").repartition(4)
                table.write.parquet(out.path("table"))
                out.write_json("who.json", name)
                both_written.wait()  # both temporary folders complete before either commits: a real race
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=one_run, args=(name,)) for name in ("run_a", "run_b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert temp_folders["run_a"] != temp_folders["run_b"]
    winner = json.loads(storage.read_text(f"{final}/who.json"))
    writers = {r.writer for r in spark.read.parquet(f"{final}/table").select("writer").distinct().collect()}
    assert writers == {winner}  # never a mix of the two runs' files
    assert spark.read.parquet(f"{final}/table").count() == 2000
    assert storage.list(storage.uri("steps", "features")) == ["samekey"]  # the loser's folder is gone
    assert not [n for n in storage.list(final) if ".tmp-" in n]  # and was never nested into the winner

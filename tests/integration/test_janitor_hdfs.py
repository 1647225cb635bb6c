"""genoflow gc on a real HDFS: the same janitor through HadoopStorage on hdfs:// URIs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from genoflow.storage import HadoopStorage
from genoflow.storage.hadoop import temp_uri
from genoflow.storage.janitor import collect_garbage

pytestmark = pytest.mark.integration


def test_collect_garbage__on_hdfs_removes_a_dead_writers_folder_and_keeps_a_live_ones(hdfs, spark):
    storage = HadoopStorage(spark, f"{hdfs.uri}/tests/janitor")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = temp_uri(storage.uri("steps", "train", "k1"), "run_a-try1", pid=child.pid)
    live = temp_uri(storage.uri("steps", "train", "k2"), "run_b-try1", pid=os.getpid())
    for uri in (dead, live):
        storage.write_text(f"{uri}/model/part-0", "half")
    with storage.step_output(storage.uri("steps", "train", "done")) as out:
        out.write_json("a.json", 1)

    # Seven hours from now, both are old: only the live pid keeps its folder.
    later_ms = int(time.time() * 1000) + 7 * 3_600_000
    entries = collect_garbage(storage, older_than_s=6 * 3600, now_ms=later_ms)

    assert sorted((e.uri, e.remove) for e in entries) == [(dead, True), (live, False)]
    assert storage.list(storage.uri("steps", "train")) == ["done", live.rsplit("/", 1)[-1]]

"""Dataset versions on HDFS: DVC's remote over WebHDFS on the real NameNode, and the HdfsHook that
lists what is there (DVC versions, committed step outputs) and how the NameNode is.

The remote is configured the way a deployment does it: GENOFLOW_DVC_REMOTE_URL / _USER.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genoflow.storage import HadoopStorage
from genoflow.versioning import dvc_version

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

VENV_BIN = Path(sys.executable).parent


def make_repo(root: Path, n_patients: int, seed: int) -> Path:
    from genoflow.simulate import make_demo_cohort

    root.mkdir(parents=True)
    subprocess.run([str(VENV_BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True)
    make_demo_cohort(root / "data", n_patients=n_patients, sequence_length=50_000, seed=seed, n_causal=3,
                     reads_per_patient=5)
    shutil.rmtree(root / "data" / "truth")
    return root


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def remote_env(hdfs, monkeypatch, request):
    url = f"{hdfs.webhdfs_dvc_url}/dvc-it/{request.node.name}"
    monkeypatch.setenv("GENOFLOW_DVC_REMOTE_URL", url)
    monkeypatch.setenv("GENOFLOW_DVC_REMOTE_USER", "root")
    return url


@pytest.fixture
def hdfs_hook(hdfs):
    from genoflow_plugins.hooks import HdfsHook

    return HdfsHook(webhdfs_url=hdfs.webhdfs_url, user="root")


def test_dvc_webhdfs__push_pull_round_trip_and_versions_listed(tmp_path, remote_env, hdfs_hook):
    from genoflow_plugins.hooks import DvcHook

    repo = make_repo(tmp_path / "repo", n_patients=20, seed=21)
    before = tree_digest(repo / "data" / "raw")
    hook = DvcHook(repo)
    version = hook.track("data/raw")
    assert version == dvc_version(repo, "data/raw") and version.endswith(".dir")
    assert "webhdfs://" in (repo / ".dvc" / "config.local").read_text()  # the deployment's remote, git-ignored

    listed = hdfs_hook.dvc_versions(remote_env)
    assert listed == [{"version": version, "files": len(before), "complete": True, "missing": []}]

    shutil.rmtree(repo / "data" / "raw")
    shutil.rmtree(repo / ".dvc" / "cache")
    assert hook.pull("data/raw") == version
    assert tree_digest(repo / "data" / "raw") == before


def assert_objects_intact(hook, objects: str) -> int:
    """Every object on the remote hashes to its name (DVC never re-uploads one it finds); returns the count."""
    stored = [(prefix, name) for prefix in hook.list(objects) for name in hook.list(f"{objects}/{prefix}")]
    for prefix, name in stored:
        with hook.get_conn().read(f"{hook.path_of(objects)}/{prefix}/{name}") as reader:
            assert hashlib.md5(reader.read()).hexdigest() == prefix + name.removesuffix(".dir"), f"{prefix}/{name}"
    return len(stored)


def test_dvc_webhdfs__interrupted_push_leaves_remote_consistent_and_next_push_completes(
        tmp_path, remote_env, hdfs_hook):
    repo = make_repo(tmp_path / "repo", n_patients=30, seed=22)
    # One large file (like a BAM next to the VCF) so that the kill lands inside an upload, not between two.
    big = repo / "data" / "raw" / "reads.bin"
    big.write_bytes(os.urandom(48 << 20))
    env = {**os.environ, "GENOFLOW_HOME": str(repo)}
    genoflow = str(VENV_BIN / "genoflow")
    subprocess.run([genoflow, "dvc", "add", "-q", "data/raw"], cwd=repo, env=env, check=True)
    version = dvc_version(repo, "data/raw")
    remote_path = hdfs_hook.path_of(remote_env)
    objects = f"{remote_env}/files/md5"

    push = subprocess.Popen([genoflow, "dvc", "push", "-j", "1"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    uploaded = 0
    while push.poll() is None and time.monotonic() < deadline:
        # More bytes than all small files together: the large file's upload is under way.
        uploaded = (hdfs_hook.get_conn().content(remote_path, strict=False) or {}).get("length", 0)
        if uploaded >= 16 << 20:
            break
        time.sleep(0.05)
    os.killpg(push.pid, signal.SIGKILL)  # mid-upload: no chance to clean up
    push.wait()
    assert push.returncode == -signal.SIGKILL, "the push finished before it could be interrupted"
    assert uploaded >= 16 << 20

    # Consistent: no object is there in part, and the version is not complete on the remote.
    assert 0 < assert_objects_intact(hdfs_hook, objects)
    assert [v for v in hdfs_hook.dvc_versions(remote_env) if v["complete"]] == []

    finished = subprocess.run([genoflow, "dvc", "push"], cwd=repo, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    [listed] = hdfs_hook.dvc_versions(remote_env)
    assert listed["version"] == version and listed["complete"], listed
    distinct = set(tree_digest(repo / "data" / "raw").values())
    assert assert_objects_intact(hdfs_hook, objects) == len(distinct) + 1  # the files and the manifest


def test_hdfs_hook__committed_outputs_by_dataset_version_and_namenode_health(hdfs, spark, hdfs_hook):
    root = f"{hdfs.uri}/hook-it"
    storage = HadoopStorage(spark, root)
    for version, step in (("v1.dir", "preprocess"), ("v1.dir", "features"), ("v2.dir", "preprocess")):
        with storage.step_output(storage.uri("steps", step, f"key-{step}-{version[:2]}")) as out:
            out.write_json("inputs.json", {"dataset_version": version, "run_key": f"rk-{version}"})
    storage.write_text(storage.uri("steps", "train", "key-uncommitted.tmp-x", "part"), "half")

    outputs = hdfs_hook.committed_outputs(root)
    assert sorted(outputs) == ["v1.dir", "v2.dir"]
    assert sorted(o["step"] for o in outputs["v1.dir"]) == ["features", "preprocess"]
    assert outputs["v2.dir"][0]["uri"] == f"{root}/steps/preprocess/key-preprocess-v2"

    health = hdfs_hook.namenode_health()
    assert health["live_datanodes"] == 1 and health["writable"] and not health["safe_mode"]
    with hdfs.safe_mode():
        in_safe_mode = hdfs_hook.namenode_health()
    assert in_safe_mode["safe_mode"] and not in_safe_mode["writable"]
    assert json.dumps(in_safe_mode)  # plain values: an XCom or a log line


def test_hdfs_hook__from_airflow_connection(hdfs, monkeypatch):
    from genoflow_plugins.hooks import HdfsHook

    host, port = hdfs.webhdfs_url.removeprefix("http://").split(":")
    monkeypatch.setenv("AIRFLOW_CONN_HDFS_GENOFLOW_IT", json.dumps(
        {"conn_type": "webhdfs", "host": host, "port": int(port), "login": "root"}))
    hook = HdfsHook(conn_id="hdfs_genoflow_it")
    hook.get_conn().makedirs("/hook-conn-it/a")
    assert hook.exists(f"{hdfs.uri}/hook-conn-it/a") and hook.list("/hook-conn-it") == ["a"]
    assert not hook.exists("/hook-conn-it/missing")


def test_hdfs_writable_sensor__waits_out_safe_mode_and_a_missing_namenode(hdfs):
    from genoflow_plugins.sensors import HdfsWritableSensor

    from tests.services import free_port

    sensor = HdfsWritableSensor(task_id="wait_for_hdfs", webhdfs_url=hdfs.webhdfs_url, user="root")
    assert sensor.poke({}) is True
    with hdfs.safe_mode():
        assert sensor.poke({}) is False
    nobody = HdfsWritableSensor(task_id="wait_for_nothing", webhdfs_url=f"http://127.0.0.1:{free_port()}")
    assert nobody.poke({}) is False

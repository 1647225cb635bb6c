"""genoflow gc on a file:// storage root: orphaned temp folders go, a live or recent attempt's stay."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from genoflow.cli import main
from genoflow.storage import HadoopStorage
from genoflow.storage.hadoop import temp_owner, temp_uri
from genoflow.storage.janitor import collect_garbage, find_temp_entries, parse_duration

NOW_MS = 2_000_000_000_000  # a fixed "now" (2033): the files' times are set relative to it


@pytest.fixture
def storage(spark, tmp_path):
    return HadoopStorage(spark, tmp_path.as_uri())


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftover(storage, tmp_path, name: str, *, pid: int, age_h: float, host: str | None = None) -> str:
    """A half-written step output of a writer ``pid`` (on this host), last changed ``age_h`` hours ago."""
    uri = temp_uri(storage.uri("steps", "preprocess", name), "run_a-try1", pid=pid, host=host)
    storage.write_text(f"{uri}/genotypes.parquet/part-0", "half")
    folder = tmp_path / uri.removeprefix(tmp_path.as_uri() + "/")
    stamp = NOW_MS / 1000 - age_h * 3600
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (stamp, stamp))
    return uri



def test_collect_garbage__removes_a_dead_writers_old_folder_and_keeps_live_and_young(storage, tmp_path):
    dead_old = _leftover(storage, tmp_path, "k1", pid=_dead_pid(), age_h=7)
    live_old = _leftover(storage, tmp_path, "k2", pid=os.getpid(), age_h=30)
    dead_young = _leftover(storage, tmp_path, "k3", pid=_dead_pid(), age_h=1)
    other_host_old = _leftover(storage, tmp_path, "k4", pid=os.getpid(), age_h=7, host="elsewhere")
    with storage.step_output(storage.uri("steps", "preprocess", "done")) as out:
        out.write_json("a.json", 1)

    entries = {e.uri: e for e in collect_garbage(storage, older_than_s=6 * 3600, now_ms=NOW_MS)}

    assert set(entries) == {dead_old, live_old, dead_young, other_host_old}  # the committed output is no temp
    assert [u for u, e in entries.items() if e.remove] == sorted([dead_old, other_host_old])
    assert not storage.exists(dead_old) and not storage.exists(other_host_old)
    assert storage.exists(live_old) and storage.exists(dead_young)
    assert storage.is_committed(storage.uri("steps", "preprocess", "done"))
    assert "is running on this host" in entries[live_old].reason
    assert entries[dead_young].reason == "last changed 1.0 h ago, less than 6.0 h"
    assert entries[dead_old].reason.endswith("is not running on this host and nothing in it changed for 7.0 h")
    assert "on elsewhere, cannot be checked from here" in entries[other_host_old].reason


def test_find_temp_entries__recent_activity_deep_inside_keeps_an_old_folder(storage, tmp_path):
    uri = _leftover(storage, tmp_path, "k1", pid=_dead_pid(), age_h=9)
    part = tmp_path / uri.removeprefix(tmp_path.as_uri() + "/") / "genotypes.parquet" / "part-0"
    os.utime(part, (NOW_MS / 1000 - 600, NOW_MS / 1000 - 600))  # a file written 10 minutes ago, deep down

    [entry] = find_temp_entries(storage, now_ms=NOW_MS)
    assert not entry.remove and entry.idle_s == pytest.approx(600, abs=1)


def test_collect_garbage__dry_run_removes_nothing(storage, tmp_path):
    uri = _leftover(storage, tmp_path, "k1", pid=_dead_pid(), age_h=7)
    [entry] = collect_garbage(storage, dry_run=True, now_ms=NOW_MS)
    assert entry.remove and storage.exists(uri)


def test_gc_cli__dry_run_lists_then_gc_removes(storage, tmp_path, capsys):
    """The command line with the real clock: a folder last changed in 2001 is old by any threshold."""
    in_2001_h = (NOW_MS / 1000 - 1e9) / 3600  # hours before NOW_MS of 2001-09-09
    old = _leftover(storage, tmp_path, "k1", pid=_dead_pid(), age_h=in_2001_h)

    assert main(["gc", "--root", tmp_path.as_uri(), "--dry-run", "--older-than", "2d"]) == 0
    assert f"would remove {old} (" in capsys.readouterr().out and storage.exists(old)
    assert main(["gc", "--root", tmp_path.as_uri()]) == 0
    assert f"removed {old} (" in capsys.readouterr().out and not storage.exists(old)


def test_temp_uri__names_its_writer_and_legacy_names_still_parse():
    name = temp_uri("steps/s/key", "manual__2026-01-01T00_00_00-try2", pid=42, host="worker-1.local").rsplit("/")[-1]
    owner = temp_owner(name)
    assert (owner.tag, owner.host, owner.pid) == ("manual__2026-01-01T00_00_00-try2", "worker-1.local", 42)
    assert vars(temp_owner("key.tmp-pid77-0123abcd")) == {"tag": "pid77", "host": None, "pid": 77}
    assert vars(temp_owner("key.tmp-run_a-try1-0123abcd")) == {"tag": "run_a-try1", "host": None, "pid": None}
    assert temp_owner("key") is None and temp_owner("key.tmp-notours") is None
    assert temp_owner(temp_uri("x", "pid1").rsplit("/")[-1]).pid == os.getpid()  # this process, by default


def test_parse_duration__units_and_a_clear_error():
    assert [parse_duration(t) for t in ("30s", "90m", "6h", "2d")] == [30, 5400, 21600, 172800]
    with pytest.raises(Exception, match=r"--older-than: '6 hours' is not a duration"):
        parse_duration("6 hours")


def test_gc_cli__a_bad_duration_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gc", "--older-than", "6 hours"])
    assert exit_info.value.code == 2
    assert "argument --older-than: '6 hours' is not a duration" in capsys.readouterr().err

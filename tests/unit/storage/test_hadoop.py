"""HadoopStorage on file:// through the JVM, the same code path as hdfs://."""

import pytest

from genoflow.storage import HadoopStorage


@pytest.fixture
def storage(spark, tmp_path):
    return HadoopStorage(spark, tmp_path.as_uri())


def test_step_output__commits_by_rename(storage, tmp_path):
    final = storage.uri("runs", "k", "step")
    with storage.step_output(final) as out:
        out.write_json("a.json", {"x": 1})
        assert not storage.exists(final)  # nothing visible before the commit
    assert storage.is_committed(final)
    assert storage.read_text(f"{final}/a.json").strip().startswith("{")
    assert [p.name for p in (tmp_path / "runs" / "k").iterdir()] == ["step"]


def test_step_output__failure_leaves_nothing(storage, tmp_path):
    final = storage.uri("runs", "k", "step")
    with pytest.raises(RuntimeError), storage.step_output(final) as out:
        out.write_json("a.json", {"x": 1})
        raise RuntimeError("boom")
    assert not storage.exists(final)
    assert list((tmp_path / "runs" / "k").iterdir()) == []


def test_step_output__concurrent_commit_keeps_first(storage):
    final = storage.uri("runs", "k", "step")
    with storage.step_output(final) as first:
        with storage.step_output(final) as second:
            second.write_json("who.json", "second")
        first.write_json("who.json", "first")
    assert storage.read_text(f"{final}/who.json").strip() == '"second"'
    assert storage.list(storage.uri("runs", "k")) == ["step"]


def test_rename__never_nests_into_existing(storage):
    storage.write_text(storage.uri("a", "x.txt"), "a")
    storage.write_text(storage.uri("b", "y.txt"), "b")
    assert storage.rename(storage.uri("a"), storage.uri("b")) is False
    assert storage.exists(storage.uri("a", "x.txt"))


def test_step_output__temporary_folder_is_unique_per_attempt(storage):
    final = storage.uri("steps", "s", "key")
    with storage.step_output(final, attempt="run_a-try1") as a, storage.step_output(final, attempt="run_b-try1") as b:
        assert a.uri != b.uri
        assert a.uri.startswith(f"{final}.tmp-run_a-try1-") and b.uri.startswith(f"{final}.tmp-run_b-try1-")
        assert storage.exists(a.uri) and storage.exists(b.uri)  # created up front, before any work


def test_step_output__retry_removes_earlier_tries_of_its_own_run_only(storage):
    parent = storage.uri("steps", "s")
    final = f"{parent}/key"
    for leftover in ("run_a-try1-0123abcd", "run_b-try1-89abcdef"):
        storage.write_text(f"{final}.tmp-{leftover}/part-0", "half")
    with storage.step_output(final, attempt="run_a-try2") as out:
        out.write_json("a.json", 1)
    assert storage.list(parent) == ["key", "key.tmp-run_b-try1-89abcdef"]  # another run's attempt may be live


def test_attempt_tag__airflow_run_and_try_are_name_safe():
    from genoflow.storage import attempt_tag

    tag = attempt_tag({"AIRFLOW_CTX_DAG_RUN_ID": "manual__2026-01-01T00:00:00+00:00", "AIRFLOW_CTX_TRY_NUMBER": "2"})
    assert tag == "manual__2026-01-01T00_00_00_00_00-try2"
    assert attempt_tag({}).startswith("pid")

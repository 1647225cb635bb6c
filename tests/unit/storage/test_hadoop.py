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

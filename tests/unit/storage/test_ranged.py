"""Tests of genoflow.storage.ranged: local byte ranges, atomic writes, and the NameNode's WebHDFS address."""

from __future__ import annotations

import pickle

import pytest

from genoflow.storage.ranged import RangedFile, webhdfs_address


def test_ranged_file__local_ranges_stat_and_pickling(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(100)))
    file = RangedFile(path.as_uri())
    assert file.read(10, 5) == bytes(range(10, 15)) and file.read(98) == bytes([98, 99])
    assert file.read(95, 50) == bytes(range(95, 100))  # short at the end of the file
    assert file.stat()[0] == 100 and not file.at(path.as_uri() + ".fai").exists()
    again = pickle.loads(pickle.dumps(file))  # the open handle stays behind
    assert again == file and again.read(0, 3) == bytes([0, 1, 2])


def test_ranged_file__write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    file = RangedFile(str(tmp_path / "sub" / "x.fai"))
    file.write_atomic(b"old")
    file.write_atomic(b"new")
    assert file.read_all() == b"new" and [p.name for p in (tmp_path / "sub").iterdir()] == ["x.fai"]


def test_ranged_file__refuses_other_schemes_and_hdfs_without_address():
    with pytest.raises(ValueError, match="expected file:// or hdfs://"):
        RangedFile("s3a://bucket/ref.fa")
    with pytest.raises(ValueError, match="webhdfs address"):
        RangedFile("hdfs://nn:8020/ref.fa")


@pytest.mark.parametrize(("conf", "expected"), [
    ({}, "http://nn1:9870"),  # nothing configured: Hadoop 3's default port on the URI's host
    ({"dfs.namenode.http-address": "0.0.0.0:50070"}, "http://nn1:50070"),  # bind-everywhere: the URI's host
    ({"dfs.namenode.http-address": "web.example:9871", "fs.defaultFS": "hdfs://nn1:8020"}, "http://web.example:9871"),
    ({"dfs.namenode.http-address": "other:9870", "fs.defaultFS": "hdfs://other:8020"}, "http://nn1:9870"),
])
def test_webhdfs_address__single_namenode(conf, expected):
    assert webhdfs_address(conf, "hdfs://nn1:8020/data/ref.fa") == expected


def test_webhdfs_address__nameservice_lists_every_namenode():
    conf = {"dfs.ha.namenodes.prod": "a, b", "dfs.namenode.http-address.prod.a": "h1:9870",
            "dfs.namenode.http-address.prod.b": "h2:9870"}
    assert webhdfs_address(conf, "hdfs://prod/data/ref.fa") == "http://h1:9870;http://h2:9870"
    assert webhdfs_address({"dfs.namenode.http-address.prod": "h3:9870"}, "hdfs://prod/x") == "http://h3:9870"
    by_authority = {"dfs.namenode.http-address.nn2:8020": "nn2:50070", "dfs.namenode.http-address": "nn1:9870"}
    assert webhdfs_address(by_authority, "hdfs://nn2:8020/x") == "http://nn2:50070"  # one client, two clusters

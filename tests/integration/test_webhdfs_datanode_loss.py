"""Python's WebHDFS reads and writes (the tasks' own Parquet files) go on when a DataNode is killed.

A real HDFS with two DataNodes and replication 2. The DataNode the NameNode redirects a read to is
SIGKILLed; the NameNode keeps offering it (its heartbeats expire only after minutes), so without
excluding it every read of the file's first replica would fail, as every Spark retry of a task did.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

import psutil
import pytest

from genoflow.storage import RangedFile

pytestmark = pytest.mark.integration

SIZE = 3 * (1 << 20) + 17


@pytest.fixture(scope="module")
def two_datanodes(tmp_path_factory):
    from tests.services.hdfs import running_hdfs

    with running_hdfs(tmp_path_factory.mktemp("dn-loss-hdfs"), datanodes=2, replication=2) as service:
        yield service


def offered_datanode_pid(hdfs, path: str) -> int:
    """The pid of the DataNode the NameNode redirects a read of ``path`` to now."""
    location = hdfs.webhdfs(path, "OPEN", noredirect="true")["Location"]
    port = urlsplit(location).port
    listeners = [c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    assert listeners, f"no process listens on the DataNode port {port} of {location}"
    return listeners[0]


def test_datanode_killed__reads_and_writes_use_the_live_one(two_datanodes, caplog):
    data = os.urandom(SIZE)
    original = RangedFile(f"{two_datanodes.uri}/dn-loss/original.bin", webhdfs=two_datanodes.webhdfs_url, user="root",
                          replication=two_datanodes.replication)
    original.write_atomic(data)

    victim = psutil.Process(offered_datanode_pid(two_datanodes, "/dn-loss/original.bin"))
    victim.kill()
    victim.wait(30)
    assert two_datanodes.live_datanodes() == 2  # the NameNode still counts it: the state every retry met

    caplog.set_level(logging.WARNING, logger="genoflow.storage.webhdfs")
    for _ in range(8):  # each read a new client (as a new task's), remembering nothing of the last
        assert original.at(original.uri).read(0) == data
        assert original.at(original.uri).read(SIZE - 100, 50) == data[SIZE - 100:SIZE - 50]
    with original.at(original.uri).open_stream() as stream:
        assert stream.read() == data
    assert "unreachable" in caplog.text and "asking the NameNode for another" in caplog.text

    for number in range(6):  # the NameNode may place a new file's first hop on the dead DataNode too
        written = original.at(f"{two_datanodes.uri}/dn-loss/after-{number}.bin")
        written.write_atomic(data[:1000 + number])
        assert written.at(written.uri).read(0) == data[:1000 + number]

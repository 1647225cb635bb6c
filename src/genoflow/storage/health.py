"""What a storage failure means for the user: the NameNode (or every DataNode offered) is unreachable, or
HDFS is read-only (safe mode).

Hadoop reports these as long Java stack traces wrapped by py4j or Spark; a job turns them into one
line naming the NameNode (:func:`storage_unavailable_message`). The client settings in
:data:`FAIL_FAST_HADOOP_CONF` make an unreachable NameNode fail a job in seconds, not minutes.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["FAIL_FAST_HADOOP_CONF", "namenode_of", "storage_unavailable_message"]

HDFS_DEFAULT_RPC_PORT = 8020

# Hadoop's defaults retry a connect timeout 45 times x 20 s (15 minutes) before a call fails; a
# refused connection 10 times. A job on a dead NameNode should fail in seconds and let Airflow's
# retries (minutes apart) do the waiting. Spark conf `spark.hadoop.<key>` overrides each.
FAIL_FAST_HADOOP_CONF = {
    "ipc.client.connect.timeout": "5000",
    "ipc.client.connect.max.retries": "2",
    "ipc.client.connect.max.retries.on.timeouts": "2",
    "ipc.client.connect.retry.interval": "1000",
}

# genoflow.storage.webhdfs.DataNodeUnreachable's wording: the NameNode answered, no DataNode it offered did
_DATANODES_DOWN = re.compile(r"HDFS DataNode (\S+) unreachable")
_SAFE_MODE = re.compile(r"SafeModeException|[Nn]ame ?[Nn]ode is in safe mode")
_UNREACHABLE = re.compile(
    r"java\.net\.(ConnectException|NoRouteToHostException|UnknownHostException|SocketTimeoutException)"
    r"|ConnectTimeoutException|Connection refused|Connection reset"
    # an open connection to a NameNode that went away (NetUtils' wording, not a truncated file)
    r"|End of File Exception between")


def namenode_of(root: str) -> str | None:
    """``host:port`` of the NameNode an ``hdfs://`` URI points at (8020 when it names no port), else None."""
    parts = urlsplit(root)
    if parts.scheme != "hdfs" or not parts.hostname:
        return None
    return f"{parts.hostname}:{parts.port or HDFS_DEFAULT_RPC_PORT}"


def storage_unavailable_message(err: BaseException, root: str) -> str | None:
    """One line for a storage outage under ``root`` (HDFS down or in safe mode), or None for other errors."""
    namenode = namenode_of(root)
    if namenode is None:
        return None
    text = str(err)
    if _SAFE_MODE.search(text):
        return (f"the HDFS NameNode {namenode} is in safe mode (read-only), so nothing can be written under "
                f"{root}; nothing was committed. Retry when it has left safe mode "
                f"(hdfs dfsadmin -fs hdfs://{namenode} -safemode get)")
    if _DATANODES_DOWN.search(text):
        return (f"the HDFS NameNode {namenode} answered, but no DataNode it offered could be reached (the last: "
                f"{_DATANODES_DOWN.search(text).group(1)}) for the storage root {root}; nothing was committed. "
                f"Are the DataNodes running (hdfs dfsadmin -fs hdfs://{namenode} -report)?")
    if _UNREACHABLE.search(text):
        reason = _UNREACHABLE.search(text).group(0)
        return (f"cannot reach the HDFS NameNode {namenode} ({reason}) for the storage root {root}; "
                f"nothing was committed. Is HDFS running there?")
    return None

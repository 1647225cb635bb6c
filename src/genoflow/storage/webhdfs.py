"""A WebHDFS client that goes on when a DataNode is down, as Hadoop's own clients do.

WebHDFS reads and writes in two hops: the NameNode redirects the request to a DataNode, which serves
it. The NameNode keeps offering a killed DataNode until its heartbeats expire (10.5 minutes by
default), so a plain client (the ``hdfs`` package's) fails every read of a block whose first replica
was there, and every Spark retry of the task fails the same way. Hadoop's ``WebHdfsFileSystem`` asks
again with the DataNode in ``excludedatanodes``, and the NameNode redirects to another replica (a read)
or another DataNode (a write); :class:`FailoverClient` does the same.

The NameNode takes a DataNode to exclude by its data-transfer address (``host:port``), but the
redirect names its HTTP address: the NameNode's JMX (``NameNodeInfo.LiveNodes``) maps one to the
other; without JMX, the host alone is excluded (right on clusters with one DataNode per host).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import requests
from hdfs import InsecureClient
from hdfs.client import _to_error

__all__ = ["FailoverClient", "DataNodeUnreachable"]

log = logging.getLogger(__name__)

_JMX_LIVE_NODES = "/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"


class DataNodeUnreachable(ConnectionError):
    """Every DataNode the NameNode offered for a file refused or dropped the connection."""


class FailoverClient(InsecureClient):
    """``hdfs.InsecureClient`` whose :meth:`read_range` and :meth:`write_bytes` retry a DataNode that cannot
    be reached with it excluded, until the NameNode has no other to offer."""

    max_excluded = 8  # more dead DataNodes than this for one request: the cluster is down, not a node

    def read_range(self, path: str, offset: int = 0, length: int | None = None) -> bytes:
        """``length`` bytes of ``path`` from ``offset`` (None: to the end)."""
        response = self._from_datanode(path, self._open, "GET", {"offset": offset, "length": length})
        try:
            return response.raw.read()
        finally:
            response.close()

    def open_response(self, path: str):
        """The response streaming all of ``path`` (``.raw`` is the stream; the caller closes it)."""
        return self._from_datanode(path, self._open, "GET", {})

    def write_bytes(self, path: str, data: bytes, *, replication: int | None = None) -> None:
        """Create (or replace) ``path`` with ``data`` (``replication`` None: the DataNode's default)."""
        self._from_datanode(path, self._create, "PUT", {"overwrite": True, "replication": replication},
                            data=data).close()

    def _from_datanode(self, path: str, namenode_operation, method: str, params: dict, **request):
        """The DataNode's response to ``method`` on the URL the NameNode gives for the operation; a DataNode that
        cannot be reached is excluded and the NameNode asked again. (The NameNode hop is the ``hdfs`` package's,
        with its failover between HA NameNodes.)"""
        excluded: list[str] = []
        while True:
            exclusion = {"excludedatanodes": ",".join(excluded)} if excluded else {}
            location = namenode_operation(path, noredirect="true", **params, **exclusion).json()["Location"]
            try:
                response = self._request(method=method, url=location, stream=method == "GET", **request)
            except requests.ConnectionError as err:
                http_address = urlsplit(location).netloc
                datanode = self._transfer_address(http_address)
                if datanode in excluded or len(excluded) >= self.max_excluded:
                    raise DataNodeUnreachable(
                        f"HDFS DataNode {http_address} unreachable for {path} ({_reason(err)}), and the NameNode "
                        f"offered no other (excluded: {', '.join(excluded)})") from err
                log.warning("HDFS DataNode %s unreachable for %s (%s): asking the NameNode for another, without %s",
                            http_address, path, _reason(err), datanode)
                excluded.append(datanode)
                continue
            if not response:
                raise _to_error(response)
            return response

    def _transfer_address(self, http_address: str) -> str:
        """The data-transfer address the NameNode knows the DataNode serving ``http_address`` by."""
        host, _, port = http_address.rpartition(":")
        for namenode in list(self._urls):
            try:
                beans = self._session.get(f"{namenode.rstrip('/')}{_JMX_LIVE_NODES}", timeout=10).json()["beans"]
                nodes = json.loads(beans[0]["LiveNodes"])
            except (requests.RequestException, ValueError, LookupError):
                continue
            for name, node in nodes.items():
                info_host, _, info_port = node.get("infoAddr", "").rpartition(":")
                if info_port == port and host in (info_host, name.rpartition(":")[0]):
                    return node["xferaddr"]
        return host


def _reason(err: BaseException) -> str:
    text = str(err)
    for phrase in ("Connection refused", "Connection reset", "Connection aborted", "timed out"):
        if phrase in text:
            return phrase
    return type(err).__name__

"""Sensors: wait for HDFS before the Spark steps that need to write to it."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import BaseSensorOperator

__all__ = ["HdfsWritableSensor"]


class HdfsWritableSensor(BaseSensorOperator):
    """Succeeds once the NameNode answers, has a live DataNode and is out of safe mode.

    Where HDFS is: ``webhdfs_url`` (``http://namenode:9870``) and ``user``, else the Airflow
    connection ``conn_id`` (see :class:`~genoflow_plugins.hooks.HdfsHook`). An unreachable NameNode
    is "not yet", not an error: the sensor keeps poking until its timeout.
    """

    template_fields: Sequence[str] = ("webhdfs_url",)

    def __init__(self, *, conn_id: str = "hdfs_default", webhdfs_url: str | None = None, user: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.webhdfs_url = webhdfs_url
        self.user = user

    def poke(self, context) -> bool:
        import requests
        from hdfs.util import HdfsError

        from genoflow_plugins.hooks import HdfsHook

        hook = HdfsHook(conn_id=self.conn_id, webhdfs_url=self.webhdfs_url, user=self.user, timeout=10)
        try:
            health = hook.namenode_health()
        except (requests.RequestException, HdfsError, KeyError, IndexError, ValueError) as err:
            self.log.info("NameNode at %s not answering yet: %s", hook.webhdfs_url, err)
            return False
        if not health["writable"]:
            self.log.info("NameNode at %s not writable yet: live DataNodes %s, safe mode %r", hook.webhdfs_url,
                          health["live_datanodes"], health["safe_mode_status"])
        return health["writable"]

"""A real HDFS (one NameNode + one DataNode, Apache Hadoop 3.5.0) for tests, through hadoop/hdfs.sh.

Each instance gets free loopback ports and its own state folder, so test sessions and developers'
`make hdfs-up` never collide. The jars are fetched once per checkout into .genoflow/hadoop/lib
(from ~/.m2 after the first Maven download); set HADOOP_LIB to share one folder between checkouts.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO
from tests.services import HOST, free_port, run_script

HDFS_SH = REPO / "hadoop" / "hdfs.sh"
DEFAULT_LIB = REPO / ".genoflow" / "hadoop" / "lib"


class HdfsService:
    """One NameNode + DataNode on ``HOST``.

    Attributes a test uses: ``uri`` (``hdfs://127.0.0.1:<rpc>``), ``namenode`` (``127.0.0.1:<rpc>``),
    ``webhdfs_url`` (``http://127.0.0.1:<http>``), ``webhdfs_dvc_url`` (``webhdfs://127.0.0.1:<http>``,
    what DVC's remote takes), ``conf_dir`` (a HADOOP_CONF_DIR for clients) and :meth:`dfsadmin`,
    :meth:`dfs`, :meth:`safe_mode`.
    """

    def __init__(self, state_dir: Path, rpc_port: int | None = None, http_port: int | None = None,
                 lib: Path | None = None):
        self.state_dir = Path(state_dir)
        self.rpc_port = rpc_port or free_port()
        self.http_port = http_port or free_port()
        self.lib = Path(lib or os.environ.get("HADOOP_LIB") or DEFAULT_LIB)
        self.startup_s: float | None = None

    @property
    def namenode(self) -> str:
        return f"{HOST}:{self.rpc_port}"

    @property
    def uri(self) -> str:
        return f"hdfs://{self.namenode}"

    @property
    def webhdfs_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def webhdfs_dvc_url(self) -> str:
        return f"webhdfs://{HOST}:{self.http_port}"

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "conf"

    def _env(self) -> dict[str, str]:
        return {"HDFS_STATE_DIR": str(self.state_dir), "HADOOP_LIB": str(self.lib),
                "HDFS_HOST": HOST, "HDFS_RPC_PORT": str(self.rpc_port), "HDFS_HTTP_PORT": str(self.http_port),
                "HDFS_HEAP": os.environ.get("HDFS_HEAP", "384m")}

    def _script(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return run_script(HDFS_SH, *args, env=self._env(), timeout=timeout, check=check)

    def start(self) -> HdfsService:
        """Fetch jars if needed, format, start both daemons, wait for a live DataNode and safe mode off."""
        t0 = time.monotonic()
        try:
            self._script("up")
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self) -> None:
        self._script("down", timeout=120, check=False)

    def dfsadmin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Hadoop's DFSAdmin on this NameNode, e.g. ``dfsadmin("-safemode", "enter")``."""
        return self._script("dfsadmin", *args, timeout=120, check=check)

    def dfs(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Hadoop's FsShell on this NameNode, e.g. ``dfs("-ls", "-R", "/")``."""
        return self._script("dfs", *args, timeout=120, check=check)

    def in_safe_mode(self) -> bool:
        return "Safe mode is ON" in self.dfsadmin("-safemode", "get").stdout

    @contextmanager
    def safe_mode(self):
        """The NameNode in safe mode (read-only) for the duration; always left again afterwards."""
        self.dfsadmin("-safemode", "enter")
        try:
            yield self
        finally:
            self.dfsadmin("-safemode", "leave")

    def webhdfs(self, path: str, op: str = "GETFILESTATUS", **params: str) -> dict:
        """One read-only WebHDFS call (JSON answer), e.g. ``webhdfs("/genoflow", "LISTSTATUS")``."""
        query = "&".join([f"op={op}", "user.name=root", *(f"{k}={v}" for k, v in params.items())])
        with urllib.request.urlopen(f"{self.webhdfs_url}/webhdfs/v1{path}?{query}", timeout=30) as resp:
            return json.load(resp)

    def __repr__(self) -> str:
        return f"HdfsService({self.uri}, webhdfs {self.webhdfs_url}, state {self.state_dir})"


@contextmanager
def running_hdfs(state_dir: Path, **kwargs):
    """A started :class:`HdfsService`, stopped on exit (also when a test fails)."""
    service = HdfsService(state_dir, **kwargs).start()
    try:
        yield service
    finally:
        service.stop()

"""A real HDFS (one NameNode + one or more DataNodes, Apache Hadoop 3.5.0) for tests, through hadoop/hdfs.sh.

Each instance gets free loopback ports and its own state folder, so test sessions and developers'
`make hdfs-up` never collide. The script runs one DataNode; ``datanodes=2`` starts the others here
(same jars and configuration, their own data folder and ports) and ``replication`` sets what clients
of ``conf_dir`` write, so fault tests can lose a DataNode without losing a block.

The jars are fetched once per checkout into .genoflow/hadoop/lib
(from ~/.m2 after the first Maven download); set HADOOP_LIB to share one folder between checkouts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO
from tests.services import HOST, free_port, run_script
from tests.services.base import Service, wait_until

HDFS_SH = REPO / "hadoop" / "hdfs.sh"
DEFAULT_LIB = REPO / ".genoflow" / "hadoop" / "lib"
DATANODE_CLASS = "org.apache.hadoop.hdfs.server.datanode.DataNode"


class HdfsService(Service):
    """One NameNode + DataNode on ``HOST``.

    Attributes a test uses: ``uri`` (``hdfs://127.0.0.1:<rpc>``), ``namenode`` (``127.0.0.1:<rpc>``),
    ``webhdfs_url`` (``http://127.0.0.1:<http>``), ``webhdfs_dvc_url`` (``webhdfs://127.0.0.1:<http>``,
    what DVC's remote takes), ``conf_dir`` (a HADOOP_CONF_DIR for clients) and :meth:`dfsadmin`,
    :meth:`dfs`, :meth:`safe_mode`. With ``datanodes`` > 1, ``extra_datanodes`` holds the processes of
    the DataNodes started here (the script's is the first one).
    """

    def __init__(self, state_dir: Path, rpc_port: int | None = None, http_port: int | None = None,
                 lib: Path | None = None, datanodes: int = 1, replication: int = 1):
        self.state_dir = Path(state_dir)
        self.rpc_port = rpc_port or free_port()
        self.http_port = http_port or free_port()
        self.lib = Path(lib or os.environ.get("HADOOP_LIB") or DEFAULT_LIB)
        self.datanodes, self.replication = datanodes, replication
        if replication > datanodes:
            raise ValueError(f"HdfsService: replication {replication} needs as many DataNodes, got {datanodes}")
        self.extra_datanodes: dict[int, subprocess.Popen] = {}

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

    def _start(self) -> None:
        """Fetch jars if needed, format, start both daemons, wait for a live DataNode and safe mode off."""
        self._up()
        for number in range(2, self.datanodes + 1):
            self.start_datanode(number)

    def _up(self) -> None:
        """The script's ``up`` (writes the configuration, starts what is not running), then the
        client's replication: the script writes 1, for its single DataNode."""
        self._script("up")
        site = self.conf_dir / "hdfs-site.xml"
        site.write_text(re.sub(r"(<name>dfs.replication</name><value>)\d+(</value>)",
                               rf"\g<1>{self.replication}\g<2>", site.read_text()))

    def start_datanode(self, number: int, timeout: float = 120) -> subprocess.Popen:
        """Start DataNode ``number`` (2, 3, ...) with its own data folder (kept across restarts, so a
        restarted one brings its blocks back) and fresh ports; return once the NameNode lists it live."""
        data = self.state_dir / f"data{number}"
        data.mkdir(parents=True, exist_ok=True)
        logs = self.state_dir / "logs"
        address = f"{HOST}:{free_port()}"
        overrides = {"dfs.datanode.data.dir": data.as_uri(), "dfs.datanode.address": address,
                     "dfs.datanode.http.address": f"{HOST}:0", "dfs.datanode.ipc.address": f"{HOST}:0"}
        command = ["java", f"-Xmx{self._env()['HDFS_HEAP']}", "-Djava.net.preferIPv4Stack=true",
                   f"-Dhadoop.home.dir={self.state_dir}", f"-Dhadoop.log.dir={logs}",
                   f"-Dhadoop.log.file=datanode{number}.log",
                   f"-Dlog4j.configuration={(self.conf_dir / 'log4j.properties').as_uri()}",
                   "-cp", f"{self.conf_dir}:{self.lib}/*", DATANODE_CLASS,
                   *(arg for key, value in overrides.items() for arg in ("-D", f"{key}={value}"))]
        with (logs / f"datanode{number}.out").open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.extra_datanodes[number] = process
        wait_until(lambda: address in self.live_datanode_addresses(), timeout,
                   lambda: f"{self}: DataNode {number} ({address}) not live after {timeout:.0f} s "
                           f"(exit {process.poll()}; log {logs / f'datanode{number}.out'})",
                   gone=lambda: process.poll() is not None)
        return process

    def _namenode_jmx(self, name: str) -> dict:
        query = f"Hadoop:service=NameNode,name={name}"
        with urllib.request.urlopen(f"{self.webhdfs_url}/jmx?qry={query}", timeout=30) as resp:
            return json.load(resp)["beans"][0]

    def live_datanodes(self) -> int:
        """How many DataNodes the NameNode counts live (a killed one stays counted until its heartbeats expire)."""
        return int(self._namenode_jmx("FSNamesystemState")["NumLiveDataNodes"])

    def live_datanode_addresses(self) -> set[str]:
        """The data-transfer addresses (``host:port``) of the DataNodes the NameNode lists live."""
        return {node["xferaddr"] for node in json.loads(self._namenode_jmx("NameNodeInfo")["LiveNodes"]).values()}

    def wait_for_datanodes(self, count: int, timeout: float = 120) -> None:
        wait_until(lambda: self.live_datanodes() >= count, timeout,
                   lambda: f"{self}: fewer than {count} live DataNodes after {timeout:.0f} s "
                           f"(logs in {self.state_dir / 'logs'})")

    def namenode_pid(self) -> int:
        return int((self.state_dir / "pids" / "namenode.pid").read_text())

    def restart_namenode(self, timeout: float = 120) -> None:
        """Stop the NameNode (SIGTERM, as `hdfs.sh down` does) and start it again on the same ports and
        metadata; return once it is out of safe mode with every DataNode re-registered."""
        pid = self.namenode_pid()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        (self.state_dir / "pids" / "namenode.pid").unlink()  # the script takes a zombie for a running one
        self._up()
        self.wait_for_datanodes(self.datanodes, timeout)

    def _extra_processes(self) -> list[subprocess.Popen]:
        return list(self.extra_datanodes.values())

    def _stop(self) -> None:
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def running_hdfs(state_dir: Path, **kwargs) -> HdfsService:
    """``with running_hdfs(d, **kwargs) as service``: started, stopped on exit (also when a test fails)."""
    return HdfsService(state_dir, **kwargs)

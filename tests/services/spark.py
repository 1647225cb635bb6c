"""A real Spark standalone cluster (one master + one or more workers) for tests, through scripts/spark-cluster.sh.

Free loopback ports and a private state folder per instance, so test sessions and a developer's
`make spark-up` never collide. By default one worker offers 2 cores and 2 GiB (the machine's cores;
a modest share of its memory). ``workers=2`` adds workers started here from pyspark's own
``spark-class`` (the script runs one), so fault tests can lose one and the job goes on with the other.

:func:`worker_python` makes the Python a real cluster worker would have: the
third-party packages, but no genoflow, so executors can only import what spark-submit ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import urllib.request
import venv
from pathlib import Path

from tests.conftest import REPO
from tests.services import HOST, free_port, run_script
from tests.services.base import Service, wait_until

SPARK_CLUSTER_SH = REPO / "scripts" / "spark-cluster.sh"


WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class SparkCluster(Service):
    """One master + ``workers`` workers on ``HOST``: ``master_url`` (``spark://127.0.0.1:<port>``, what the
    ``spark_default`` connection takes), ``ui_url`` (the master's UI; :meth:`state` is its /json/).

    Each worker offers ``cores`` cores and ``memory``. The first is the script's; the others are
    processes of this object (:meth:`add_worker`), stopped by :meth:`stop`.
    """

    def __init__(self, state_dir: Path, workers: int = 1, cores: int = 2, memory: str = "2g"):
        self.state_dir = Path(state_dir)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.master_port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self.extra_workers: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    def _script(self, command: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        env = {"SPARK_STATE_DIR": str(self.state_dir), "SPARK_MASTER_PORT": str(self.master_port),
               "SPARK_MASTER_WEBUI_PORT": str(self.ui_port), "SPARK_WORKER_WEBUI_PORT": str(self.worker_ui_port),
               "SPARK_WORKER_CORES": str(self.cores), "SPARK_WORKER_MEMORY": self.memory}
        return run_script(SPARK_CLUSTER_SH, command, env=env, timeout=timeout, check=check)

    def _start(self) -> None:
        self._script("up")
        for _ in range(self.workers - 1):
            self.add_worker()

    def add_worker(self, timeout: float = 90) -> subprocess.Popen:
        """Start one more worker (as the script starts its own: clean environment, same state folder)
        and wait until the master counts it ALIVE. Its pid is the worker JVM's (spark-class execs java)."""
        import pyspark

        spark_home = Path(pyspark.__file__).parent
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update({"SPARK_HOME": str(spark_home), "SPARK_CONF_DIR": str(self.state_dir / "conf"),
                    "SPARK_LOCAL_IP": HOST, "SPARK_WORKER_DIR": str(self.state_dir / "work"),
                    "SPARK_DAEMON_MEMORY": os.environ.get("SPARK_DAEMON_MEMORY", "512m")})
        expected = self.alive_workers() + 1
        log = (self.state_dir / "logs" / f"worker-{len(self.extra_workers) + 2}.out").open("ab")
        worker = subprocess.Popen(
            [str(spark_home / "bin" / "spark-class"), WORKER_CLASS, "--host", HOST, "--webui-port", "0",
             "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(self.state_dir / "work"),
             self.master_url], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        self.extra_workers.append(worker)
        self.wait_for_workers(expected, timeout)
        return worker

    def alive_workers(self) -> int:
        return sum(1 for w in self.state()["workers"] if w["state"] == "ALIVE")

    def wait_for_workers(self, count: int, timeout: float = 90) -> None:
        wait_until(lambda: self.alive_workers() >= count, timeout,
                   lambda: f"{self}: fewer than {count} ALIVE workers after {timeout:.0f} s "
                           f"(logs in {self.state_dir / 'logs'})")

    def _extra_processes(self) -> list[subprocess.Popen]:
        return self.extra_workers

    def _stop(self) -> None:
        self._script("down", timeout=120, check=False)

    def state(self) -> dict:
        """The master's status JSON: workers, cores, ``activeapps`` and ``completedapps``."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=30) as resp:
            return json.load(resp)

    def executor_logs(self, app_id: str) -> str:
        """The stderr of every executor the worker ran for ``app_id`` (kept in its work folder)."""
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted((self.state_dir / "work" / app_id).glob("*/stderr")))

    def __repr__(self) -> str:
        return f"SparkCluster({self.master_url}, UI {self.ui_url}, state {self.state_dir})"


def running_spark_cluster(state_dir: Path, **kwargs) -> SparkCluster:
    """``with running_spark_cluster(d, **kwargs) as cluster``: started with its workers ALIVE (``kwargs``:
    workers, cores, memory), stopped on exit (also when a test fails)."""
    return SparkCluster(state_dir, **kwargs)


def worker_python(folder: Path) -> Path:
    """A Python like a cluster worker's: this environment's third-party packages, and no genoflow.

    A bare venv whose one .pth file adds this venv's site-packages to ``sys.path``. Python reads
    .pth files only in site folders, not in folders a .pth adds, so genoflow's editable-install
    hook there never runs; ``PYTHONPATH`` is dropped by the cluster's daemons.
    """
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "genoflow-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = subprocess.run([str(python), "-c", "import pyspark, numpy, pandas, Bio; import genoflow"],
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                           capture_output=True, text=True)
    if "No module named 'genoflow'" not in probe.stderr:
        raise RuntimeError(f"worker_python: {python} must have the dependencies but not genoflow "
                           f"(exit {probe.returncode}): {probe.stderr[-2000:]}")
    return python

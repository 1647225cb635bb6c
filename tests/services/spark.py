"""A real Spark standalone cluster (one master + one worker) for tests, through scripts/spark-cluster.sh.

Free loopback ports and a private state folder per instance, so test sessions and a developer's
`make spark-up` never collide. The worker offers 2 cores and 2 GiB (the machine's cores; a modest
share of its memory). :func:`worker_python` makes the Python a real cluster worker would have: the
third-party packages, but no genoflow, so executors can only import what spark-submit ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import urllib.request
import venv
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO
from tests.services import HOST, free_port, run_script

SPARK_CLUSTER_SH = REPO / "scripts" / "spark-cluster.sh"


class SparkCluster:
    """One master + worker on ``HOST``: ``master_url`` (``spark://127.0.0.1:<port>``, what the
    ``spark_default`` connection takes), ``ui_url`` (the master's UI; :meth:`state` is its /json/)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.master_port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    def _script(self, command: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        env = {"SPARK_STATE_DIR": str(self.state_dir), "SPARK_MASTER_PORT": str(self.master_port),
               "SPARK_MASTER_WEBUI_PORT": str(self.ui_port), "SPARK_WORKER_WEBUI_PORT": str(self.worker_ui_port),
               "SPARK_WORKER_CORES": "2", "SPARK_WORKER_MEMORY": "2g"}
        return run_script(SPARK_CLUSTER_SH, command, env=env, timeout=timeout, check=check)

    def start(self) -> SparkCluster:
        try:
            self._script("up")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
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


@contextmanager
def running_spark_cluster(state_dir: Path):
    """A started :class:`SparkCluster` with an ALIVE worker, stopped on exit (also when a test fails)."""
    cluster = SparkCluster(state_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


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

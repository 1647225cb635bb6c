"""A real MLflow tracking server for tests, through scripts/mlflow-server.sh: SQLite backend,
artifacts proxied by the server (``mlflow-artifacts:/``), a free loopback port, its own state folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.services import HOST, free_port, run_script
from tests.services.base import Service

MLFLOW_SERVER_SH = REPO / "scripts" / "mlflow-server.sh"


class MlflowServer(Service):
    """``tracking_uri`` (``http://127.0.0.1:<port>``) is what clients set as ``MLFLOW_TRACKING_URI``."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.port = free_port()

    @property
    def tracking_uri(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def artifacts_dir(self) -> Path:
        """Where the server keeps the artifacts clients upload through it."""
        return self.state_dir / "artifacts"

    def _script(self, command: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        env = {"MLFLOW_STATE_DIR": str(self.state_dir), "MLFLOW_SERVER_PORT": str(self.port)}
        return run_script(MLFLOW_SERVER_SH, command, env=env, timeout=timeout, check=check)

    def _start(self) -> None:
        self._script("up")  # returns once /health answers

    def _stop(self) -> None:
        self._script("down", timeout=60, check=False)

    def __repr__(self) -> str:
        return f"MlflowServer({self.tracking_uri}, state {self.state_dir})"


def running_mlflow_server(state_dir: Path) -> MlflowServer:
    """``with running_mlflow_server(d) as server``: started and answering /health, stopped on exit
    (also when a test fails)."""
    return MlflowServer(state_dir)

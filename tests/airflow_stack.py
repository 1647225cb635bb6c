"""Real Airflow 3 services over a test project: api-server, scheduler, dag-processor, triggerer.

Each runs natively (no containers) in its own process group on a free loopback port, with the
settings of `make up` (config/airflow/local.env) and the project's AIRFLOW_HOME (SQLite). Used by
the browser tests (tests/e2e) and by the integration tests that need the real scheduler
(Asset-triggered runs): `running_airflow(project)` starts them and always stops every group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO
from tests.project import DAG_ID, VENV_BIN, Project

LOCAL_ENV = REPO / "config" / "airflow" / "local.env"
SERVICES = {
    "api-server": ["api-server"],
    # --skip-serve-logs: the log servers bind 0.0.0.0; the api-server reads the local log files.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
START_TIMEOUT_S = 240


def local_env() -> dict[str, str]:
    """The KEY=VALUE settings of config/airflow/local.env (shared with scripts/stack.sh)."""
    settings = {}
    for line in LOCAL_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowApi:
    """A REST v2 client with a token from SimpleAuthManager (POST /auth/token)."""

    def __init__(self, base_url: str, username: str, password: str):
        import httpx

        token = httpx.post(f"{base_url}/auth/token", json={"username": username, "password": password},
                           timeout=30)
        token.raise_for_status()
        self.http = httpx.Client(base_url=f"{base_url}/api/v2", timeout=60,
                                 headers={"Authorization": f"Bearer {token.json()['access_token']}"})

    def get(self, path: str, **params) -> dict:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{dag_id}/dagRuns/{_quote(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances")["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """A task try's log as text (the endpoint answers JSON: a list of structured events)."""
        content = self.get(f"/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances/{task_id}/logs/{try_number}",
                           full_content="true")["content"]
        lines = []
        for event in content:
            if isinstance(event, str):
                lines.append(event)
                continue
            head = " ".join(str(event[k]) for k in ("timestamp", "level") if event.get(k))
            lines.append(f"{head} {event.get('event', '')}".strip())
        return "\n".join(lines)

    def failure_report(self, dag_id: str, run_id: str, tail_chars: int = 4000) -> str:
        """Every task's state, and the log tail of each try that did not succeed."""
        report = []
        for ti in self.task_instances(dag_id, run_id):
            report.append(f"--- {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
            if ti["state"] not in ("success", None) and ti["try_number"]:
                for attempt in range(1, ti["try_number"] + 1):
                    try:
                        text = self.task_log(dag_id, run_id, ti["task_id"], attempt)
                    except Exception as error:  # a report must not hide the failure it reports
                        text = f"(log unavailable: {error})"
                    report.append(f"    log of try {attempt} (tail):\n{text[-tail_chars:]}")
        return "\n".join(report)


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


@dataclass
class AirflowStack:
    project: Project
    base_url: str
    env: dict[str, str]
    run_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def password(self) -> str:
        passwords = Path(self.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        return json.loads(passwords.read_text())["admin"]

    def api(self) -> AirflowApi:
        return AirflowApi(self.base_url, "admin", self.password)

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {name}.log (tail)\n{(self.run_dir / f'{name}.log').read_text()[-chars:]}"
                         for name in self.processes)

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        assert not dead, f"Airflow process(es) exited: {dead}\n{self.log_tails()}"

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name, args in SERVICES.items():
            with open(self.run_dir / f"{name}.log", "wb") as log:
                # start_new_session: setsid, so teardown can stop the whole process group.
                self.processes[name] = subprocess.Popen(
                    [str(VENV_BIN / "airflow"), *args], cwd=self.project.root, env=self.env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_until_ready(self, dag_ids: tuple[str, ...] = (DAG_ID,)) -> None:
        """All components healthy and the DAGs parsed (no import errors)."""
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        health: dict = {}
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=10).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
            if health and all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                break
            time.sleep(2)
        else:
            raise AssertionError(f"Airflow not healthy after {START_TIMEOUT_S}s: {health}\n{self.log_tails()}")

        api = self.api()
        while time.monotonic() < deadline:
            self.check_alive()
            if all(api.http.get(f"/dags/{dag_id}").status_code == 200 for dag_id in dag_ids):
                return
            errors = api.get("/importErrors")["import_errors"]
            assert not errors, f"DAG import errors: {json.dumps(errors, indent=1)}"
            time.sleep(2)
        raise AssertionError(f"{dag_ids} not parsed after {START_TIMEOUT_S}s\n{self.log_tails()}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may outlive its leader (task runners, spark-submit JVMs): always sweep it.
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session: the group id is the leader's pid
    except ProcessLookupError:
        pass




@contextmanager
def running_airflow(project: Project, dag_ids: tuple[str, ...] = (DAG_ID,)) -> Iterator[AirflowStack]:
    """Airflow's services over ``project`` on a free port, healthy and with ``dag_ids`` parsed; stopped on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **project.env,
        **local_env(),  # the tests always use these, whatever the calling shell exported
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    stack = AirflowStack(project, base_url, env, project.root / ".genoflow" / "run")
    try:
        stack.start()
        stack.wait_until_ready(dag_ids)
        yield stack
    finally:
        stack.stop()

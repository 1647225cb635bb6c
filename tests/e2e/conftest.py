"""End-to-end fixtures: real Airflow services over the integration `project`, and a real browser.

The project (its own AIRFLOW_HOME, GENOFLOW_HOME, data and MLflow) is the session fixture of
tests/conftest.py. Here it gets the long-running Airflow 3 processes a person would use:
api-server (UI + REST + execution API), scheduler (LocalExecutor), dag-processor and triggerer,
each in its own process group on a free loopback port, with the settings of `make up`
(config/airflow/local.env). The browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# `project` is the session fixture of tests/conftest.py, shared with the integration tests to save
# a full DAG run; the live services here are module-scoped, stopped before other tests run.
from tests.conftest import REPO
from tests.project import DAG_ID, VENV_BIN, Project

ARTIFACTS = REPO / "test-artifacts"
LOCAL_ENV = REPO / "config" / "airflow" / "local.env"
CHROMIUM = os.environ.get("GENOFLOW_CHROMIUM", "/usr/bin/chromium")
# Headless Debian chromium on a closed network: without the background-networking flags it keeps
# opening outbound connections (component updates, sync, QUIC probes) that get refused en masse.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
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

    def wait_until_ready(self) -> None:
        """All components healthy and the DAG parsed (no import errors)."""
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
            if api.http.get(f"/dags/{DAG_ID}").status_code == 200:
                return
            errors = api.get("/importErrors")["import_errors"]
            assert not errors, f"DAG import errors: {json.dumps(errors, indent=1)}"
            time.sleep(2)
        raise AssertionError(f"{DAG_ID} not parsed after {START_TIMEOUT_S}s\n{self.log_tails()}")

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


@pytest.fixture(scope="module")
def airflow_stack(project) -> Iterator[AirflowStack]:  # noqa: F811 (the fixture imported above)
    """Airflow api-server, scheduler, dag-processor and triggerer over `project`, on a free port.

    Module-scoped: the services stop before other test modules run `airflow dags test` on the
    same project (a live scheduler would also pick up those runs' tasks).
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **project.env,
        **local_env(),  # the test always uses these, whatever the calling shell exported
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    stack = AirflowStack(project, base_url, env, project.root / ".genoflow" / "run")
    try:
        stack.start()
        stack.wait_until_ready()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def page(tmp_path):
    """A Playwright page in Debian's chromium with a fresh profile (sync API)."""
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) "
                    "or point GENOFLOW_CHROMIUM at a chromium binary")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=CHROMIUM,  # a fresh profile every test
            args=CHROMIUM_ARGS, headless=True, viewport={"width": 1400, "height": 900})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            # Generous waits for actions and assertions: the UI shares 2 cores with Spark jobs.
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)
            yield page
        finally:
            context.close()

"""End-to-end fixtures: real Airflow services over the integration `project`, and a real browser.

The project (its own AIRFLOW_HOME, GENOFLOW_HOME, data and MLflow) is the session fixture of
tests/conftest.py. Here it gets the long-running Airflow 3 processes a person would use:
api-server (UI + REST + execution API), scheduler (LocalExecutor), dag-processor and triggerer,
each in its own process group on a free loopback port, with the settings of `make up`
(config/airflow/local.env). The browser is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# The Airflow services live in tests/airflow_stack.py (shared with the integration tests that need
# the real scheduler). `project` is the session fixture of tests/conftest.py, shared with the
# integration tests to save a full DAG run; the live services here are module-scoped, stopped
# before other tests run.
from tests.airflow_stack import AirflowStack, running_airflow
from tests.conftest import REPO
from tests.project import DAG_ID  # noqa: F401 (re-exported for the browser tests)

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("GENOFLOW_CHROMIUM", "/usr/bin/chromium")
# Headless Debian chromium on a closed network: without the background-networking flags it keeps
# opening outbound connections (component updates, sync, QUIC probes) that get refused en masse.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def airflow_stack(project) -> Iterator[AirflowStack]:  # noqa: F811 (the fixture imported above)
    """Airflow api-server, scheduler, dag-processor and triggerer over `project`, on a free port.

    Module-scoped: the services stop before other test modules run `airflow dags test` on the
    same project (a live scheduler would also pick up those runs' tasks).
    """
    with running_airflow(project) as stack:
        yield stack


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

"""A person in a real browser runs the training DAG from the Airflow UI.

Debian's chromium (Playwright, sync API) logs in through SimpleAuthManager's login form, opens
`genomic_risk_training` from the Dags list, unpauses it with the UI toggle, triggers it from the
page with the params form as it comes, and follows the run to success. The services are real
(api-server, scheduler with LocalExecutor, dag-processor, triggerer), the tasks real
(spark-submit, DVC, MLflow). The REST API confirms what the page shows. Screenshots land in
test-artifacts/airflow-ui-*.png.
"""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import ARTIFACTS, DAG_ID

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 15 * 60  # the DAG takes a few minutes on the 500-patient cohort and 2 cores
POLL_S = 10
FINISHED = {"success", "failed"}
TASKS = ("resolve_dataset_version", "cohort_has_reads", "preprocess_cohort", "build_features", "train_models",
         "evaluate_models", "promote_champion", "build_report")
SKIPPED = ("align_reads", "call_genotypes")  # the demo cohort has its VCF: no reads to align and call


def screenshot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"airflow-ui-{name}.png"))


@pytest.mark.timeout(RUN_TIMEOUT_S + 900)
def test_trigger_training_dag_from_the_ui(airflow_stack, page):
    from playwright.sync_api import expect

    base = airflow_stack.base_url
    api = airflow_stack.api()
    assert api.get(f"/dags/{DAG_ID}")["is_paused"], "a new DAG starts paused; the UI toggle unpauses it"

    # --- log in through the login form (SimpleAuthManager redirects there) ----------------------
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(airflow_stack.password)
    sign_in = page.get_by_role("button", name="Sign in")
    expect(sign_in).to_be_enabled()  # the form enables it once both fields are filled
    screenshot(page, "1-login")
    sign_in.click()
    page.wait_for_url(f"{base}/")  # back on the home page, signed in

    # --- find the DAG: the "Dags" nav link (sidebar and tab bar both have one), then its card ---
    page.get_by_role("link", name="Dags", exact=True).first.click()
    page.get_by_role("link", name=DAG_ID, exact=True).click()
    page.wait_for_url(f"{base}/dags/{DAG_ID}")

    # --- unpause with the toggle in the DAG header --------------------------------------------
    # The pause switch is a Chakra switch whose hidden <input type=checkbox> has no accessible
    # name, so no role+name locator can single it out; Airflow's own `data-testid="toggle-pause"`
    # on the switch root is the stable handle. Its checkbox role then gives the state. While the
    # page changes from the Dags list, the list card's switch is briefly still there too: wait
    # for the DAG's own header and a single switch.
    expect(page.get_by_role("heading", name=DAG_ID, exact=True)).to_be_visible()
    toggle = page.get_by_test_id("toggle-pause")
    expect(toggle).to_have_count(1)
    expect(toggle.get_by_role("checkbox")).not_to_be_checked()
    toggle.click()
    expect(toggle.get_by_role("checkbox")).to_be_checked()
    _wait_for(lambda: not api.get(f"/dags/{DAG_ID}")["is_paused"], "the DAG to be unpaused", 30)

    # --- trigger from the page; accept the params form (params.yaml's sections) as it is --------
    # The header button's accessible name is "Trigger Dag" (its visible text is "Trigger"); the
    # dialog's submit button is the one named exactly "Trigger".
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")).to_be_visible()
    expect(dialog.get_by_role("button", name="Run Parameters")).to_be_visible()  # the params form
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    # The UI moves to the new run's page: /dags/<dag_id>/runs/<run_id>.
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/?]+"))
    run_id = unquote(re.search(rf"/dags/{DAG_ID}/runs/([^/?]+)", page.url).group(1))
    expect(page.get_by_text("Dag run has been successfully triggered")).to_be_visible()  # the toast
    # Let the run page render past its loading skeletons: the run's header, and its task table
    # either listing the first task or not yet having any (the scheduler creates them shortly).
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"^resolve_dataset_version\b"))
           .or_(page.get_by_text("No Task Instances found"))).to_be_visible()
    screenshot(page, "2-triggered")

    # --- wait for the run to finish (REST), then show it on the page ---------------------------
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = api.dag_run(DAG_ID, run_id)
    while run["state"] not in FINISHED and time.monotonic() < deadline:
        airflow_stack.check_alive()
        time.sleep(POLL_S)
        run = api.dag_run(DAG_ID, run_id)

    page.goto(f"{base}/dags/{DAG_ID}/runs/{run_id}")
    if run["state"] != "success":
        screenshot(page, f"3-{run['state']}")
    assert run["state"] == "success", (
        f"DAG run {run_id} is {run['state']!r} after up to {RUN_TIMEOUT_S}s; tasks and logs:\n"
        f"{api.failure_report(DAG_ID, run_id)}\n{airflow_stack.log_tails()}")

    # The page agrees: the run's header, then one "Success" row per task in its Task Instances
    # table (a row's accessible name is its cells' text: "<task_id> Success <start> ...").
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()
    for task_id in TASKS:
        expect(page.get_by_role("row", name=re.compile(rf"^{task_id} Success "))).to_be_visible()
    for task_id in SKIPPED:
        expect(page.get_by_role("row", name=re.compile(rf"^{task_id} Skipped "))).to_be_visible()
    screenshot(page, "3-success")

    # --- the REST API: a manual run, triggered from the UI by admin, every task succeeded -------
    assert run["run_type"] == "manual"
    assert run["triggered_by"] == "ui"
    assert run["triggering_user_name"] == "admin"
    tasks = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    assert tasks == {**dict.fromkeys(TASKS, "success"), **dict.fromkeys(SKIPPED, "skipped")}, tasks


def _wait_for(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)

"""Data-aware retraining through the real scheduler: a new cohort lands -> a training run on exactly that version.

Airflow's own services (api-server, scheduler with LocalExecutor, dag-processor, triggerer) run
natively over a private project (SQLite metadata, a git + DVC repository with a local remote).
The test lands a new patient batch (simulated on the demo cohort's sites), triggers
`cohort_ingest` over REST, and checks that the scheduler -- not the test -- creates a
`genomic_risk_training` run from the Asset event, and that its `resolve_dataset_version` task
resolves the DVC hash the event carries, which is the one committed to git and pushed to the
remote. The rest of that training run (minutes of Spark) is covered by test_training_dag.py;
the run is failed on purpose once its version is resolved.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.airflow_stack import AirflowStack, running_airflow
from tests.project import make_project

pytestmark = pytest.mark.integration

INGEST, TRAIN = "cohort_ingest", "genomic_risk_training"
N_PATIENTS, BATCH = 100, "b2026w48"
TIMEOUT_S = 600
POLL_S = 3


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """A private project (its data/raw committed as version 1) and a new batch landed in data/incoming."""
    from genoflow.simulate import make_cohort_batches

    project = make_project(tmp_path_factory.mktemp("retraining-project"), n_patients=N_PATIENTS)
    project.run("dvc", "add", "-q", "data/raw")
    project.run("dvc", "push", "-q")
    project.run("git", "add", "data/raw.dvc", "data/.gitignore")
    project.run("git", "commit", "-q", "-m", "cohort v1")
    make_cohort_batches(project.root / "data", n_reference=N_PATIENTS, n_new=40, seed=3,
                        sequence_length=1_000_000, reads_per_patient=20, batch=BATCH)
    return project


@pytest.fixture(scope="module")
def airflow(landed):
    with running_airflow(landed, dag_ids=(INGEST, TRAIN)) as stack:
        yield stack


def _wait(stack: AirflowStack, what: str, probe, timeout_s: int = TIMEOUT_S):
    """Poll ``probe()`` until it returns something truthy; fail with the services' logs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check_alive()
        found = probe()
        if found:
            return found
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}\n{stack.log_tails()}")


def _finished_run(stack, api, dag_id: str, run_id: str) -> dict:
    run = _wait(stack, f"{dag_id} run {run_id}",
                lambda: (r := api.dag_run(dag_id, run_id))["state"] in ("success", "failed") and r)
    assert run["state"] == "success", api.failure_report(dag_id, run_id)
    return run


def _git(project, *args: str) -> str:
    return subprocess.run(["git", "-C", str(project.root), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.timeout(TIMEOUT_S * 3)
def test_ingested_cohort_triggers_training_on_its_version(landed, airflow):
    import yaml

    api = airflow.api()
    version_one = yaml.safe_load((landed.root / "data" / "raw.dvc").read_text())["outs"][0]["md5"]
    for dag_id in (INGEST, TRAIN):
        api.http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    assert api.get(f"/dags/{TRAIN}/dagRuns")["total_entries"] == 0, "unpausing must not start a retraining"

    conf = {"ingest": {"landing_dir": f"data/incoming/{BATCH}"}}
    started = api.http.post(f"/dags/{INGEST}/dagRuns", json={"logical_date": None, "conf": conf})
    started.raise_for_status()
    _finished_run(airflow, api, INGEST, started.json()["dag_run_id"])

    # What the ingest did: the new version is in data/raw.dvc, committed, and pushed.
    pointer = yaml.safe_load(_git(landed, "show", "HEAD:data/raw.dvc"))["outs"][0]
    version = pointer["md5"]
    assert version != version_one and pointer["nfiles"] == 1 + 2 + 2 * 40  # VCF, FASTA + GFF, 40 x (CSV, FASTQ)
    assert _git(landed, "status", "--porcelain", "--", "data/raw.dvc") == ""
    digest = version.removesuffix(".dir")
    assert (landed.root / ".genoflow" / "dvc-remote" / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir").is_file()

    # The scheduler creates the training run from the Asset event.
    # Wait until the run has started: Airflow 3.3.2's upstreamAssetEvents endpoint answers 500 while a run
    # its event created is still queued (its start_date None fails the response model).
    runs = _wait(airflow, f"an Asset-triggered {TRAIN} run, started",
                 lambda: [run for run in api.get(f"/dags/{TRAIN}/dagRuns")["dag_runs"] if run.get("start_date")])
    assert [r["run_type"] for r in runs] == ["asset_triggered"]
    run_id = runs[0]["dag_run_id"]
    events = api.get(f"/dags/{TRAIN}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]
    assert [e["extra"]["dataset_version"] for e in events] == [version]
    assert events[0]["source_dag_id"] == INGEST
    assert events[0]["extra"]["git_commit"] == _git(landed, "rev-parse", "HEAD")

    resolve = _wait(airflow, "resolve_dataset_version to finish", lambda: next(
        (ti for ti in api.task_instances(TRAIN, run_id)
         if ti["task_id"] == "resolve_dataset_version" and ti["state"] in ("success", "failed", "skipped")), None))
    assert resolve["state"] == "success", api.failure_report(TRAIN, run_id)
    # The rest of the run is Spark for minutes (covered by test_training_dag.py): stop it here.
    api.http.patch(f"/dags/{TRAIN}/dagRuns/{run_id}", json={"state": "failed"}).raise_for_status()

    value = api.get(f"/dags/{TRAIN}/dagRuns/{run_id}/taskInstances/resolve_dataset_version/xcomEntries/return_value")
    resolved = value["value"] if isinstance(value["value"], dict) else json.loads(value["value"])
    assert resolved["dataset_version"] == version
    assert resolved["asset_event"]["dataset_version"] == version
    assert resolved["asset_event"]["source"].startswith(f"{INGEST}/")

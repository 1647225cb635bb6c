"""The drift monitor end to end: incoming batches -> `airflow dags test drift_monitor` -> spark-submit
jobs/drift.py -> MLflow drift runs -> a cohort_ingest run appending the batch, only on drift (its Asset
event then starts genomic_risk_training: tests/integration/test_data_aware_retraining.py).

The batches come from the simulation that made the project's training cohort (make_demo_cohort with
seed 3, 500 patients, 1 Mb): one from the same population, one from a population that split 50
generations ago and stayed at 500 diploids (expected drift F ~ 0.05).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.conftest import VENV_BIN, trigger

pytestmark = pytest.mark.integration

AIRFLOW = str(VENV_BIN / "airflow")
INGEST = "cohort_ingest"


def _client(project):
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    return mlflow.MlflowClient()


def _drift_runs_by_reason(project) -> list[dict]:
    """Queued/created cohort_ingest runs whose conf says reason=drift (from the project's Airflow DB)."""
    out = project.run(AIRFLOW, "dags", "list-runs", INGEST, "-o", "json").stdout
    listing = next((line for line in out.splitlines() if line.startswith("[")), "[]")
    runs = []
    for run in json.loads(listing):
        if run["state"] not in ("queued", "running"):  # nothing schedules them in a test: they stay queued
            continue
        state = project.run(AIRFLOW, "dags", "state", INGEST, run["run_id"]).stdout.strip().splitlines()[-1]
        _, _, conf = state.partition(", ")
        conf = json.loads(conf) if conf else {}
        if conf.get("reason") == "drift":
            runs.append({**run, "conf": conf})
    return runs


def _monitor(project, batch: str, logical_date: str) -> tuple[str, str]:
    conf = {"monitor": {"cohort_vcf": f"incoming/{batch}/cohort.vcf.gz",
                        "patient_dir": f"incoming/{batch}/patient_data"}}
    log = trigger(project, conf=conf, dag_id="drift_monitor", logical_date=logical_date)
    run_id = re.search(r"DagRun Finished: dag_id=drift_monitor, .*?run_id=([^,\s]+)", log).group(1)
    return run_id, log


_DELETE_RUNS = """
import sys
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
with create_session() as session:
    for run in session.query(DagRun).filter(DagRun.dag_id == sys.argv[1], DagRun.run_id.in_(sys.argv[2:])):
        session.delete(run)
"""


@pytest.fixture(scope="module")
def monitored(project, first_run):
    """Both batches written into the project, then drift_monitor run for each (unshifted first).

    The ingest runs it queues are deleted afterwards: the project is shared, and a live scheduler
    (the browser tests) would otherwise run them (and change the cohort other tests train on).
    """
    from genoflow.simulate import make_cohort_batches

    batches = {name: make_cohort_batches(project.root / "data", n_reference=500, sequence_length=1_000_000,
                                         seed=3, reads_per_patient=60, n_new=200, shifted=name == "shifted")
               for name in ("unshifted", "shifted")}
    before = _drift_runs_by_reason(project)
    runs = {"unshifted": _monitor(project, "unshifted", "2026-02-01T00:00:00+00:00")}
    after_unshifted = _drift_runs_by_reason(project)
    runs["shifted"] = _monitor(project, "shifted", "2026-02-02T00:00:00+00:00")
    after_shifted = _drift_runs_by_reason(project)
    yield {"batches": batches, "runs": runs, "retraining": (before, after_unshifted, after_shifted)}
    queued = [r["run_id"] for r in after_shifted if r["run_id"] not in {x["run_id"] for x in before}]
    if queued:
        project.run(str(VENV_BIN / "python"), "-c", _DELETE_RUNS, INGEST, *queued)


def _drift_run(project, airflow_run_id: str):
    from genoflow.monitoring.job import find_drift_run

    run = find_drift_run(airflow_run_id, "drift_monitor", project.tracking_uri)
    assert run is not None, f"no MLflow drift run tagged {airflow_run_id}"
    return run


def test_shifted_batch__drift_detected_and_batch_ingested(project, monitored):
    run_id, log = monitored["runs"]["shifted"]
    run = _drift_run(project, run_id)
    assert run.data.metrics["drift_detected"] == 1.0
    assert run.data.metrics["n_variants_significant"] > 50
    assert run.data.metrics["fst"] > 0.01
    before, after_unshifted, after_shifted = monitored["retraining"]
    new = [r for r in after_shifted if r["run_id"] not in {x["run_id"] for x in after_unshifted}]
    assert len(new) == 1, after_shifted
    conf = new[0]["conf"]
    assert conf["reason"] == "drift" and conf["drift_run_id"] == run.info.run_id
    assert conf["triggered_by"] == f"drift_monitor/{run_id}"
    assert conf["ingest"] == {"landing_dir": str(project.root / "data" / "incoming" / "shifted"), "mode": "append"}
    assert "Dag Run triggered successfully" in log


def test_unshifted_batch__no_drift_no_ingest(project, monitored):
    run_id, log = monitored["runs"]["unshifted"]
    run = _drift_run(project, run_id)
    assert run.data.metrics["drift_detected"] == 0.0
    assert run.data.metrics["n_variants_significant"] <= 2
    assert abs(run.data.metrics["fst"]) < 0.005
    before, after_unshifted, _ = monitored["retraining"]
    assert [r["run_id"] for r in after_unshifted] == [r["run_id"] for r in before]
    assert "Triggering Dag Run" not in log


def test_drift_run__report_artifacts_and_tags(project, monitored):
    client = _client(project)
    champion = client.get_model_version_by_alias("genoflow_disease_status", "champion")
    for batch, (run_id, _) in monitored["runs"].items():
        run = _drift_run(project, run_id)
        tags = run.data.tags
        assert tags["genoflow.monitored_run_id"] == champion.run_id
        assert tags["genoflow.cohort_vcf"].endswith(f"incoming/{batch}/cohort.vcf.gz")
        assert {"drift_report.json", "drift_report.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        report_dir = tags["genoflow.drift_report"].removeprefix("file://")
        report = json.loads(open(f"{report_dir}/report.json").read())
        assert report["drift_detected"] is (batch == "shifted")
        assert report["cohort"]["n_samples"] == 200
        for key in ("max_af_shift", "mean_af_shift", "max_psi", "score_psi"):
            assert key in run.data.metrics

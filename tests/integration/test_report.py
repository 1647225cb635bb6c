"""The report job on a real training run: spark-submit jobs/report.py like the DAG would, the page
committed under the storage root and logged on each candidate MLflow run."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.conftest import VENV_BIN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(project, first_run):
    from genoflow.config import load_params
    from genoflow.reporting.job import report_key
    from genoflow.versioning import dvc_version

    params = load_params(project.root / "params.yaml")
    version = dvc_version(project.root)
    result = project.run(
        str(VENV_BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.driver.memory=2g",
        "--conf", "spark.ui.showConsoleProgress=false", str(project.root / "jobs" / "report.py"),
        "--storage-root", project.storage_root, "--dataset-version", version, "--git-commit", "test-commit",
        "--params-json", json.dumps(params))
    page = project.root / "data" / "steps" / "report" / report_key(version, params) / "report.html"
    assert result.returncode == 0
    return {"params": params, "version": version, "page": page}


def test_report__committed_with_every_section(report):
    from genoflow.reporting.html import SECTIONS

    page = report["page"]
    assert page.is_file() and (page.parent / "_SUCCESS").exists()
    assert not list(page.parent.parent.glob("*.tmp-*"))
    text = page.read_text()
    for key, heading in SECTIONS.items():
        assert f'<section id="{key}"><h2>{heading}</h2>' in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= 2 * 5  # 5 figures per target
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert report["version"] in text and "test-commit" in text
    lambdas = [float(x) for x in re.findall(r"lambda_GC = ([0-9.]+)", text)]
    assert len(lambdas) >= 2 and all(0.5 < x < 10 for x in lambdas)


def test_report__logged_on_each_candidate_run(project, report):
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    client = mlflow.MlflowClient()
    metrics_file = next((project.root / "data" / "steps" / "evaluate").glob("*/metrics.json"))
    candidates = json.loads(metrics_file.read_text())["candidates"]
    assert set(candidates) == set(report["params"]["train"]["targets"])
    for run_id in candidates.values():
        assert "report.html" in {a.path for a in client.list_artifacts(run_id)}
        assert client.get_run(run_id).info.status == "FINISHED"
    champion = client.get_model_version_by_alias("genoflow_disease_status", "champion")
    text = report["page"].read_text()
    assert f"v{champion.version}: champion" in text
    assert client.get_model_version("genoflow_disease_status", champion.version).tags[
        "genoflow.promotion_reason"] in text

"""The report of a real training run: the DAG's build_report task (spark-submit jobs/report.py)
committed the page under the storage root and logged it on each candidate MLflow run."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(project, first_run):
    """The report the DAG's build_report task committed for the default params (spark-submit jobs/report.py)."""
    from genoflow.config import load_params
    from genoflow.reporting.job import report_key
    from genoflow.versioning import dvc_version

    params = load_params(project.root / "params.yaml")
    version = dvc_version(project.root)
    page = project.root / "data" / "steps" / "report" / report_key(version, params) / "report.html"
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
    assert report["version"] in text
    lambdas = [float(x) for x in re.findall(r"lambda_GC = ([0-9.]+)", text)]
    assert len(lambdas) >= 2 and all(0.5 < x < 10 for x in lambdas)


def test_report__logged_on_each_candidate_run(project, report):
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    client = mlflow.MlflowClient()
    from genoflow.config import step_key

    evaluate_key = step_key("evaluate", report["version"], report["params"])
    metrics_file = project.root / "data" / "steps" / "evaluate" / evaluate_key / "metrics.json"
    candidates = json.loads(metrics_file.read_text())["candidates"]
    assert set(candidates) == set(report["params"]["study"]["targets"])
    for run_id in candidates.values():
        assert "report.html" in {a.path for a in client.list_artifacts(run_id)}
        assert client.get_run(run_id).info.status == "FINISHED"
    text = report["page"].read_text()
    import html

    (version,) = client.search_model_versions(
        f"name = 'genoflow_disease_status' and run_id = '{candidates['disease_status']}'")
    assert f"v{version.version}: {version.tags['genoflow.promotion']}" in text
    assert html.escape(version.tags["genoflow.promotion_reason"]) in text

"""Prometheus and Grafana configuration: parses, scrapes the model API, charts every API metric."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import REPO

CONFIG = REPO / "config"
API_METRICS = ("genoflow_api_requests_total", "genoflow_api_request_seconds_bucket",
               "genoflow_api_prediction_score_bucket", "genoflow_api_model_info")


@pytest.mark.parametrize("name, api", [("prometheus.yml", "127.0.0.1:8000"), ("prometheus.compose.yml", "api:8000")])
def test_prometheus__scrapes_the_api_mlflow_and_airflow(name, api):
    config = yaml.safe_load((CONFIG / "prometheus" / name).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["genoflow-api"]["metrics_path"] == "/metrics"
    assert jobs["genoflow-api"]["static_configs"][0]["targets"] == [api]
    assert {"mlflow", "airflow"} <= set(jobs)
    for rules in config["rule_files"]:
        groups = yaml.safe_load((CONFIG / "prometheus" / rules).read_text())["groups"]
        assert all(rule["expr"] and rule["alert"] for group in groups for rule in group["rules"])


def test_grafana__dashboard_charts_every_api_metric():
    dashboard = json.loads((CONFIG / "grafana" / "dashboards" / "genoflow.json").read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    for metric in API_METRICS:
        assert metric in exprs, metric
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    titles = " ".join(p["title"].lower() for p in panels)
    assert "request rate" in titles and "latency" in titles and "score distribution" in titles
    assert "model" in titles
    # Every query goes through the dashboard's data source variable, which takes the provisioned default.
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    assert all(t["datasource"]["uid"] == "${datasource}" for p in panels for t in p.get("targets", []))
    provisioned = yaml.safe_load((CONFIG / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert any(d["type"] == "prometheus" and d.get("isDefault") for d in provisioned["datasources"])

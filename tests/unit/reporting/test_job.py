"""The report job's key and entry point (no Spark)."""

from __future__ import annotations

import subprocess
import sys

from genoflow.config import load_params, run_key
from genoflow.reporting.job import report_key
from tests.conftest import REPO


def test_report_key__follows_the_run_and_the_promotion_gate():
    params = load_params(REPO / "params.yaml")
    key = report_key("v1.dir", params)
    assert report_key("v1.dir", params) == key and len(key) == 16
    assert report_key("v2.dir", params) != key
    stricter = load_params(REPO / "params.yaml", overrides={"promote": {"min_improvement": 0.05}})
    assert run_key("v1.dir", stricter) == run_key("v1.dir", params)  # same trained models...
    assert report_key("v1.dir", stricter) != key  # ...judged differently: another report
    assert report_key("v1.dir", load_params(REPO / "params.yaml", overrides={"monitor": {"alpha": 0.1}})) == key


def test_job__help_without_spark():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "report.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--storage-root" in out and "--dataset-version" in out and "--params-json" in out

"""The drift job's settings and entry point (no Spark)."""

from __future__ import annotations

import subprocess
import sys

from genoflow.config import load_params
from genoflow.monitoring.job import MONITOR_DEFAULTS, resolve_monitor
from tests.conftest import REPO


def test_resolve_monitor__defaults_then_file_then_overrides(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  alpha: 0.01\n  cohort_vcf: incoming/a/cohort.vcf.gz\n")
    monitor = resolve_monitor({"cohort_vcf": "incoming/b/cohort.vcf.gz"}, params_file=params)
    assert monitor["alpha"] == 0.01  # from the file
    assert monitor["cohort_vcf"] == "incoming/b/cohort.vcf.gz"  # the run's override wins
    assert monitor["psi_threshold"] == MONITOR_DEFAULTS["psi_threshold"]  # built-in default
    assert resolve_monitor(params_file=tmp_path / "missing.yaml") == MONITOR_DEFAULTS


def test_params_yaml__monitor_section_is_the_schema_defaults():
    # One home for the values (genoflow.params.Monitor); params.yaml spells each out and must not drift.
    monitor = load_params(REPO / "params.yaml")["monitor"]
    assert monitor == MONITOR_DEFAULTS


def test_job__help_without_spark():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "drift.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--storage-root" in out and "--monitor-json" in out and "--run-id" in out

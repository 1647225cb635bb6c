"""The project's own surfaces: dvc.yaml mirrors the jobs, the CLI documents every verb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.cli import build_parser
from genoflow.config import STEPS
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def test_dvc_yaml__stages_mirror_the_jobs():
    out = subprocess.run([str(BIN / "dvc"), "stage", "list", "--name-only"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["version", *STEPS, "promote"]
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for step in STEPS:
        assert f"jobs/{step}.py" in stages[step]["cmd"] and "spark-submit" in stages[step]["cmd"]
        assert (REPO / "jobs" / f"{step}.py").exists()


@pytest.mark.parametrize("verb", ["demo-data", "dataset-version", "run-key", "params-json", "promote", "summary",
                                  "lineage"])
def test_cli__help_on_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"genoflow {verb}" in capsys.readouterr().out


def test_jobs__help_without_spark():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "train.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--storage-root" in out and "--params-json" in out


def test_docker_compose__config_is_valid():
    """The stack file resolves (Debian's docker-compose validates it without an engine)."""
    result = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config", "--services"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"namenode", "datanode", "spark-master", "spark-worker", "postgres", "mlflow", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "api", "prometheus",
            "grafana"} <= services
    for dockerfile in ("deploy/airflow/Dockerfile", "deploy/spark/Dockerfile"):
        assert (REPO / dockerfile).exists()

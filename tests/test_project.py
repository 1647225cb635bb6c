"""The project's own surfaces: dvc.yaml mirrors the jobs, the CLI documents every verb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.cli import build_parser
from genoflow.config import STEPS
from tests.conftest import REPO, require_tool

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
                                  "lineage", "gc"])
def test_cli__help_on_every_verb(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"genoflow {verb}" in capsys.readouterr().out


def test_jobs__help_without_spark():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "train.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--storage-root" in out and "--params-json" in out


# docker-compose.yml's secrets: each is required (``${VAR:?message}``) and listed in .env.example.
COMPOSE_SECRETS = ("GENOFLOW_PSEUDONYM_KEY", "GENOFLOW_API_KEYS", "GENOFLOW_AUDIT_HASH_KEY",
                   "GENOFLOW_POSTGRES_PASSWORD", "GENOFLOW_AIRFLOW_ADMIN_PASSWORD", "GENOFLOW_AIRFLOW_FERNET_KEY",
                   "GENOFLOW_AIRFLOW_JWT_SECRET", "GENOFLOW_GRAFANA_ADMIN_PASSWORD")
COMPOSE_PUBLIC = {"api", "airflow-apiserver"}  # published where the .env says (loopback by default)


def _compose_config(tmp_path, settings: dict[str, str]) -> subprocess.CompletedProcess:
    """``docker-compose config`` with exactly ``settings`` (never the caller's environment or a developer's .env)."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GENOFLOW_")}
    require_tool("docker-compose")
    return subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), "--env-file", str(env_file),
                           "config"], cwd=REPO, capture_output=True, text=True, env=environ)


def _published(config: str) -> dict[str, list[str]]:
    import yaml

    services = yaml.safe_load(config)["services"]
    return {name: [str(p).rsplit(":", 2)[0] if str(p).count(":") == 2 else "0.0.0.0" for p in spec.get("ports", [])]
            for name, spec in services.items()}


@pytest.mark.slow  # runs docker-compose
def test_docker_compose__config_is_valid_and_publishes_on_loopback_only(tmp_path):
    """The stack file resolves (Debian's docker-compose validates it without an engine); every port is
    published on 127.0.0.1, and Postgres and the DataNode not at all."""
    import yaml

    result = _compose_config(tmp_path, {key: f"secret-{i}" for i, key in enumerate(COMPOSE_SECRETS)})
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert {"namenode", "datanode", "spark-master", "spark-worker", "postgres", "mlflow", "airflow-apiserver",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "api", "prometheus",
            "grafana"} <= set(config["services"])
    published = _published(result.stdout)
    assert {host for hosts in published.values() for host in hosts} == {"127.0.0.1"}
    assert published["postgres"] == published["datanode"] == []
    assert config["networks"]["internal"]["internal"] is True
    assert all("internal" in spec["networks"] for spec in config["services"].values())
    postgres = config["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres == f"secret-{COMPOSE_SECRETS.index('GENOFLOW_POSTGRES_PASSWORD')}"
    assert f":{postgres}@postgres:" in config["services"]["mlflow"]["command"]
    for dockerfile in ("deploy/airflow/Dockerfile", "deploy/spark/Dockerfile"):
        assert (REPO / dockerfile).exists()


@pytest.mark.parametrize("dockerfile", ["deploy/airflow/Dockerfile", "deploy/spark/Dockerfile"])
def test_images_build_the_codec_jar_where_the_jobs_look_for_it(dockerfile):
    """The driver (Airflow's image) and the executors (Spark's) need the codec jar at GENOFLOW_HOME's
    BGZF_CODEC_JAR: without it Spark reads a bgzip VCF as one split and train's fits go to MLlib."""
    from genoflow.spark_submit import BGZF_CODEC_JAR

    text = (REPO / dockerfile).read_text()
    assert "mvn -q -f /build/pom.xml package" in text
    destinations = [f"/opt/genoflow/{BGZF_CODEC_JAR}"]
    if "WORKDIR /opt/genoflow" in text:
        destinations.append(f"./{BGZF_CODEC_JAR}")
    assert any(f"COPY --from=codec /build/target/genoflow-bgzf-codec.jar {to}" in text for to in destinations)


@pytest.mark.slow  # runs docker-compose
def test_docker_compose__the_api_and_airflow_ui_publish_where_the_env_says(tmp_path):
    settings = {**{key: "x" for key in COMPOSE_SECRETS}, "GENOFLOW_API_BIND": "0.0.0.0",
                "GENOFLOW_AIRFLOW_BIND": "10.0.0.5"}
    result = _compose_config(tmp_path, settings)
    assert result.returncode == 0, result.stderr
    published = _published(result.stdout)
    assert published["api"] == ["0.0.0.0"] and published["airflow-apiserver"] == ["10.0.0.5"]
    assert {h for name, hosts in published.items() if name not in COMPOSE_PUBLIC for h in hosts} == {"127.0.0.1"}


@pytest.mark.slow  # runs docker-compose
@pytest.mark.parametrize("secret", COMPOSE_SECRETS)
def test_docker_compose__refuses_to_start_without_each_secret(tmp_path, secret):
    result = _compose_config(tmp_path, {key: "x" for key in COMPOSE_SECRETS if key != secret})
    assert result.returncode != 0
    assert f"set {secret} (" in result.stderr


def test_docker_compose__every_required_variable_is_a_listed_secret_in_env_example():
    import re

    required = set(re.findall(r"\$\{(\w+):\?", (REPO / "docker-compose.yml").read_text()))
    assert required == set(COMPOSE_SECRETS)
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert set(COMPOSE_SECRETS) <= set(example) and not any(example[key] for key in COMPOSE_SECRETS)  # no values

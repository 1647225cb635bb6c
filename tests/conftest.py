"""Shared fixtures. Integration tests start real services; see tests/integration/conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Plugins are importable the way Airflow makes them importable: the plugins folder on sys.path.
sys.path.insert(0, str(REPO / "plugins"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# Tests pseudonymise simulated cohorts: the demo key is allowed (decision 0018); jobs and Airflow inherit it.
os.environ.setdefault("GENOFLOW_ALLOW_DEMO_KEY", "1")


def require_tool(*names: str) -> None:
    """Fail (never skip) when a peer program the test compares against is missing: the suite installs
    what it needs (`make system-deps`), so a missing one is a broken setup, not a reason to test less."""
    missing = [name for name in names if not shutil.which(name)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not on PATH: `make system-deps` installs the Debian packages the "
                    "tests compare against", pytrace=False)


# Fixtures that start a JVM or a cluster, simulate a cohort into a DVC project or run plink2 over one
# (concordance_cohort): a test using one is `slow` (left out of `make test-unit`).
SLOW_FIXTURES = {"spark", "spark_cluster", "hdfs", "mlflow_server", "project", "first_run", "ingest_project",
                 "concordance_cohort"}


def pytest_collection_modifyitems(config, items):
    """Mark tests that use a JVM/service fixture `slow`, so `make test-unit` can leave them out by fixture
    rather than by a list someone has to keep up to date (tests calling peer programs are marked by hand)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def build_bgzf_codec() -> None:
    """Build the BGZF codec jar (`make codec`) when missing, so in-process sessions split bgzip as the jobs do."""
    from genoflow.spark_submit import BGZF_CODEC_JAR

    if not (REPO / BGZF_CODEC_JAR).exists() and shutil.which("mvn"):
        subprocess.run(["mvn", "-q", "-f", str(REPO / "hadoop" / "bgzf-codec" / "pom.xml"), "package"], check=True)


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A throwaway project (tests/project.py) with a 500-patient x 1 Mb cohort and Airflow's database
    migrated; one per test session, shared by the integration and browser tests (each full DAG run
    costs minutes, so later tests reuse what earlier runs committed)."""
    from tests.project import make_project

    return make_project(tmp_path_factory.mktemp("genoflow-project"), n_patients=500)


@pytest.fixture(scope="session")
def first_run(project) -> str:
    """The project after one successful genomic_risk_training run through `airflow dags test` (its log)."""
    from tests.project import trigger

    return trigger(project, logical_date="2026-01-01T00:00:00+00:00")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """An in-process local[2] SparkSession for tests of Spark code (the jobs themselves run via spark-submit)."""
    from pyspark.sql import SparkSession

    from genoflow.config import Settings
    from genoflow.spark_submit import LOCAL_DAEMON_CONF, bgzf_codec_conf

    build_bgzf_codec()
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    builder = (SparkSession.builder.master("local[2]").appName("genoflow-tests")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.warehouse.dir", str(warehouse)))
    # Split bgzip VCFs and start Python workers as the jobs do.
    for key, value in {**bgzf_codec_conf(Settings()), **LOCAL_DAEMON_CONF}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def hdfs(tmp_path_factory):
    """A real HDFS (NameNode + DataNode from Hadoop's jars, tests/services/hdfs.py) on free loopback ports,
    out of safe mode with a live DataNode; stopped at session end. Tests share it: write under a folder
    of your own and leave safe mode as you found it (use ``hdfs.safe_mode()``)."""
    from tests.services.hdfs import running_hdfs

    with running_hdfs(tmp_path_factory.mktemp("hdfs")) as service:
        yield service


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A real Spark standalone master + worker (2 cores, 2g; tests/services/spark.py) on free loopback
    ports; ``.master_url`` is what the spark_default connection takes. Stopped at session end."""
    from tests.services.spark import running_spark_cluster

    with running_spark_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server (SQLite, proxied artifacts; tests/services/mlflow.py) on a free
    loopback port; ``.tracking_uri`` is its URL. Stopped at session end."""
    from tests.services.mlflow import running_mlflow_server

    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server

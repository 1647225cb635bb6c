"""A throwaway genoflow project for tests: its own data, DVC repo, Airflow and MLflow.

The project links the real dags/, jobs/ and plugins/ of this checkout and runs them through real
Airflow (`airflow dags test`), real spark-submit and a real MLflow SQLite registry; only the data
(a small simulated cohort) and the state folders are private to the test session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

VENV_BIN = Path(sys.executable).parent
# State and outputs that are not source: DVC versions data/raw itself (its pointer is in git).
GIT_IGNORED = ("airflow_home", ".genoflow", "data/steps", "data/truth", "data/incoming")


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.env = {
            **os.environ,
            "GENOFLOW_HOME": str(root),
            "AIRFLOW_HOME": str(root / "airflow_home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.env.pop("GENOFLOW_STORAGE_ROOT", None)

    @property
    def tracking_uri(self) -> str:
        """MLflow as the project's runs see it: the embedded SQLite store unless env points at a server."""
        return self.env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / '.genoflow' / 'mlflow.db'}"

    @property
    def storage_root(self) -> str:
        return self.env.get("GENOFLOW_STORAGE_ROOT") or (self.root / "data").as_uri()

    def run(self, *cmd: str, check: bool = True, timeout: int = 1500) -> subprocess.CompletedProcess:
        result = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd[:4])} exited {result.returncode}\n"
                                 f"--- stdout (tail)\n{result.stdout[-6000:]}\n"
                                 f"--- stderr (tail)\n{result.stderr[-6000:]}")
        return result


# The plumbing projects check what a promotion sets in motion (aliases, serving, lineage, drift,
# retraining), so each needs a champion. On 1 Mb of simulated genome the PCs are local haplotype
# clusters that carry the causal variants, so the covariates-only baseline (PCs included) is as good
# as the model on 125 test patients and the gate rightly refuses it. The gate's own decisions are
# tested on cohorts made for it (test_honest_models.py, test_real_cohort.py, tests/unit/registry).
PLUMBING_GATE = {"promote": {"max_p_vs_baseline": 1.0}}


def make_project(root: Path, n_patients: int, seed: int = 3) -> Project:
    """A project on a small simulated demo cohort (1 Mb, 60 reads per patient), its gate needing no
    win over the covariates-only baseline (:data:`PLUMBING_GATE`)."""
    from genoflow.simulate import make_demo_cohort

    project = _init_project(root)
    make_demo_cohort(root / "data", n_patients=n_patients, sequence_length=1_000_000, seed=seed,
                     reads_per_patient=60)
    update_params(project, PLUMBING_GATE)
    _migrate_airflow(project)
    return project


def make_weak_effect_project(root: Path, n_patients: int, params: dict | None = None, **cohort) -> Project:
    """A project on a simulated weak-effect two-stratum cohort (genoflow.simulate.weak; ``cohort``: its options),
    its study described by ``params`` (merged into params.yaml)."""
    from genoflow.simulate import make_weak_effect_cohort

    project = _init_project(root)
    make_weak_effect_cohort(root / "data", n_patients=n_patients, **cohort)
    if params:
        update_params(project, params)
    _migrate_airflow(project)
    return project


def make_reads_project(root: Path, params: dict | None = None, **cohort) -> Project:
    """A project on a simulated cohort of reads (genoflow.simulate.reads; ``cohort``: its options) without its
    VCF, so ``preprocess.input: auto`` aligns and calls the reads (decision 0016)."""
    from genoflow.simulate.reads import make_reads_cohort

    project = _init_project(root)
    make_reads_cohort(root / "data", **cohort)
    (root / "data" / "raw" / "cohort.vcf.gz").unlink()
    update_params(project, _merge(PLUMBING_GATE, params or {}))
    _migrate_airflow(project)
    return project


def make_project_from_raw(root: Path, raw: Path, params: dict | None = None) -> Project:
    """A project on a cohort someone else made: ``raw`` (a study folder) is copied to data/raw.

    ``params`` is merged into the project's params.yaml (nested dicts key by key, anything else replaced),
    the way a user describes their own study (decision 0011) rather than passing it on every run.
    """
    project = _init_project(root)
    shutil.copytree(raw, root / "data" / "raw")
    if params:
        update_params(project, params)
    _migrate_airflow(project)
    return project


def update_params(project: Project, overrides: dict) -> dict:
    """Merge ``overrides`` into the project's params.yaml; returns the params now in effect."""
    import yaml

    path = project.root / "params.yaml"
    merged = _merge(yaml.safe_load(path.read_text()), overrides)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return merged


# Mappings that name a whole set: a study's targets are the ones it lists, not those plus the demo's.
_REPLACED = {("study", "targets")}


def _merge(base: dict, overrides: dict, path: tuple[str, ...] = ()) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        here = (*path, key)
        both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict) and here not in _REPLACED
        out[key] = _merge(out[key], value, here) if both_dicts else value
    return out


def _init_project(root: Path) -> Project:
    """The project's skeleton: links to this checkout's code, params.yaml, git and DVC; no data yet."""
    root.mkdir(parents=True, exist_ok=True)
    # hadoop/ carries the BGZF codec jar: without it the jobs would read the cohort VCF as one split.
    for name in ("dags", "jobs", "plugins", "config", "hadoop"):
        (root / name).symlink_to(REPO / name)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    # The driver class archive `make archive` wrote (genoflow.jvm_archive): jobs start ~4 s sooner.
    (root / ".genoflow").mkdir(exist_ok=True)
    (root / ".genoflow" / "jvm").symlink_to(REPO / ".genoflow" / "jvm")
    project = Project(root)
    # A git repository, as a real project is: cohort_ingest commits the .dvc pointer of each cohort.
    (root / ".gitignore").write_text("".join(f"/{path}/\n" for path in GIT_IGNORED))
    project.run("git", "init", "-q")
    project.run("git", "config", "user.name", "genoflow tests")
    project.run("git", "config", "user.email", "tests@genoflow.invalid")
    project.run(str(VENV_BIN / "dvc"), "init", "-q")
    project.run(str(VENV_BIN / "dvc"), "remote", "add", "-d", "local", str(root / ".genoflow" / "dvc-remote"))
    project.run("git", "add", ".")
    project.run("git", "commit", "-q", "-m", "test project")
    return project


def _migrate_airflow(project: Project) -> None:
    (project.root / "airflow_home").mkdir()
    project.run(str(VENV_BIN / "airflow"), "db", "migrate")


DAG_ID = "genomic_risk_training"


def trigger(project: Project, conf: dict | None = None, logical_date: str | None = None,
            dag_id: str = DAG_ID) -> str:
    """Run a DAG through `airflow dags test` and return its log; fails unless the run succeeded."""
    cmd = [str(VENV_BIN / "airflow"), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    result = project.run(*cmd, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and "state=success" in log, (
        f"DAG run failed (exit {result.returncode}):\n{log[-8000:]}")
    return log

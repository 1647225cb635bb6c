"""Fixtures shared by unit tests: a small git + DVC project with two cohorts to ingest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import load_params
from tests.conftest import REPO

DVC = str(Path(sys.executable).parent / "dvc")
PARAMS = load_params(REPO / "params.yaml")
COHORT = {"n_patients": 60, "sequence_length": 200_000, "seed": 3, "reads_per_patient": 10}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def ingest_project(tmp_path) -> Path:
    """A git + DVC project whose data/raw (version 1) is committed and pushed; a new cohort lands in data/incoming."""
    from genoflow.simulate import make_cohort_batches, make_demo_cohort

    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=root, check=True,
                   capture_output=True)
    make_demo_cohort(root / "data", **COHORT)
    (root / ".gitignore").write_text("/data/truth/\n/data/incoming/\n")
    git(root, "add", ".gitignore", ".dvc", ".dvcignore")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    version_one(root)
    make_demo_cohort(tmp_path / "new", **{**COHORT, "seed": 4})
    shutil.copytree(tmp_path / "new" / "raw", root / "data" / "incoming" / "new")
    make_cohort_batches(root / "data", n_reference=COHORT["n_patients"], n_new=20, seed=COHORT["seed"],
                        sequence_length=COHORT["sequence_length"], reads_per_patient=10, batch="b1")
    return root


def version_one(root: Path) -> None:
    subprocess.run([DVC, "add", "-q", "data/raw"], cwd=root, check=True)
    subprocess.run([DVC, "push", "-q"], cwd=root, check=True)
    git(root, "add", "data/raw.dvc", "data/.gitignore")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cohort v1")



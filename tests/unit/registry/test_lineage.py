"""The dataset end of a model's lineage: a DVC hash -> its raw files, the remote, the pointer's git commit.

Real DVC and git on a small project with two ingested cohort versions (tests/unit/conftest.py);
the MLflow end is tested on a real pipeline run in tests/integration/test_lineage.py.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest

from genoflow.ingest import ingest_cohort
from genoflow.registry.lineage import LineageError, dataset_lineage
from genoflow.versioning import dvc_version
from tests.unit.conftest import PARAMS, git


@pytest.fixture
def two_versions(ingest_project):
    """(project, version 1 and its commit, a copy of version 1's files); version 2 is then ingested."""
    v1, v1_commit = dvc_version(ingest_project), git(ingest_project, "rev-parse", "HEAD")
    v1_files = ingest_project.parent / "v1-files"
    shutil.copytree(ingest_project / "data" / "raw", v1_files)
    ingest_cohort(ingest_project, "data/incoming/new", PARAMS)
    return ingest_project, v1, v1_commit, v1_files


def test_dataset_lineage__an_older_version_from_git_history_and_the_cache(two_versions):
    project, v1, v1_commit, v1_files = two_versions
    lineage = dataset_lineage(project, v1)
    assert lineage["git_commit"] == v1_commit and not lineage["current"]
    expected = {str(p.relative_to(v1_files)): p for p in v1_files.rglob("*") if p.is_file()}
    assert {f["path"] for f in lineage["files"]} == set(expected)
    for f in lineage["files"]:
        content = expected[f["path"]].read_bytes()
        assert f["md5"] == hashlib.md5(content).hexdigest() and f["size"] == len(content)
        assert f["in_cache"] and f["on_remote"]
        assert f["remote_uri"].endswith(f"files/md5/{f['md5'][:2]}/{f['md5'][2:]}")
    assert lineage["n_files"] == len(expected) and lineage["size"] == sum(p.stat().st_size for p in expected.values())
    assert lineage["files"][0]["path"] == "cohort.vcf.gz"  # shallow paths first
    assert lineage["remote"] == {"name": "local", "url": str(project.parent / "remote")}


def test_dataset_lineage__listing_and_sizes_come_from_the_remote_without_a_cache(two_versions):
    project, v1, _, v1_files = two_versions
    shutil.rmtree(project / ".dvc" / "cache")
    lineage = dataset_lineage(project, v1)
    vcf = next(f for f in lineage["files"] if f["path"] == "cohort.vcf.gz")
    assert not vcf["in_cache"] and vcf["on_remote"] and vcf["size"] == (v1_files / "cohort.vcf.gz").stat().st_size


def test_dataset_lineage__current_version(two_versions):
    project = two_versions[0]
    lineage = dataset_lineage(project, dvc_version(project))
    assert lineage["current"] and lineage["git_commit"] == git(project, "rev-parse", "HEAD")


def test_dataset_lineage__unknown_version(two_versions):
    with pytest.raises(LineageError, match="not in the local DVC cache nor on the DVC remote 'local'"):
        dataset_lineage(two_versions[0], "0" * 32 + ".dir")
    with pytest.raises(LineageError, match="not a DVC directory hash"):
        dataset_lineage(two_versions[0], "0" * 32)

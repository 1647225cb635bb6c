"""Cohort ingest and dataset lineage with the DVC remote on a real HDFS (WebHDFS), as on a cluster.

The session `hdfs` fixture runs a real NameNode + DataNode; the project's DVC remote is
`webhdfs://127.0.0.1:<port>/<folder>`. The ingested version must land on HDFS (checked through
WebHDFS itself), and lineage must find the files there, also once the local DVC cache is gone.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from genoflow.ingest import ingest_cohort
from genoflow.registry.lineage import dataset_lineage
from tests.unit.conftest import COHORT, DVC, PARAMS, git

pytestmark = pytest.mark.integration


@pytest.fixture
def hdfs_project(tmp_path, hdfs):
    """A git + DVC project whose default remote is a fresh folder on HDFS, and a cohort landed in data/incoming."""
    from genoflow.simulate import make_demo_cohort

    folder = f"/genoflow-dvc-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "tests@genoflow.invalid")
    git(root, "config", "user.name", "genoflow tests")
    for args in (["init", "-q"], ["remote", "add", "-d", "hdfs", f"{hdfs.webhdfs_dvc_url}{folder}"],
                 ["remote", "modify", "hdfs", "user", "root"]):
        subprocess.run([DVC, *args], cwd=root, check=True, capture_output=True)
    make_demo_cohort(tmp_path / "landing", **COHORT)
    shutil.copytree(tmp_path / "landing" / "raw", root / "data" / "incoming" / "first")
    return root, folder


def test_ingest__pushes_the_version_to_hdfs_and_lineage_reads_it_back(hdfs_project, hdfs):
    root, folder = hdfs_project
    result = ingest_cohort(root, "data/incoming/first", PARAMS)

    assert result["remote"] == "hdfs" and result["remote_url"] == f"{hdfs.webhdfs_dvc_url}{folder}"
    assert result["previous_version"] is None and result["git_commit"] == git(root, "rev-parse", "HEAD")
    digest = result["dataset_version"].removesuffix(".dir")
    listing = hdfs.webhdfs(f"{folder}/files/md5/{digest[:2]}/{digest[2:]}.dir")["FileStatus"]
    assert listing["type"] == "FILE" and listing["length"] > 0

    shutil.rmtree(root / ".dvc" / "cache")  # lineage must now read the listing and sizes from HDFS
    lineage = dataset_lineage(root, result["dataset_version"])
    raw = root / "data" / "raw"
    assert lineage["n_files"] == sum(1 for p in raw.rglob("*") if p.is_file())
    assert lineage["git_commit"] == result["git_commit"]
    for f in lineage["files"]:
        assert f["on_remote"] and not f["in_cache"], f["path"]
        assert f["size"] == (raw / f["path"]).stat().st_size, f["path"]
        assert f["remote_uri"] == f"{hdfs.webhdfs_dvc_url}{folder}/files/md5/{f['md5'][:2]}/{f['md5'][2:]}"
    vcf = lineage["files"][0]
    status = hdfs.webhdfs(f"{folder}/files/md5/{vcf['md5'][:2]}/{vcf['md5'][2:]}")["FileStatus"]
    assert status["length"] == vcf["size"]

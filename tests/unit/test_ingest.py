"""Cohort ingest: the fast validation, and the swap + dvc add/push + git commit transaction.

Real git and DVC (a local-folder remote) on a small simulated cohort; no Spark, no Airflow.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import load_params
from genoflow.errors import InputError
from genoflow.ingest import cohort_layout, ingest_cohort, locate_cohort, validate_cohort
from genoflow.versioning import dvc_version
from tests.conftest import REPO

DVC = str(Path(sys.executable).parent / "dvc")
PARAMS = load_params(REPO / "params.yaml")
COHORT = {"n_patients": 60, "sequence_length": 200_000, "seed": 3, "reads_per_patient": 10}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    """A git + DVC project whose data/raw (version 1) is committed and pushed; a new cohort lands in data/incoming."""
    from genoflow.simulate import make_cohort_batches, make_demo_cohort

    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q")
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=root, check=True,
                   capture_output=True)
    make_demo_cohort(root / "data", **COHORT)
    (root / ".gitignore").write_text("/data/truth/\n/data/incoming/\n")
    _git(root, "add", ".gitignore", ".dvc", ".dvcignore")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    version_one(root)
    make_demo_cohort(tmp_path / "new", **{**COHORT, "seed": 4})
    shutil.copytree(tmp_path / "new" / "raw", root / "data" / "incoming" / "new")
    make_cohort_batches(root / "data", n_reference=COHORT["n_patients"], n_new=20, seed=COHORT["seed"],
                        sequence_length=COHORT["sequence_length"], reads_per_patient=10, batch="b1")
    return root


def version_one(root: Path) -> None:
    subprocess.run([DVC, "add", "-q", "data/raw"], cwd=root, check=True)
    subprocess.run([DVC, "push", "-q"], cwd=root, check=True)
    _git(root, "add", "data/raw.dvc", "data/.gitignore")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cohort v1")


def _remote_objects(root: Path) -> set[str]:
    return {str(p.relative_to(root.parent / "remote")) for p in (root.parent / "remote").rglob("*") if p.is_file()}


def test_ingest_cohort__versions_pushes_and_commits_the_new_cohort(project):
    before = dvc_version(project)
    landed = (project / "data" / "incoming" / "new" / "cohort.vcf.gz").read_bytes()

    result = ingest_cohort(project, "data/incoming/new", PARAMS)

    assert result["previous_version"] == before and result["changed"]
    assert result["dataset_version"] == dvc_version(project) != before
    assert (project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == landed
    assert result["n_samples"] == COHORT["n_patients"] and result["reference_from"] == "landing"
    # The pointer is committed (and only it: the work tree's pointer equals HEAD's).
    assert result["git_commit"] == _git(project, "rev-parse", "HEAD")
    assert _git(project, "show", "HEAD:data/raw.dvc") == (project / "data" / "raw.dvc").read_text().strip()
    assert _git(project, "status", "--porcelain", "--", "data/raw.dvc") == ""
    # Pushed: the remote holds the directory listing of the new version.
    digest = result["dataset_version"].removesuffix(".dir")
    assert f"files/md5/{digest[:2]}/{digest[2:]}.dir" in _remote_objects(project)
    assert result["remote"] == "local" and result["remote_url"] == str(project.parent / "remote")
    assert not list((project / "data").glob(".raw.*")), "staging or previous copies left behind"


def test_ingest_cohort__same_cohort_twice_commits_nothing_new(project):
    first = ingest_cohort(project, "data/incoming/new", PARAMS)
    head = _git(project, "rev-parse", "HEAD")
    again = ingest_cohort(project, "data/incoming/new", PARAMS)
    assert again["dataset_version"] == first["dataset_version"] and not again["changed"]
    assert again["git_commit"] == first["git_commit"] == _git(project, "rev-parse", "HEAD") == head


def test_ingest_cohort__batch_without_reference_reuses_the_current_one(project):
    result = ingest_cohort(project, "data/incoming/b1", PARAMS)
    assert result["reference_from"] == "previous cohort" and result["n_samples"] == 20
    fasta = "reference_genome/genome_sequence.fasta"
    assert (project / "data" / "raw" / fasta).is_file()
    assert not (project / "data" / "incoming" / "b1" / "reference_genome").exists(), "the landing was modified"


def _break_ref(vcf: Path) -> int:
    """Rewrite the VCF with the REF of its 5th record changed; returns that record's line number."""
    lines = gzip.decompress(vcf.read_bytes()).decode().splitlines(keepends=True)
    records = [i for i, line in enumerate(lines) if not line.startswith("#")]
    fields = lines[records[4]].split("\t")
    fields[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}[fields[3][0]] + fields[3][1:]
    lines[records[4]] = "\t".join(fields)
    vcf.write_bytes(gzip.compress("".join(lines).encode()))
    return records[4] + 1


def test_ingest_cohort__invalid_cohort_fails_with_file_and_line_and_changes_nothing(project):
    vcf = project / "data" / "incoming" / "new" / "cohort.vcf.gz"
    line = _break_ref(vcf)
    head, version, remote = _git(project, "rev-parse", "HEAD"), dvc_version(project), _remote_objects(project)
    raw_vcf = (project / "data" / "raw" / "cohort.vcf.gz").read_bytes()

    with pytest.raises(InputError) as error:
        ingest_cohort(project, "data/incoming/new", PARAMS)

    assert error.value.source == str(vcf) and error.value.line == line
    assert "REF" in str(error.value) and f"{vcf}, line {line}" in str(error.value)
    assert _git(project, "rev-parse", "HEAD") == head and dvc_version(project) == version
    assert _remote_objects(project) == remote
    assert (project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == raw_vcf
    assert _git(project, "status", "--porcelain", "--", "data/raw.dvc") == ""


def test_ingest_cohort__failure_after_the_swap_restores_the_previous_cohort(project):
    blocker = project.parent / "a-file"
    blocker.write_text("the push cannot create a folder under a file\n")
    subprocess.run([DVC, "remote", "modify", "local", "url", str(blocker / "remote")], cwd=project, check=True)
    head, version = _git(project, "rev-parse", "HEAD"), dvc_version(project)
    raw_vcf = (project / "data" / "raw" / "cohort.vcf.gz").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever DVC raises, the previous cohort must come back
        ingest_cohort(project, "data/incoming/new", PARAMS)
    assert dvc_version(project) == version and _git(project, "rev-parse", "HEAD") == head
    assert not list((project / "data").glob(".raw.*")), "staging or previous copies left behind"
    assert (project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == raw_vcf


def test_validate_cohort__sample_without_clinical_data(project):
    landing = project / "data" / "incoming" / "new"
    patient = sorted((landing / "patient_data").iterdir())[7]
    shutil.rmtree(patient)
    with pytest.raises(InputError, match="have no clinical_data.csv") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert error.value.source == str(landing / "cohort.vcf.gz") and error.value.record == patient.name


def test_validate_cohort__bad_clinical_value_names_file_and_line(project):
    landing = project / "data" / "incoming" / "new"
    csv = sorted((landing / "patient_data").iterdir())[3] / "clinical_data.csv"
    header, row = csv.read_text().splitlines()[:2]
    csv.write_text(f"{header}\n{row.replace(row.split(',')[1], '250', 1)}\n")
    with pytest.raises(InputError, match="column age") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert error.value.source == str(csv) and error.value.line == 2


def test_validate_cohort__missing_required_file(project):
    landing = project / "data" / "incoming" / "new"
    (landing / "reference_genome" / "genome_annotations.gff").unlink()
    with pytest.raises(InputError, match="required file is missing"):
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))


def test_validate_cohort__contig_not_in_reference(project):
    landing = project / "data" / "incoming" / "new"
    fasta = landing / "reference_genome" / "genome_sequence.fasta"
    fasta.write_text(fasta.read_text().replace(">chr22", ">chr21", 1))
    with pytest.raises(InputError, match="'chr22' is not in the reference") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert error.value.line is not None  # the ##contig header line


def test_cohort_layout__paths_outside_the_raw_folder_are_refused():
    params = {"preprocess": {**PARAMS["preprocess"], "vcf": "elsewhere/cohort.vcf.gz"}}
    with pytest.raises(Exception, match="not under raw/"):
        cohort_layout(params)

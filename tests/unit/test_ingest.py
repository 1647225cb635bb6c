"""Cohort ingest: the fast validation, and the swap + dvc add/push + git commit transaction.

Real git and DVC (a local-folder remote) on a small simulated cohort; no Spark, no Airflow.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from genoflow.errors import InputError
from genoflow.ingest import cohort_layout, ingest_cohort, locate_cohort, validate_cohort
from genoflow.study import StudySettings
from genoflow.versioning import dvc_version
from tests.unit.conftest import COHORT, DVC, PARAMS, git


def _remote_objects(root: Path) -> set[str]:
    return {str(p.relative_to(root.parent / "remote")) for p in (root.parent / "remote").rglob("*") if p.is_file()}


def test_ingest_cohort__versions_pushes_and_commits_the_new_cohort(ingest_project):
    before = dvc_version(ingest_project)
    landed = (ingest_project / "data" / "incoming" / "new" / "cohort.vcf.gz").read_bytes()

    result = ingest_cohort(ingest_project, "data/incoming/new", PARAMS)

    assert result["previous_version"] == before and result["changed"]
    assert result["dataset_version"] == dvc_version(ingest_project) != before
    assert (ingest_project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == landed
    assert result["n_samples"] == COHORT["n_patients"] and result["reference_from"] == "landing"
    # The pointer is committed (and only it: the work tree's pointer equals HEAD's).
    assert result["git_commit"] == git(ingest_project, "rev-parse", "HEAD")
    assert git(ingest_project, "show", "HEAD:data/raw.dvc") == (ingest_project / "data" / "raw.dvc").read_text().strip()
    assert git(ingest_project, "status", "--porcelain", "--", "data/raw.dvc") == ""
    # Pushed: the remote holds the directory listing of the new version.
    digest = result["dataset_version"].removesuffix(".dir")
    assert f"files/md5/{digest[:2]}/{digest[2:]}.dir" in _remote_objects(ingest_project)
    assert result["remote"] == "local" and result["remote_url"] == str(ingest_project.parent / "remote")
    assert not list((ingest_project / "data").glob(".raw.*")), "staging or previous copies left behind"


def test_ingest_cohort__same_cohort_twice_commits_nothing_new(ingest_project):
    first = ingest_cohort(ingest_project, "data/incoming/new", PARAMS)
    head = git(ingest_project, "rev-parse", "HEAD")
    again = ingest_cohort(ingest_project, "data/incoming/new", PARAMS)
    assert again["dataset_version"] == first["dataset_version"] and not again["changed"]
    assert again["git_commit"] == first["git_commit"] == git(ingest_project, "rev-parse", "HEAD") == head


def test_ingest_cohort__batch_without_reference_reuses_the_current_one(ingest_project):
    small = {**PARAMS, "study": {**PARAMS["study"], "min_minority": 5}}  # 20 patients, 8 cases
    result = ingest_cohort(ingest_project, "data/incoming/b1", small)
    assert result["reference_from"] == "previous cohort" and result["n_samples"] == 20
    fasta = "reference_genome/genome_sequence.fasta"
    assert (ingest_project / "data" / "raw" / fasta).is_file()
    assert not (ingest_project / "data" / "incoming" / "b1" / "reference_genome").exists(), "the landing was modified"


def _break_ref(vcf: Path) -> int:
    """Rewrite the VCF with the REF of its 5th record changed; returns that record's line number."""
    lines = gzip.decompress(vcf.read_bytes()).decode().splitlines(keepends=True)
    records = [i for i, line in enumerate(lines) if not line.startswith("#")]
    fields = lines[records[4]].split("\t")
    fields[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}[fields[3][0]] + fields[3][1:]
    lines[records[4]] = "\t".join(fields)
    vcf.write_bytes(gzip.compress("".join(lines).encode()))
    return records[4] + 1


def test_ingest_cohort__invalid_cohort_fails_with_file_and_line_and_changes_nothing(ingest_project):
    vcf = ingest_project / "data" / "incoming" / "new" / "cohort.vcf.gz"
    line = _break_ref(vcf)
    head, version = git(ingest_project, "rev-parse", "HEAD"), dvc_version(ingest_project)
    remote = _remote_objects(ingest_project)
    raw_vcf = (ingest_project / "data" / "raw" / "cohort.vcf.gz").read_bytes()

    with pytest.raises(InputError) as error:
        ingest_cohort(ingest_project, "data/incoming/new", PARAMS)

    assert error.value.source == str(vcf) and error.value.line == line
    assert "REF" in str(error.value) and f"{vcf}, line {line}" in str(error.value)
    assert git(ingest_project, "rev-parse", "HEAD") == head and dvc_version(ingest_project) == version
    assert _remote_objects(ingest_project) == remote
    assert (ingest_project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == raw_vcf
    assert git(ingest_project, "status", "--porcelain", "--", "data/raw.dvc") == ""


def test_ingest_cohort__failure_after_the_swap_restores_the_previous_cohort(ingest_project):
    blocker = ingest_project.parent / "a-file"
    blocker.write_text("the push cannot create a folder under a file\n")
    subprocess.run([DVC, "remote", "modify", "local", "url", str(blocker / "remote")], cwd=ingest_project, check=True)
    head, version = git(ingest_project, "rev-parse", "HEAD"), dvc_version(ingest_project)
    raw_vcf = (ingest_project / "data" / "raw" / "cohort.vcf.gz").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever DVC raises, the previous cohort must come back
        ingest_cohort(ingest_project, "data/incoming/new", PARAMS)
    assert dvc_version(ingest_project) == version and git(ingest_project, "rev-parse", "HEAD") == head
    assert not list((ingest_project / "data").glob(".raw.*")), "staging or previous copies left behind"
    assert (ingest_project / "data" / "raw" / "cohort.vcf.gz").read_bytes() == raw_vcf


def test_validate_cohort__sample_without_clinical_data(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    patient = sorted((landing / "patient_data").iterdir())[7]
    shutil.rmtree(patient)
    with pytest.raises(InputError, match="have no clinical_data.csv") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert error.value.source == str(landing / "cohort.vcf.gz") and error.value.record == patient.name


def test_validate_cohort__bad_clinical_value_names_file_and_line(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    csv = sorted((landing / "patient_data").iterdir())[3] / "clinical_data.csv"
    header, row = csv.read_text().splitlines()[:2]
    age = header.split(",").index("age")
    csv.write_text(f"{header}\n{','.join('old' if i == age else v for i, v in enumerate(row.split(',')))}\n")
    with pytest.raises(InputError, match="column age: expected a number, found 'old'") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)), study=StudySettings.from_params(PARAMS))
    assert error.value.source == str(csv) and error.value.line == 2


def test_validate_cohort__missing_required_file(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    (landing / "cohort.vcf.gz").unlink()
    with pytest.raises(InputError, match=r"required file is missing from the cohort \(preprocess.vcf\)"):
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)), genotype_input="vcf")


def test_validate_cohort__reads_without_a_vcf_are_a_cohort_of_reads(ingest_project):
    """Decision 0016: preprocess.input auto takes FASTQs without a VCF as a cohort to align and call."""
    landing = ingest_project / "data" / "incoming" / "new"
    (landing / "cohort.vcf.gz").unlink()
    summary = validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert summary["n_variants"] == 0 and summary["n_patients_with_reads"] == summary["n_samples"] > 0
    assert summary["contigs"] == ["chr22"] and summary["n_genes"] > 0


def test_validate_cohort__reads_need_a_reference(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    (landing / "cohort.vcf.gz").unlink()
    shutil.rmtree(landing / "reference_genome")
    with pytest.raises(InputError, match="needs its reference to align to"):
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))


def test_validate_cohort__a_truncated_fastq_is_named_at_ingest(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    (landing / "cohort.vcf.gz").unlink()
    fastq = sorted((landing / "patient_data").glob("*/genome_sequence.fastq.gz"))[1]
    text = gzip.decompress(fastq.read_bytes())
    fastq.write_bytes(gzip.compress(text[: len(text) // 3]))
    with pytest.raises(InputError, match=rf"{fastq.parent.name}/genome_sequence.fastq.gz, line \d+"):
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))


def test_validate_cohort__fasta_and_gff_are_optional(ingest_project):
    """Decision 0011: without a FASTA there is no REF check, without a GFF no genes."""
    landing = ingest_project / "data" / "incoming" / "new"
    shutil.rmtree(landing / "reference_genome")
    summary = validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert summary["n_genes"] == 0 and summary["contigs"] == ["chr22"] and summary["n_variants"] > 0


def test_validate_cohort__a_cohort_phenotype_table_instead_of_patient_csvs(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    rows = [(d.name, d.joinpath("clinical_data.csv").read_text().splitlines()[1].split(","))
            for d in sorted((landing / "patient_data").iterdir())]
    header = (landing / "patient_data" / rows[0][0] / "clinical_data.csv").read_text().splitlines()[0]
    (landing / "phenotypes.tsv").write_text("\n".join([header.replace(",", "\t")]
                                                      + ["\t".join(values) for _, values in rows]) + "\n")
    shutil.rmtree(landing / "patient_data")
    params = {**PARAMS, "preprocess": {**PARAMS["preprocess"], "patient_dir": None},
              "study": {**PARAMS["study"], "phenotypes": "raw/phenotypes.tsv"}}
    files = locate_cohort(landing, cohort_layout(params))
    summary = validate_cohort(files, study=StudySettings.from_params(params))
    assert files.phenotypes == landing / "phenotypes.tsv" and summary["n_samples"] == len(rows)
    (landing / "phenotypes.tsv").write_text("\n".join([header.replace(",", "\t")]
                                                      + ["\t".join(values) for _, values in rows[1:]]) + "\n")
    with pytest.raises(InputError, match=r"1 sample\(s\) have no row in .*phenotypes.tsv"):
        validate_cohort(files, study=StudySettings.from_params(params))


def test_validate_cohort__contig_not_in_reference(ingest_project):
    landing = ingest_project / "data" / "incoming" / "new"
    fasta = landing / "reference_genome" / "genome_sequence.fasta"
    fasta.write_text(fasta.read_text().replace(">chr22", ">chr21", 1))
    with pytest.raises(InputError, match="'chr22' is not in the reference") as error:
        validate_cohort(locate_cohort(landing, cohort_layout(PARAMS)))
    assert error.value.line is not None  # the ##contig header line


def test_cohort_layout__paths_outside_the_raw_folder_are_refused():
    params = {"preprocess": {**PARAMS["preprocess"], "vcf": "elsewhere/cohort.vcf.gz"}}
    with pytest.raises(Exception, match="not under raw/"):
        cohort_layout(params)


def _samples_and_records(vcf: Path) -> tuple[list[str], list[list[str]]]:
    lines = gzip.decompress(vcf.read_bytes()).decode().splitlines()
    header = next(line for line in lines if line.startswith("#CHROM")).split("\t")
    return header[9:], [line.split("\t") for line in lines if not line.startswith("#")]


def test_ingest_cohort__append_adds_the_batch_patients_to_the_cohort(ingest_project):
    raw, batch = ingest_project / "data" / "raw", ingest_project / "data" / "incoming" / "b1"
    base_samples, base_records = _samples_and_records(raw / "cohort.vcf.gz")
    batch_samples, batch_records = _samples_and_records(batch / "cohort.vcf.gz")
    before = dvc_version(ingest_project)

    result = ingest_cohort(ingest_project, "data/incoming/b1", PARAMS, mode="append")

    assert result["mode"] == "append" and result["previous_version"] == before != result["dataset_version"]
    assert result["n_samples_added"] == 20 and result["n_samples"] == COHORT["n_patients"] + 20
    samples, records = _samples_and_records(raw / "cohort.vcf.gz")
    assert samples == base_samples + batch_samples
    assert len(records) == len(base_records) == len(batch_records)
    for merged, base, new in zip(records, base_records, batch_records, strict=True):
        assert merged[:7] == base[:7] and merged[8] == base[8] and merged[7] == "."
        assert merged[9:] == base[9:] + new[9:]
    patients = {p.name for p in (raw / "patient_data").iterdir()}
    assert patients == set(base_samples) | set(batch_samples)
    assert result["git_commit"] == git(ingest_project, "rev-parse", "HEAD")


def test_ingest_cohort__append_of_another_cohort_fails_naming_its_vcf_and_line(ingest_project):
    """The 'new' cohort is another simulation (other sites and genome): appending it fails on the first
    record that disagrees with the current cohort's reference or sites, naming its VCF and line."""
    head, version = git(ingest_project, "rev-parse", "HEAD"), dvc_version(ingest_project)
    new_vcf = ingest_project / "data" / "incoming" / "new" / "cohort.vcf.gz"
    (ingest_project / "data" / "incoming" / "new" / "reference_genome").rename(ingest_project / "new-reference")
    with pytest.raises(InputError) as error:
        ingest_cohort(ingest_project, "data/incoming/new", PARAMS, mode="append")
    assert error.value.source == str(new_vcf) and error.value.line is not None
    assert git(ingest_project, "rev-parse", "HEAD") == head and dvc_version(ingest_project) == version
    assert not list((ingest_project / "data").glob(".raw.*"))


def test_ingest_cohort__append_refuses_a_patient_already_in_the_cohort(ingest_project):
    ingest_cohort(ingest_project, "data/incoming/b1", PARAMS, mode="append")
    version = dvc_version(ingest_project)
    with pytest.raises(InputError, match="already in the current cohort"):
        ingest_cohort(ingest_project, "data/incoming/b1", PARAMS, mode="append")
    assert dvc_version(ingest_project) == version


def test_batch_landing__a_monitored_batch_folder_on_local_storage(tmp_path):
    from genoflow.errors import GenoflowError
    from genoflow.ingest import batch_landing

    root = (tmp_path / "data").as_uri()
    landing = batch_landing(root, "incoming/b7/cohort.vcf.gz", "incoming/b7/patient_data", PARAMS)
    assert landing == str(tmp_path / "data" / "incoming" / "b7")
    with pytest.raises(GenoflowError, match="not laid out as a cohort folder"):
        batch_landing(root, "incoming/b7/cohort.vcf.gz", "incoming/other/patient_data", PARAMS)
    with pytest.raises(GenoflowError, match="takes a local folder"):
        batch_landing("hdfs://127.0.0.1:8020/genoflow", "incoming/b7/cohort.vcf.gz", "incoming/b7/patient_data",
                      PARAMS)


def test_ingest_cohort__refuses_before_touching_anything(ingest_project, tmp_path):
    from genoflow.errors import GenoflowError

    with pytest.raises(GenoflowError, match="mode must be one of replace, append"):
        ingest_cohort(ingest_project, "data/incoming/new", PARAMS, mode="merge")
    with pytest.raises(InputError, match="no cohort has landed here"):
        ingest_cohort(ingest_project, "data/incoming/nothing", PARAMS)
    with pytest.raises(GenoflowError, match="is the raw cohort itself"):
        ingest_cohort(ingest_project, "data/raw", PARAMS)
    not_git = tmp_path / "not-git"
    shutil.copytree(ingest_project / ".dvc", not_git / ".dvc")
    shutil.copytree(ingest_project / "data" / "incoming" / "new", not_git / "landing")
    with pytest.raises(GenoflowError, match="not in a git repository"):
        ingest_cohort(not_git, "landing", PARAMS)
    assert not (not_git / "data").exists()


def test_ingest_cohort__replace_runs_the_study_checks(ingest_project):
    with pytest.raises(InputError, match=r"target 'disease_status': only 8 sample\(s\) of its minority class 1"):
        ingest_cohort(ingest_project, "data/incoming/b1", PARAMS)

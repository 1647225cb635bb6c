"""Bad input fails the preprocess job with one clear message, and leaves nothing half-written.

Each case corrupts a copy of a small valid cohort and runs the real job entry point
(`genoflow.pipeline.runner.main`, what jobs/preprocess.py calls) on real Spark; one case goes
through spark-submit to show the task's exit status and stderr as Airflow sees them.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import load_params
from genoflow.pipeline.runner import main
from tests.conftest import REPO

pytestmark = pytest.mark.integration

PARAMS = load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def valid_cohort(tmp_path_factory) -> Path:
    from genoflow.simulate import make_demo_cohort

    root = tmp_path_factory.mktemp("cohort")
    make_demo_cohort(root, n_patients=40, sequence_length=100_000, seed=5, n_causal=5, reads_per_patient=10)
    return root


@pytest.fixture
def cohort(valid_cohort, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(valid_cohort / "raw", copy / "raw")
    return copy


def run_preprocess(root: Path, capsys) -> tuple[int, str]:
    rc = main("preprocess", ["--storage-root", root.as_uri(), "--dataset-version", "test",
                             "--params-json", json.dumps(PARAMS)])
    return rc, capsys.readouterr().err


def assert_nothing_written(root: Path):
    steps = root / "steps"
    leftovers = list(steps.rglob("*")) if steps.exists() else []
    assert [p for p in leftovers if p.is_file()] == [], leftovers
    assert not any(".tmp-" in p.name for p in leftovers)


def patients(root: Path) -> list[Path]:
    return sorted((root / "raw" / "patient_data").iterdir())


def rewrite_gz_lines(path: Path, edit) -> None:
    lines = gzip.decompress(path.read_bytes()).decode().split("\n")
    path.write_bytes(gzip.compress("\n".join(edit(lines)).encode()))


def vcf_data_index(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line and not line.startswith("#"))


def test_valid_cohort__commits(cohort, capsys):
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 0, err
    assert len(list((cohort / "steps" / "preprocess").glob("*/_SUCCESS"))) == 1


@pytest.mark.parametrize("case, edit, expected", [
    ("quality length", lambda ls: ls[:7] + [ls[7][:-1]] + ls[8:], r"line 5.*quality"),
    ("missing plus", lambda ls: ls[:6] + ["X" + ls[6]] + ls[7:], r"line 7.*\+"),
    ("bad characters", lambda ls: ls[:5] + [ls[5][:10] + "Z" + ls[5][11:]] + ls[6:], r"line 6.*Z"),
    ("truncated", lambda ls: ls[:10], r"line 9.*(truncat|incomplete|end of file)"),
])
def test_bad_fastq__names_file_and_line(cohort, capsys, case, edit, expected):
    import re

    fastq = patients(cohort)[3] / "genome_sequence.fastq.gz"
    rewrite_gz_lines(fastq, edit)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2, err
    message = err.strip().splitlines()[-1]
    assert str(fastq) in message and re.search(expected, message, re.IGNORECASE), message
    assert_nothing_written(cohort)


def test_vcf_wrong_column_count(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    state = {}

    def drop_last_field(lines):
        i = vcf_data_index(lines) + 2
        state["line"] = i + 1
        lines[i] = lines[i].rsplit("\t", 1)[0]
        return lines

    rewrite_gz_lines(vcf, drop_last_field)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    assert f"cohort.vcf.gz, line {state['line']}" in err and "column" in err, err
    assert_nothing_written(cohort)


def rewrite_vcf_bgzip(path: Path, edit) -> list[str]:
    """Rewrite the VCF through ``edit`` as bgzip (BGZF blocks, as htslib writes it); return its lines."""
    from Bio import bgzf

    lines = edit(gzip.decompress(path.read_bytes()).decode().split("\n"))
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write("\n".join(lines).encode())
    return lines


def test_vcf_truncated_bgzip_block(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    rewrite_vcf_bgzip(vcf, lambda lines: lines)
    data = vcf.read_bytes()
    vcf.write_bytes(data[: len(data) * 2 // 3])
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    message = err.strip().splitlines()[-1]
    assert "cohort.vcf.gz" in message and "truncated" in message, message
    assert_nothing_written(cohort)


def test_vcf_unsorted_records(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    state = {}

    def swap(lines):
        i = vcf_data_index(lines) + 3
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        state.update(line=i + 2, pos=lines[i + 1].split("\t")[1])
        return lines

    rewrite_vcf_bgzip(vcf, swap)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    assert f"line {state['line']}" in err and state["pos"] in err and "not sorted" in err, err
    assert_nothing_written(cohort)


def test_vcf_malformed_genotype(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    state = {}

    def break_gt(lines):
        i = vcf_data_index(lines) + 6
        fields = lines[i].split("\t")
        fields[12] = "0/x"
        state.update(line=i + 1, pos=fields[1])
        lines[i] = "\t".join(fields)
        return lines

    rewrite_vcf_bgzip(vcf, break_gt)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    assert f"line {state['line']}" in err and state["pos"] in err and "cannot parse GT '0/x'" in err, err
    assert_nothing_written(cohort)


def test_vcf_duplicate_sample_names(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    state = {}

    def duplicate(lines):
        i = next(k for k, line in enumerate(lines) if line.startswith("#CHROM"))
        fields = lines[i].split("\t")
        fields[10] = fields[9]
        state.update(line=i + 1, name=fields[9])
        lines[i] = "\t".join(fields)
        return lines

    rewrite_vcf_bgzip(vcf, duplicate)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    assert f"line {state['line']}" in err and "duplicate sample names" in err and state["name"] in err, err
    assert_nothing_written(cohort)


def test_vcf_symbolic_alt_is_skipped_and_counted(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"

    def symbolic(lines):
        i = vcf_data_index(lines) + 2
        fields = lines[i].split("\t")
        fields[4] = "<DEL>"
        lines[i] = "\t".join(fields)
        return lines

    rewrite_vcf_bgzip(vcf, symbolic)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 0, err
    summary = json.loads(next((cohort / "steps" / "preprocess").glob("*/qc_summary.json")).read_text())
    assert summary["n_skipped_alt_alleles"] == 1


def test_ref_disagrees_with_fasta(cohort, capsys):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    state = {}

    def change_ref(lines):
        i = vcf_data_index(lines) + 4
        fields = lines[i].split("\t")
        swap = {"A": "C", "C": "G", "G": "T", "T": "A"}
        fields[3] = swap[fields[3]]
        fields[4] = "A" if fields[3] != "A" else "C"
        state.update(line=i + 1, pos=fields[1])
        lines[i] = "\t".join(fields)
        return lines

    rewrite_gz_lines(vcf, change_ref)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2
    assert f"line {state['line']}" in err and state["pos"] in err and "genome_sequence.fasta" not in err.split(":")[0]
    assert "REF" in err, err
    assert_nothing_written(cohort)


def test_vcf_sample_without_clinical(cohort, capsys):
    gone = patients(cohort)[7]
    (gone / "clinical_data.csv").unlink()
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and "cohort.vcf.gz" in err and gone.name in err, err
    assert_nothing_written(cohort)


def test_clinical_patient_not_in_vcf(cohort, capsys):
    extra = cohort / "raw" / "patient_data" / "PT99999"
    shutil.copytree(patients(cohort)[0], extra)
    csv = extra / "clinical_data.csv"
    csv.write_text(csv.read_text().replace(patients(cohort)[0].name, "PT99999"))
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and "PT99999" in err and "not samples of" in err, err
    assert_nothing_written(cohort)


def test_clinical_missing_column(cohort, capsys):
    csv = patients(cohort)[2] / "clinical_data.csv"
    header, row = csv.read_text().splitlines()[:2]
    drop = header.split(",").index("age")
    csv.write_text(",".join(v for i, v in enumerate(header.split(",")) if i != drop) + "\n"
                   + ",".join(v for i, v in enumerate(row.split(",")) if i != drop) + "\n")
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and str(csv) in err and "age" in err, err
    assert_nothing_written(cohort)


def test_clinical_out_of_range(cohort, capsys):
    csv = patients(cohort)[5] / "clinical_data.csv"
    header, row = csv.read_text().splitlines()[:2]
    fields = row.split(",")
    fields[header.split(",").index("age")] = "207"
    csv.write_text(header + "\n" + ",".join(fields) + "\n")
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and str(csv) in err and "line 2" in err and "207" in err, err
    assert_nothing_written(cohort)


def test_missing_input_file(cohort, capsys):
    (cohort / "raw" / "reference_genome" / "genome_annotations.gff").unlink()
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and "genome_annotations.gff" in err and "does not exist" in err, err
    assert_nothing_written(cohort)


def test_empty_cohort(cohort, capsys):
    for patient in patients(cohort):
        shutil.rmtree(patient)
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 2 and "empty" in err, err
    assert_nothing_written(cohort)


def test_spark_submit__bad_input_fails_the_task_with_one_line(cohort):
    """What Airflow's SparkSubmitOperator sees: a non-zero exit and the message on stderr."""
    csv = patients(cohort)[1] / "clinical_data.csv"
    csv.write_text(csv.read_text().replace(",F,", ",X,").replace(",M,", ",X,"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
         str(REPO / "jobs" / "preprocess.py"),
         "--storage-root", cohort.as_uri(), "--dataset-version", "test",
         "--params-json", json.dumps(PARAMS)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    # spark-submit merges the Python driver's stderr into its stdout; Airflow logs both.
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("genoflow preprocess: error:")]
    assert len(errors) == 1 and str(csv) in errors[0] and "sex" in errors[0], output[-3000:]
    assert_nothing_written(cohort)

"""Bad input fails the preprocess job with one clear message, and leaves nothing half-written.

Each case corrupts a copy of a small valid cohort and runs the real job entry point
(`genoflow.pipeline.runner.main`, what jobs/preprocess.py calls) on real Spark; one case goes
through spark-submit to show the task's exit status and stderr as Airflow sees them.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import load_params, merge_params
from genoflow.errors import INPUT_ERROR_EXIT
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


def rewrite_vcf_bgzip(path: Path, edit) -> list[str]:
    """Rewrite the VCF through ``edit`` as bgzip (BGZF blocks, as htslib writes it); return its lines."""
    from Bio import bgzf

    lines = edit(gzip.decompress(path.read_bytes()).decode().split("\n"))
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write("\n".join(lines).encode())
    return lines


def edit_vcf_record(cohort: Path, offset: int, edit, bgzip: bool = True) -> tuple[int, str]:
    """Apply ``edit(fields)`` to the VCF's data record ``offset``; returns its 1-based line and POS."""
    state = {}

    def one_record(lines):
        i = vcf_data_index(lines) + offset
        fields = lines[i].split("\t")
        edit(fields)
        lines[i] = "\t".join(fields)
        state.update(line=i + 1, pos=fields[1])
        return lines

    (rewrite_vcf_bgzip if bgzip else rewrite_gz_lines)(cohort / "raw" / "cohort.vcf.gz", one_record)
    return state["line"], state["pos"]


# Each case corrupts the cohort and returns what the error line must say (regular expressions).


def fastq_case(edit, expected: str):
    def corrupt(cohort: Path) -> list[str]:
        fastq = patients(cohort)[3] / "genome_sequence.fastq.gz"
        rewrite_gz_lines(fastq, edit)
        return [re.escape(str(fastq)), expected]
    return corrupt


def vcf_wrong_column_count(cohort):
    line, _ = edit_vcf_record(cohort, 2, lambda fields: fields.pop(), bgzip=False)
    return [re.escape(f"cohort.vcf.gz, line {line}"), "column"]


def vcf_truncated_bgzip_block(cohort):
    vcf = cohort / "raw" / "cohort.vcf.gz"
    rewrite_vcf_bgzip(vcf, lambda lines: lines)
    data = vcf.read_bytes()
    vcf.write_bytes(data[: len(data) * 2 // 3])
    return ["cohort.vcf.gz", "truncated"]


def vcf_unsorted_records(cohort):
    state = {}

    def swap(lines):
        i = vcf_data_index(lines) + 3
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        state.update(line=i + 2, pos=lines[i + 1].split("\t")[1])
        return lines

    rewrite_vcf_bgzip(cohort / "raw" / "cohort.vcf.gz", swap)
    return [f"line {state['line']}\\b", state["pos"], "not sorted"]


def vcf_malformed_genotype(cohort):
    line, pos = edit_vcf_record(cohort, 6, lambda fields: fields.__setitem__(12, "0/x"))
    return [f"line {line}\\b", pos, re.escape("cannot parse GT '0/x'")]


def vcf_duplicate_sample_names(cohort):
    state = {}

    def duplicate(lines):
        i = next(k for k, line in enumerate(lines) if line.startswith("#CHROM"))
        fields = lines[i].split("\t")
        fields[10] = fields[9]
        state.update(line=i + 1, name=fields[9])
        lines[i] = "\t".join(fields)
        return lines

    rewrite_vcf_bgzip(cohort / "raw" / "cohort.vcf.gz", duplicate)
    return [f"line {state['line']}\\b", "duplicate sample names", state["name"]]


def ref_disagrees_with_fasta(cohort):
    def change_ref(fields):
        fields[3] = {"A": "C", "C": "G", "G": "T", "T": "A"}[fields[3]]
        fields[4] = "A" if fields[3] != "A" else "C"

    line, pos = edit_vcf_record(cohort, 4, change_ref, bgzip=False)
    return [f"line {line}\\b", pos, "REF"]


def vcf_sample_without_clinical(cohort):
    gone = patients(cohort)[7]
    (gone / "clinical_data.csv").unlink()
    return ["cohort.vcf.gz", gone.name]


def clinical_patient_not_in_vcf(cohort):
    extra = cohort / "raw" / "patient_data" / "PT99999"
    shutil.copytree(patients(cohort)[0], extra)
    csv = extra / "clinical_data.csv"
    csv.write_text(csv.read_text().replace(patients(cohort)[0].name, "PT99999"))
    return ["PT99999", "not samples of"]


def clinical_missing_column(cohort):
    """A covariate (features.covariates) that no patient's clinical CSV has (decision 0011: named, not a KeyError)."""
    for patient in patients(cohort):
        csv = patient / "clinical_data.csv"
        header, *rows = csv.read_text().splitlines()
        drop = header.split(",").index("age")
        csv.write_text("".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop) + "\n"
                               for line in [header, *rows]))
    return ["patient_data", "column 'age' \\(features.covariates\\) is not in"]


def clinical_value_does_not_parse(cohort):
    csv = patients(cohort)[5] / "clinical_data.csv"
    header, row = csv.read_text().splitlines()[:2]
    fields = row.split(",")
    fields[header.split(",").index("age")] = "forty"
    csv.write_text(header + "\n" + ",".join(fields) + "\n")
    return [re.escape(str(csv)), "line 2\\b", "column age", "forty"]


def missing_input_file(cohort):
    (cohort / "raw" / "cohort.vcf.gz").unlink()
    return ["cohort.vcf.gz", "does not exist"]


def empty_cohort(cohort):
    for patient in patients(cohort):
        shutil.rmtree(patient)
    return ["empty"]


BAD_INPUT = [
    pytest.param(fastq_case(lambda ls: ls[:7] + [ls[7][:-1]] + ls[8:], "line 5.*quality"), id="fastq_quality_length"),
    pytest.param(fastq_case(lambda ls: ls[:6] + ["X" + ls[6]] + ls[7:], r"line 7.*\+"), id="fastq_missing_plus"),
    pytest.param(fastq_case(lambda ls: ls[:5] + [ls[5][:10] + "Z" + ls[5][11:]] + ls[6:], "line 6.*Z"),
                 id="fastq_bad_characters"),
    pytest.param(fastq_case(lambda ls: ls[:10], "line 9.*(truncat|incomplete|end of file)"), id="fastq_truncated"),
    *(pytest.param(case, id=case.__name__) for case in (
        vcf_wrong_column_count, vcf_truncated_bgzip_block, vcf_unsorted_records, vcf_malformed_genotype,
        vcf_duplicate_sample_names, ref_disagrees_with_fasta, vcf_sample_without_clinical,
        clinical_patient_not_in_vcf, clinical_missing_column, clinical_value_does_not_parse, missing_input_file,
        empty_cohort)),
]


def test_valid_cohort__commits(cohort, capsys):
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 0, err
    assert len(list((cohort / "steps" / "preprocess").glob("*/_SUCCESS"))) == 1


@pytest.mark.parametrize("corrupt", BAD_INPUT)
def test_bad_input__one_line_naming_it_exit_3_nothing_written(cohort, capsys, corrupt):
    """Bad input is deterministic: exit INPUT_ERROR_EXIT (the task fails once), one line, no output."""
    expected = corrupt(cohort)
    rc, err = run_preprocess(cohort, capsys)
    errors = [line for line in err.splitlines() if line.startswith("genoflow preprocess: error: ")]
    assert rc == INPUT_ERROR_EXIT and len(errors) == 1, err[-3000:]
    missing = [pattern for pattern in expected if not re.search(pattern, errors[0], re.IGNORECASE)]
    assert not missing, (missing, errors[0])
    assert_nothing_written(cohort)


def test_bad_params__exit_3_before_any_spark_work(cohort, capsys):
    bad = merge_params(PARAMS, {"features": {"top_kk": 5}})
    rc = main("preprocess", ["--storage-root", cohort.as_uri(), "--dataset-version", "test",
                             "--params-json", json.dumps(bad)])
    err = capsys.readouterr().err
    assert rc == INPUT_ERROR_EXIT
    assert err.strip().splitlines()[-1] == ("genoflow preprocess: error: --params-json: features.top_kk: unknown key "
                                            "(did you mean top_k?)"), err[-2000:]
    assert not (cohort / "steps").exists()


def test_vcf_symbolic_alt_is_skipped_and_counted(cohort, capsys):
    edit_vcf_record(cohort, 2, lambda fields: fields.__setitem__(4, "<DEL>"))
    rc, err = run_preprocess(cohort, capsys)
    assert rc == 0, err
    summary = json.loads(next((cohort / "steps" / "preprocess").glob("*/qc_summary.json")).read_text())
    assert summary["n_skipped_alt_alleles"] == 1


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
    assert result.returncode == INPUT_ERROR_EXIT
    # spark-submit merges the Python driver's stderr into its stdout; Airflow logs both.
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("genoflow preprocess: error:")]
    assert len(errors) == 1 and str(csv) in errors[0] and "sex" in errors[0], output[-3000:]
    assert_nothing_written(cohort)


# Through real Airflow (`airflow dags test`): deterministic bad input fails its task once, no retries.


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from tests.project import make_project

    return make_project(tmp_path_factory.mktemp("bad-input-dag"), n_patients=40)


def run_dag(project, conf: dict | None = None) -> tuple[str, dict[str, tuple[str, int]]]:
    """`airflow dags test genomic_risk_training`, expected to fail; its log and {task: (state, try_number)}."""
    import sqlite3

    from tests.project import DAG_ID, VENV_BIN

    cmd = [str(VENV_BIN / "airflow"), "dags", "test", DAG_ID, *(["--conf", json.dumps(conf)] if conf else [])]
    result = project.run(*cmd, check=False, timeout=900)
    log = result.stdout + result.stderr
    with sqlite3.connect(project.root / "airflow_home" / "airflow.db") as db:
        run_id, state = db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                                   (DAG_ID,)).fetchone()
        tasks = {task: (ti_state, tries) for task, ti_state, tries in db.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id))}
    assert state == "failed", log[-6000:]
    return log, tasks


def test_dag__bad_run_conf_fails_resolve_once_naming_the_key(project):
    log, tasks = run_dag(project, conf={"features": {"top_kk": 5}})
    assert tasks["resolve_dataset_version"] == ("failed", 1), (tasks, log[-6000:])
    assert tasks["preprocess_cohort"][0] == "upstream_failed"
    assert "run conf: features.top_kk: unknown key (did you mean top_k?)" in log, log[-6000:]


def test_dag__study_column_in_no_table_fails_preprocess_once(project):
    """A study description that parses but names a column no table has: preprocess exits 3, no retry."""
    log, tasks = run_dag(project, conf={"study": {"targets": {"smoker": "binary"}}})
    assert tasks["resolve_dataset_version"] == ("success", 1)
    assert tasks["preprocess_cohort"] == ("failed", 1), (tasks, log[-6000:])
    errors = re.findall(r"genoflow preprocess: error: [^\n]*", log)
    assert any("column 'smoker' (study.targets) is not in" in e for e in errors), log[-6000:]


def test_dag__bad_vcf_fails_preprocess_once_with_the_jobs_line(project):
    line, pos = edit_vcf_record(project.root / "data", 6, lambda fields: fields.__setitem__(12, "0/x"))
    log, tasks = run_dag(project)
    assert tasks["resolve_dataset_version"] == ("success", 1)
    assert tasks["preprocess_cohort"] == ("failed", 1), (tasks, log[-6000:])
    errors = re.findall(r"genoflow preprocess: error: [^\n]*", log)
    assert any(f"line {line}" in e and pos in e and "cannot parse GT '0/x'" in e for e in errors), log[-6000:]

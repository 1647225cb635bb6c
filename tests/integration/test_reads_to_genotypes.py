"""Reads to genotypes (issue 15) on real Spark, real minimap2 (mappy) and the peers from Debian.

A simulated panel (msprime haplotypes, Illumina-like qualities and errors) goes through the align and call
jobs' entry point (:func:`genoflow.pipeline.runner.main`, what jobs/align.py and jobs/call.py run), then
preprocess. The calls are scored against the simulated truth as hap.py scores them (genotype match) and
against ``minimap2 -ax sr | samtools sort | bcftools mpileup | bcftools call -m`` on the same reads.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from genoflow.config import load_params
from genoflow.reads.accuracy import genotype_accuracy
from tests.conftest import REPO
from tests.reads_peer import bcftools_calls, run_steps, step_dir

pytestmark = pytest.mark.integration

# 12 patients cannot carry the demo study's minority-class floor; the study is not what is tested here.
PARAMS = load_params(REPO / "params.yaml", {"preprocess": {"input": "reads"}, "study": {"min_minority": 1}})


def run_step(step: str, root: Path, capsys) -> tuple[int, str]:
    return run_steps(root, PARAMS, step), capsys.readouterr().err


def panel_region(root: Path) -> str:
    region = json.loads((root / "truth" / "truth.json").read_text())["target_region"]
    return f"{region['contig']}:{region['start']}-{region['end']}"  # 1-based, inclusive


@pytest.fixture(scope="module")
def paired_panel(tmp_path_factory) -> Path:
    """12 patients, 30x paired 2 x 150 bp over a 30 kb panel of a 300 kb reference."""
    from genoflow.simulate.reads import make_reads_cohort

    root = tmp_path_factory.mktemp("paired") / "data"
    make_reads_cohort(root, n_patients=12, panel_length=30_000, coverage=30, sequence_length=300_000, seed=3,
                      n_causal=2)
    return root


@pytest.fixture(scope="module")
def called_panel(paired_panel, tmp_path_factory) -> Path:
    """The paired panel aligned and called once (a copy: the bad-input tests corrupt theirs)."""
    root = tmp_path_factory.mktemp("called") / "data"
    shutil.copytree(paired_panel, root)
    assert run_steps(root, PARAMS, "align", "call", "preprocess") == 0
    return root


@pytest.fixture
def panel_copy(paired_panel, tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(paired_panel / "raw", root / "raw")
    return root


def test_paired_30x__genotypes_match_the_truth_and_bcftools(called_panel, tmp_path):
    region = panel_region(called_panel)
    truth = called_panel / "truth" / "target_genotypes.vcf.gz"
    ours = genotype_accuracy(truth, step_dir(called_panel, "call") / "cohort.vcf.gz", region=region)["total"]
    peer = genotype_accuracy(truth, bcftools_calls(called_panel, tmp_path / "peer"), region=region)["total"]
    print(f"genoflow {ours}\nbcftools {peer}")
    assert ours["tp"] > 300  # the panel has variants to get right, in every patient
    assert ours["f1"] >= 0.99
    assert ours["f1"] >= peer["f1"]


def test_paired_30x__every_site_is_genotyped_in_every_patient(called_panel):
    calling = json.loads((step_dir(called_panel, "call") / "calling.json").read_text())
    mapping = json.loads((step_dir(called_panel, "align") / "mapping.json").read_text())
    assert sorted(mapping) == calling["sample_names"] and len(mapping) == 12
    assert all(m["mapping_rate"] > 0.99 for m in mapping.values())
    # The cohort's own VCF holds the same patients: each one's calls agree with it (no swap).
    assert all(c > 0.97 for n, c in calling["concordance_with_vcf"].values())
    out = subprocess.run(["bcftools", "query", "-f", "[%GT:%DP:%GQ\\t]\\n",
                          str(step_dir(called_panel, "call") / "cohort.vcf.gz")], capture_output=True, text=True,
                         check=True).stdout.split("\n")[:-1]
    cells = [cell.split(":") for line in out for cell in line.rstrip("\t").split("\t")]
    assert len(cells) == calling["sites"] * 12
    assert all(gt in ("0/0", "0/1", "1/1") and int(dp) >= 2 for gt, dp, gq in cells)  # 30x: no ./.


def test_exported_vcf__reads_back_identically_through_the_vcf_path_and_bcftools(called_panel, spark):
    import numpy as np

    from genoflow.config import Settings
    from genoflow.genotypes import unpack_dosages
    from genoflow.pseudonym import pseudonym_order

    call = step_dir(called_panel, "call")
    table = spark.read.parquet(str(call / "genotypes")).orderBy("pos").select("pos", "ref", "alt", "dosages").collect()
    lines = subprocess.run(["bcftools", "view", "-H", str(call / "cohort.vcf.gz")], capture_output=True, text=True,
                           check=True).stdout.split("\n")[:-1]
    code = {"0/0": 0, "0/1": 1, "1/1": 2, "./.": -1}
    assert len(lines) == len(table)
    for row, line in zip(table, lines, strict=True):
        fields = line.split("\t")
        assert (int(fields[1]), fields[3], fields[4]) == (row.pos, row.ref, row.alt)
        assert [code[c.split(":")[0]] for c in fields[9:]] == unpack_dosages(row.dosages).tolist()
    # tabix regions
    region = panel_region(called_panel).split(":")[0] + f":{table[0].pos}-{table[len(table) // 2].pos}"
    subset = subprocess.run(["tabix", str(call / "cohort.vcf.gz"), region], capture_output=True, text=True,
                            check=True).stdout.split("\n")[:-1]
    assert len(subset) == len(table) // 2 + 1
    # preprocess read the calls as the genotype table of a VCF would be (QC columns filled, genes annotated),
    # its samples in pseudonym order (decision 0018)
    genotypes = spark.read.parquet(str(step_dir(called_panel, "preprocess") / "genotypes"))
    assert genotypes.count() == len(table)
    assert genotypes.where("call_rate IS NULL OR maf IS NULL").count() == 0
    reparsed = np.array([unpack_dosages(r.dosages) for r in genotypes.orderBy("pos").select("dosages").collect()])
    calling = json.loads((call / "calling.json").read_text())
    order = pseudonym_order(calling["sample_names"], Settings().pseudonym_key)
    assert (reparsed == np.array([unpack_dosages(r.dosages)[order] for r in table])).all()


def test_single_end__aligned_and_called(tmp_path, capsys):
    from genoflow.simulate.reads import make_reads_cohort

    root = tmp_path / "data"
    make_reads_cohort(root, n_patients=6, panel_length=20_000, coverage=30, read_length=150, paired=False,
                      sequence_length=200_000, seed=11, n_causal=1)
    for step in ("align", "call"):
        rc, err = run_step(step, root, capsys)
        assert rc == 0, err
    mapping = json.loads((step_dir(root, "align") / "mapping.json").read_text())
    assert all(m["duplicates"] == 0 for m in mapping.values())  # single-end reads are not marked by position
    truth = root / "truth" / "target_genotypes.vcf.gz"
    ours = genotype_accuracy(truth, step_dir(root, "call") / "cohort.vcf.gz", region=panel_region(root))["total"]
    assert ours["f1"] >= 0.98


# --- bad input: one clear message, nothing committed -------------------------------------------------------


def assert_not_committed(root: Path, step: str):
    steps = root / "steps" / step
    assert not steps.exists() or not any(steps.iterdir()), list(steps.rglob("*"))


def test_reads_of_another_genome__name_the_patient_and_the_mapping_rate(panel_copy, capsys):
    import numpy as np

    from genoflow.simulate.reads import _fastq_bytes

    folder = sorted((panel_copy / "raw" / "patient_data").iterdir())[3]
    rng = np.random.default_rng(0)
    for mate in (1, 2):
        seqs = rng.choice(np.frombuffer(b"ACGT", np.uint8), size=(500, 150))
        quals = np.full((500, 150), ord("I"), np.uint8)
        (folder / f"genome_sequence_R{mate}.fastq.gz").write_bytes(
            gzip.compress(_fastq_bytes(folder.name, seqs, quals, mate=mate)))
    rc, err = run_step("align", panel_copy, capsys)
    assert rc == 3
    assert folder.name in err and "wrong reference or species" in err and "%" in err
    assert_not_committed(panel_copy, "align")


def test_truncated_fastq__names_the_file_and_line(panel_copy, capsys):
    fastq = sorted((panel_copy / "raw" / "patient_data").glob("*/genome_sequence_R2.fastq.gz"))[2]
    text = gzip.decompress(fastq.read_bytes())
    fastq.write_bytes(gzip.compress(text[: len(text) // 2 - 7]))
    rc, err = run_step("align", panel_copy, capsys)
    assert rc == 3
    assert f"{fastq.parent.name}/genome_sequence_R2.fastq.gz" in err and "line" in err
    assert_not_committed(panel_copy, "align")


def test_reads_of_one_patient_under_another_are_a_probable_sample_swap(panel_copy, capsys):
    folders = sorted((panel_copy / "raw" / "patient_data").iterdir())
    a, b = folders[1], folders[6]
    for mate in ("R1", "R2"):
        name = f"genome_sequence_{mate}.fastq.gz"
        data_a, data_b = (a / name).read_bytes(), (b / name).read_bytes()
        (a / name).write_bytes(data_b)
        (b / name).write_bytes(data_a)
    assert run_step("align", panel_copy, capsys)[0] == 0
    rc, err = run_step("call", panel_copy, capsys)
    assert rc == 3
    assert "probable sample swap" in err and (a.name in err and b.name in err)
    assert_not_committed(panel_copy, "call")

"""Tests of the biobank cohort simulator and the GRCh38-sized reference, small (90 x 150 kb; 3 short contigs)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from Bio import bgzf

from genoflow.simulate import biobank
from genoflow.simulate.biobank import make_biobank_cohort, reference_for_cohort, write_reference

N, L, START = 90, 150_000, 1_000_000


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("biobank")
    summary = make_biobank_cohort(root, n_patients=N, sequence_length=L, seed=5, n_causal=4, region_start=START,
                                  contig="chr21")
    return root, summary


def _vcf(path):
    with bgzf.open(str(path), "rt") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("##")]
    return lines[0][9:], lines[1:]


def test_make_biobank_cohort__vcf_sites_sit_in_the_region_on_the_full_length_contig(cohort):
    root, summary = cohort
    samples, rows = _vcf(root / "raw" / "cohort.vcf.gz")
    assert len(samples) == N and len(rows) == summary["n_variants"] > 100
    pos = np.array([int(r[1]) for r in rows])
    assert {r[0] for r in rows} == {"chr21"}
    assert START < pos.min() and pos.max() <= START + L and np.all(np.diff(pos) > 0)
    with bgzf.open(str(root / "raw" / "cohort.vcf.gz"), "rt") as handle:
        assert f"##contig=<ID=chr21,length={biobank.GRCH38_LENGTHS['chr21']}" in handle.read(2000)


def test_make_biobank_cohort__genotypes_are_phased_biallelic_and_polymorphic(cohort):
    root, _ = cohort
    _, rows = _vcf(root / "raw" / "cohort.vcf.gz")
    calls = np.array([r[9:] for r in rows])
    assert set(np.unique(calls)) <= {"0|0", "0|1", "1|0", "1|1", "./."}
    alt = (np.char.count(calls, "1")).sum(axis=1)
    # Polymorphic in the simulation: a site without an ALT call lost its carriers to missing calls.
    assert np.all((alt > 0) | (calls == "./.").any(axis=1))
    assert (alt > 0).mean() > 0.95
    assert all(len(r[3]) == len(r[4]) == 1 and r[3] != r[4] for r in rows)


def test_make_biobank_cohort__one_phenotype_table_in_vcf_order(cohort):
    root, summary = cohort
    samples, _ = _vcf(root / "raw" / "cohort.vcf.gz")
    table = pd.read_csv(root / "raw" / "phenotypes.csv")
    assert list(table.columns) == ["patient_id", "disease_status", "age", "sex"]
    assert table["patient_id"].tolist() == samples
    assert set(table["disease_status"]) == {0, 1} and set(table["sex"]) <= {"F", "M"}
    assert abs(table["disease_status"].mean() - 0.3) < 0.05
    assert not (root / "raw" / "patient_data").exists()
    assert summary["populations"] == {"YRI": 30, "CEU": 30, "CHB": 30}


def test_make_biobank_cohort__causal_truth_matches_the_vcf(cohort):
    root, _ = cohort
    truth = json.loads((root / "truth" / "truth.json").read_text())
    _, rows = _vcf(root / "raw" / "cohort.vcf.gz")
    by_pos = {int(r[1]): (r[3], r[4]) for r in rows}
    causal = truth["disease"]["causal_variants"]
    assert len(causal) == 4
    assert all(by_pos[c["pos"]] == (c["ref"], c["alt"]) for c in causal)
    patients = pd.read_csv(root / "truth" / "patients.csv")
    assert len(patients) == N and patients["genetic_value_disease"].std() > 0


def test_make_biobank_cohort__same_seed_same_vcf(cohort, tmp_path):
    root, _ = cohort
    make_biobank_cohort(tmp_path, n_patients=N, sequence_length=L, seed=5, n_causal=4, region_start=START,
                        contig="chr21")
    assert _vcf(tmp_path / "raw" / "cohort.vcf.gz") == _vcf(root / "raw" / "cohort.vcf.gz")


def test_make_biobank_cohort__rejects_a_region_past_the_contig(tmp_path):
    with pytest.raises(ValueError, match="outside chr21"):
        make_biobank_cohort(tmp_path, n_patients=9, sequence_length=10_000, contig="chr21",
                            region_start=biobank.GRCH38_LENGTHS["chr21"] - 5_000)
    with pytest.raises(ValueError, match="not a GRCh38 contig"):
        make_biobank_cohort(tmp_path, n_patients=9, sequence_length=10_000, contig="20")


def test_reference_for_cohort__ref_alleles_match_and_samtools_reads_it_by_index(cohort, tmp_path, monkeypatch):
    root, _ = cohort
    # Three small contigs, the cohort's one long enough for its region; chunks smaller than a contig.
    monkeypatch.setattr(biobank, "GRCH38_LENGTHS", {"chr1": 1_000, "chr21": START + L + 777, "chrX": 2_345})
    monkeypatch.setattr(biobank, "_REF_CHUNK", 60 * 1_000)
    path = reference_for_cohort(root, tmp_path / "ref" / "genome.fa.gz")
    fai = pd.read_csv(f"{path}.fai", sep="\t", header=None)
    assert fai[0].tolist() == ["chr1", "chr21", "chrX"] and fai[1].tolist() == [1_000, START + L + 777, 2_345]
    _, rows = _vcf(root / "raw" / "cohort.vcf.gz")
    for row in rows[:: max(1, len(rows) // 20)]:
        region = f"chr21:{row[1]}-{row[1]}"
        out = subprocess.run(["samtools", "faidx", str(path), region], capture_output=True, text=True, check=True)
        assert out.stdout.split("\n")[1] == row[3], region
    whole = subprocess.run(["samtools", "faidx", str(path), "chrX"], capture_output=True, text=True, check=True)
    bases = "".join(whole.stdout.split("\n")[1:])
    assert len(bases) == 2_345 and set(bases) == set("ACGT")
    mtime = path.stat().st_mtime_ns
    assert reference_for_cohort(root, path) == path and path.stat().st_mtime_ns == mtime  # cached


def test_write_reference__rejects_sites_on_an_absent_contig(tmp_path):
    with pytest.raises(ValueError, match="chr2"):
        write_reference(tmp_path / "r.fa.gz", {"chr2": (np.array([1]), np.array([65], np.uint8))},
                        lengths={"chr1": 100})

"""Tests of the demo cohort generator on a tiny cohort (200 patients x 250 kb, generated once)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from Bio import SeqIO, bgzf
from Bio.Seq import Seq

from genoflow.simulate import make_demo_cohort

N = 200  # patients: enough haplotypes for a stable allele-frequency spectrum
L = 250_000  # bp

PARAMS = dict(
    n_patients=N,
    sequence_length=L,
    seed=7,
    reads_per_patient=40,
    read_length=80,
    target_length=1_000,
    prevalence=0.3,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    summary = make_demo_cohort(root, **PARAMS)
    return root, summary


@pytest.fixture(scope="module")
def vcf(cohort):
    return _read_vcf(cohort[0] / "raw" / "cohort.vcf.gz")


@pytest.fixture(scope="module")
def truth(cohort):
    return json.loads((cohort[0] / "truth" / "truth.json").read_text())


@pytest.fixture(scope="module")
def reference(cohort):
    records = list(SeqIO.parse(cohort[0] / "raw" / "reference_genome" / "genome_sequence.fasta", "fasta"))
    assert len(records) == 1
    return records[0]


def _read_vcf(path: Path) -> dict:
    """A deliberately simple VCF reader: meta lines, samples, site columns, GT strings."""
    meta, samples, rows = [], None, []
    with bgzf.open(str(path), "rt") as handle:
        for line in handle:
            if line.startswith("##"):
                meta.append(line.rstrip("\n"))
            elif line.startswith("#CHROM"):
                samples = line.rstrip("\n").split("\t")[9:]
            else:
                rows.append(line.rstrip("\n").split("\t"))
    gts = np.array([r[9:] for r in rows])
    return {
        "meta": meta,
        "samples": samples,
        "chrom": [r[0] for r in rows],
        "pos": np.array([int(r[1]) for r in rows]),
        "ref": [r[3] for r in rows],
        "alt": [r[4] for r in rows],
        "format": {r[8] for r in rows},
        "gt": gts,
    }


def _alt_counts(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-site alt-allele count and called-allele count from phased/missing GT strings."""
    chars = gt.astype("S3").view("S1").reshape(*gt.shape, 3)
    a0, a1 = chars[..., 0], chars[..., 2]
    called = (a0 != b".") & (a1 != b".")
    alt = ((a0 == b"1") & called).astype(int) + ((a1 == b"1") & called).astype(int)
    return alt.sum(axis=1), 2 * called.sum(axis=1)


def test_layout_and_summary(cohort):
    root, summary = cohort
    raw = root / "raw"
    for rel in (
        "cohort.vcf.gz",
        "reference_genome/genome_sequence.fasta",
        "reference_genome/genome_annotations.gff",
    ):
        assert (raw / rel).is_file(), rel
    assert (root / "truth" / "truth.json").is_file()
    assert not list(raw.rglob("truth*")), "truth must never sit under raw/"
    assert sorted(p.name for p in (raw / "patient_data").iterdir()) == [f"PT{i:05d}" for i in range(1, N + 1)]
    assert not list(root.glob(".demo-tmp*"))
    assert summary["n_patients"] == N and summary["n_variants"] > 100
    assert summary["paths"]["vcf"] == str(raw / "cohort.vcf.gz")


def test_vcf_is_bgzf_with_header_and_samples(cohort, vcf):
    with open(cohort[0] / "raw" / "cohort.vcf.gz", "rb") as handle:
        first_block = next(bgzf.BgzfBlocks(handle))  # raises on a plain gzip stream
    assert first_block[1] > 0
    assert vcf["meta"][0] == "##fileformat=VCFv4.2"
    assert f"##contig=<ID=chr22,length={L}>" in vcf["meta"]
    assert any(m.startswith("##FORMAT=<ID=GT,") for m in vcf["meta"])
    assert vcf["samples"] == [f"PT{i:05d}" for i in range(1, N + 1)]
    assert vcf["gt"].shape == (len(vcf["pos"]), N)
    assert vcf["format"] == {"GT"} and set(vcf["chrom"]) == {"chr22"}


def test_vcf_sites_sorted_unique_biallelic(vcf, cohort):
    pos = vcf["pos"]
    assert np.all(np.diff(pos) > 0)
    assert pos.min() >= 1 and pos.max() <= PARAMS["sequence_length"]
    assert len(pos) == cohort[1]["n_variants"]
    for ref, alt in zip(vcf["ref"], vcf["alt"], strict=True):
        assert ref in "ACGT" and alt in "ACGT" and len(ref) == len(alt) == 1 and ref != alt
    assert set(np.unique(vcf["gt"])) <= {"0|0", "0|1", "1|0", "1|1", "./."}


def test_vcf_ref_matches_fasta(vcf, reference):
    seq = str(reference.seq)
    assert reference.id == "chr22" and len(seq) == PARAMS["sequence_length"]
    assert set(seq) <= set("ACGT")
    assert [seq[p - 1] for p in vcf["pos"]] == vcf["ref"]


def test_fasta_line_width(cohort):
    lines = (cohort[0] / "raw" / "reference_genome" / "genome_sequence.fasta").read_text().splitlines()
    assert lines[0] == ">chr22"
    assert {len(line) for line in lines[1:-1]} == {60}


def test_missing_rate_and_frequency_spectrum(vcf):
    missing = np.mean(vcf["gt"] == "./.")
    assert 0.001 < missing < 0.012  # default missing_rate 0.005
    alt, called = _alt_counts(vcf["gt"])
    af = alt / called
    maf = np.minimum(af, 1 - af)
    assert np.all(alt > 0)  # segregating sites only (missing calls could hide a singleton: rare)
    assert np.mean(maf < 0.05) > 0.4  # neutral coalescent: an excess of rare variants
    assert np.mean(maf >= 0.05) > 0.1


def test_same_seed_gives_identical_bytes_and_rerun_replaces(cohort, tmp_path):
    root, _ = cohort
    again = make_demo_cohort(tmp_path, **PARAMS)
    for rel in ("raw/cohort.vcf.gz", "truth/truth.json", "raw/patient_data/PT00042/genome_sequence.fastq.gz"):
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes(), rel
    other = make_demo_cohort(tmp_path, **{**PARAMS, "seed": 8})  # replaces the previous cohort in place
    assert (tmp_path / "raw/cohort.vcf.gz").read_bytes() != (root / "raw/cohort.vcf.gz").read_bytes()
    assert json.loads((tmp_path / "truth/truth.json").read_text())["seed"] == 8
    assert (
        other["n_variants"] != again["n_variants"]
        or other["oracle_auc_disease"] != again["oracle_auc_disease"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "truth"]


def test_failure_leaves_previous_cohort_and_no_temp(tmp_path):
    small = {**PARAMS, "n_patients": 20, "sequence_length": 50_000}
    make_demo_cohort(tmp_path, **small)
    before = (tmp_path / "raw/cohort.vcf.gz").read_bytes()
    with pytest.raises(ValueError, match="n_causal"):
        make_demo_cohort(tmp_path, **{**small, "seed": 9, "n_causal": 100_000})  # fails after writing raw
    assert (tmp_path / "raw/cohort.vcf.gz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw", "truth"]


@pytest.mark.parametrize(
    "bad", [{"prevalence": 0.0}, {"heritability": 1.0}, {"read_length": 5000}, {"n_patients": 1}, {"seed": 0}]
)
def test_bad_parameters_raise(tmp_path, bad):
    with pytest.raises(ValueError):
        make_demo_cohort(tmp_path, **{**PARAMS, **bad})
    assert not list(tmp_path.iterdir())


def test_clinical_csvs(cohort):
    rows = []
    for path in sorted((cohort[0] / "raw" / "patient_data").glob("*/clinical_data.csv")):
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["patient_id", "age", "sex", "disease_status", "treatment_response"]
            (row,) = list(reader)
        assert row["patient_id"] == path.parent.name
        rows.append(row)
    assert len(rows) == N
    ages = np.array([int(r["age"]) for r in rows])
    assert ages.min() >= 18 and ages.max() <= 90 and 40 < ages.mean() < 70
    assert {r["sex"] for r in rows} == {"F", "M"}
    disease = np.array([int(r["disease_status"]) for r in rows])
    response = np.array([int(r["treatment_response"]) for r in rows])
    assert set(disease) == set(response) == {0, 1}
    assert abs(disease.mean() - PARAMS["prevalence"]) <= 0.02
    assert abs(response.mean() - 0.5) <= 0.02


def test_truth_contents(truth, vcf):
    assert truth["seed"] == 7 and truth["parameters"]["n_patients"] == N
    sites = dict(zip(vcf["pos"].tolist(), zip(vcf["ref"], vcf["alt"], strict=True), strict=True))
    for trait, n_causal in (("disease_status", 20), ("treatment_response", 5)):
        causal = truth["traits"][trait]["causal_variants"]
        assert len(causal) == n_causal
        for c in causal:
            assert c["contig"] == "chr22" and sites[c["pos"]] == (c["ref"], c["alt"]) and c["maf"] >= 0.05
    patients = truth["patients"]
    assert len(patients) == N
    genetic = np.array([p["genetic_value_disease"] for p in patients.values()])
    liability = np.array([p["liability_disease"] for p in patients.values()])
    assert genetic.var() == pytest.approx(0.5, rel=1e-3)  # heritability on the liability scale
    assert 0.6 < liability.var() < 1.5
    assert 0.7 < truth["oracle_auc_disease"] <= 1.0
    assert 0.6 < truth["oracle_auc_response"] <= 1.0
    assert 0.7 < truth["expected_auc_genetic_plus_clinical"] < 1.0


def test_truth_status_matches_liability_threshold(truth, cohort):
    threshold = truth["traits"]["disease_status"]["threshold"]
    for pid, values in truth["patients"].items():
        with open(cohort[0] / "raw" / "patient_data" / pid / "clinical_data.csv") as handle:
            status = int(handle.read().splitlines()[1].split(",")[3])
        assert status == int(values["liability_disease"] > threshold)


def _fastq(cohort, pid):
    path = cohort[0] / "raw" / "patient_data" / pid / "genome_sequence.fastq.gz"
    with gzip.open(path, "rt") as handle:
        return list(SeqIO.parse(handle, "fastq"))


def test_fastq_reads_and_qualities(cohort):
    quals = []
    for pid in ("PT00001", "PT00050", f"PT{N:05d}"):
        reads = _fastq(cohort, pid)
        assert len(reads) == PARAMS["reads_per_patient"]
        assert reads[0].id == f"{pid}:1:FCX:1:1"
        for read in reads:
            assert len(read.seq) == PARAMS["read_length"] and set(str(read.seq)) <= set("ACGTN")
            q = np.array(read.letter_annotations["phred_quality"])
            assert np.all(q[np.array(list(str(read.seq))) == "N"] == 2)
            quals.append(q)
    q = np.array(quals)
    assert q.min() >= 2 and q.max() <= 41
    assert 28 < q.mean() < 38
    by_cycle = q.mean(axis=0)
    assert by_cycle[:10].mean() > by_cycle[-10:].mean() + 5  # quality decays along the read


def test_reads_carry_the_patient_haplotypes(cohort, vcf, reference, truth):
    region = truth["target_region"]
    lo, hi = region["start"] - 1, region["end"]
    in_region = (vcf["pos"] > lo) & (vcf["pos"] <= hi)
    assert in_region.sum() >= 3, "the targeted region should hold several variants"
    gts = vcf["gt"][in_region]
    # A patient with alt alleles in the region and no missing call there.
    carriers = [j for j in range(N) if "./." not in gts[:, j] and any("1" in g for g in gts[:, j])]
    j = carriers[0]
    haps = [list(str(reference.seq[lo:hi])) for _ in range(2)]
    for pos, alt, gt in zip(vcf["pos"][in_region], np.array(vcf["alt"])[in_region], gts[:, j], strict=True):
        for h in range(2):
            if gt[2 * h] == "1":
                haps[h][pos - 1 - lo] = alt
    haps = ["".join(h) for h in haps]
    ref_seq = str(reference.seq[lo:hi])
    forward = reverse = alt_only = 0
    for read in _fastq(cohort, vcf["samples"][j]):
        seq = str(read.seq)
        rc = str(Seq(seq).reverse_complement())
        forward += any(seq in h for h in haps)
        reverse += any(rc in h for h in haps)
        alt_only += any(s in h for s in (seq, rc) for h in haps) and seq not in ref_seq and rc not in ref_seq
    n = PARAMS["reads_per_patient"]
    assert forward + reverse > 0.6 * n  # most reads are error-free copies of a haplotype
    assert forward > 0.15 * n and reverse > 0.15 * n  # both strands
    assert alt_only > 0  # some reads show the patient's alternate alleles


def test_gff_genes(cohort):
    lines = (cohort[0] / "raw" / "reference_genome" / "genome_annotations.gff").read_text().splitlines()
    assert lines[0] == "##gff-version 3" and lines[1] == f"##sequence-region chr22 1 {L}"
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert all(len(r) == 9 for r in rows)
    genes = [r for r in rows if r[2] == "gene"]
    assert len(genes) == 2  # ~1 per 100 kb
    spans = sorted((int(r[3]), int(r[4])) for r in genes)
    for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False):
        assert s1 > e0  # non-overlapping
    for r in genes:
        assert 10_000 <= int(r[4]) - int(r[3]) + 1 <= 60_000 and 1 <= int(r[3]) and int(r[4]) <= L
        assert r[8].startswith("ID=gene:GENE") and ";Name=GF" in r[8]
    assert {r[2] for r in rows} == {"gene", "mRNA", "exon"}

"""Tests of the reads simulator on a small panel (4 patients, 10x paired 2 x 100 bp over 20 kb of 200 kb).

The reads are checked through an aligner (minimap2's library, mappy), as a caller would see them:
depth, pair orientation and insert size, errors against the stated qualities, and the alleles the
reads carry at every true variant.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import mappy
import numpy as np
import pytest
from Bio import bgzf

from genoflow.simulate import make_demo_cohort
from genoflow.simulate.reads import FASTQ_PAIRED, FASTQ_SINGLE, make_reads_cohort

PANEL = dict(
    n_patients=4,
    sequence_length=200_000,
    panel_length=20_000,
    coverage=10,
    read_length=100,
    paired=True,
    fragment_mean=300,
    fragment_sd=30,
    seed=5,
    n_causal=5,
)
FLANK = 300 + 3 * 30  # reads are drawn past each end of the panel by a fragment: mean + 3 SD


@dataclass
class Placement:
    """One primary alignment, as the read would sit on the reference without indels."""

    read_num: int
    strand: int
    start: int  # 0-based reference position of the read's first base (clips undone)
    bases: np.ndarray  # uint8 ASCII in reference orientation
    quals: np.ndarray  # Phred, reference orientation


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    return root, make_reads_cohort(root, **PANEL)


@pytest.fixture(scope="module")
def aligner(panel):
    index = mappy.Aligner(panel[1]["paths"]["fasta"], preset="sr")
    assert index, "minimap2 could not index the reference"
    return index


@pytest.fixture(scope="module")
def region(panel):
    r = panel[1]["target_region"]
    return r["start"] - 1, r["end"]


@pytest.fixture(scope="module")
def n_pairs(panel, region):
    """10x over the panel and its flanks, in pairs of 2 x 100 bp."""
    span = min(PANEL["sequence_length"], region[1] + FLANK) - max(0, region[0] - FLANK)
    return round(PANEL["coverage"] * span / (2 * PANEL["read_length"]))


@pytest.fixture(scope="module")
def truth(panel):
    return _read_gt_vcf(Path(panel[1]["paths"]["truth_vcf"]))


@pytest.fixture(scope="module")
def placements(panel, aligner):
    """Patient -> list of pairs (R1 placement or None, R2 placement or None)."""
    return {pid: _map_pairs(aligner, _fastq_pair(panel[0], pid)) for pid in _patients(panel)}


def _patients(panel) -> list[str]:
    return [f"PT{i:05d}" for i in range(1, panel[1]["n_patients"] + 1)]


def _fastq_pair(root: Path, pid: str) -> list[list[tuple[str, str, str, str]]]:
    """[R1 records, R2 records], each (name, comment, sequence, quality)."""
    mates = []
    for name in FASTQ_PAIRED:
        with gzip.open(root / "raw" / "patient_data" / pid / name, "rt") as handle:
            lines = handle.read().splitlines()
        assert len(lines) % 4 == 0
        records = []
        for i in range(0, len(lines), 4):
            assert lines[i].startswith("@") and lines[i + 2] == "+"
            read_id, comment = lines[i][1:].split(" ")
            records.append((read_id, comment, lines[i + 1], lines[i + 3]))
        mates.append(records)
    return mates


def _map_pairs(aligner: mappy.Aligner, mates) -> list[tuple[Placement | None, Placement | None]]:
    pairs = []
    for (_, _, s1, q1), (_, _, s2, q2) in zip(*mates, strict=True):
        found: list[Placement | None] = [None, None]
        for hit in aligner.map(s1, s2):
            if hit.is_primary and not any(op in (1, 2) for _, op in hit.cigar):  # no indels: placement exact
                seq, qual = (s1, q1) if hit.read_num == 1 else (s2, q2)
                found[hit.read_num - 1] = _placement(hit, seq, qual)
        pairs.append(tuple(found))
    return pairs


def _placement(hit, seq: str, qual: str) -> Placement:
    bases = np.frombuffer(seq.encode(), np.uint8)
    quals = np.frombuffer(qual.encode(), np.uint8).astype(np.int64) - 33
    q_st, q_en = hit.q_st, hit.q_en
    if hit.read_num == 2:
        # mappy maps mate 2 reverse-complemented (FR pairs) and reports its query span on that strand.
        q_st, q_en = len(seq) - q_en, len(seq) - q_st
    if hit.strand == 1:
        return Placement(hit.read_num, 1, hit.r_st - q_st, bases, quals)
    revcomp = np.frombuffer(mappy.revcomp(seq).encode(), np.uint8)
    return Placement(hit.read_num, -1, hit.r_st - (len(seq) - q_en), revcomp, quals[::-1])


def _read_gt_vcf(path: Path) -> dict:
    """Sites (1-based positions, REF, ALT) and the GT strings of a simple VCF."""
    pos, ref, alt, gts, samples = [], [], [], [], None
    with bgzf.open(str(path), "rt") as handle:
        for line in handle:
            if line.startswith("#CHROM"):
                samples = line.rstrip("\n").split("\t")[9:]
            elif not line.startswith("#"):
                cols = line.rstrip("\n").split("\t")
                pos.append(int(cols[1]))
                ref.append(cols[3])
                alt.append(cols[4])
                gts.append(cols[9:])
    return {"pos": np.array(pos), "ref": ref, "alt": alt, "gt": np.array(gts), "samples": samples}


def _reference(panel) -> np.ndarray:
    lines = Path(panel[1]["paths"]["fasta"]).read_text().splitlines()
    return np.frombuffer("".join(lines[1:]).encode(), np.uint8)


def test_paired_files_have_equal_counts_and_matching_names(panel, n_pairs):
    root = panel[0]
    for pid in _patients(panel):
        folder = root / "raw" / "patient_data" / pid
        assert sorted(p.name for p in folder.iterdir()) == sorted(["clinical_data.csv", *FASTQ_PAIRED])
        r1, r2 = _fastq_pair(root, pid)
        assert len(r1) == len(r2) == n_pairs
        assert [r[0] for r in r1] == [r[0] for r in r2] == [f"{pid}:1:FCX:1:{n}" for n in range(1, n_pairs + 1)]
        assert {r[1] for r in r1} == {"1:N:0:1"} and {r[1] for r in r2} == {"2:N:0:1"}
        assert {len(r[2]) for r in r1 + r2} == {len(r[3]) for r in r1 + r2} == {PANEL["read_length"]}
    assert panel[1]["paths"]["truth_vcf"] == str(root / "truth" / "target_genotypes.vcf.gz")


def test_coverage_over_the_region_is_the_asked_one(placements, region, n_pairs):
    lo, hi = region
    for pairs in placements.values():
        mapped = [p for pair in pairs for p in pair if p is not None]
        assert len(mapped) > 0.97 * 2 * n_pairs
        depth = np.zeros(hi - lo)
        for p in mapped:
            first, last = max(p.start, lo), min(p.start + len(p.bases), hi)
            depth[first - lo : max(first, last) - lo] += 1  # reads in the flanks add nothing
        assert abs(depth.mean() - PANEL["coverage"]) < 0.1 * PANEL["coverage"]
        assert np.mean(depth == 0) < 0.005  # uniform: no holes inside the panel
        # The flanks keep the depth up to the panel's ends, where truth variants are as callable as inside.
        assert depth[:50].mean() > 0.5 * PANEL["coverage"] and depth[-50:].mean() > 0.5 * PANEL["coverage"]


def test_mates_map_forward_reverse_with_the_fragment_length(placements, n_pairs):
    inserts, r1_forward = [], []
    for pairs in placements.values():
        for r1, r2 in pairs:
            if r1 is None or r2 is None:
                continue
            assert r1.strand == -r2.strand
            fwd, rev = (r1, r2) if r1.strand == 1 else (r2, r1)
            assert fwd.start <= rev.start  # FR: the mates face each other
            inserts.append(rev.start + len(rev.bases) - fwd.start)
            r1_forward.append(r1.strand == 1)
    inserts = np.array(inserts)
    assert len(inserts) > 0.95 * len(placements) * n_pairs
    assert abs(np.mean(inserts) - PANEL["fragment_mean"]) < 5
    assert abs(np.std(inserts) - PANEL["fragment_sd"]) < 5
    assert 0.45 < np.mean(r1_forward) < 0.55  # fragments of both strands, as Illumina


def test_errors_follow_the_phred_qualities(panel, placements):
    reference = _reference(panel)
    variant = np.zeros(len(reference), bool)  # every variant, the flanks' too (the truth VCF has the panel's)
    variant[_read_gt_vcf(panel[0] / "raw" / "cohort.vcf.gz")["pos"] - 1] = True
    low = high = 0
    observed_low = observed_high = expected_low = expected_high = 0.0
    for pairs in placements.values():
        for p in (p for pair in pairs for p in pair if p is not None):
            span = slice(p.start, p.start + len(p.bases))
            keep = (p.bases != ord("N")) & ~variant[span]  # no-calls and true alleles are not errors
            wrong = (p.bases != reference[span]) & keep
            stated = 10.0 ** (-p.quals / 10.0)
            is_low = p.quals < 20
            observed_low += np.sum(wrong & is_low)
            observed_high += np.sum(wrong & ~is_low)
            expected_low += np.sum(stated[keep & is_low])
            expected_high += np.sum(stated[keep & ~is_low])
            low += np.sum(keep & is_low)
            high += np.sum(keep & ~is_low)
    assert low > 1_000 and expected_low > 100
    assert abs(observed_low / expected_low - 1) < 0.2, (observed_low, expected_low)
    assert abs(observed_high / expected_high - 1) < 0.1, (observed_high, expected_high)


def test_truth_vcf_holds_every_region_variant_with_the_haplotypes(panel, truth, region):
    root = panel[0]
    cohort = _read_gt_vcf(root / "raw" / "cohort.vcf.gz")
    lo, hi = region
    inside = (cohort["pos"] > lo) & (cohort["pos"] <= hi)
    assert inside.sum() >= 10
    assert truth["samples"] == cohort["samples"] == _patients(panel)
    assert np.array_equal(truth["pos"], cohort["pos"][inside]) and np.all(np.diff(truth["pos"]) > 0)
    for allele in ("ref", "alt"):
        assert truth[allele] == list(np.array(cohort[allele])[inside])
    assert not np.any(truth["gt"] == "./.")
    assert set(np.unique(truth["gt"])) <= {"0|0", "0|1", "1|0", "1|1"}
    called = cohort["gt"][inside] != "./."  # the cohort VCF keeps its missing-call noise
    assert np.array_equal(truth["gt"][called], cohort["gt"][inside][called])


def test_reads_carry_the_true_genotypes(panel, placements, truth):
    """The alternate-allele fraction of the reads at each true site follows its genotype."""
    alt_base = np.frombuffer("".join(truth["alt"]).encode(), np.uint8)
    fractions = {0: [], 1: [], 2: []}
    for j, pid in enumerate(truth["samples"]):
        alt_reads = np.zeros(len(truth["pos"]))
        depth = np.zeros(len(truth["pos"]))
        for p in (p for pair in placements[pid] for p in pair if p is not None):
            first, last = np.searchsorted(truth["pos"] - 1, [p.start, p.start + len(p.bases)])
            offsets = truth["pos"][first:last] - 1 - p.start
            alt_reads[first:last] += p.bases[offsets] == alt_base[first:last]
            depth[first:last] += 1
        dosage = np.array([g.count("1") for g in truth["gt"][:, j]])
        covered = depth >= 4
        for d in (0, 1, 2):
            fractions[d] += list(alt_reads[covered & (dosage == d)] / depth[covered & (dosage == d)])
    assert all(len(f) > 0 for f in fractions.values())
    assert np.max(fractions[0]) <= 0.25 and np.min(fractions[2]) >= 0.75
    assert 0.4 < np.mean(fractions[1]) < 0.6
    assert np.mean(np.array(fractions[1]) == 0) < 0.05  # a het shows its alternate allele in nearly every patient


def test_same_seed_gives_identical_bytes(panel, tmp_path):
    again = make_reads_cohort(tmp_path, **PANEL)
    assert again["paths"]["truth_vcf"] == str(tmp_path / "truth" / "target_genotypes.vcf.gz")
    for rel in ("truth/target_genotypes.vcf.gz", *(f"raw/patient_data/PT00003/{name}" for name in FASTQ_PAIRED)):
        assert (tmp_path / rel).read_bytes() == (panel[0] / rel).read_bytes(), rel


def test_single_end_at_a_coverage(tmp_path):
    params = {**PANEL, "paired": False, "coverage": 5, "n_patients": 2}
    make_reads_cohort(tmp_path, **params)
    folder = tmp_path / "raw" / "patient_data" / "PT00002"
    assert sorted(p.name for p in folder.iterdir()) == ["clinical_data.csv", FASTQ_SINGLE]
    with gzip.open(folder / FASTQ_SINGLE, "rt") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 4 * 1_010  # 5x * (20 kb + a read's flank on each side) / 100 bp
    assert lines[0] == "@PT00002:1:FCX:1:1 1:N:0:1" and lines[-4] == "@PT00002:1:FCX:1:1010 1:N:0:1"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"coverage": 0}, "coverage"),
        ({"fragment_mean": 50}, "fragment_mean"),
        ({"fragment_sd": -1}, "fragment_sd"),
    ],
)
def test_bad_read_parameters_raise(tmp_path, bad, message):
    params = {k: v for k, v in PANEL.items() if k != "panel_length"}
    with pytest.raises(ValueError, match=message):
        make_demo_cohort(tmp_path, **{**params, "target_length": PANEL["panel_length"], **bad})
    assert not list(tmp_path.iterdir())

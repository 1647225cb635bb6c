"""SNV genotype accuracy: hand-made VCFs of known counts, and bcftools' own genotype concordance table."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genoflow.errors import InputError
from genoflow.reads.accuracy import genotype_accuracy, iter_snv_dosages, wilson_interval
from tests.conftest import require_tool

HEAD = ("##fileformat=VCFv4.3\n##contig=<ID=1,length=100000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t")

# (pos, ref, alt, format, S1, S2, S3); S3 comes first in the called file: samples match by name
TRUTH = [
    (10, "A", "G", "GT", "0/1", "1/1", "0/0"),
    (20, "C", "T", "GT", "0/0", "0|1", "./."),
    (40, "T", "C", "GT", "0/0", "0/0", "1/1"),
    (50, "AT", "A", "GT", "1/1", "1/1", "1/1"),  # an indel: left out
    (60, "A", "G,T", "GT", "1/2", "0/0", "0/0"),
]
CALLED = [
    (10, "A", "G", "GT", "0/1", "0/1", "0/0"),
    (20, "C", "T", "DP:GT", "7:0/1", "0:./.", "9:1/1"),
    (30, "G", "A", "GT", "1/1", "0/0", "0/0"),
    (50, "AT", "A", "GT", "0/0", "0/0", "0/0"),
    (60, "A", "G", "GT", "0/1", "0/0", "0/0"),
]


def write_vcf(path: Path, rows, samples=("S1", "S2", "S3"), order=(0, 1, 2)) -> Path:
    lines = [HEAD + "\t".join(samples[i] for i in order)]
    for pos, ref, alt, fmt, *calls in rows:
        lines.append("\t".join(["1", str(pos), ".", ref, alt, ".", ".", ".", fmt, *(calls[i] for i in order)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def pair(tmp_path):
    return write_vcf(tmp_path / "truth.vcf", TRUTH), write_vcf(tmp_path / "called.vcf", CALLED, order=(2, 0, 1))


def test_genotype_accuracy__known_counts(pair):
    result = genotype_accuracy(*pair)
    total = result["total"]
    # S1: 10 TP het, 60 A>G TP het, 60 A>T FN het (not called), 20 FP het, 30 FP hom-alt
    # S2: 10 hom-alt called het = FN hom-alt + FP het (as hap.py counts it), 20 ./. at a truth het = FN het
    # S3: 40 missed hom-alt = FN; 20 is ./. in the truth and says nothing
    assert (total["tp"], total["fp"], total["fn"]) == (2, 3, 4)
    assert (total["het"]["tp"], total["het"]["fp"], total["het"]["fn"]) == (2, 2, 2)
    assert (total["homalt"]["tp"], total["homalt"]["fp"], total["homalt"]["fn"]) == (0, 1, 2)
    assert total["precision"] == pytest.approx(2 / 5) and total["recall"] == pytest.approx(2 / 6)
    assert total["f1"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 4))
    assert {s: (r["tp"], r["fp"], r["fn"]) for s, r in result["per_sample"].items()} == {
        "S1": (2, 2, 1), "S2": (0, 1, 2), "S3": (0, 0, 1)}
    assert result["samples"] == ["S1", "S2", "S3"]
    assert result["n_sites"] == 5 and result["n_truth_missing"] == 1
    assert total["precision_ci"] == pytest.approx(wilson_interval(2, 5))
    lo, hi = total["f1_ci"]
    assert 0 <= lo <= hi <= 1
    assert math.isnan(result["per_sample"]["S3"]["precision"])  # nothing called: no precision


def test_genotype_accuracy__region_samples_and_bgzip(pair, tmp_path):
    require_tool("bgzip")
    for path in pair:
        subprocess.run(["bgzip", "-k", str(path)], check=True)
    gz = [Path(f"{p}.gz") for p in pair]
    assert repr(genotype_accuracy(*gz)) == repr(genotype_accuracy(*pair))  # repr: nan equals nan
    near = genotype_accuracy(*gz, region="1:10-25", samples=["S2"])
    assert near["samples"] == ["S2"] and (near["total"]["tp"], near["total"]["fp"], near["total"]["fn"]) == (0, 1, 2)
    assert genotype_accuracy(*pair, region="2")["n_sites"] == 0


def test_genotype_accuracy__perfect_calls(pair):
    result = genotype_accuracy(pair[0], pair[0])
    assert result["total"]["precision"] == result["total"]["recall"] == result["total"]["f1"] == 1.0
    assert result["total"]["fp"] == result["total"]["fn"] == 0


def test_genotype_accuracy__bad_input_names_the_file(pair, tmp_path):
    with pytest.raises(InputError, match=r"truth.vcf.*'S9'.*not in the file"):
        genotype_accuracy(pair[0], write_vcf(tmp_path / "called.vcf", CALLED, samples=("S1", "S2", "S9")),
                          samples=["S1", "S9"])
    with pytest.raises(InputError, match="no sample in common"):
        genotype_accuracy(pair[0], write_vcf(tmp_path / "other.vcf", CALLED, samples=("X1", "X2", "X3")))
    bad = tmp_path / "bad.vcf"
    bad.write_text(HEAD + "S1\n1\t5\t.\tA\tG\t.\t.\t.\tGT\t0/1\n1\t6\t.\tA\tG\t.\t.\t.\tGT\tzero/one\n")
    with pytest.raises(InputError, match=r"bad.vcf, line 7: sample 1: GT 'zero/one'"):
        genotype_accuracy(pair[0], bad)
    with pytest.raises(InputError, match=r"no GT field"):
        list(iter_snv_dosages(write_vcf(tmp_path / "nogt.vcf", [(5, "A", "G", "DP", "1", "2", "3")])))


def test_genotype_accuracy__same_counts_as_bcftools_concordance_table(tmp_path):
    """bcftools stats' GCTs table (truth genotype -> called genotype, per sample, at shared SNVs) gives the
    same TP, FP and FN once its cells are summed the hap.py way; both files hold the same sites."""
    require_tool("bgzip", "bcftools")
    rng = np.random.default_rng(4)
    samples = [f"P{i}" for i in range(12)]
    truth_p, called_p = [0.3, 0.3, 0.3, 0.1], [0.3, 0.3, 0.25, 0.15]
    calls = np.array(["0/0", "0/1", "1/1", "./."])
    files = []
    for name, p in (("truth", truth_p), ("called", called_p)):
        rows = [(10 * k, "A", "C", "GT", *calls[rng.choice(4, len(samples), p=p)]) for k in range(1, 400)]
        path = write_vcf(tmp_path / f"{name}.vcf", rows, samples=tuple(samples), order=range(len(samples)))
        subprocess.run(["bgzip", str(path)], check=True)
        subprocess.run(["tabix", "-p", "vcf", f"{path}.gz"], check=True)
        files.append(f"{path}.gz")
    stats = subprocess.run(["bcftools", "stats", "-s", "-", *files], check=True, capture_output=True, text=True)
    table = {f[1]: np.array(f[2:], dtype=int).reshape(5, 5)  # rows truth, columns called: RR, RA, AA, AA', missing
             for f in (line.split("\t") for line in stats.stdout.splitlines()) if f[0] == "GCTs"}
    result = genotype_accuracy(*files)
    for sample in samples:
        g = table[sample]
        expected = {"tp": g[1, 1] + g[2, 2],
                    "fn": g[1].sum() - g[1, 1] + g[2].sum() - g[2, 2],
                    "fp": g[:4, 1].sum() - g[1, 1] + g[:4, 2].sum() - g[2, 2] + g[:3, 3].sum()}
        got = result["per_sample"][sample]
        assert {k: got[k] for k in expected} == {k: int(v) for k, v in expected.items()}, sample
    assert result["n_truth_missing"] == sum(int(g[4].sum()) for g in table.values())

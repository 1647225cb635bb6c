"""Multi-allelic splitting agrees with `bcftools norm -m-` (bcftools 1.16, a Debian package).

A random VCF with 2-12 ALT alleles per record (multi-digit allele indices, phased, haploid,
missing and half-missing calls) is split by bcftools; each of its biallelic records' GT strings is
turned into a dosage by a plain-Python oracle (count of allele 1, missing when any allele is '.',
as plink2 reads half-missing calls) and compared with genoflow's split of the original records.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from genoflow.genotypes import dosage_matrix
from genoflow.io.vcf import parse_vcf_header, parse_vcf_records

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed (make system-deps)")

N_SAMPLES = 25


def random_vcf(rng: np.random.Generator, n_records: int = 300) -> str:
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr2,length=100000>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(f"S{i}" for i in range(N_SAMPLES))]
    bases = np.array(list("ACGT"))
    for k in range(n_records):
        n_alt = int(rng.integers(1, 13))
        alts = []
        while len(alts) < n_alt:  # distinct ALT sequences, none equal to REF 'A'
            allele = "".join(bases[rng.integers(0, 4, size=int(rng.integers(1, 4)))])
            if allele != "A" and allele not in alts:
                alts.append(allele)
        calls = []
        for _ in range(N_SAMPLES):
            a, b = (str(x) for x in rng.integers(0, n_alt + 1, size=2))
            kind = rng.random()
            if kind < 0.05:
                calls.append("./.")
            elif kind < 0.1:
                calls.append(f"./{b}")
            elif kind < 0.15:
                calls.append(a)  # haploid
            else:
                calls.append(f"{a}{'|' if kind < 0.5 else '/'}{b}")
        lines.append(f"chr2\t{100 + 10 * k}\t.\tA\t{','.join(alts)}\t.\tPASS\t.\tGT\t" + "\t".join(calls))
    return "\n".join(lines) + "\n"


def oracle_dosage(gt: str) -> int:
    alleles = gt.replace("|", "/").split("/")
    if "." in alleles:
        return -1
    return sum(allele == "1" for allele in alleles)


def test_split_multiallelic__concordant_with_bcftools_norm(tmp_path):
    text = random_vcf(np.random.default_rng(11))
    vcf = tmp_path / "multi.vcf"
    vcf.write_text(text)
    split = subprocess.run(["bcftools", "norm", "-m-", "-Ov", str(vcf)], check=True, capture_output=True,
                           text=True).stdout
    records = [line.split("\t") for line in split.splitlines() if not line.startswith("#")]
    expected_keys = [(f[1], f[3], f[4]) for f in records]
    expected = np.array([[oracle_dosage(gt) for gt in f[9:]] for f in records], dtype=np.int8)

    lines = text.splitlines()
    header = parse_vcf_header(lines, str(vcf))
    table = parse_vcf_records(lines[header.n_header_lines:], n_samples=N_SAMPLES, source=str(vcf),
                              first_line_number=header.n_header_lines + 1)
    got_keys = list(zip(map(str, table.column("pos").to_pylist()), table.column("ref").to_pylist(),
                        table.column("alt").to_pylist(), strict=True))
    assert len(records) > 1000  # the split made many rows
    assert got_keys == expected_keys
    got = dosage_matrix(table.column("dosages"), N_SAMPLES)
    assert np.array_equal(got, expected), np.argwhere(got != expected)[:5]

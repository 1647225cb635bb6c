"""Per-patient single-sample VCFs merged into the cohort table agree with `bcftools merge` + `norm -m-`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf

from genoflow.errors import InputError
from genoflow.io.gff import read_genes
from genoflow.pipeline.vcf_ingest import VCF_BYTES_PER_SAMPLE, ingest_patient_vcfs, merged_header, patient_vcf_uris
from tests.reference_fasta import indexed_reference

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed (make system-deps)")

N_PATIENTS = 6
N_SITES = 150
P = {"min_call_rate": 0.0, "min_maf": 0.0, "min_hwe_p": 0.0}
BUDGET = 50 * VCF_BYTES_PER_SAMPLE  # 50-line blocks of each single-sample file: several per file
FILE = "genome_variants.vcf.gz"


def patient_vcf(name: str, rng: np.random.Generator) -> str:
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr3,length=10000>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{name}"]
    for k in range(N_SITES):
        if rng.random() < 0.4:
            continue  # this patient has no record here
        pos = 100 + 10 * k
        choice = rng.integers(0, 5)
        alt = ["G", "T", "C", "G,T", "AG"][choice]  # SNPs, a multi-allelic SNP record, an insertion
        gt = rng.choice(["0/1", "1/1", "./.", "1|0"] + (["1/2", "2/2", "0/2"] if choice == 3 else []))
        lines.append(f"chr3\t{pos}\t.\tA\t{alt}\t.\tPASS\t.\tGT\t{gt}")
    return "\n".join(lines) + "\n"


def oracle_dosage(gt: str) -> int:
    alleles = gt.replace("|", "/").split("/")
    return -1 if "." in alleles else sum(a == "1" for a in alleles)


@pytest.fixture
def patient_dir(tmp_path) -> Path:
    rng = np.random.default_rng(21)
    root = tmp_path / "patient_data"
    for i in range(N_PATIENTS):
        name = f"PT{i:03d}"
        (root / name).mkdir(parents=True)
        with bgzf.BgzfWriter(str(root / name / FILE), "wb") as out:
            out.write(patient_vcf(name, rng).encode())
    return root


def bcftools_merged(files: list[str]) -> dict[tuple, list[int]]:
    for file in files:
        subprocess.run(["bcftools", "index", "-f", file], check=True)
    merged = subprocess.run(["bcftools", "merge", "-Ou", *files], check=True, capture_output=True).stdout
    split = subprocess.run(["bcftools", "norm", "-m-", "-Ov"], input=merged, check=True, capture_output=True).stdout
    records = [line.split("\t") for line in split.decode().splitlines() if not line.startswith("#")]
    return {(int(f[1]), f[3], f[4]): [oracle_dosage(gt) for gt in f[9:]] for f in records}


def test_ingest_patient_vcfs__concordant_with_bcftools_merge(spark, patient_dir, tmp_path):
    files = patient_vcf_uris(spark, patient_dir.as_uri(), FILE)
    assert list(files) == [f"PT{i:03d}" for i in range(N_PATIENTS)]
    header = merged_header(spark, files)
    gff = tmp_path / "g.gff"
    gff.write_text("##gff-version 3\nchr3\tsim\tgene\t100\t900\t.\t+\t.\tID=g1;Name=G1\n")
    out = tmp_path / "out"
    reference = indexed_reference(tmp_path, {"chr3": "A" * 10000})
    result = ingest_patient_vcfs(spark, files, header, out.as_uri(), reference=reference,
                                 genes=read_genes(gff.open("rb"), source="g.gff"), p=P, budget=BUDGET)
    table = spark.read.parquet(out.as_uri()).toPandas()
    got = {(int(r.pos), r.ref, r.alt): np.frombuffer(r.dosages, dtype=np.int8).tolist() for r in table.itertuples()}
    expected = bcftools_merged([str(patient_dir / name / FILE) for name in files])
    assert result.n_splits >= 1 and len(expected) > 100
    assert got.keys() == expected.keys()
    differing = [key for key in expected if got[key] != expected[key]]
    assert not differing, [(key, got[key], expected[key]) for key in differing[:5]]
    assert table["pos"].is_monotonic_increasing


def test_ingest_patient_vcfs__sample_must_match_its_folder(spark, patient_dir, tmp_path):
    victim = patient_dir / "PT002" / FILE
    text = patient_vcf("SOMEONE", np.random.default_rng(1))
    with bgzf.BgzfWriter(str(victim), "wb") as out:
        out.write(text.encode())
    files = patient_vcf_uris(spark, patient_dir.as_uri(), FILE)
    header = merged_header(spark, files)
    gff = tmp_path / "g.gff"
    gff.write_text("##gff-version 3\nchr3\tsim\tgene\t100\t900\t.\t+\t.\tID=g1;Name=G1\n")
    reference = indexed_reference(tmp_path, {"chr3": "A" * 10000})
    with pytest.raises(InputError, match="expected one sample named 'PT002'") as error:
        ingest_patient_vcfs(spark, files, header, (tmp_path / "out").as_uri(), reference=reference,
                            genes=read_genes(gff.open("rb"), source="g.gff"), p=P, budget=BUDGET)
    assert error.value.source.endswith("PT002/" + FILE) and error.value.line == 4

"""append_vcf_samples on tiny hand-written VCFs: columns appended, sites checked line by line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from genoflow.errors import InputError
from genoflow.io.vcf_append import append_vcf_samples

HEAD = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=100>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"


def _vcf(path: Path, samples: list[str], records: list[str]) -> Path:
    path.write_text("\t".join([HEAD, *samples]) + "\n" + "".join(r + "\n" for r in records))
    return path


@pytest.fixture
def base(tmp_path) -> Path:
    return _vcf(tmp_path / "base.vcf", ["A1", "A2"], ["chr1\t5\trs1\tA\tG\t50\tPASS\tAC=1\tGT\t0|1\t0|0",
                                                      "chr1\t9\t.\tC\tT,G\t.\tPASS\t.\tGT\t1|2\t./."])


def test_append_vcf_samples__appends_columns_and_clears_info(base, tmp_path):
    batch = _vcf(tmp_path / "batch.vcf", ["B1"], ["chr1\t5\t.\tA\tG\t.\t.\t.\tGT\t1|1",
                                                  "chr1\t9\t.\tC\tT,G\t.\t.\t.\tGT\t0|2"])
    summary = append_vcf_samples(base, batch, tmp_path / "out.vcf.gz")
    lines = gzip.decompress((tmp_path / "out.vcf.gz").read_bytes()).decode().splitlines()
    assert lines[:2] == HEAD.splitlines()[:2]
    assert lines[2].split("\t")[9:] == ["A1", "A2", "B1"]
    assert lines[3] == "chr1\t5\trs1\tA\tG\t50\tPASS\t.\tGT\t0|1\t0|0\t1|1"
    assert lines[4] == "chr1\t9\t.\tC\tT,G\t.\tPASS\t.\tGT\t1|2\t./.\t0|2"
    assert summary == {"n_records": 2, "n_samples": 3, "n_batch_samples": 1}


@pytest.mark.parametrize(("second", "problem"), [
    ("chr1\t10\t.\tC\tT,G\t.\t.\t.\tGT\t0|2", "POS '10' differs"),
    ("chr1\t9\t.\tC\tT\t.\t.\t.\tGT\t0|1", "ALT 'T' differs"),
    ("chr1\t9\t.\tC\tT,G\t.\t.\t.\tGT:DP\t0|1:3", "FORMAT 'GT:DP' differs"),
])
def test_append_vcf_samples__other_site_names_the_batch_line(base, tmp_path, second, problem):
    batch = _vcf(tmp_path / "batch.vcf", ["B1"], ["chr1\t5\t.\tA\tG\t.\t.\t.\tGT\t1|1", second])
    with pytest.raises(InputError, match=problem) as error:
        append_vcf_samples(base, batch, tmp_path / "out.vcf.gz")
    assert error.value.source == str(batch) and error.value.line == 5


def test_append_vcf_samples__record_counts_differ(base, tmp_path):
    batch = _vcf(tmp_path / "batch.vcf", ["B1"], ["chr1\t5\t.\tA\tG\t.\t.\t.\tGT\t1|1"])
    with pytest.raises(InputError, match="fewer records"):
        append_vcf_samples(base, batch, tmp_path / "out.vcf.gz")


def test_append_vcf_samples__sample_already_in_the_cohort(base, tmp_path):
    batch = _vcf(tmp_path / "batch.vcf", ["B1", "A2"], ["chr1\t5\t.\tA\tG\t.\t.\t.\tGT\t1|1\t0|0"])
    with pytest.raises(InputError, match="already in the cohort: A2") as error:
        append_vcf_samples(base, batch, tmp_path / "out.vcf.gz")
    assert error.value.line == 3 and error.value.record == "A2"

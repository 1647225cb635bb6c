"""VCF ingest on Spark: BGZF splitting, decoding, file-level line numbers and bad input.

Runs on the shared local[2] session with genoflow's BGZF codec (tests/conftest.py builds it if missing);
small split sizes make a ~0.5 MB bgzip file arrive in several splits.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf

from genoflow.errors import InputError
from genoflow.genotypes import dosage_matrix
from genoflow.io.gff import read_genes
from genoflow.io.vcf import parse_vcf_header, parse_vcf_records
from genoflow.pipeline.vcf_ingest import BGZF_EOF, VCF_BYTES_PER_SAMPLE, _check_order, ingest_vcf, read_vcf_header
from tests.reference_fasta import indexed_reference

N_SAMPLES = 60
N_SITES = 2500
STEP = 7
CONTIG_LENGTH = 40_000
P = {"min_call_rate": 0.0, "min_maf": 0.0, "min_hwe_p": 0.0}
LINES_PER_BLOCK = 300  # several blocks per split, and blocks that end inside an Arrow batch
BUDGET = LINES_PER_BLOCK * N_SAMPLES * VCF_BYTES_PER_SAMPLE


@pytest.fixture
def small_splits(spark):
    """Spark splits files into ~16 KB pieces while the test runs."""
    keys = {"spark.sql.files.maxPartitionBytes": "16384", "spark.sql.files.openCostInBytes": "0"}
    saved = {key: spark.conf.get(key) for key in keys}
    for key, value in keys.items():
        spark.conf.set(key, value)
    yield
    for key, value in saved.items():
        spark.conf.set(key, value)


def vcf_lines(contig: str = "chr1", seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    calls = np.array(["0/0", "0/1", "1/1", "1|0", "./.", "0/2", "2|2"])
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={contig},length={CONTIG_LENGTH}>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
             + "\t".join(f"S{i}" for i in range(N_SAMPLES))]
    for k in range(N_SITES):
        multi = k % 10 == 0
        picks = rng.integers(0, 7 if multi else 5, size=N_SAMPLES)
        alt = "G,T" if multi else "G"
        lines.append(f"{contig}\t{100 + k * STEP}\tv{k}\tA\t{alt}\t.\tPASS\t.\tGT\t" + "\t".join(calls[picks]))
    return lines


def write_bgzf(path: Path, lines: list[str]) -> Path:
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(("\n".join(lines) + "\n").encode())
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return indexed_reference(tmp_path_factory.mktemp("reference"), {"chr1": "A" * CONTIG_LENGTH})


@pytest.fixture(scope="module")
def genes(tmp_path_factory):
    gff = tmp_path_factory.mktemp("gff") / "genes.gff"
    gff.write_text("##gff-version 3\nchr1\tsim\tgene\t100\t5000\t.\t+\t.\tID=g1;Name=G1\n")
    return read_genes(gff.open("rb"), source=str(gff))


def ingest(spark, path: Path, out: Path, reference, genes, budget: int = BUDGET, **params):
    uri = path.as_uri()
    header = read_vcf_header(spark, uri)
    result = ingest_vcf(spark, uri, header, out.as_uri(), reference=reference, genes=genes, p={**P, **params},
                        budget=budget)
    return result, spark.read.parquet(out.as_uri()).orderBy("pos", "alt").toPandas()


def expected_table(lines: list[str]):
    header = parse_vcf_header(lines, "x")
    return parse_vcf_records(lines[header.n_header_lines:], n_samples=header.n_samples, source="x",
                             first_line_number=header.n_header_lines + 1, with_line_numbers=True)


def test_ingest_vcf__bgzip_is_split_and_equals_the_single_pass_parse(spark, small_splits, tmp_path, reference, genes):
    lines = vcf_lines()
    result, table = ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", lines), tmp_path / "out", reference, genes)
    expected = expected_table(lines)
    assert result.n_splits > 3, "read in one piece: is the BGZF codec (make codec) on the session's classpath?"
    assert table["pos"].tolist() == expected.column("pos").to_pylist()
    assert table["alt"].tolist() == expected.column("alt").to_pylist()
    got = np.stack([np.frombuffer(b, dtype=np.int8) for b in table["dosages"]])
    assert np.array_equal(got, dosage_matrix(expected.column("dosages"), N_SAMPLES))
    # Lines are known in the first split and left null (not wrong) in the others.
    known = table["line"].notna().to_numpy()
    assert known[0] and not known.all()
    assert table["line"][known].tolist() == np.asarray(expected.column("line"))[known].tolist()
    assert set(table["gene"]) == {"G1", ""}


def test_ingest_vcf__bgzf_ranges_equal_spark_text_source(spark, small_splits, tmp_path, reference, genes, monkeypatch):
    # The tasks' own BGZF reading (decision 0029) against Spark's text source on the same splits: the same
    # rows, and line numbers known for the same (first split's) rows. Lines longer than a BGZF block:
    # tests/unit/io/test_vcf_bgzf.py.
    import genoflow.pipeline.vcf_ingest as vcf_ingest

    path = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines())
    result, ranges = ingest(spark, path, tmp_path / "ranges", reference, genes)
    monkeypatch.setattr(vcf_ingest, "_bgzf_file", lambda spark, uri: None)
    text_result, text = ingest(spark, path, tmp_path / "text", reference, genes)
    assert result.n_splits == text_result.n_splits > 3
    assert ranges.equals(text)


def test_ingest_vcf__the_block_budget_changes_no_row(spark, small_splits, tmp_path, reference, genes):
    # 7-line blocks (and Arrow batches) against whole splits in one block: byte-identical tables.
    path = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines())
    _, tiny = ingest(spark, path, tmp_path / "tiny", reference, genes, budget=7 * N_SAMPLES * VCF_BYTES_PER_SAMPLE)
    _, large = ingest(spark, path, tmp_path / "large", reference, genes, budget=1 << 30)
    assert len(tiny) == expected_table(vcf_lines()).num_rows
    assert tiny.equals(large)


def test_ingest_vcf__plain_gzip_is_read_whole(spark, small_splits, tmp_path, reference, genes):
    path = tmp_path / "c.vcf.gz"
    path.write_bytes(gzip.compress(("\n".join(vcf_lines()) + "\n").encode()))
    _, table = ingest(spark, path, tmp_path / "out", reference, genes)
    assert len(table) == expected_table(vcf_lines()).num_rows
    assert table["line"].notna().all()


def test_ingest_vcf__error_in_a_later_split_names_the_file_line(spark, small_splits, tmp_path, reference, genes):
    lines = vcf_lines()
    bad = len(lines) - 40
    fields = lines[bad].split("\t")
    fields[9 + 5] = "0/x"
    lines[bad] = "\t".join(fields)
    with pytest.raises(InputError) as error:
        ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", lines), tmp_path / "out", reference, genes)
    assert error.value.line == bad + 1
    assert error.value.record == f"chr1:{fields[1]}"
    assert "cannot parse GT '0/x' of sample 6" in error.value.problem


def test_ingest_vcf__truncated_bgzf_block(spark, small_splits, tmp_path, reference, genes):
    path = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as error:
        ingest(spark, path, tmp_path / "out", reference, genes)
    assert "truncated" in str(error.value) and path.name in error.value.source


def test_ingest_vcf__truncated_at_a_block_boundary(spark, tmp_path, reference, genes):
    path = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines())
    data = path.read_bytes()
    assert data.endswith(BGZF_EOF)
    path.write_bytes(data[: -len(BGZF_EOF)])
    with pytest.raises(InputError, match="lacks its end-of-file block"):
        ingest(spark, path, tmp_path / "out", reference, genes)


def test_ingest_vcf__corrupt_block_names_its_offset(spark, small_splits, tmp_path, reference, genes):
    path = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines())
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as error:
        ingest(spark, path, tmp_path / "out", reference, genes)
    assert "byte offset" in error.value.problem or "no BGZF block" in error.value.problem


def test_ingest_vcf__unsorted_records_within_a_split(spark, small_splits, tmp_path, reference, genes):
    lines = vcf_lines()
    lines[14], lines[15] = lines[15], lines[14]
    with pytest.raises(InputError, match="not sorted") as error:
        ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", lines), tmp_path / "out", reference, genes)
    # File line 16 now holds the smaller position.
    assert error.value.line == 16 and error.value.record == f"chr1:{lines[15].split(chr(9))[1]}"


def test_check_order__across_splits(spark, small_splits, tmp_path):
    from pyspark.sql import functions as F

    uri = write_bgzf(tmp_path / "c.vcf.gz", vcf_lines()).as_uri()
    splits = spark.read.text(uri).groupBy(F.input_file_block_start().alias("s")).count().orderBy("s").collect()
    second = splits[1]["s"]
    # Split 0 ends at chr1:500; the second split restarts chr1 at 300 (its 2nd line).
    with pytest.raises(InputError, match="chr1:300 comes after chr1:500") as error:
        _check_order(spark, uri, [(0, 5, "chr1", 100, 500), (second, 2, "chr1", 300, 900)])
    assert error.value.line == splits[0]["count"] + 2
    with pytest.raises(InputError, match="chr2:1 comes after other contigs"):
        _check_order(spark, uri, [(0, 5, "chr2", 1, 5), (0, 9, "chr1", 1, 5), (0, 12, "chr2", 1, 9)])
    _check_order(spark, uri, [(0, 5, "chr1", 1, 5), (second, 2, "chr1", 5, 9), (second, 7, "chr2", 1, 2)])


def test_ingest_vcf__contig_names_follow_the_reference(spark, tmp_path, reference, genes):
    _, table = ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", vcf_lines(contig="1")), tmp_path / "out",
                      reference, genes)
    assert set(table["contig"]) == {"chr1"}


def test_ingest_vcf__without_reference_or_genes_keeps_names_and_checks_nothing(spark, tmp_path):
    """Decision 0011: the FASTA and GFF are optional (None): contig names as the VCF spells them, no genes."""
    _, table = ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", vcf_lines(contig="1")), tmp_path / "out", None, None)
    assert set(table["contig"]) == {"1"} and set(table["gene"]) == {""}


def test_ingest_vcf__symbolic_alts_counted(spark, tmp_path, reference, genes):
    lines = vcf_lines()
    fields = lines[10].split("\t")
    fields[4] = "G,<DEL>"
    lines[10] = "\t".join(fields)
    result, table = ingest(spark, write_bgzf(tmp_path / "c.vcf.gz", lines), tmp_path / "out", reference, genes)
    assert result.n_skipped_alts == 1
    assert len(table) == expected_table(vcf_lines()).num_rows  # the G allele of that record stays

"""Tests of genoflow.io.vcf: header, records (dosages, splitting, errors) and line reading."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from genoflow.errors import InputError
from genoflow.io.vcf import (
    VCF_RECORD_SCHEMA,
    decode_vcf_block,
    iter_vcf_lines,
    parse_vcf_header,
    parse_vcf_records,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "io"
SRC = "cohort.vcf"
CHROM = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"


def record(*calls: str, pos: int = 100, ref: str = "A", alt: str = "G", fmt: str = "GT", chrom: str = "1"):
    return "\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", ".", fmt, *calls])


def parse(lines, n_samples=None, first_line_number=10, **kwargs):
    if n_samples is None:
        n_samples = len(lines[0].split("\t")) - 9
    return parse_vcf_records(
        lines, n_samples=n_samples, source=SRC, first_line_number=first_line_number, **kwargs
    )


def dosages(table: pa.Table) -> np.ndarray:
    """The dosage column as an int8 matrix of shape (n_rows, n_samples)."""
    return np.array([np.frombuffer(b, dtype=np.int8) for b in table.column("dosages").to_pylist()])


def assert_input_error(error: pytest.ExceptionInfo, line: int, *words: str) -> None:
    assert error.value.source == SRC
    assert error.value.line == line
    for word in words:
        assert word in error.value.problem
    assert SRC in str(error.value) and f"line {line}" in str(error.value)


# --- header ---------------------------------------------------------------------------------


def test_parse_vcf_header__samples_contigs_and_line_count():
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1,length=1000>",
        '##contig=<ID=chr2,assembly="a, b">',
        f"{CHROM}\tS1\tS2",
    ]
    header = parse_vcf_header(lines, SRC)
    assert header.samples == ["S1", "S2"]
    assert header.n_samples == 2
    assert header.contigs == {"chr1": 1000, "chr2": None}
    assert header.n_header_lines == 4
    assert header.meta == lines[:3]


def test_parse_vcf_header__stops_after_chrom_line():
    lines = iter(["##fileformat=VCFv4.2\n", f"{CHROM}\tS1\n", record("0/1") + "\n"])
    header = parse_vcf_header(lines, SRC)
    assert header.n_header_lines == 2
    assert next(lines).startswith("1\t100")


def test_parse_vcf_header__data_line_before_chrom_line():
    with pytest.raises(InputError) as error:
        parse_vcf_header(["##fileformat=VCFv4.2", record("0/1")], SRC)
    assert_input_error(error, 2, "#CHROM")


def test_parse_vcf_header__file_ends_without_chrom_line():
    with pytest.raises(InputError, match="missing the '#CHROM' header line") as error:
        parse_vcf_header(["##fileformat=VCFv4.2"], SRC)
    assert error.value.source == SRC


def test_parse_vcf_header__duplicate_sample_names():
    with pytest.raises(InputError) as error:
        parse_vcf_header([f"{CHROM}\tS1\tS2\tS1"], SRC)
    assert_input_error(error, 1, "duplicate sample names: S1")


def test_parse_vcf_header__no_samples():
    for line in (CHROM, CHROM.rsplit("\t", 1)[0]):
        with pytest.raises(InputError) as error:
            parse_vcf_header([line], SRC)
        assert_input_error(error, 1, "no samples")


def test_parse_vcf_header__space_separated_chrom_line():
    with pytest.raises(InputError) as error:
        parse_vcf_header([CHROM.replace("\t", " ") + " S1"], SRC)
    assert_input_error(error, 1, "tab-separated")


# --- records: dosages --------------------------------------------------------------------------


def test_parse_vcf_records__diploid_unphased_and_phased():
    table = parse([record("0/0", "0/1", "1/0", "1/1", "0|1", "1|0", "1|1", "0|0")])
    assert dosages(table).tolist() == [[0, 1, 1, 2, 1, 1, 2, 0]]


def test_parse_vcf_records__missing_calls_including_half_missing():
    table = parse([record(".", "./.", ".|.", "0/.", ".|1", "1/.", "0/1")])
    assert dosages(table).tolist() == [[-1, -1, -1, -1, -1, -1, 1]]


def test_parse_vcf_records__haploid_calls():
    table = parse([record("0", "1", ".", "0/1"), record("1", "1", "0", "0", pos=200)])
    assert dosages(table).tolist() == [[0, 1, -1, 1], [1, 1, 0, 0]]


def test_parse_vcf_records__multiallelic_record_is_split_per_alt():
    table = parse([record("1/2", "0|2", "2/2", "./.", "0/0", "1", "2", alt="T,C")])
    assert table.column("alt").to_pylist() == ["T", "C"]
    assert table.column("pos").to_pylist() == [100, 100]
    assert dosages(table).tolist() == [
        [1, 0, 0, -1, 0, 1, 0],  # ALT 1 (T): count of alleles == 1
        [1, 1, 2, -1, 0, 0, 1],  # ALT 2 (C): count of alleles == 2
    ]


def test_parse_vcf_records__multi_digit_allele_indices():
    alts = ",".join(["C", "G", "T", "CA", "CC", "CG", "CT", "GA", "GC", "GG", "GT"])
    table = parse([record("0/11", "10|11", "11", alt=alts)])
    got = dosages(table)
    assert got.shape == (11, 3)
    assert got[10].tolist() == [1, 1, 1]  # ALT 11
    assert got[9].tolist() == [0, 1, 0]  # ALT 10
    assert not got[:9].any()


def test_parse_vcf_records__other_format_fields():
    lines = [
        record("0/1:12:99", "1/1:3:20", "./.:0:0", fmt="GT:DP:GQ"),
        record("12:0|1", "3:1", ".", fmt="DP:GT", pos=200),  # '.' drops GT: missing
        record("0/1", "1/1:7", "1", fmt="GT:DP", pos=300),  # trailing fields may be dropped
    ]
    assert dosages(parse(lines)).tolist() == [[1, 2, -1], [1, 1, -1], [1, 2, 1]]


def test_parse_vcf_records__columns_and_types():
    table = parse([record("0/1", chrom="chr7", pos=12345, ref="ac", alt="t")])
    assert table.schema == VCF_RECORD_SCHEMA
    row = table.to_pylist()[0]
    assert row == {"contig": "chr7", "pos": 12345, "id": ".", "ref": "AC", "alt": "T", "dosages": b"\x01"}


def test_parse_vcf_records__reference_only_site_gives_no_row():
    table = parse([record("0/0", "0", alt="."), record("0/1", "1/1", pos=200)])
    assert table.column("pos").to_pylist() == [200]


def test_parse_vcf_records__line_numbers_column():
    lines = [record("0/1"), "", record("1/2", alt="T,C", pos=200)]
    table = parse(lines, first_line_number=7, with_line_numbers=True)
    assert table.column("line").to_pylist() == [7, 9, 9]


def test_parse_vcf_records__empty_chunk():
    table = parse_vcf_records([], n_samples=3, source=SRC, first_line_number=1)
    assert table.num_rows == 0 and table.schema == VCF_RECORD_SCHEMA


def test_parse_vcf_records__line_ends_and_crlf_are_stripped():
    table = parse([record("0/1", "1/1") + "\r\n", record("0|0", "./.", pos=200) + "\n"])
    assert dosages(table).tolist() == [[1, 2], [0, -1]]


def _reference_decode(call: str, k: int) -> int:
    """Per-genotype reference decoder (test oracle only)."""
    gt = call.split(":")[0]
    alleles = gt.replace("|", "/").split("/")
    if "." in alleles:
        return -1
    return sum(int(a) == k for a in alleles)


def test_parse_vcf_records__fast_and_general_paths_agree_with_oracle():
    rng = np.random.default_rng(7)
    pool = np.array(["0/0", "0/1", "1/1", "1|0", "0|2", "2/2", "./.", "0/.", ".", "1", "2", "0"])
    n_samples = 50
    calls = pool[rng.integers(0, 9, size=(40, n_samples))]  # mostly diploid: the fast path
    calls[5:10] = pool[rng.integers(0, len(pool), size=(5, n_samples))]  # haploid mixed in
    lines = [record(*row, pos=i + 1, alt="T,C") for i, row in enumerate(calls)]
    with_dp = [
        record(*(f"{c}:9" for c in row), pos=i + 1, alt="T,C", fmt="GT:DP") for i, row in enumerate(calls)
    ]
    expected = np.array([[_reference_decode(c, k) for c in row] for row in calls for k in (1, 2)])
    assert (dosages(parse(lines)) == expected).all()
    assert (dosages(parse(with_dp)) == expected).all()


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()])
def test_decode_vcf_block__arrow_slice_reads_like_python_lines(arrow_type):
    """Spark hands the decoder slices of Arrow batches: offsets into a shared buffer, read in place."""
    rng = np.random.default_rng(3)
    pool = np.array(["0/0", "0|1", "1/1", "./.", "1", "0/.", "10/1"])
    calls = pool[rng.integers(0, len(pool), size=(30, 7))]
    calls[::3] = pool[rng.integers(0, 3, size=(10, 7))]  # whole lines of one-digit diploid calls
    lines = ["junk before the block", *(record(*row, pos=i + 1, alt=",".join(["T"] * 10)) for i, row in
                                         enumerate(calls)), "junk after"]
    batch = pa.array(lines, type=arrow_type)
    from_arrow = decode_vcf_block(batch.slice(1, 30), n_samples=7, source=SRC, first_line_number=2,
                                  with_line_numbers=True).table
    from_python = decode_vcf_block(lines[1:31], n_samples=7, source=SRC, first_line_number=2,
                                   with_line_numbers=True).table
    assert from_arrow.equals(from_python)
    assert from_arrow.num_rows == 300


@pytest.mark.parametrize("calls, expected", [
    (["0/1", "1/1", "0|0", "1"], [1, 2, 0, 1]),  # a haploid call last: the line is not fixed-width
    (["0/1", "./.", "0|.", "1/0"], [1, -1, -1, 1]),  # missing alleles stay on the one-pass decode
    (["0/1", "1/1", "0/0", "0/1\t"], None),  # a trailing tab is a fifth (empty) column
])
def test_decode_vcf_block__one_pass_decode_edges(calls, expected):
    line = record(*calls[:-1], calls[-1])
    if expected is None:
        with pytest.raises(InputError) as error:
            parse([line], n_samples=4)
        assert_input_error(error, 10, "expected 13 tab-separated columns", "found 14")
    else:
        assert dosages(parse([line], n_samples=4)).tolist() == [expected]


def test_decode_vcf_block__fixed_width_line_with_a_space_for_a_tab():
    """Exactly 4 n - 1 bytes of calls, yet one column short: found by the one-pass decode too."""
    with pytest.raises(InputError) as error:
        parse([record("0/1", "1/1 0/0")], n_samples=3)
    assert_input_error(error, 10, "expected 12 tab-separated columns", "found 11")


# --- records: errors ----------------------------------------------------------------------------


def test_parse_vcf_records__wrong_column_count():
    with pytest.raises(InputError) as error:
        parse([record("0/1", "0/1"), record("0/1", pos=200)], n_samples=2)
    assert_input_error(error, 11, "expected 11 tab-separated columns", "found 10")


def test_parse_vcf_records__too_few_fixed_columns():
    with pytest.raises(InputError) as error:
        parse(["1\t100\t.\tA"], n_samples=2)
    assert_input_error(error, 10, "found 4")


def test_parse_vcf_records__non_integer_pos():
    with pytest.raises(InputError) as error:
        parse([record("0/1"), record("0/1").replace("\t100\t", "\t1e5\t")])
    assert_input_error(error, 11, "POS '1e5' is not a positive integer")


def test_parse_vcf_records__bad_ref():
    with pytest.raises(InputError) as error:
        parse([record("0/1", ref="AXG")])
    assert_input_error(error, 10, "REF 'AXG'")


def test_parse_vcf_records__bad_alt():
    with pytest.raises(InputError) as error:
        parse([record("0/1", alt="G,R")])
    assert_input_error(error, 10, "ALT allele 'R'")


@pytest.mark.parametrize("alt, kept, n_skipped", [
    ("<DEL>", [], 1), ("*", [], 1), ("G,*", ["G"], 1), ("G]17:198982]", [], 1), ("<*>,T,<DUP>", ["T"], 2),
])
def test_decode_vcf_block__symbolic_alts_skipped_and_counted(alt, kept, n_skipped):
    block = decode_vcf_block([record("0/1", "1/1", alt=alt)], n_samples=2, source=SRC, first_line_number=1)
    assert block.table.column("alt").to_pylist() == kept
    assert block.n_skipped_alts == n_skipped


def test_decode_vcf_block__skipped_alt_keeps_allele_numbering():
    # ALT '*' is allele 1, T allele 2: the T row counts the 2s only.
    block = decode_vcf_block([record("1/2", "2/2", "0/1", alt="*,T")], n_samples=3, source=SRC, first_line_number=1)
    assert dosages(block.table).tolist() == [[1, 2, 0]]


def test_decode_vcf_block__ds_gives_dosage_without_gt():
    lines = [record("0.1", "1.6", ".", fmt="DS"), record("0.4,1.2", "2,0", "1.9,.", fmt="DS", alt="G,T", pos=200)]
    block = decode_vcf_block(lines, n_samples=3, source=SRC, first_line_number=1)
    assert dosages(block.table).tolist() == [[0, 2, -1], [0, 2, 2], [1, 0, -1]]


def test_decode_vcf_block__min_gq_and_min_dp_set_calls_missing():
    lines = [record("0/1:30:12", "1/1:5:40", "0/0:.:3", "0/1", fmt="GT:GQ:DP")]
    table = decode_vcf_block(lines, n_samples=4, source=SRC, first_line_number=1, min_gq=20).table
    assert dosages(table).tolist() == [[1, -1, 0, 1]]  # GQ '.' and a cut-short field are kept, as plink2
    table = decode_vcf_block(lines, n_samples=4, source=SRC, first_line_number=1, min_dp=10).table
    assert dosages(table).tolist() == [[1, 2, -1, 1]]


def test_decode_vcf_block__mean_dp_and_gq():
    lines = [record("0/1:30:12", "1/1:5:40", "0/0:.:3", fmt="GT:GQ:DP"), record("0/1", "0/0", "./.", pos=200)]
    table = decode_vcf_block(lines, n_samples=3, source=SRC, first_line_number=1, with_call_stats=True).table
    assert table.column("mean_gq").to_pylist() == [17.5, None]
    assert table.column("mean_dp").to_pylist() == [pytest.approx(55 / 3), None]


@pytest.mark.parametrize("fmt, call, key", [("GT:GQ", "0/1:x", "GQ"), ("GT:DP", "0/1:1e", "DP"), ("DS", "abc", "DS")])
def test_decode_vcf_block__malformed_number_field(fmt, call, key):
    lines = [record("0/1", "0/0"), record(call.replace("x", "30").replace("1e", "3").replace("abc", "1"), call,
                                          fmt=fmt, pos=200)]
    with pytest.raises(InputError) as error:
        decode_vcf_block(lines, n_samples=2, source=SRC, first_line_number=10, min_gq=1, min_dp=1)
    assert_input_error(error, 11, f"cannot parse {key}", "sample 2")
    assert error.value.record == "1:200"


def test_parse_vcf_records__allele_index_out_of_range():
    with pytest.raises(InputError) as error:
        parse([record("0/1", "0/1"), record("0/1", "1|2", pos=200)])
    assert_input_error(error, 11, "'1|2'", "sample 2", "only 1 ALT")
    assert error.value.record == "1:200"


@pytest.mark.parametrize("bad", ["0/x", "0//1", "", "a", "0/1/", "-1/0", "0 /1"])
def test_parse_vcf_records__unparseable_gt(bad):
    with pytest.raises(InputError) as error:
        parse([record("0/1", "0/0"), record("0/1", bad, pos=200, fmt="GT:DP")])
    assert_input_error(error, 11, "cannot parse GT", "sample 2")


def test_parse_vcf_records__ploidy_above_two():
    with pytest.raises(InputError) as error:
        parse([record("0/1/1")])
    assert_input_error(error, 10, "ploidy 3")


def test_parse_vcf_records__no_gt_in_format():
    with pytest.raises(InputError) as error:
        parse([record("12", fmt="DP")])
    assert_input_error(error, 10, "FORMAT 'DP' has neither a GT nor a DS")


def test_parse_vcf_records__earliest_bad_line_is_reported():
    # A genotype error (line 11) is found after the column error (line 12) but comes first.
    lines = [record("0/1", "0/1"), record("0/1", "0/3", pos=200), record("0/1", pos=300)]
    with pytest.raises(InputError) as error:
        parse(lines, n_samples=2)
    assert_input_error(error, 11, "allele 3")


# --- lines and whole files ----------------------------------------------------------------------


def test_iter_vcf_lines__plain_gzip_and_bgzip_members():
    text = (DATA / "tiny.vcf").read_bytes()
    half = len(text) // 2
    members = gzip.compress(text[:half]) + gzip.compress(text[half:])  # bgzip is multi-member gzip
    expected = text.decode().splitlines()
    for blob in (text, gzip.compress(text), members):
        assert list(iter_vcf_lines(io.BytesIO(blob), SRC)) == expected


def test_iter_vcf_lines__truncated_gzip():
    blob = gzip.compress((DATA / "tiny.vcf").read_bytes())
    with pytest.raises(InputError, match="truncated") as error:
        list(iter_vcf_lines(io.BytesIO(blob[:-12]), SRC))
    assert error.value.source == SRC


def test_iter_vcf_lines__invalid_utf8_names_line():
    with pytest.raises(InputError) as error:
        list(iter_vcf_lines(io.BytesIO(b"##a\n##b\xff\n"), SRC))
    assert error.value.line == 2


def test_parse_vcf_records__whole_fixture_file():
    lines = iter_vcf_lines(io.BytesIO(gzip.compress((DATA / "tiny.vcf").read_bytes())), SRC)
    header = parse_vcf_header(lines, SRC)
    assert header.contigs == {"chr1": 1000, "chr2": 500}
    table = parse_vcf_records(
        list(lines),
        n_samples=header.n_samples,
        source=SRC,
        first_line_number=header.n_header_lines + 1,
        with_line_numbers=True,
    )
    assert table.column("alt").to_pylist() == ["G", "T", "A", "G"]
    assert table.column("line").to_pylist() == [7, 8, 8, 9]
    assert dosages(table).tolist() == [[0, 1, 2], [1, 0, -1], [1, 1, -1], [1, -1, 1]]

"""Fuzzing the VCF parser the way the API meets it: `genotypes_from_vcf` (POST /predict/vcf), which runs
`iter_vcf_lines`, `parse_vcf_header` and `parse_vcf_records`; and `decode_vcf_block` on multi-sample
records, as preprocess decodes them."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given

from genoflow.io.vcf import decode_vcf_block, iter_vcf_lines, parse_vcf_header
from genoflow.serving.errors import InputProblem
from genoflow.serving.vcf_upload import VcfCaps, genotypes_from_vcf
from tests.fuzz.conftest import FUZZ, TIMEOUT_S, inputs, only_input_errors, plain_size

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

SOURCE = "fuzz/patient.vcf.gz"
# The API's caps, small enough that the fuzzer reaches them (the 413 path) as well as the parser's errors.
CAPS = VcfCaps(max_bytes=4096, max_line_bytes=512, max_header_lines=8, max_records=6)
HEADER = (b"##fileformat=VCFv4.2\n##contig=<ID=chr1,length=1000>\n"
          b'##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
VALID = HEADER + (b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
                  b"chr1\t10\trs1\tA\tG\t50\tPASS\t.\tGT\t0/1\n"
                  b"chr1\t20\t.\tC\tT,A\t50\tPASS\tAC=3\tGT:DP:GQ\t1|2:10:30\n"
                  b"chr1\t30\t.\tGT\tG,<DEL>\t.\t.\t.\tDS\t0.7\n")
VALID_MULTI = HEADER + (b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n"
                        b"chr1\t10\trs1\tA\tG\t50\tPASS\t.\tGT\t0/0\t0/1\t1/1\n"
                        b"chr1\t20\t.\tC\tT,A\t50\tPASS\tAC=3\tGT:DP\t1/2:10\t0|2:7\t./.:0\n"
                        b"chr2\t5\trs3\tGT\tG\t.\t.\t.\tGT\t0|1\t.\t1\n")
META = [b"##fileformat=VCFv4.2", b"##contig=<ID=chr1,length=1000>", b"##contig=<ID=,length=x>", b"##contig=chr1",
        b"##INFO=<ID=AC>", b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
        b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS1", b"#CHROM\tPOS\tID\tREF\tALT"]
COLUMNS = [
    [b"chr1", b"1", b"chrM", b"X"],
    [b"1", b"10", b"0", b"-5", b"2147483648", b"1e3"],
    [b".", b"rs1"],
    [b"A", b"ACGT", b"N", b"a", b"<DEL>", b"*"],
    [b"G", b"T,A", b".", b"<DEL>", b"G]chr1:5]", b"*", b"T,,A", b"AC"],
    [b"50", b"."],
    [b"PASS", b"."],
    [b".", b"AC=3", b"DP=1;AF=0.5"],
    [b"GT", b"GT:DP", b"DS", b"GT:DS:GQ", b"DP", b"GT:GT", b""],
    [b"0/1", b"1|1", b"./.", b"0", b"1/2:10", b"0/1/1", b"3/0", b"0.5", b"1:nan:99", b"|", b"0/", b"/1", b".|."],
]


# Inputs that broke the parser before (kept as explicit examples, run first every time).
HUGE_POS = VALID.replace(b"chr1\t20\t", b"chr1\t" + b"9" * 34 + b"\t")  # OverflowError in the int64 pos column
LONG_GT = VALID.replace(b"GT\t0/1", b"GT\t" + b"A" * 300 + b"0/1")  # IndexError in _well_formed


def test_vcf_upload(counter):
    @FUZZ
    @example(HUGE_POS)
    @example(LONG_GT)
    @given(inputs(VALID, META, COLUMNS) | inputs(VALID_MULTI, META, COLUMNS + [COLUMNS[-1]] * 2))
    def run(data):
        counter()
        size = plain_size(data)
        out = _upload(data)
        if out is not None:
            assert len(out) <= size and all(-1 <= dosage <= 2 for dosage in out.values())
        table = only_input_errors(lambda: _decode(data), SOURCE)
        if table is not None:
            assert table.num_rows <= size and table.nbytes <= 64 * size + 4096

    run()
    counter.check("VCF (genotypes_from_vcf + decode_vcf_block)")


def _upload(data: bytes) -> dict | None:
    """What /predict/vcf makes of ``data``: dosages, or None for a 413/422 naming the upload."""
    try:
        return genotypes_from_vcf(io.BytesIO(data), SOURCE, keep=None, caps=CAPS)
    except InputProblem as error:
        assert error.status in (413, 422) and all(SOURCE in problem for problem in error.problems), error.problems
        return None


def _decode(data: bytes):
    lines = iter_vcf_lines(io.BytesIO(data), SOURCE)
    header = parse_vcf_header(lines, SOURCE)
    block = decode_vcf_block(list(lines), n_samples=header.n_samples, source=SOURCE,
                             first_line_number=header.n_header_lines + 1, with_line_numbers=True,
                             with_call_stats=True, min_gq=20, min_dp=5)
    return block.table

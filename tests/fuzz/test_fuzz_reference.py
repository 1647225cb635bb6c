"""Fuzzing the reference FASTA by index: `parse_fai`, `build_fai`, `open_reference` (plain or bgzip, with or
without a .fai/.gzi beside it) and `check_ref_alleles` with hostile REF alleles and positions."""

from __future__ import annotations

import gzip
import io
import logging

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import example, given
from hypothesis import strategies as st

from genoflow.io.fasta import check_ref_alleles
from genoflow.io.reference import build_fai, open_reference, parse_fai
from genoflow.storage.ranged import RangedFile
from tests.fuzz.conftest import FUZZ, HOSTILE, TIMEOUT_S, inputs, mutated, only_input_errors

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

FASTA = b">chr1 test contig\nACGTACGTAC\nGTACGTAC\n>chr2\nNNNNacgtNN\nAC\n>MT\nGATC\n"
FAI = build_fai(io.BytesIO(FASTA), source="valid").to_text().encode()
META = [b">chr1", b">chr2 x", b">", b"> ", b">chr1\r", b"", b";comment"]
COLUMNS = [[b"ACGTACGTAC", b"ACGT", b"NNNN", b"acgtn", b"RYKM", b"AC GT", b"AC-GT", b"*"]]
FAI_META = [b"chr1\t18\t18\t10\t11", b"chr1\t18\t18\t10\t11\t0", b"chrX\t1\t0\t1\t2"]
FAI_COLUMNS = [[b"chr1", b"chr2", b"MT", b""], [b"18", b"12", b"0", b"4"], [b"18", b"43", b"0", b"50"],
               [b"10", b"4", b"1"], [b"11", b"5", b"12", b"2"]]
QUERY = "fuzz/query.vcf"
_contig = st.sampled_from(["chr1", "1", "chr2", "2", "MT", "chrM", "chrX", ""])
_pos = st.integers(-2, 30) | st.sampled_from([2**31, 2**62, -(2**62)])
_ref = st.sampled_from(["A", "C", "G", "T", "N", "acgt", "ACGTACGTACGTACGTACGT", "", "X", "<DEL>", "\x00"])
QUERIES = st.lists(st.tuples(_contig, _pos, _ref), min_size=1, max_size=5)
SETUPS = st.sampled_from(["plain", "plain+fai", "bgzip+gzi", "bgzip+fuzzed_gzi", "bgzip", "gzip"])


# Inputs that broke the parsers before (run first every time): a .fai field past int64 (OverflowError);
# one that fits int64 but whose byte offsets wrap around (a CRLF FASTA of 1-base lines is 3 bytes a base).
HUGE_FAI = b"\t0\t0\t1\t9223372036854775808"
WRAPPING_FAI = f"chr1\t{2**62}\t7\t1\t3\n".encode()


def test_reference(counter, tmp_path):
    @FUZZ
    @example(b"", "plain+fai", HUGE_FAI, b"", [("chr1", 1, "A")])
    @example(b">chr1\r\nA\r\nC\r\nG\r\n", "plain+fai", WRAPPING_FAI, b"", [("chr1", 2**40, "A")])
    @given(inputs(FASTA, META, COLUMNS, sep=b"\n", gzip_ok=False), SETUPS,
           inputs(FAI, FAI_META, FAI_COLUMNS, gzip_ok=False), st.sampled_from(HOSTILE) | mutated(b"\0" * 8), QUERIES)
    def run(fasta_bytes, setup, fai_bytes, gzi_bytes, queries):
        counter()
        fasta = tmp_path / "ref.fa"
        for stale in (tmp_path / "ref.fa.fai", tmp_path / "ref.fa.gzi"):
            stale.unlink(missing_ok=True)
        fasta.write_bytes(_compressed(fasta_bytes, setup))
        if setup == "plain+fai":
            (tmp_path / "ref.fa.fai").write_bytes(fai_bytes)
        if setup.startswith("bgzip+"):
            (tmp_path / "ref.fa.gzi").write_bytes(b"\0" * 8 if setup == "bgzip+gzi" else gzi_bytes)
        sources = [str(fasta), str(tmp_path / "ref.fa.fai"), str(tmp_path / "ref.fa.gzi")]

        built = only_input_errors(lambda: build_fai(io.BytesIO(fasta_bytes), source=sources[0]), sources[0])
        if built is not None:
            assert len(built.names) <= fasta_bytes.count(b">") and int(built.lengths.sum()) <= len(fasta_bytes)
        parsed = only_input_errors(lambda: parse_fai(fai_bytes.decode("latin-1"), source=sources[1]), sources[1])
        if parsed is not None:
            assert len(parsed.names) <= len(fai_bytes.decode("latin-1").splitlines())
        reference = only_input_errors(lambda: open_reference(RangedFile(str(fasta))), *sources)
        if reference is not None:
            _query(reference, queries, sources, len(fasta_bytes))

    log = logging.getLogger("genoflow.io.reference")
    level = log.level
    log.setLevel(logging.ERROR)  # not thousands of "stale .fai, rebuilding" lines
    try:
        run()
    finally:
        log.setLevel(level)
    counter.check("reference FASTA (parse_fai + build_fai + open_reference + check_ref_alleles)")


def _compressed(data: bytes, setup: str) -> bytes:
    if setup == "gzip":
        return gzip.compress(data, mtime=0)
    if not setup.startswith("bgzip"):
        return data
    out = io.BytesIO()
    writer = bgzf.BgzfWriter(fileobj=out, mode="wb")
    writer.write(data)
    writer.flush()
    out.write(bgzf._bgzf_eof)
    return out.getvalue()


def _query(reference, queries, sources, file_size: int) -> None:
    """Every contig fetched (as far as the file could hold it: an index may claim more), then the REF
    check of hostile records."""
    for name in reference.names:
        end = min(reference.length(name), 3 * file_size + 3)
        bases = only_input_errors(lambda: reference.fetch(name, 0, end), *sources)  # noqa: B023
        assert bases is None or len(bases) == end
    contig, pos, ref = (np.array(column, dtype=object) for column in zip(*queries, strict=True))
    only_input_errors(lambda: check_ref_alleles(reference, contig, pos.astype(np.int64), ref, source=QUERY,
                                                line_numbers=np.arange(len(queries)) + 7), QUERY, *sources)

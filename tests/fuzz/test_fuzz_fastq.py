"""Fuzzing the FASTQ parser: `fastq_read_qc` and `iter_fastq_records` on the same inputs."""

from __future__ import annotations

import io

import pytest
from hypothesis import given

from genoflow.io.fastq import FASTQ_QC_KEYS, fastq_read_qc, iter_fastq_records
from tests.fuzz.conftest import FUZZ, TIMEOUT_S, inputs, only_input_errors, plain_size
from tests.unit.io.test_fastq_fast_path import assert_same

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

SOURCE = "fuzz/reads_R1.fastq.gz"
VALID = (b"@r1 1:N:0:1\nACGTNACGTA\n+\nIIIIIHHH#!\n"
         b"@r2\nGGCCAAT\n+r2\n~~~~~~~\n"
         b"@r3\nACGT\nAC\n+\nIIII\nII\n")
# Grammar: "fields" are whole lines here (sep is the newline), records are 4-line reads or stray lines.
META = [b"@r1", b"@r2 extra", b"+", b"+r1", b"@", b"", b">r1"]
COLUMNS = [[b"@r1\nACGT\n+\nIIII", b"@r2\nAC\n+\n!!", b"@r3\nNNNN\n+\n####", b"ACGT", b"+", b"IIII", b"@x"]]


def test_fastq_parsers(counter):
    @FUZZ
    @given(inputs(VALID, META, COLUMNS, sep=b"\n"))
    def run(data):
        counter()
        size = plain_size(data)
        qc = only_input_errors(lambda: fastq_read_qc(io.BytesIO(data), source=SOURCE), SOURCE)
        if qc is not None:
            assert set(qc) == set(FASTQ_QC_KEYS)
            assert 1 <= qc["n_reads"] and qc["n_bases"] <= size
        records = only_input_errors(lambda: list(iter_fastq_records(io.BytesIO(data), SOURCE)), SOURCE)
        if records is not None:
            assert len(records) <= size
            assert sum(len(title) + len(seq) + len(qual) for title, seq, qual, _ in records) <= size
        assert (qc is None) == (records is None or not records), "fastq_read_qc and iter_fastq_records disagree"
        assert_same(data, batch_reads=2, piece_bytes=64)  # the four-line reader gives what Biopython's path gives

    run()
    counter.check("FASTQ (fastq_read_qc + iter_fastq_records)")

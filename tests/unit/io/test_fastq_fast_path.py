"""The four-line reader of `iter_fastq_batches` against Biopython's path on the same bytes.

The fast reader must give exactly what Biopython's (line-counting) path gives: the same batches, the same
line numbers, the same error. Small pieces and batches put record and batch boundaries everywhere.
"""

from __future__ import annotations

import gzip
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genoflow.errors import InputError
from genoflow.io import fastq
from genoflow.io._streams import LineCounter, open_text

SOURCE = "patient_data/P1/genome_sequence_R1.fastq.gz"


def outcome(batches_of, data: bytes, batch_reads: int):
    """Every batch's records (titles, lines, four-line flags, bytes), then the error's text if one was raised."""
    got = []
    try:
        for batch in batches_of(io.BytesIO(data), batch_reads):
            n = len(batch.titles)
            got.append((batch.titles, list(batch.first_line), batch.four_lines or [True] * n,
                        batch.sequence_bytes.tobytes(), batch.quality_bytes.tobytes(), batch.lengths.tolist()))
    except InputError as error:
        got.append(("error", str(error)))
    return got


def fast(stream, batch_reads):
    return fastq.iter_fastq_batches(stream, SOURCE, batch_reads=batch_reads)


def biopython(stream, batch_reads):
    handle = LineCounter(open_text(stream, SOURCE, encoding="latin-1"), SOURCE, keep=True)
    return fastq._biopython_batches(handle, SOURCE, batch_reads)


def assert_same(data: bytes, batch_reads: int, piece_bytes: int) -> list:
    old = fastq._PIECE_BYTES
    fastq._PIECE_BYTES = piece_bytes
    try:
        got = outcome(fast, data, batch_reads)
    finally:
        fastq._PIECE_BYTES = old
    assert got == outcome(biopython, data, batch_reads)
    return got


RECORD = st.tuples(st.text("ACGTNacgtn", max_size=12), st.sampled_from(["r", "r/1", "r x y", "r\t z", "", "r "]))
# What can go wrong with a record, as sequencers, scripts and truncated copies do it.
DAMAGE = st.sampled_from([None] * 8 + ["wrap", "plus_title", "no_plus", "short_qual", "long_qual", "bad_base",
                                       "bad_qual", "crlf", "blank", "no_at", "trailing_space", "cut"])


def record_text(i: int, sequence: str, title: str, damage: str | None) -> str:
    quality = "".join(chr(33 + (7 * i + j) % 42) for j in range(len(sequence)))
    head, plus = f"@{title}{i}", "+"
    if damage == "wrap" and len(sequence) > 2:
        return f"{head}\n{sequence[:2]}\n{sequence[2:]}\n+\n{quality[:3]}\n{quality[3:]}\n"
    if damage == "plus_title":
        plus = f"+{title}{i}"
    if damage == "no_plus":
        return f"{head}\n{sequence}\n{quality}\n"
    if damage == "short_qual":
        quality = quality[:-1]
    if damage == "long_qual":
        quality += "I"
    if damage == "bad_base":
        sequence += "X"
        quality += "I"
    if damage == "bad_qual":
        quality = quality[:-1] + " " if quality else quality
    if damage == "no_at":
        head = head[1:]
    if damage == "trailing_space":
        sequence += " "
    text = f"{head}\n{sequence}\n{plus}\n{quality}\n"
    if damage == "crlf":
        text = text.replace("\n", "\r\n")
    if damage == "blank":
        text += "\n"
    if damage == "cut":
        text = text[: len(text) // 2]
    return text


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(RECORD, DAMAGE), max_size=14), st.integers(1, 5), st.integers(1, 90), st.booleans(),
       st.booleans())
def test_fast_reader_gives_what_biopython_gives(records, batch_reads, piece_bytes, compress, no_final_newline):
    text = "".join(record_text(i, seq, title, damage) for i, ((seq, title), damage) in enumerate(records))
    if no_final_newline:
        text = text.rstrip("\n")
    data = text.encode("latin-1")
    assert_same(gzip.compress(data) if compress else data, batch_reads, piece_bytes)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_gzip_names_the_same_line_as_biopython(cut):
    data = "".join(f"@r{i}\n{'ACGT' * 9}\n+\n{'I' * 36}\n" for i in range(3000)).encode()
    blob = gzip.compress(data)
    got = assert_same(blob[: int(len(blob) * cut)], batch_reads=500, piece_bytes=1 << 16)
    assert got[-1][0] == "error" and "gzip stream is truncated" in got[-1][1]


def test_plain_file_takes_the_four_line_reader(monkeypatch):
    """A regular file never reaches Biopython (else the fast path would silently be the slow one)."""
    data = "".join(f"@r{i} 1:N:0:1\nACGTN\n+\nIII#!\n" for i in range(40)).encode()
    monkeypatch.setattr(fastq, "_biopython_batches", None)
    batches = list(fastq.iter_fastq_batches(io.BytesIO(gzip.compress(data)), SOURCE, batch_reads=16))
    assert [len(b.titles) for b in batches] == [16, 16, 8]
    assert batches[2].first_line == [129 + 4 * i for i in range(8)]

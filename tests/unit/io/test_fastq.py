"""Tests of genoflow.io.fastq.fastq_read_qc, checked against Biopython's own FASTQ parser."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from Bio import SeqIO

from genoflow.errors import InputError
from genoflow.io.fastq import FASTQ_QC_KEYS, fastq_read_qc

SRC = "patient_data/P1/genome_sequence.fastq.gz"
GOOD = "@r1\nACGT\n+\nIIII\n@r2\nGGCA\n+\n!!!!\n"


BASE_WEIGHTS = [0.21] * 4 + [0.02] + [0.03] * 4 + [0.02]  # A C G T N a c g t n


def make_fastq(n_reads: int = 600, seed: int = 3) -> bytes:
    """Reads of varied lengths (0 to 180), all bases incl. lowercase and N, Phred 0..41."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_reads):
        length = int(rng.integers(0, 181)) if i % 50 else 0
        sequence = "".join(rng.choice(list("ACGTNacgtn"), size=length, p=BASE_WEIGHTS))
        quality = "".join(chr(33 + q) for q in rng.integers(0, 42, size=length))
        records.append(f"@read{i} extra words\n{sequence}\n+\n{quality}\n")
    return "".join(records).encode()


def biopython_summary(data: bytes) -> dict:
    records = list(SeqIO.parse(io.StringIO(data.decode()), "fastq"))
    sequences = "".join(str(r.seq) for r in records).upper()
    quals = np.concatenate([np.asarray(r.letter_annotations["phred_quality"]) for r in records])
    lengths = [len(r) for r in records]
    non_n = len(sequences) - sequences.count("N")
    return {
        "n_reads": len(records),
        "n_bases": len(sequences),
        "mean_length": len(sequences) / len(records),
        "mean_phred": float(quals.mean()),
        "gc_fraction": (sequences.count("G") + sequences.count("C")) / non_n,
        "n_rate": sequences.count("N") / len(sequences),
        "q30_fraction": float((quals >= 30).mean()),
        "min_length": min(lengths),
        "max_length": max(lengths),
    }


def qc(text: str | bytes, compress: bool = False) -> dict:
    data = text.encode() if isinstance(text, str) else text
    return fastq_read_qc(io.BytesIO(gzip.compress(data) if compress else data), source=SRC)


def error_of(text: str | bytes, compress: bool = False) -> InputError:
    with pytest.raises(InputError) as error:
        qc(text, compress)
    assert error.value.source == SRC
    assert SRC in str(error.value)
    return error.value


@pytest.mark.parametrize("compress", [False, True])
def test_fastq_read_qc__matches_biopython(compress):
    data = make_fastq()
    got = qc(data, compress)
    expected = biopython_summary(data)
    assert set(got) == set(FASTQ_QC_KEYS)
    for key in ("n_reads", "n_bases", "min_length", "max_length"):
        assert got[key] == expected[key], key
    for key in ("mean_length", "mean_phred", "gc_fraction", "n_rate", "q30_fraction"):
        assert got[key] == pytest.approx(expected[key], rel=1e-12), key


def test_fastq_read_qc__more_reads_than_one_batch(monkeypatch):
    monkeypatch.setattr("genoflow.io.fastq._BATCH_READS", 7)
    data = make_fastq(100, seed=5)
    got = qc(data)
    expected = biopython_summary(data)
    assert got["n_bases"] == expected["n_bases"]
    assert got["mean_phred"] == pytest.approx(expected["mean_phred"], rel=1e-12)


def test_fastq_read_qc__hand_checked_small_file():
    got = qc(GOOD)
    assert got == {
        "n_reads": 2,
        "n_bases": 8,
        "mean_length": 4.0,
        "mean_phred": 20.0,  # four 'I' (40) and four '!' (0)
        "gc_fraction": 5 / 8,  # C, G of ACGT and G, G, C of GGCA
        "n_rate": 0.0,
        "q30_fraction": 0.5,
        "min_length": 4,
        "max_length": 4,
    }


def test_fastq_read_qc__wrapped_multiline_records_and_crlf():
    wrapped = "@r1\nACGT\nAC\n+\nIIII\nII\n@r2\nGG\n+\n@@\n"
    got = qc(wrapped.replace("\n", "\r\n"))
    assert (got["n_reads"], got["n_bases"], got["max_length"]) == (2, 8, 6)


def test_fastq_read_qc__all_n_read_has_nan_gc():
    got = qc("@r1\nNNNN\n+\nIIII\n")
    assert got["n_rate"] == 1.0 and np.isnan(got["gc_fraction"])


# --- malformed records: every error names the file and the line --------------------------------


def test_fastq_read_qc__quality_shorter_than_sequence():
    error = error_of(GOOD + "@r3\nACGT\n+\nIII\n@r4\nACGT\n+\nIIII\n")
    assert error.line == 9
    assert "quality has 3 characters but the sequence has 4" in error.problem
    assert "Biopython" in error.problem


def test_fastq_read_qc__quality_longer_than_sequence():
    error = error_of(GOOD + "@r3\nACGT\n+\nIIIII\n")
    assert error.line == 9
    assert "quality has 5 characters" in error.problem


def test_fastq_read_qc__missing_plus_line():
    error = error_of(GOOD + "@r3\nACGT\nIIII\n@r4\nACGT\n+\nIIII\n")
    assert error.line == 11
    assert "missing the '+' separator line" in error.problem


def test_fastq_read_qc__missing_plus_line_lengths_coincide():
    # Biopython accepts this (the swallowed lines happen to add up); the line structure does not.
    error = error_of("@r1\nAC\nII\n@r2\nAC\n+\nIIIIIIIIIIII\n")
    assert error.line == 3
    assert "missing the '+' separator line" in error.problem


def test_fastq_read_qc__missing_at_header():
    error = error_of(GOOD + "r3\nACGT\n+\nIIII\n")
    assert error.line == 9
    assert "expected a '@' header line" in error.problem


def test_fastq_read_qc__first_line_not_a_header():
    error = error_of("r1\nACGT\n+\nIIII\n")
    assert error.line == 1
    assert "expected a '@' header line" in error.problem


@pytest.mark.parametrize("tail", ["@r3\n", "@r3\nACGT\n", "@r3\nACGT\n+\n"])
def test_fastq_read_qc__truncated_final_record(tail):
    error = error_of(GOOD + tail)
    assert error.line == 9
    assert "truncated record" in error.problem


def test_fastq_read_qc__final_quality_cut_short():
    error = error_of(GOOD + "@r3\nACGT\n+\nII")
    assert error.line == 9
    assert "truncated?" in error.problem


def test_fastq_read_qc__bad_sequence_character():
    error = error_of(GOOD + "@r3\nACXT\n+\nIIII\n")
    assert error.line == 10
    assert "'X' at column 3" in error.problem


def test_fastq_read_qc__bad_quality_character():
    error = error_of(GOOD + "@r3\nACGT\n+\nII I\n")
    assert error.line == 12
    assert "invalid quality character ' '" in error.problem


def test_fastq_read_qc__non_ascii_quality_character():
    error = error_of(GOOD.encode() + "@r3\nACGT\n+\nIII\u00e9\n".encode("latin-1"))
    assert error.line == 12


def test_fastq_read_qc__earlier_bad_record_reported_before_later_parse_error():
    error = error_of("@r1\nAXGT\n+\nIIII\n" + GOOD + "@r4\nACGT\n")
    assert error.line == 2


def test_fastq_read_qc__captions_differ():
    error = error_of("@r1\nACGT\n+r2\nIIII\n")
    assert error.line == 3


def test_fastq_read_qc__empty_file():
    for compress in (False, True):
        error = error_of("", compress)
        assert "no reads" in error.problem


def test_fastq_read_qc__truncated_gzip_stream():
    blob = gzip.compress(make_fastq(200))
    with pytest.raises(InputError, match="gzip stream is truncated") as error:
        fastq_read_qc(io.BytesIO(blob[: len(blob) // 2]), source=SRC)
    assert error.value.source == SRC and error.value.line > 1

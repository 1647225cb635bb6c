"""Tests of genoflow.reads.fastq_input: finding each patient's read files and reading them in chunks."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genoflow.errors import InputError
from genoflow.io.fastq import FastqBatch
from genoflow.reads.fastq_input import READ_FILES, ReadBlock, ReadSet, iter_read_chunks, patient_read_sets

R1, R2 = "P1/genome_sequence_R1.fastq.gz", "P1/genome_sequence_R2.fastq.gz"


def fastq(names: list[str], seed: int = 0, length: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    records = []
    for name in names:
        bases = "".join(rng.choice(list("ACGTacgtN"), size=length))
        quals = "".join(chr(33 + q) for q in rng.integers(2, 41, size=length))
        records.append(f"@{name}\n{bases}\n+\n{quals}\n")
    return "".join(records).encode()


def chunks(r1: bytes, r2: bytes | None, chunk_reads: int = 3):
    return list(iter_read_chunks(io.BytesIO(r1), None if r2 is None else io.BytesIO(gzip.compress(r2)),
                                 source_r1=R1, source_r2=R2, chunk_reads=chunk_reads))


def test_chunks_hold_every_read_in_order_with_mate_tags_and_comments_removed():
    names = [f"read{i}" for i in range(7)]
    r1 = fastq([f"{n}/1 comment here" for n in names], seed=1)
    r2 = fastq([f"{n}/2" for n in names], seed=2)
    got = chunks(r1, r2)
    assert [len(c) for c in got] == [3, 3, 1] and [c.index for c in got] == [0, 1, 2]
    assert [n for c in got for n in c.mate1.names] == names == [n for c in got for n in c.mate2.names]
    lines = r1.decode().splitlines()
    assert b"".join(c.mate1.sequences for c in got) == "".join(lines[1::4]).upper().encode()
    assert b"".join(c.mate1.qualities for c in got) == "".join(lines[3::4]).encode()
    assert [c.mate1.first_line for c in got] == [[1, 5, 9], [13, 17, 21], [25]]


def test_single_end_reads_have_no_mate_two():
    got = chunks(fastq(["a", "b"]), None)
    assert len(got) == 1 and got[0].mate2 is None and got[0].mate1.names == ["a", "b"]


def test_an_r2_that_ends_early_names_both_files_and_the_line():
    names = [f"r{i}" for i in range(5)]
    with pytest.raises(InputError) as error:
        chunks(fastq(names), fastq(names[:4]))
    assert error.value.source == R2 and error.value.line == 17
    assert R1 in error.value.problem and "'r4'" in error.value.problem and "line 17" in error.value.problem
    with pytest.raises(InputError) as error:  # the reverse, ending at a chunk boundary
        chunks(fastq(names[:3]), fastq(names))
    assert error.value.source == R1 and error.value.line == 13 and R2 in error.value.problem


def test_mates_out_of_order_name_both_files_and_lines():
    with pytest.raises(InputError) as error:
        chunks(fastq(["a", "b", "c", "d"]), fastq(["a", "b", "c", "e"]))
    assert error.value.source == R2 and error.value.line == 13
    assert "'e'" in error.value.problem and f"line 13 of {R1}" in error.value.problem


@pytest.mark.parametrize(("cut", "line"), [(5, 9), (40, 5)])  # records are 31 bytes
def test_a_truncated_fastq_names_the_file_and_line(cut, line):
    data = fastq(["a", "b", "c"])
    truncated = data[:len(data) - cut]
    with pytest.raises(InputError) as error:
        chunks(fastq(["a", "b", "c"]), truncated)
    assert error.value.source == R2 and error.value.line == line


def test_a_truncated_gzip_names_the_file():
    data = gzip.compress(fastq([f"r{i}" for i in range(200)]))
    with pytest.raises(InputError, match="gzip stream is truncated") as error:
        list(iter_read_chunks(io.BytesIO(data[:-30]), None, source_r1=R1, chunk_reads=50))
    assert error.value.source == R1 and error.value.line is not None


def test_an_empty_fastq_is_an_error():
    with pytest.raises(InputError, match="no reads"):
        chunks(b"", None)


def write(folder, name: str, data: bytes = b"@a\nACGT\n+\nIIII\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def test_read_sets_pair_r1_with_r2_and_skip_folders_without_reads(spark, tmp_path):
    write(tmp_path / "P2", "genome_sequence_R1.fastq.gz")
    write(tmp_path / "P2", "genome_sequence_R2.fastq.gz")
    write(tmp_path / "P1", "genome_sequence.fq")
    write(tmp_path / "P3", "genome_sequence_1.fastq")
    write(tmp_path / "P3", "genome_sequence_2.fastq")
    write(tmp_path / "P4", "clinical_data.csv")
    write(tmp_path / "P4", "genome_sequence.fastq.gz.md5")
    got = patient_read_sets(spark, tmp_path.as_uri())
    assert [s.patient for s in got] == ["P1", "P2", "P3"]
    assert got[0] == ReadSet("P1", got[0].r1) and got[0].r1.endswith("/P1/genome_sequence.fq")
    assert got[1].r1.endswith("/P2/genome_sequence_R1.fastq.gz")
    assert got[1].r2.endswith("/P2/genome_sequence_R2.fastq.gz")
    assert got[2].r1.endswith("_1.fastq") and got[2].r2.endswith("_2.fastq")
    assert "genome_sequence_R2.fq.gz" in READ_FILES and "genome_sequence.fastq.gz" in READ_FILES


@pytest.mark.parametrize(("files", "problem"), [
    (["genome_sequence_R1.fastq.gz"], "genome_sequence_R1.fastq.gz has no R2 file"),
    (["genome_sequence_2.fq.gz"], "genome_sequence_2.fq.gz has no R1 file"),
    (["genome_sequence.fastq.gz", "genome_sequence_R1.fastq.gz", "genome_sequence_R2.fastq.gz"],
     "both single-end and paired"),
    (["genome_sequence.fastq.gz", "genome_sequence.fastq"], "several read files"),
])
def test_read_sets_name_the_folder_of_an_incomplete_pair(spark, tmp_path, files, problem):
    for name in files:
        write(tmp_path / "P7", name)
    with pytest.raises(InputError, match=problem) as error:
        patient_read_sets(spark, tmp_path.as_uri())
    assert error.value.source.endswith("/P7")


def test_fastq_records_carry_their_first_line():
    from genoflow.io.fastq import iter_fastq_records

    data = b"@a x\nACGT\n+\nIIII\n@b\nAC\nGT\n+\n!!\n##\n@c\nA\n+\nI\n"
    assert list(iter_fastq_records(io.BytesIO(gzip.compress(data)), "f.fq.gz")) == [
        ("a x", "ACGT", "IIII", 1), ("b", "ACGT", "!!##", 5), ("c", "A", "I", 11)]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(st.sampled_from("ab/12 \t\x0b\xa0\x85"), max_size=10), min_size=1, max_size=8))
def test_read_names_are_the_first_word_without_a_mate_tag(titles):
    """The batch-wide regex gives what splitting each title would (Biopython's titles are right-stripped)."""
    import re

    titles = [t.rstrip() for t in titles if "\n" not in t]
    batch = FastqBatch(titles=titles, sequence_bytes=np.zeros(0, np.uint8), quality_bytes=np.zeros(0, np.uint8),
                       lengths=np.zeros(len(titles), np.int64))
    expected = [re.sub(r"/[12]$", "", t.split(None, 1)[0]) if t.split() else "" for t in titles]
    assert ReadBlock.from_batch(batch).names == expected

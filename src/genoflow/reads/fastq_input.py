"""Each patient's FASTQ file(s), found by name and read in chunks of reads (paired files in step).

A patient folder holds single-end reads (``genome_sequence.fastq.gz``) or paired ones
(``genome_sequence_R1.fastq.gz`` + ``genome_sequence_R2.fastq.gz``; ``_1``/``_2``, ``.fq`` and plain
text are accepted too). The records are parsed and checked by :mod:`genoflow.io.fastq` (errors name
the file and line); this module groups them into :class:`ReadChunk` s, flat arrays the aligner walks without a
Python object per read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import BinaryIO

import numpy as np

from genoflow.errors import InputError
from genoflow.io.fastq import FastqBatch, iter_fastq_batches

__all__ = ["READ_FILES", "ReadBlock", "ReadChunk", "ReadSet", "iter_read_chunks", "patient_read_sets"]

_STEM = "genome_sequence"
_MATE_SUFFIXES = {"": 0, "_R1": 1, "_R2": 2, "_1": 1, "_2": 2}
_EXTENSIONS = (".fastq.gz", ".fastq", ".fq.gz", ".fq")
READ_FILES = tuple(f"{_STEM}{suffix}{ext}" for suffix in _MATE_SUFFIXES for ext in _EXTENSIONS)
_READ_FILE = re.compile(rf"{_STEM}(?P<mate>_R?[12])?(?:\.fastq|\.fq)(?:\.gz)?")
_MATE_TAG = re.compile(r"/[12]$")


@dataclass(frozen=True)
class ReadSet:
    """One patient's reads: ``r2`` is None for single-end reads."""

    patient: str
    r1: str
    r2: str | None = None


def patient_read_sets(spark_or_storage, patient_uri: str) -> list[ReadSet]:
    """The read files of every ``<patient_uri>/<patient>/``, sorted by patient (the driver lists them).

    Parameters
    ----------
    spark_or_storage : SparkSession or HadoopStorage
        Whose Hadoop configuration lists the folder.
    patient_uri : str
        The folder of patient folders.

    Returns
    -------
    list of ReadSet
        One per patient folder holding reads; folders without any are left out.

    Raises
    ------
    InputError
        Naming the patient folder: an R1 without its R2 (or the reverse), single-end and paired files
        together, or two files for the same mate (e.g. ``.fastq`` and ``.fastq.gz``).
    """
    from genoflow.spark import glob_uris

    spark = getattr(spark_or_storage, "spark", spark_or_storage)
    folders: dict[str, dict[int, list[str]]] = {}
    for uri in glob_uris(spark, f"{patient_uri.rstrip('/')}/*/{_STEM}*"):
        folder, name = uri.rsplit("/", 1)
        match = _READ_FILE.fullmatch(name)
        if match:
            folders.setdefault(folder, {}).setdefault(_MATE_SUFFIXES[match["mate"] or ""], []).append(uri)
    return [_read_set(folder, files) for folder, files in sorted(folders.items(), key=lambda f: _patient(f[0]))]


def _patient(folder: str) -> str:
    return folder.rstrip("/").rsplit("/", 1)[-1]


def _read_set(folder: str, files: dict[int, list[str]]) -> ReadSet:
    """The single-end file or the R1/R2 pair of one folder, or an InputError saying what is wrong."""
    names = {mate: [uri.rsplit("/", 1)[1] for uri in uris] for mate, uris in files.items()}
    for found in names.values():
        if len(found) > 1:
            raise InputError(folder, f"several read files for the same reads ({', '.join(sorted(found))}): keep one")
    if 0 in files and len(files) > 1:
        listed = ", ".join(sorted(n for found in names.values() for n in found))
        raise InputError(folder, f"both single-end and paired read files ({listed}): keep one kind")
    if 0 in files:
        return ReadSet(_patient(folder), files[0][0])
    if len(files) == 1:
        (mate, (name,)), = names.items()
        raise InputError(folder, f"{name} has no R{3 - mate} file: paired reads need both "
                                 f"(or name a single-end file {_STEM}.fastq.gz)")
    return ReadSet(_patient(folder), files[1][0], files[2][0])


@dataclass
class ReadBlock:
    """Consecutive reads of one FASTQ file, flat: names, joined bases and qualities, lengths.

    Attributes
    ----------
    names : list of str
        Read names: the title's first word, without a ``/1`` or ``/2`` suffix.
    sequences : bytes
        The bases of all reads, upper-case, joined.
    qualities : bytes
        Phred+33 qualities, joined like ``sequences``.
    lengths : numpy.ndarray of int64
        Each read's length.
    first_line : list of int or None
        Each record's first line in its file (for errors while reading; not shipped by `to_bytes`).
    """

    names: list[str]
    sequences: bytes
    qualities: bytes
    lengths: np.ndarray
    first_line: list[int] | None = None

    @classmethod
    def from_batch(cls, batch: FastqBatch) -> ReadBlock:
        names = [_MATE_TAG.sub("", title.split(None, 1)[0]) if title else "" for title in batch.titles]
        return cls(names, batch.sequence_bytes.tobytes().upper(), batch.quality_bytes.tobytes(),
                   batch.lengths, batch.first_line)

    def __len__(self) -> int:
        return len(self.names)

    def offsets(self) -> np.ndarray:
        """Where each read starts in ``sequences`` (and ``qualities``), plus the total: shape (n + 1,)."""
        return np.concatenate([[0], np.cumsum(self.lengths)])


@dataclass
class ReadChunk:
    """Reads ``index * chunk_reads`` onwards of a patient: mate 1 (or the single-end reads) and mate 2."""

    index: int
    mate1: ReadBlock
    mate2: ReadBlock | None = None

    def __len__(self) -> int:
        return len(self.mate1)


def iter_read_chunks(r1_stream: BinaryIO, r2_stream: BinaryIO | None, *, source_r1: str,
                     source_r2: str | None = None, chunk_reads: int) -> Iterator[ReadChunk]:
    """Read a FASTQ file, or two in step, in chunks of ``chunk_reads`` reads (pairs).

    Parameters
    ----------
    r1_stream, r2_stream : BinaryIO
        FASTQ content, plain or gzip; ``r2_stream`` None for single-end reads.
    source_r1, source_r2 : str
        The files' names, for errors.
    chunk_reads : int
        Reads (pairs) per chunk; the last chunk may have fewer.

    Yields
    ------
    ReadChunk
        Numbered from 0.

    Raises
    ------
    InputError
        Naming the file and line: a malformed or truncated record (as :func:`genoflow.io.fastq.fastq_read_qc`);
        an R2 read whose name differs from its R1 read's (after removing ``/1``, ``/2`` and the comment); one
        file ending before the other; a file with no reads.
    """
    blocks1 = (ReadBlock.from_batch(b) for b in iter_fastq_batches(r1_stream, source_r1, batch_reads=chunk_reads))
    if r2_stream is None:
        pairs = ((block, None) for block in blocks1)
    else:
        blocks2 = (ReadBlock.from_batch(b) for b in iter_fastq_batches(r2_stream, source_r2, batch_reads=chunk_reads))
        pairs = zip_longest(blocks1, blocks2)
    index = -1
    for index, (mate1, mate2) in enumerate(pairs):
        if r2_stream is not None:
            _check_mates(mate1, mate2, source_r1, source_r2, index * chunk_reads)
        yield ReadChunk(index, mate1, mate2)
    if index < 0:
        raise InputError(source_r1, "no reads: the FASTQ file is empty")


def _check_mates(mate1: ReadBlock | None, mate2: ReadBlock | None, source_r1: str, source_r2: str,
                 n_before: int) -> None:
    """The same read names in the same order, and as many reads, in both files' blocks."""
    names1 = mate1.names if mate1 else []
    names2 = mate2.names if mate2 else []
    for i, (name1, name2) in enumerate(zip(names1, names2, strict=False)):
        if name1 != name2:
            raise InputError(source_r2, f"read {name2!r} is not the mate of read {name1!r} (line "
                                        f"{mate1.first_line[i]} of {source_r1}): the files are not in the same "
                                        "order, or are not a pair", line=mate2.first_line[i])
    if len(names1) == len(names2):
        return
    short, long_, source_short, source_long = (
        (mate2, mate1, source_r2, source_r1) if len(names1) > len(names2) else (mate1, mate2, source_r1, source_r2))
    n_short = len(short) if short else 0
    # Where the missing record should start (4-line records assumed when the file ended at a chunk's end).
    end_line = short.first_line[-1] + 4 if short else 4 * n_before + 1
    raise InputError(source_short, f"ends after {n_before + n_short} reads, but {source_long} goes on: read "
                                   f"{long_.names[n_short]!r} at its line {long_.first_line[n_short]} has no mate "
                                   "(a truncated file?)", line=end_line)

"""Read-level QC of a FASTQ file (plain or gzip), with errors that name the offending line.

Records are split by Biopython's ``FastqGeneralIterator`` (fast, string tuples). Biopython's
errors carry no line number, so the text is read through a line-counting handle that also
keeps the lines of the record being parsed: when Biopython raises, those lines say which line
is wrong. Biopython checks neither the sequence alphabet nor the quality range; we do, with
numpy, on batches of records joined into one byte array (never base by base in Python).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from genoflow.errors import InputError
from genoflow.io._streams import LineCounter, open_text

__all__ = ["FASTQ_QC_KEYS", "FastqBatch", "fastq_read_qc", "iter_fastq_batches", "iter_fastq_records"]

FASTQ_QC_KEYS = (
    "n_reads",
    "n_bases",
    "mean_length",
    "mean_phred",
    "gc_fraction",
    "n_rate",
    "q30_fraction",
    "min_length",
    "max_length",
)

_PHRED_OFFSET = 33
_QUAL_MIN, _QUAL_MAX = ord("!"), ord("~")
_Q30 = _PHRED_OFFSET + 30
_VALID_BASE = np.zeros(256, dtype=bool)
_VALID_BASE[list(b"ACGTNacgtn")] = True
_GC = list(b"GCgc")
_N = list(b"Nn")
_BATCH_READS = 16384  # records per numpy batch: big enough to amortise, small enough for memory


def fastq_read_qc(stream: BinaryIO, *, source: str) -> dict:
    """Count reads and bases and summarise base qualities and composition of a FASTQ file.

    Parameters
    ----------
    stream : BinaryIO
        FASTQ content, plain or gzip (detected from the magic bytes). Phred+33 qualities.
    source : str
        Name of the file, for error messages.

    Returns
    -------
    dict
        ``n_reads`` (int), ``n_bases`` (int), ``mean_length`` (float), ``mean_phred`` (float,
        mean over all bases), ``gc_fraction`` (float, G+C over non-N bases), ``n_rate``
        (float, N over all bases), ``q30_fraction`` (float, bases with Phred >= 30),
        ``min_length`` (int), ``max_length`` (int). A ratio whose denominator is 0 is NaN.

    Raises
    ------
    InputError
        With the line number, for: a record not starting with ``@``, a missing ``+`` line,
        quality and sequence lengths that differ, a truncated final record, sequence
        characters other than ``ACGTN`` (either case), quality characters outside ``!``..``~``,
        a truncated or corrupt gzip stream; and, without a line, for a file with no reads.
    """
    totals = _Totals()
    for batch in iter_fastq_batches(stream, source):
        _count(batch, totals)
    if totals.n_reads == 0:
        raise InputError(source, "no reads: the FASTQ file is empty")
    return totals.as_dict()


def iter_fastq_batches(stream: BinaryIO, source: str, *, batch_reads: int = _BATCH_READS) -> Iterator[FastqBatch]:
    """Parse a FASTQ file into checked batches of records, raising errors that name the line.

    Parameters
    ----------
    stream : BinaryIO
        FASTQ content, plain or gzip (detected from the magic bytes). Phred+33 qualities.
    source : str
        Name of the file, for error messages.
    batch_reads : int
        Records per batch (the last one may have fewer).

    Yields
    ------
    FastqBatch
        Records whose alphabet and quality range were checked, with their joined bytes.

    Raises
    ------
    InputError
        As `fastq_read_qc` (but an empty file just yields nothing).
    """
    handle = LineCounter(open_text(stream, source, encoding="latin-1"), source, keep=True)
    batch = FastqBatch()
    records = FastqGeneralIterator(handle)
    while True:
        try:
            title, sequence, quality = next(records)
        except StopIteration:
            break
        except ValueError as error:
            # Report problems of earlier records (still in the batch) first.
            _check(batch, source)
            line, problem = _diagnose(_strip(handle.kept), handle.kept_first, str(error), handle.at_eof)
            raise InputError(source, problem, line=line) from None
        except InputError:
            _check(batch, source)
            raise
        _add_record(handle, batch, title, sequence, quality, source)
        if len(batch.sequences) >= batch_reads:
            _check(batch, source)
            yield batch
            batch = FastqBatch()
    if batch.sequences:
        _check(batch, source)
        yield batch


def iter_fastq_records(stream: BinaryIO, source: str) -> Iterator[tuple[str, str, str, int]]:
    """``(title, sequence, quality, first line)`` of each record, checked as in `iter_fastq_batches`."""
    for batch in iter_fastq_batches(stream, source):
        yield from zip(batch.titles, batch.sequences, batch.qualities, batch.first_line, strict=True)


@dataclass
class FastqBatch:
    """Consecutive records of one file, with where each one starts in the file.

    Attributes
    ----------
    titles, sequences, qualities : list of str
        The records' header (without ``@``), bases and Phred+33 quality strings.
    first_line : list of int
        1-based line of each record's ``@`` line.
    four_lines : list of bool
        Whether the record takes exactly four lines (else the sequence wraps).
    sequence_bytes, quality_bytes : numpy.ndarray of uint8
        The sequences (qualities) joined, once the batch is checked.
    lengths : numpy.ndarray of int64
        Each record's length, once the batch is checked.
    """

    titles: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    first_line: list[int] = field(default_factory=list)
    four_lines: list[bool] = field(default_factory=list)
    sequence_bytes: np.ndarray | None = None
    quality_bytes: np.ndarray | None = None
    lengths: np.ndarray | None = None


@dataclass
class _Totals:
    n_reads: int = 0
    n_bases: int = 0
    n_gc: int = 0
    n_n: int = 0
    phred_sum: int = 0
    n_q30: int = 0
    min_length: int | None = None
    max_length: int | None = None

    def as_dict(self) -> dict:
        def ratio(numerator: int, denominator: int) -> float:
            return numerator / denominator if denominator else math.nan

        return {
            "n_reads": self.n_reads,
            "n_bases": self.n_bases,
            "mean_length": ratio(self.n_bases, self.n_reads),
            "mean_phred": ratio(self.phred_sum, self.n_bases),
            "gc_fraction": ratio(self.n_gc, self.n_bases - self.n_n),
            "n_rate": ratio(self.n_n, self.n_bases),
            "q30_fraction": ratio(self.n_q30, self.n_bases),
            "min_length": self.min_length,
            "max_length": self.max_length,
        }


def _add_record(handle: LineCounter, batch: FastqBatch, title: str, sequence: str, quality: str,
                source: str) -> None:
    """Queue a parsed record; a record on more than 4 lines is checked for a missing '+' now."""
    read_ahead = not handle.at_eof  # Biopython has read the next record's '@' line already
    lines = handle.kept[:-1] if read_ahead else handle.kept
    if len(lines) != 4:
        bad = _misplaced_line(_strip(lines), handle.kept_first)
        if bad is not None:
            raise InputError(source, bad[1], line=bad[0])
    batch.titles.append(title)
    batch.sequences.append(sequence)
    batch.qualities.append(quality)
    batch.first_line.append(handle.kept_first)
    batch.four_lines.append(len(lines) == 4)
    handle.mark(keep_last=read_ahead)


def _strip(lines: list[str]) -> list[str]:
    return [line.rstrip("\r\n") for line in lines]


def _check(batch: FastqBatch, source: str) -> None:
    """Check the alphabet and quality range of a batch with whole-array numpy operations, joining its bytes."""
    if not batch.sequences:
        return
    batch.sequence_bytes = np.frombuffer("".join(batch.sequences).encode("latin-1", "replace"), dtype=np.uint8)
    batch.quality_bytes = np.frombuffer("".join(batch.qualities).encode("latin-1", "replace"), dtype=np.uint8)
    batch.lengths = np.fromiter(map(len, batch.sequences), dtype=np.int64, count=len(batch.sequences))
    _check_bytes(batch, batch.lengths, ~_VALID_BASE[batch.sequence_bytes], "sequence", source)
    qualities = batch.quality_bytes
    _check_bytes(batch, batch.lengths, (qualities < _QUAL_MIN) | (qualities > _QUAL_MAX), "quality", source)


def _count(batch: FastqBatch, totals: _Totals) -> None:
    """Add a checked batch to the totals."""
    sequences, qualities, lengths = batch.sequence_bytes, batch.quality_bytes, batch.lengths
    bases = np.bincount(sequences, minlength=256)
    quals = np.bincount(qualities, minlength=256)
    totals.n_reads += len(lengths)
    totals.n_bases += int(lengths.sum())
    totals.n_gc += int(bases[_GC].sum())
    totals.n_n += int(bases[_N].sum())
    totals.phred_sum += int((quals * np.arange(256)).sum()) - _PHRED_OFFSET * len(qualities)
    totals.n_q30 += int(quals[_Q30:].sum())
    low, high = int(lengths.min()), int(lengths.max())
    totals.min_length = low if totals.min_length is None else min(totals.min_length, low)
    totals.max_length = high if totals.max_length is None else max(totals.max_length, high)


def _check_bytes(batch: FastqBatch, lengths: np.ndarray, bad: np.ndarray, what: str, source: str) -> None:
    """Raise for the first flagged byte of the joined sequences (or qualities) of a batch.

    Parameters
    ----------
    lengths : numpy.ndarray of int64, shape (n_records,)
        Record lengths (sequence and quality lengths are equal by now).
    bad : numpy.ndarray of bool, shape (sum(lengths),)
        Flags over the joined strings.
    """
    if not bad.any():
        return
    at = int(bad.argmax())
    ends = np.cumsum(lengths)
    record = int(np.searchsorted(ends, at, side="right"))
    column = at - int(ends[record] - lengths[record]) + 1
    text = batch.sequences[record] if what == "sequence" else batch.qualities[record]
    char = text[column - 1]
    first = batch.first_line[record]
    if what == "sequence":
        allowed = "A, C, G, T or N"
    else:
        allowed = "Phred+33 characters '!'..'~'"
    if batch.four_lines[record]:
        line = first + (1 if what == "sequence" else 3)
        problem = f"invalid {what} character {char!r} at column {column} (allowed: {allowed})"
    else:
        line = first
        problem = (
            f"invalid {what} character {char!r} at position {column} of the record starting here "
            f"(allowed: {allowed})"
        )
    raise InputError(source, problem, line=line)


# --------------------------------------------------------------------------------------------
# Diagnosing Biopython's errors
# --------------------------------------------------------------------------------------------


def _misplaced_line(lines: list[str], first: int) -> tuple[int, str] | None:
    """In the lines of one record, the first sequence line that cannot be sequence.

    Biopython allows a sequence to wrap over several lines, so a record whose ``+`` line is
    missing swallows the quality and the next record as "sequence". Returns ``(line, problem)``.
    """
    for offset, line in enumerate(lines[1:], start=1):
        if line.startswith("+"):
            return None
        if _is_sequence(line):
            continue
        if offset == 1:
            return None  # a bad character in the only sequence line: reported by the byte check
        return first + offset, (
            f"missing the '+' separator line after the sequence on line {first + offset - 1}: "
            f"found {_show(line)} instead"
        )
    return None


def _is_sequence(line: str) -> bool:
    return bool(line) and bool(_VALID_BASE[np.frombuffer(line.encode("latin-1", "replace"), np.uint8)].all())


def _show(line: str) -> str:
    return repr(line if len(line) <= 40 else line[:40] + "...")


def _diagnose(lines: list[str], first: int, message: str, at_eof: bool) -> tuple[int, str]:
    """Turn a Biopython ``ValueError`` into ``(line number, problem)``.

    Parameters
    ----------
    lines : list of str
        The lines read since the start of the failing record (it may have swallowed more).
    first : int
        Line number of ``lines[0]``.
    message : str
        Biopython's message, quoted in the problem.
    at_eof : bool
        Whether the file ended.
    """
    bio = f" [Biopython: {message}]"
    if not lines:
        return first, f"malformed FASTQ record{bio}"
    if not lines[0].startswith("@"):
        return first, f"expected a '@' header line, found {_show(lines[0])}{bio}"
    misplaced = _misplaced_line(lines, first)
    if misplaced is not None:
        return misplaced[0], misplaced[1] + bio
    plus = next((i for i, line in enumerate(lines) if i > 0 and line.startswith("+")), None)
    if plus is None:
        return first, f"truncated record at the end of the file: no '+' line and no quality{bio}"
    if "captions differ" in message:
        return first + plus, f"the '+' line repeats a title that differs from the '@' line{bio}"
    if "Whitespace" in message:
        return first, f"whitespace in the sequence{bio}"
    return _diagnose_quality(lines, first, plus, at_eof, bio)


def _diagnose_quality(lines: list[str], first: int, plus: int, at_eof: bool, bio: str) -> tuple[int, str]:
    """Problems after the '+' line: truncation, a missing '@', or a length mismatch."""
    sequence_length = sum(len(line) for line in lines[1:plus])
    quality = lines[plus + 1 :]
    if not quality:
        return first, f"truncated record at the end of the file: no quality line after the '+' line{bio}"
    seen = 0
    for offset, line in enumerate(quality, start=plus + 1):
        if seen == sequence_length and seen > 0:
            # The quality was complete, yet the next line does not start a record.
            return first + offset, f"expected a '@' header line, found {_show(line)}{bio}"
        seen += len(line)
    n_quality = len(quality[0]) if plus == 2 else seen
    truncated = " (the file ends here: truncated?)" if at_eof and len(quality) == 1 else ""
    return first, (
        f"the quality has {n_quality} characters but the sequence has {sequence_length}{truncated}{bio}"
    )

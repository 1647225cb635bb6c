"""Read-level QC of a FASTQ file (plain or gzip), with errors that name the offending line.

Records are split by Biopython's ``FastqGeneralIterator`` (fast, string tuples). Biopython's
errors carry no line number, so the text is read through a line-counting handle that also
keeps the lines of the record being parsed: when Biopython raises, those lines say which line
is wrong. Biopython checks neither the sequence alphabet nor the quality range; we do, with
numpy, on batches of records joined into one byte array (never base by base in Python).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from genoflow.errors import InputError
from genoflow.io._streams import LineCounter, open_text

__all__ = ["FASTQ_QC_KEYS", "fastq_read_qc"]

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
    handle = LineCounter(open_text(stream, source, encoding="latin-1"), source, keep=True)
    totals = _Totals()
    batch = _Batch()
    records = FastqGeneralIterator(handle)
    while True:
        try:
            _title, sequence, quality = next(records)
        except StopIteration:
            break
        except ValueError as error:
            # Report problems of earlier records (still in the batch) first.
            _flush(batch, totals, source)
            line, problem = _diagnose(_strip(handle.kept), handle.kept_first, str(error), handle.at_eof)
            raise InputError(source, problem, line=line) from None
        except InputError:
            _flush(batch, totals, source)
            raise
        _add_record(handle, batch, sequence, quality, source)
        if len(batch.sequences) >= _BATCH_READS:
            _flush(batch, totals, source)
    _flush(batch, totals, source)
    if totals.n_reads == 0:
        raise InputError(source, "no reads: the FASTQ file is empty")
    return totals.as_dict()


@dataclass
class _Batch:
    """Records waiting for the numpy checks, with where each one starts in the file."""

    sequences: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    first_line: list[int] = field(default_factory=list)
    four_lines: list[bool] = field(default_factory=list)


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


def _add_record(handle: LineCounter, batch: _Batch, sequence: str, quality: str, source: str) -> None:
    """Queue a parsed record; a record on more than 4 lines is checked for a missing '+' now."""
    read_ahead = not handle.at_eof  # Biopython has read the next record's '@' line already
    lines = handle.kept[:-1] if read_ahead else handle.kept
    if len(lines) != 4:
        bad = _misplaced_line(_strip(lines), handle.kept_first)
        if bad is not None:
            raise InputError(source, bad[1], line=bad[0])
    batch.sequences.append(sequence)
    batch.qualities.append(quality)
    batch.first_line.append(handle.kept_first)
    batch.four_lines.append(len(lines) == 4)
    handle.mark(keep_last=read_ahead)


def _strip(lines: list[str]) -> list[str]:
    return [line.rstrip("\r\n") for line in lines]


def _flush(batch: _Batch, totals: _Totals, source: str) -> None:
    """Check and count a batch of records with whole-array numpy operations, then empty it."""
    if not batch.sequences:
        return
    sequences = np.frombuffer("".join(batch.sequences).encode("latin-1", "replace"), dtype=np.uint8)
    qualities = np.frombuffer("".join(batch.qualities).encode("latin-1", "replace"), dtype=np.uint8)
    lengths = np.fromiter(map(len, batch.sequences), dtype=np.int64, count=len(batch.sequences))
    _check_bytes(batch, lengths, ~_VALID_BASE[sequences], "sequence", source)
    _check_bytes(batch, lengths, (qualities < _QUAL_MIN) | (qualities > _QUAL_MAX), "quality", source)
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
    for values in (batch.sequences, batch.qualities, batch.first_line, batch.four_lines):
        values.clear()


def _check_bytes(batch: _Batch, lengths: np.ndarray, bad: np.ndarray, what: str, source: str) -> None:
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

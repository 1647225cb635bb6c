"""Read-level QC of a FASTQ file (plain or gzip), with errors that name the offending line.

Records are split by Biopython's ``FastqGeneralIterator`` (fast, string tuples). Biopython's
errors carry no line number, so the text is read through a line-counting handle that also
keeps the lines of the record being parsed: when Biopython raises, those lines say which line
is wrong. Biopython checks neither the sequence alphabet nor the quality range; we do, with
numpy, on batches of records joined into one byte array (never base by base in Python).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from genoflow.errors import InputError
from genoflow.io._streams import (
    DECOMPRESSION_ERRORS,
    LineCounter,
    decompressing,
    is_text_stream,
    open_text,
    replaying,
)

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

    Notes
    -----
    While a binary file is plain four-line FASTQ (what sequencers write), whole blocks of its text are split
    into lines and their shape checked with list operations, not record by record: Biopython's parser,
    fed through the line-counting handle, costs several microseconds a read, as much as a third of mapping
    it. From the first record the fast reader cannot vouch for (a wrapped sequence, a '+' line repeating the
    title, CR line ends, a bad character, anything malformed or truncated), the rest of the file goes
    through Biopython, from the start of the batch in progress, so both give the same batches and the same
    errors (``tests/unit/io/test_fastq_fast_path.py`` holds them equal on random and broken files).
    """
    if is_text_stream(stream) or not hasattr(stream, "read"):
        handle = LineCounter(open_text(stream, source, encoding="latin-1"), source, keep=True)
        yield from _biopython_batches(handle, source, batch_reads)
        return
    yield from _four_line_batches(decompressing(stream, source), source, batch_reads)


def _biopython_batches(handle: LineCounter, source: str, batch_reads: int) -> Iterator[FastqBatch]:
    """Records split by Biopython's ``FastqGeneralIterator``; its errors diagnosed from the lines kept."""
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


_PIECE_BYTES = 1 << 22  # decompressed text split into lines at a time by the four-line reader


def _four_line_batches(raw: BinaryIO, source: str, batch_reads: int) -> Iterator[FastqBatch]:
    """Batches of four-line records, until a record needs Biopython (then it parses the rest)."""
    held: list[bytes] = []  # lines of the records read but not yet yielded, four per record
    held_first = 1  # the file's line number of held[0]

    def hand_over(more: bytes, rest) -> Iterator[FastqBatch]:
        text = b"\n".join([*held, more]) if held else more
        handle = io.TextIOWrapper(replaying(text, rest), encoding="latin-1", newline=None)
        return _biopython_batches(LineCounter(handle, source, keep=True, lines_before=held_first - 1), source,
                                  batch_reads)

    tail = b""  # the text after the last record vouched for
    for piece, error in _pieces(raw):
        if error is not None:  # Biopython's path names the line the stream broke at
            yield from hand_over(tail + piece, _Raising(error))
            return
        if b"\r" in piece:
            yield from hand_over(tail + piece, raw)
            return
        lines = (tail + piece).split(b"\n")
        end = not piece
        if end:
            if lines[-1]:  # the last line has no newline: Biopython's path takes the last record
                yield from hand_over(tail, raw)
                return
            lines[-1] = b"@"  # nothing follows the last record, as if the next one started here
        whole = 4 * ((len(lines) - 1) // 4)  # the last item is the line still unfinished (b"" after a newline)
        regular = _first_irregular(lines, whole)
        # Vouch for a record only once the line after it starts with '@': Biopython reads any other as quality.
        vouched = regular if lines[regular][:1] == b"@" else max(regular - 4, 0)
        held.extend(lines[:vouched])
        tail = b"\n".join(lines[vouched:-1] + [b""]) if end else b"\n".join(lines[vouched:])
        done = end and vouched == len(lines) - 1
        while len(held) >= 4 * batch_reads or (done and held):
            batch = _checked_batch(held[:4 * batch_reads], held_first, source)
            if batch is None:
                yield from hand_over(tail, raw)
                return
            yield batch
            del held[:4 * len(batch.titles)]
            held_first += 4 * len(batch.titles)
        if done:
            return
        if end or regular < whole:
            yield from hand_over(tail, raw)
            return


def _pieces(raw: BinaryIO) -> Iterator[tuple[bytes, BaseException | None]]:
    """Decompressed text about ``_PIECE_BYTES`` at a time, ending with b"" (or with the text before a
    decompression error, and the error: a single large ``read`` would drop that text)."""
    while True:
        parts, size = [], 0
        try:
            while size < _PIECE_BYTES:
                part = raw.read1(_PIECE_BYTES - size)
                if not part:
                    break
                parts.append(part)
                size += len(part)
        except DECOMPRESSION_ERRORS as error:
            yield b"".join(parts), error
            return
        yield b"".join(parts), None
        if not size:
            return


def _first_irregular(lines: list[bytes], whole: int) -> int:
    """The first line of the first record of ``lines[:whole]`` that is not a plain four-line one (else whole).

    Plain: an '@' title line, the sequence, a bare '+', a quality as long as the sequence. List operations
    check all records at once; only a block holding an irregular record is walked record by record.
    """
    titles, separators = lines[0:whole:4], lines[2:whole:4]
    if ((b"\n" + b"\n".join(titles)).count(b"\n@") == len(titles) and separators.count(b"+") == len(separators)
            and list(map(len, lines[1:whole:4])) == list(map(len, lines[3:whole:4]))):
        return whole
    return next(at for at in range(0, whole, 4)
                if lines[at][:1] != b"@" or lines[at + 2] != b"+" or len(lines[at + 1]) != len(lines[at + 3]))


def _checked_batch(lines: list[bytes], first_line: int, source: str) -> FastqBatch | None:
    """The batch of these four-line records, or None when a check fails (Biopython's path then says where)."""
    sequences = lines[1::4]
    batch = FastqBatch(titles=_titles(lines[0::4]), first_line=list(range(first_line, first_line + len(lines), 4)),
                       four_lines=None)
    batch.sequence_bytes = np.frombuffer(b"".join(sequences), dtype=np.uint8)
    batch.quality_bytes = np.frombuffer(b"".join(lines[3::4]), dtype=np.uint8)
    batch.lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    if _VALID_BASE[batch.sequence_bytes].all() and not _bad_quality(batch.quality_bytes).any():
        return batch
    return None


def _titles(lines: list[bytes]) -> list[str]:
    """Biopython's titles of '@' lines (without the '@', right-stripped), decoded and split as one text."""
    text = b"\n".join(lines).decode("latin-1")[1:].replace("\n@", "\n")
    titles = text.split("\n")
    return [title.rstrip() for title in titles] if _TRAILING_SPACE.search(text) else titles


_TRAILING_SPACE = re.compile(r"\s(?:\n|$)")


class _Raising(io.RawIOBase):
    """A raw stream whose first read raises ``error``: replays a decompression error after the text before it."""

    def __init__(self, error: BaseException):
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self._error


def iter_fastq_records(stream: BinaryIO, source: str) -> Iterator[tuple[str, str, str, int]]:
    """``(title, sequence, quality, first line)`` of each record, checked as in `iter_fastq_batches`."""
    for batch in iter_fastq_batches(stream, source):
        ends = np.cumsum(batch.lengths).tolist()
        sequences = batch.sequence_bytes.tobytes().decode("latin-1")
        qualities = batch.quality_bytes.tobytes().decode("latin-1")
        for title, start, end, line in zip(batch.titles, [0, *ends[:-1]], ends, batch.first_line, strict=True):
            yield title, sequences[start:end], qualities[start:end], line


@dataclass
class FastqBatch:
    """Consecutive records of one file, with where each one starts in the file.

    Attributes
    ----------
    titles, sequences, qualities : list of str
        The records' header (without ``@``), bases and Phred+33 quality strings.
    first_line : list of int
        1-based line of each record's ``@`` line.
    four_lines : list of bool or None
        Whether the record takes exactly four lines (else the sequence wraps); None when all do.
    sequences, qualities : list of str
        Filled by Biopython's path only, while it collects the batch.
    sequence_bytes, quality_bytes : numpy.ndarray of uint8
        The sequences (qualities) joined, once the batch is checked.
    lengths : numpy.ndarray of int64
        Each record's length, once the batch is checked.
    """

    titles: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    first_line: list[int] = field(default_factory=list)
    four_lines: list[bool] | None = field(default_factory=list)
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
    _check_bytes(batch, batch.lengths, _bad_quality(batch.quality_bytes), "quality", source)


def _bad_quality(qualities: np.ndarray) -> np.ndarray:
    return (qualities < _QUAL_MIN) | (qualities > _QUAL_MAX)


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
    if batch.four_lines is None or batch.four_lines[record]:
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

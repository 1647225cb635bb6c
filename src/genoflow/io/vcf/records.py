"""VCF record lines: one compiled scan of a block of lines (`_Lines`), then the fixed columns
(CHROM, POS, ID, REF, ALT, FORMAT) validated line by line and the ALT field parsed (`_split_lines`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from genoflow._kernels.vcf import scan_lines, word_views

__all__ = ["format_layout", "is_skipped_alt"]

_MAX_ALTS = 126  # allele indices are held as int8
_BASES = re.compile(r"[ACGTNacgtn]+")
_MAX_POS = 2**31 - 1  # VCF 4.3 and BCF: POS is a 32-bit signed integer (a huge one crashed the int64 column)


class _RecordProblem(Exception):
    """A problem with one line, raised inside the per-line loop and turned into InputError."""

    def __init__(self, problem: str, record: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.record = record


@dataclass
class _Records:
    """The fixed columns of the valid lines of a chunk, one entry per line."""

    index: list[int] = field(default_factory=list)  # position in the input sequence
    contig: list[str] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    vid: list[str] = field(default_factory=list)
    ref: list[str] = field(default_factory=list)
    alts: list[list[str]] = field(default_factory=list)  # every ALT allele, for allele numbering
    kept: list[list[bool]] = field(default_factory=list)  # False for symbolic/breakend/'*' alleles
    groups: dict[str, list[int]] = field(default_factory=dict)  # FORMAT -> positions in the lists



@dataclass
class _Lines:
    """A block of lines as the bytes of one Arrow string array, scanned once (`scan_lines`).

    Line ``i`` is ``data[starts[i]:ends[i]]`` (without its line break); its fixed columns end at
    ``fixed_end[i]`` and its sample columns follow. ``first``/``second`` hold the calls of the
    ``decoded`` lines (GT-only, one-digit diploid calls), read straight from ``data``.
    """

    data: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    fixed_end: np.ndarray
    n_columns: np.ndarray
    decoded: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @classmethod
    def scan(cls, lines: Sequence[str] | pa.Array, n_samples: int) -> _Lines:
        array = lines if isinstance(lines, (pa.Array, pa.ChunkedArray)) else pa.array(lines, type=pa.large_string())
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        _, offsets_buffer, data_buffer = array.buffers()
        offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset : array.offset + len(array) + 1]
        offsets = offsets.astype(np.int64)
        data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
        first = np.empty((len(array), n_samples), dtype=np.int8)
        second = np.empty((len(array), n_samples), dtype=np.int8)
        ends, fixed_end, n_columns, decoded = scan_lines(data, word_views(data), offsets[:-1], offsets[1:], n_samples,
                                                           first, second)
        return cls(data, offsets[:-1], ends, fixed_end, n_columns, decoded, first, second)

    def __len__(self) -> int:
        return len(self.starts)

    def _text(self, lo: int, hi: int) -> str:
        return str(memoryview(self.data)[lo:hi], "utf-8", "replace")

    def line(self, i: int) -> str:
        return self._text(int(self.starts[i]), int(self.ends[i]))

    def fixed_columns(self) -> list[str | None]:
        """CHROM to FORMAT of each line, tab-joined; None where a line has fewer than 9 columns."""
        view = memoryview(self.data)
        return [str(view[lo:hi], "utf-8", "replace") if hi >= 0 else None
                for lo, hi in zip(self.starts.tolist(), self.fixed_end.tolist(), strict=True)]

    def samples(self, i: int) -> str:
        """The sample columns of line ``i``, tab-joined."""
        return self._text(int(self.fixed_end[i]) + 1, int(self.ends[i]))


def _split_lines(lines: _Lines, n_samples: int):
    """Validate the fixed columns of each line; stop at the first bad line.

    Returns the records before the bad line and ``(index, _RecordProblem)`` for it (or None),
    so that a genotype problem on an earlier line can still be reported first.
    """
    records = _Records()
    layouts: dict[str, dict[str, int]] = {}
    for index, (fixed, found) in enumerate(zip(lines.fixed_columns(), lines.n_columns.tolist(), strict=True)):
        if not found:  # an empty line
            continue
        try:
            if found != 9 + n_samples:
                raise _column_count_problem(lines.line(index), found, n_samples)
            _split_line(fixed, records, layouts)
        except _RecordProblem as problem:
            return records, (index, problem)
        records.index.append(index)
    return records, None


def _column_count_problem(line: str, found: int, n_samples: int) -> _RecordProblem:
    hint = " (are the columns separated by spaces instead of tabs?)" if found == 1 and " " in line else ""
    expected = f"{9 + n_samples} tab-separated columns (9 fixed + {n_samples} samples)"
    return _RecordProblem(f"expected {expected}, found {found}{hint}")


def _split_line(fixed: str, records: _Records, layouts: dict[str, dict[str, int]]) -> None:
    contig, pos_text, vid, ref, alt, _qual, _filter, _info, fmt = fixed.split("\t")
    record = f"{contig}:{pos_text}"
    if not contig:
        raise _RecordProblem("empty CHROM", record)
    if not (pos_text.isascii() and pos_text.isdigit()) or not 1 <= int(pos_text) <= _MAX_POS:
        raise _RecordProblem(f"POS {pos_text!r} is not a positive integer up to {_MAX_POS}", record)
    if not _BASES.fullmatch(ref):
        raise _RecordProblem(f"REF {ref!r} is not a sequence of A, C, G, T, N", record)
    alts, kept = _parse_alt(alt, record)
    if fmt not in layouts:
        layouts[fmt] = format_layout(fmt)
    if "GT" not in layouts[fmt] and "DS" not in layouts[fmt]:
        raise _RecordProblem(f"FORMAT {fmt!r} has neither a GT nor a DS field", record)
    records.groups.setdefault(fmt, []).append(len(records.contig))
    records.contig.append(contig)
    records.pos.append(int(pos_text))
    records.vid.append(vid)
    records.ref.append(ref.upper())
    records.alts.append(alts)
    records.kept.append(kept)


def format_layout(fmt: str) -> dict[str, int]:
    """Position of each ``:``-separated FORMAT key, e.g. ``{"GT": 0, "GQ": 1}`` for ``GT:GQ``."""
    layout: dict[str, int] = {}
    for index, key in enumerate(fmt.split(":")):
        layout.setdefault(key, index)
    return layout


def is_skipped_alt(allele: str) -> bool:
    """Symbolic (``<DEL>``, ``<*>``), breakend (``G]17:198982]``) or spanning deletion (``*``)."""
    return allele.startswith("<") or allele == "*" or "[" in allele or "]" in allele


# The usual ALT fields (A, C, G, T...) recur on most lines: parse each spelling once (the parsed
# lists are only read, never changed).
_SIMPLE_ALTS: dict[str, tuple[list[str], list[bool]]] = {}


def _parse_alt(alt: str, record: str) -> tuple[list[str], list[bool]]:
    parsed = _SIMPLE_ALTS.get(alt)
    if parsed is None:
        parsed = _parse_alt_field(alt, record)
        if len(alt) <= 4:  # a bounded set of spellings
            _SIMPLE_ALTS[alt] = parsed
    return parsed


def _parse_alt_field(alt: str, record: str) -> tuple[list[str], list[bool]]:
    if alt == ".":
        return [], []
    alts = alt.split(",")
    if len(alts) > _MAX_ALTS:
        raise _RecordProblem(f"{len(alts)} ALT alleles: at most {_MAX_ALTS} are supported", record)
    kept = []
    for allele in alts:
        skip = is_skipped_alt(allele)
        if not skip and not _BASES.fullmatch(allele):
            raise _RecordProblem(f"ALT allele {allele!r} is not a sequence of A, C, G, T, N", record)
        kept.append(not skip)
    return [allele if skip else allele.upper() for allele in alts], kept

"""VCF 4.x parsing into the variant-major dosage layout of decision 0001.

Pure Python/numpy/pyarrow (no Spark): the Spark jobs call `decode_vcf_block` from executors on
blocks of lines, handed over as the Arrow string arrays of Spark's text source and read in place.
One compiled pass (`genoflow._kernels.vcf.scan_lines`) finds where each line's fixed columns end,
counts its columns and decodes the calls of GT-only lines of one-digit diploid calls straight from
the bytes. The fixed columns are then validated line by line in Python (a handful of string
operations on the ~40 bytes before the samples); the calls of any other line (other FORMAT
layouts, haploid calls, multi-digit alleles, errors) are joined into one byte buffer and decoded
with whole-array numpy operations. No genotype is ever touched one by one in Python.

Dosage encoding (the registry is `genoflow.genotypes`): ``int8`` alternate-allele count, 0/1/2,
haploid 0/1, ``-1`` when any allele of the call is missing. Multi-allelic records are split into
one row per ALT allele (as ``bcftools norm -m-``): for ALT ``k`` the dosage counts alleles ``== k``.
Symbolic ALT alleles (``<DEL>``, ``<*>``), breakends and the spanning deletion ``*`` give no row:
they are counted (`VcfBlock.n_skipped_alts`) rather than rejected. Without GT, a ``DS`` (expected
ALT dosage) field gives the dosage rounded to the nearest integer. ``GQ`` and ``DP`` can set calls
below a threshold to missing (plink2's ``--vcf-min-gq`` / ``--vcf-min-dp``) and give per-variant
means (`decode_vcf_block`'s ``with_call_stats``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoflow._kernels.vcf import (
    ALLELE_OF_BYTE,
    BAD_ALLELE,
    allele_dosages,
    highest_alleles,
    scan_lines,
    word_views,
)
from genoflow.errors import InputError, InputTooLarge
from genoflow.io._streams import DECOMPRESSION_ERRORS, decompressing, truncation_problem

__all__ = [
    "MISSING_DOSAGE",
    "VCF_FIXED_COLUMNS",
    "VCF_RECORD_SCHEMA",
    "VcfBlock",
    "VcfHeader",
    "decode_vcf_block",
    "iter_vcf_lines",
    "parse_vcf_header",
    "parse_vcf_records",
]

VCF_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")
MISSING_DOSAGE = -1

VCF_RECORD_SCHEMA = pa.schema(
    [
        ("contig", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
        ("dosages", pa.binary()),
    ]
)

_TAB, _COLON, _SLASH, _PIPE, _DOT, _ZERO = (ord(c) for c in "\t:/|.0")
_ABSENT = -2  # the (absent) second allele of a haploid call; unlike MISSING it is not a no-call
_BAD = BAD_ALLELE  # a byte that is neither an allele digit nor '.'
_MAX_ALTS = 126  # allele indices are held as int8
_MAX_GT_CHARS = 16  # longer GT strings are rejected rather than padded into a huge matrix
_BLOCK = 1 << 20  # genotypes decoded per block on the general path, to bound temporaries

# Per-byte decode tables: digit -> 0..9, '.' -> missing, others -> _BAD (the compiled scan's own).
_ALLELE_LUT = ALLELE_OF_BYTE
_IS_SEP = np.zeros(256, dtype=bool)
_IS_SEP[[_SLASH, _PIPE]] = True

_BASES = re.compile(r"[ACGTNacgtn]+")
_CONTIG_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,>]*)')

# Codes for problems found while decoding GT strings in bulk.
_OK, _UNPARSEABLE, _POLYPLOID, _BAD_NUMBER = 0, 1, 2, 3

# FORMAT keys read besides GT.
_NUMERIC_KEYS = ("DS", "GQ", "DP")
_MAX_POS = 2**31 - 1  # VCF 4.3 and BCF: POS is a 32-bit signed integer (a huge one crashed the int64 column)


# --------------------------------------------------------------------------------------------
# Header and line reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VcfHeader:
    """What the header of a VCF says.

    Attributes
    ----------
    samples : list of str
        Sample ids, in column order (the order of each record's dosages).
    contigs : dict of str to int or None
        ``##contig`` lines: ID to length (None when the line gives none), in file order.
    n_header_lines : int
        Number of header lines including ``#CHROM``; the first record is on line
        ``n_header_lines + 1``.
    meta : list of str
        The ``##`` meta-information lines, verbatim without line ends.
    """

    samples: list[str]
    contigs: dict[str, int | None]
    n_header_lines: int
    meta: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Number of samples (the length of each record's dosages)."""
        return len(self.samples)


def iter_vcf_lines(
    binary_stream: BinaryIO,
    source: str,
    *,
    max_line_bytes: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[str]:
    """Yield the text lines of a plain, gzip or bgzip VCF, without line ends.

    Compression is detected from the magic bytes, not the file name. Decompression is streamed:
    at most one line (``max_line_bytes``) and a read buffer are held at a time, so the caps bound
    memory whatever the compression ratio.

    Parameters
    ----------
    binary_stream : BinaryIO
        The file content.
    source : str
        Name of the file, for error messages.
    max_line_bytes : int, optional
        Longest line accepted (bytes, without its line end); a longer one is refused after
        reading ``max_line_bytes + 2`` bytes of it. None: no cap (the pipeline's own files).
    max_bytes : int, optional
        Most (decompressed) bytes read; more is refused. None: no cap.

    Raises
    ------
    InputError
        On a line that is not UTF-8, or a truncated/corrupt gzip stream.
    InputTooLarge
        A line longer than ``max_line_bytes``, or more than ``max_bytes`` bytes of content.
    """
    stream = decompressing(binary_stream, source)
    # +2: a line of exactly max_line_bytes is read whole with its "\r\n"; a longer one stops one byte past.
    limit = -1 if max_line_bytes is None else max_line_bytes + 2
    n = total = 0
    try:
        while raw := stream.readline(limit):
            n += 1
            total += len(raw)
            if max_bytes is not None and total > max_bytes:
                raise InputTooLarge(source, f"more than {max_bytes} bytes of VCF text (after decompression)",
                                    limit="max_bytes", line=n)
            if max_line_bytes is not None and len(raw.rstrip(b"\r\n")) > max_line_bytes:
                raise InputTooLarge(source, f"line longer than {max_line_bytes} bytes", limit="max_line_bytes",
                                    line=n)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem = f"not valid UTF-8 text ({error.reason} at byte {error.start} of the line)"
                raise InputError(source, problem, line=n) from None
            yield line.rstrip("\r\n")
    except DECOMPRESSION_ERRORS as error:
        raise InputError(source, f"{truncation_problem(error)}, after line {n}", line=n + 1) from None


def parse_vcf_header(lines: Iterable[str], source: str, *, max_lines: int | None = None) -> VcfHeader:
    """Parse the meta lines and the ``#CHROM`` line of a VCF.

    Reads ``lines`` only up to and including the ``#CHROM`` line, so an iterator can then be
    handed on to `parse_vcf_records`.

    Parameters
    ----------
    lines : iterable of str
        The file's lines, from line 1, with or without line ends.
    source : str
        Name of the file, for error messages.
    max_lines : int, optional
        Most header lines (``##`` lines and ``#CHROM``) accepted; None: no cap. A real header
        has a few thousand at most (one per contig); the model API sets one so that a file of
        millions of ``##`` lines is refused before they are kept.

    Returns
    -------
    VcfHeader

    Raises
    ------
    InputError
        No ``#CHROM`` line before the first record or the end of the file, malformed fixed
        columns, no samples, duplicate or empty sample names, a malformed ``##contig`` line.
    InputTooLarge
        More than ``max_lines`` header lines.
    """
    meta: list[str] = []
    contigs: dict[str, int | None] = {}
    n = 0
    for n, raw in enumerate(lines, start=1):
        if max_lines is not None and n > max_lines:
            raise InputTooLarge(source, f"more than {max_lines} header lines before '#CHROM'",
                                limit="max_header_lines", line=n)
        line = raw.rstrip("\r\n")
        if line.startswith("##"):
            meta.append(line)
            if line.startswith("##contig="):
                name, length = _parse_contig_line(line, source, n)
                contigs[name] = length
            continue
        if line.startswith("#CHROM"):
            samples = _parse_chrom_line(line, source, n)
            return VcfHeader(samples=samples, contigs=contigs, n_header_lines=n, meta=meta)
        raise InputError(
            source,
            f"missing the '#CHROM' header line: expected it before this line, found {line[:60]!r}",
            line=n,
        )
    raise InputError(source, f"missing the '#CHROM' header line (the file ends after {n} lines)")


def _parse_contig_line(line: str, source: str, n: int) -> tuple[str, int | None]:
    body = line[len("##contig=") :]
    if not (body.startswith("<") and body.endswith(">")):
        raise InputError(source, f"malformed ##contig line (expected ##contig=<ID=...>): {line!r}", line=n)
    fields = {key: value.strip('"') for key, value in _CONTIG_FIELD.findall(body[1:-1])}
    if not fields.get("ID"):
        raise InputError(source, f"##contig line without an ID: {line!r}", line=n)
    length = fields.get("length")
    if length is None:
        return fields["ID"], None
    if not (length.isascii() and length.isdigit()):
        raise InputError(source, f"##contig length {length!r} is not an integer", line=n)
    return fields["ID"], int(length)


def _parse_chrom_line(line: str, source: str, n: int) -> list[str]:
    columns = line.split("\t")
    fixed = list(VCF_FIXED_COLUMNS)
    if columns[:8] != fixed[:8]:
        found = " ".join(columns[:9]) if len(columns) > 1 else line[:80]
        expected = " ".join(fixed)
        problem = f"the #CHROM line must start with the tab-separated columns {expected}; found {found!r}"
        raise InputError(source, problem, line=n)
    if len(columns) < 10:
        raise InputError(source, "no samples: the #CHROM line has no sample columns after FORMAT", line=n)
    if columns[8] != "FORMAT":
        problem = f"the 9th column of the #CHROM line must be FORMAT, found {columns[8]!r}"
        raise InputError(source, problem, line=n)
    samples = columns[9:]
    empty = [10 + i for i, name in enumerate(samples) if not name.strip()]
    if empty:
        raise InputError(source, f"empty sample name in column(s) {empty}", line=n)
    duplicates = sorted(name for name, count in Counter(samples).items() if count > 1)
    if duplicates:
        raise InputError(source, f"duplicate sample names: {', '.join(duplicates)}", line=n)
    return samples


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class VcfBlock:
    """What `decode_vcf_block` makes of a block of data lines.

    Attributes
    ----------
    table : pyarrow.Table
        One row per (record, kept ALT allele); see `parse_vcf_records`.
    n_skipped_alts : int
        Symbolic, breakend and ``*`` ALT alleles that gave no row.
    """

    table: pa.Table
    n_skipped_alts: int


def parse_vcf_records(
    lines: Sequence[str],
    *,
    n_samples: int,
    source: str,
    first_line_number: int,
    with_line_numbers: bool = False,
) -> pa.Table:
    """Parse VCF data lines into one row per (record, ALT allele) with packed dosages.

    Parameters
    ----------
    lines : sequence of str
        Consecutive data lines (no header lines), with or without line ends. Empty lines
        (e.g. after the last newline of a chunk) are skipped.
    n_samples : int
        Number of sample columns, from the header (`VcfHeader.n_samples`).
    source : str
        Name of the file, for error messages.
    first_line_number : int
        1-based line number of ``lines[0]`` in ``source``.
    with_line_numbers : bool
        Add an ``int64`` column ``line`` (the 1-based line of each row's record), e.g. for
        `genoflow.io.fasta.check_ref_alleles`.

    Returns
    -------
    pyarrow.Table
        `VCF_RECORD_SCHEMA`: ``contig`` string, ``pos`` int64 (1-based), ``id`` string, ``ref``
        string and ``alt`` string (upper case, one ALT per row), ``dosages`` binary of
        ``n_samples`` bytes (``numpy.int8``: 0/1/2, haploid 0/1, missing -1). Records with ALT
        ``.`` (no alternate allele) give no row.

    Raises
    ------
    InputError
        For the first bad line, with its line number: wrong column count, POS not a positive
        integer, REF/ALT not in ``[ACGTN]+`` (symbolic ``<...>``, breakend and ``*`` ALTs are
        give no row and are counted by `decode_vcf_block`), FORMAT with neither GT nor DS, an
        unparseable GT, DS, GQ or DP, a GT allele index greater than the number of ALT alleles,
        ploidy above 2.
    """
    block = decode_vcf_block(lines, n_samples=n_samples, source=source, first_line_number=first_line_number,
                             with_line_numbers=with_line_numbers)
    return block.table


def decode_vcf_block(
    lines: Sequence[str] | pa.Array,
    *,
    n_samples: int,
    source: str,
    first_line_number: int,
    with_line_numbers: bool = False,
    with_call_stats: bool = False,
    min_gq: float = 0,
    min_dp: float = 0,
) -> VcfBlock:
    """`parse_vcf_records` with the genotype-field options of the ingest job.

    Parameters
    ----------
    lines : sequence of str, or pyarrow string array
        As for `parse_vcf_records`; an Arrow array (e.g. a batch of Spark's text source) is read in
        place, without a Python string per line.
    n_samples, source, first_line_number, with_line_numbers
        As for `parse_vcf_records`.
    with_call_stats : bool
        Add ``float64`` columns ``mean_dp`` and ``mean_gq``: the mean of the samples' DP and GQ
        over the samples that have one (null when none has).
    min_gq, min_dp : float
        Calls whose GQ (DP) is below this are set to missing, as plink2's ``--vcf-min-gq``
        (``--vcf-min-dp``); calls without a GQ (DP) value are kept. 0 turns a filter off.

    Returns
    -------
    VcfBlock
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    text = _Lines.scan(lines, n_samples)
    records, line_problem = _split_lines(text, n_samples)
    n_alt = np.fromiter((len(a) for a in records.alts), dtype=np.int64, count=len(records.alts))
    wanted = set()
    if with_call_stats or min_gq > 0:
        wanted.add("GQ")
    if with_call_stats or min_dp > 0:
        wanted.add("DP")
    alleles = _decode_genotypes(text, records, n_samples, n_alt, wanted)
    gt_problem = _first_genotype_problem(text, records, alleles, n_alt)
    _raise_first(line_problem, gt_problem, records, source, first_line_number)
    _apply_call_filters(alleles, min_gq, min_dp)
    table = _build_table(records, alleles, n_alt, n_samples, first_line_number, with_line_numbers, with_call_stats)
    n_kept = sum(sum(k) for k in records.kept)
    return VcfBlock(table=table, n_skipped_alts=int(n_alt.sum()) - n_kept)


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


# --------------------------------------------------------------------------------------------
# Genotype decoding (vectorised)
# --------------------------------------------------------------------------------------------


@dataclass
class _Alleles:
    """Decoded calls of the valid lines: allele indices and per-genotype problem codes.

    ``first``/``second`` are ``int8`` of shape (n_lines, n_samples): allele index, -1 missing,
    -2 absent (haploid). ``code`` is ``uint8`` of the same shape, `_OK` when decoded;
    ``bad_key`` names the FORMAT key of each `_BAD_NUMBER` code's line. ``numbers`` holds the
    ``float64`` (n_lines, n_samples) values of GQ/DP (NaN when absent) when asked for, and
    ``ds`` the ``int8`` (n_alt, n_samples) DS dosages of lines without GT, by line.
    """

    first: np.ndarray
    second: np.ndarray
    code: np.ndarray
    bad_key: dict[int, str] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    ds: dict[int, np.ndarray] = field(default_factory=dict)


def _decode_genotypes(lines: _Lines, records: _Records, n_samples: int, n_alt: np.ndarray,
                      wanted: set[str]) -> _Alleles:
    line_of = np.asarray(records.index, dtype=np.int64)
    every_line = len(line_of) == len(lines)  # no empty line, no bad one: the scan's rows are the records'
    out = _Alleles(
        first=lines.first if every_line else lines.first[line_of],
        second=lines.second if every_line else lines.second[line_of],
        code=np.zeros((len(line_of), n_samples), dtype=np.uint8),
    )
    decoded = lines.decoded[line_of]
    # Only FORMAT keys some record has get a (NaN-filled) matrix: GT-only files pay nothing.
    present = set().union(*(format_layout(fmt).keys() for fmt in records.groups)) if records.groups else set()
    for key in wanted & present:
        out.numbers[key] = np.full((len(line_of), n_samples), np.nan)
    for fmt, rows in records.groups.items():
        layout = format_layout(fmt)
        rows = np.asarray(rows, dtype=np.int64)
        fields = wanted & layout.keys()
        undecoded = rows if "GT" not in layout else rows[~decoded[rows]]
        if not len(undecoded) and not fields:
            continue
        # The sample columns as text, only where the scan did not decode them or other keys are read.
        texts = [lines.samples(i) for i in line_of[rows].tolist()] if fields or "GT" not in layout else None
        if "GT" not in layout:
            _decode_ds(texts, rows, n_samples, layout, n_alt, out)
        elif len(undecoded):
            # Everything the scan left (haploid calls, multi-digit alleles, other layouts, errors).
            if texts is None:
                gt_texts = [lines.samples(i) for i in line_of[undecoded].tolist()]
            else:
                gt_texts = [t for t, redo in zip(texts, (~decoded[rows]).tolist(), strict=True) if redo]
            _decode_general(gt_texts, undecoded, n_samples, layout["GT"], out)
        # After GT: the GT decoding writes the problem codes of its rows wholesale.
        for key in sorted(fields):
            _decode_numbers(texts, rows, n_samples, layout, key, out)
    return out


def _subfield(texts: list[str], n_samples: int, layout: dict[str, int], key: str) -> pa.Array:
    """The ``key`` sub-field of every sample field of ``texts``: strings, line-major, "" when cut short."""
    index = layout[key]
    fields = pc.list_flatten(pc.split_pattern(pa.array(texts, type=pa.large_string()), "\t"))
    # Trailing sub-fields may be dropped: padding with colons makes every field long enough.
    padded = pc.binary_join_element_wise(fields, pa.scalar(":" * (index + 1), pa.large_string()),
                                         pa.scalar("", pa.large_string()))
    return pc.list_element(pc.split_pattern(padded, ":", max_splits=index + 1), index)


def _to_numbers(strings: pa.Array) -> tuple[np.ndarray, int]:
    """``float64`` values of number strings (NaN for ``.``/empty), and the index of the first bad one or -1."""
    missing = pc.or_(pc.equal(strings, "."), pc.equal(strings, ""))
    cleaned = pc.if_else(missing, pa.scalar(None, strings.type), strings)
    try:
        values = pc.cast(cleaned, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numeric = pc.match_substring_regex(strings, r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
        bad = np.flatnonzero(~(missing.to_numpy(zero_copy_only=False) | numeric.to_numpy(zero_copy_only=False)))
        return np.full(len(strings), np.nan), int(bad[0]) if len(bad) else 0
    return values.to_numpy(zero_copy_only=False).astype(np.float64), -1


def _mark_bad(out: _Alleles, rows: np.ndarray, n_samples: int, bad: int, key: str) -> None:
    row, sample = rows[bad // n_samples], bad % n_samples
    out.code[row, sample] = _BAD_NUMBER
    out.bad_key[int(row)] = key


def _decode_numbers(texts, rows, n_samples, layout, key, out: _Alleles) -> None:
    values, bad = _to_numbers(_subfield(texts, n_samples, layout, key))
    if bad >= 0:
        _mark_bad(out, rows, n_samples, bad, key)
    out.numbers[key][rows] = values.reshape(len(rows), n_samples)


def _decode_ds(texts, rows, n_samples, layout, n_alt, out: _Alleles) -> None:
    """Dosages from DS (one value per ALT allele, comma-separated) for lines without GT."""
    out.first[rows] = MISSING_DOSAGE
    out.second[rows] = MISSING_DOSAGE
    strings = _subfield(texts, n_samples, layout, "DS")
    width = int(max(n_alt[rows].max(initial=1), 1))
    padded = pc.binary_join_element_wise(strings, pa.scalar("," * width, strings.type), pa.scalar("", strings.type))
    per_alt = pc.split_pattern(padded, ",", max_splits=width)
    for k in range(width):
        values, bad = _to_numbers(pc.list_element(per_alt, k))
        if bad >= 0:
            _mark_bad(out, rows, n_samples, bad, "DS")
            return
        values = values.reshape(len(rows), n_samples)
        for i, row in enumerate(rows.tolist()):
            if k < n_alt[row]:
                dosage = out.ds.setdefault(row, np.empty((n_alt[row], n_samples), dtype=np.int8))
                dosage[k] = np.where(np.isnan(values[i]), MISSING_DOSAGE, np.clip(np.rint(values[i]), 0, 2))


def _apply_call_filters(alleles: _Alleles, min_gq: float, min_dp: float) -> None:
    """Set calls below the GQ/DP thresholds to missing (NaN, an absent value, never filters)."""
    for key, threshold in (("GQ", min_gq), ("DP", min_dp)):
        if threshold <= 0 or key not in alleles.numbers:
            continue
        low = alleles.numbers[key] < threshold
        alleles.first[low] = MISSING_DOSAGE
        alleles.second[low] = MISSING_DOSAGE
        for row, dosage in alleles.ds.items():
            dosage[:, low[row]] = MISSING_DOSAGE


def _decode_general(texts: list[str], rows: np.ndarray, n_samples: int, gt_index: int, out: _Alleles) -> None:
    """Decode any FORMAT layout: find each GT sub-field by byte offsets, then parse it."""
    joined = "\t".join(texts).encode("latin-1", "replace")
    # Padding lets "the byte 1 or 3 after a GT start" be read without bounds checks.
    buffer = np.frombuffer(joined + b"\0\0\0\0", dtype=np.uint8)
    start, end, absent = _locate_gt(buffer, len(joined), len(texts) * n_samples, gt_index)
    first = np.empty(len(start), dtype=np.int8)
    second = np.empty(len(start), dtype=np.int8)
    code = np.empty(len(start), dtype=np.uint8)
    for lo in range(0, len(start), _BLOCK):
        hi = lo + _BLOCK
        first[lo:hi], second[lo:hi], code[lo:hi] = _parse_gt_spans(buffer, start[lo:hi], end[lo:hi])
    # A sample field cut short before GT (trailing fields may be dropped) is a missing call.
    first[absent] = MISSING_DOSAGE
    second[absent] = MISSING_DOSAGE
    code[absent] = _OK
    shape = (len(texts), n_samples)
    out.first[rows] = first.reshape(shape)
    out.second[rows] = second.reshape(shape)
    out.code[rows] = code.reshape(shape)


def _locate_gt(buffer: np.ndarray, n_bytes: int, n_fields: int, gt_index: int):
    """Byte span of the GT sub-field of every tab-separated sample field in ``buffer``.

    Parameters
    ----------
    buffer : numpy.ndarray of uint8, shape (n_bytes + padding,)
        Sample fields joined by tabs (exactly ``n_fields - 1`` tabs), then a few zero bytes.
    n_bytes : int
        Length of the joined fields, without the padding.
    n_fields : int
        Number of sample fields.
    gt_index : int
        Position of GT among the ``:``-separated FORMAT keys.

    Returns
    -------
    start, end : numpy.ndarray of int64, shape (n_fields,)
        GT is ``buffer[start:end]``.
    absent : numpy.ndarray of bool, shape (n_fields,)
        The field has fewer than ``gt_index + 1`` sub-fields.
    """
    text = buffer[:n_bytes]
    tabs = np.flatnonzero(text == _TAB)
    field_start = np.concatenate(([0], tabs + 1))
    field_end = np.concatenate((tabs, [n_bytes]))
    if gt_index == 0:
        end = _guess_gt_end(buffer, field_start, field_end)
        unsure = np.flatnonzero(end < 0)
        if len(unsure):
            colons = np.flatnonzero(text == _COLON)
            padded = np.concatenate((colons, [n_bytes + 1]))
            next_colon = padded[np.searchsorted(colons, field_start[unsure])]
            end[unsure] = np.minimum(next_colon, field_end[unsure])
        return field_start, end, np.zeros(n_fields, dtype=bool)
    colons = np.flatnonzero(text == _COLON)
    # Padding past the end lets "the k-th colon after a field start" index safely.
    padded = np.concatenate((colons, np.full(gt_index + 1, n_bytes + 1)))
    first_colon = np.searchsorted(colons, field_start)
    colon_before = padded[first_colon + gt_index - 1]
    absent = colon_before >= field_end
    start = np.where(absent, field_end, colon_before + 1)
    end = np.maximum(np.minimum(padded[first_colon + gt_index], field_end), start)
    return start, end, absent


def _guess_gt_end(buffer: np.ndarray, start: np.ndarray, field_end: np.ndarray) -> np.ndarray:
    """End of a GT at the start of its field when it is ``a/b`` or ``a`` (one char alleles).

    Saves a colon search for the usual calls; -1 where the GT is something else.
    """
    after3 = start + 3
    is_three = (after3 <= field_end) & _IS_SEP[buffer[start + 1]]
    is_three &= (after3 == field_end) | (buffer[after3] == _COLON)
    after1 = start + 1
    is_one = (after1 == field_end) | ((after1 < field_end) & (buffer[after1] == _COLON))
    return np.where(is_three, after3, np.where(is_one, after1, -1))


def _parse_gt_spans(buffer: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Parse GT strings ``buffer[start:end]`` of any shape (``0``, ``1/0``, ``12|3``, ``./.``).

    One-character alleles (``a/b``, ``a``) are read at fixed offsets; anything else goes
    through `_parse_gt_matrix`.

    Parameters
    ----------
    buffer : numpy.ndarray of uint8
        The joined sample fields, padded with at least 3 zero bytes.
    start, end : numpy.ndarray of int64, shape (m,)
        GT spans.

    Returns
    -------
    first, second : numpy.ndarray of int8, shape (m,)
        Allele indices (capped at 127), -1 missing; ``second`` is -2 for haploid calls.
    code : numpy.ndarray of uint8, shape (m,)
        `_OK`, `_UNPARSEABLE` or `_POLYPLOID`.
    """
    length = end - start
    first = _ALLELE_LUT[buffer[start]]
    third = _ALLELE_LUT[buffer[start + 2]]
    diploid = (length == 3) & _IS_SEP[buffer[start + 1]] & (first != _BAD) & (third != _BAD)
    haploid = (length == 1) & (first != _BAD)
    second = np.where(diploid, third, np.int8(_ABSENT))
    code = np.zeros(len(start), dtype=np.uint8)
    rest = np.flatnonzero(~(diploid | haploid))
    if len(rest):
        first[rest], second[rest], code[rest] = _parse_gt_matrix(buffer, start[rest], end[rest])
    return first, second, code


def _parse_gt_matrix(buffer: np.ndarray, start: np.ndarray, end: np.ndarray):
    """`_parse_gt_spans` for any GT: multi-digit alleles, errors, ploidy above 2.

    The spans are gathered into a zero-padded ``(m, width)`` byte matrix; the separator, the
    digits of each allele and their place values are all found with whole-matrix operations.
    """
    length = end - start
    width = int(min(max(length.max(initial=1), 1), _MAX_GT_CHARS))
    offsets = np.arange(width)
    inside = offsets < length[:, None]
    matrix = buffer[np.minimum(start[:, None] + offsets, len(buffer) - 1)]
    matrix[~inside] = 0
    is_sep = _IS_SEP[matrix] & inside
    n_sep = is_sep.sum(axis=1)
    sep_at = np.where(n_sep > 0, is_sep.argmax(axis=1), length)
    first, first_ok = _allele_values(matrix, np.zeros_like(length), sep_at)
    second, second_ok = _allele_values(matrix, sep_at + 1, length)
    second = np.where(n_sep == 0, _ABSENT, second)
    ok = (length > 0) & (length <= _MAX_GT_CHARS) & first_ok & (second_ok | (n_sep == 0))
    code = np.where(ok, _OK, _UNPARSEABLE).astype(np.uint8)
    code[(n_sep > 1) & _well_formed(matrix, is_sep, length)] = _POLYPLOID
    return first.astype(np.int8), second.astype(np.int8), code


def _well_formed(matrix: np.ndarray, is_sep: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Rows that are alleles (digits or ``.``) joined by single separators, e.g. ``0/1/1``.

    With more than one separator such a call is triploid or more: reported as unsupported
    ploidy rather than as unparseable.
    """
    inside = np.arange(matrix.shape[1]) < length[:, None]
    allele_char = ((matrix >= _ZERO) & (matrix <= _ZERO + 9)) | (matrix == _DOT)
    chars_ok = ~(inside & ~(allele_char | is_sep)).any(axis=1)
    doubled = (is_sep[:, 1:] & is_sep[:, :-1]).any(axis=1)
    # A GT longer than the matrix (capped at _MAX_GT_CHARS) is refused below; clip so it can be looked at.
    last = np.take_along_axis(is_sep, np.clip(length - 1, 0, matrix.shape[1] - 1)[:, None], axis=1)[:, 0]
    return (length > 0) & (length <= _MAX_GT_CHARS) & chars_ok & ~doubled & ~is_sep[:, 0] & ~last


def _allele_values(matrix: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Integer value of ``matrix[i, lo[i]:hi[i]]`` per row: digits, or ``.`` for missing.

    Returns the values (capped at 127, -1 for ``.``) and whether each span was valid.
    """
    offsets = np.arange(matrix.shape[1])
    span = (offsets >= lo[:, None]) & (offsets < hi[:, None])
    digits = matrix.astype(np.int64) - _ZERO
    is_digit = (digits >= 0) & (digits <= 9)
    n_chars = hi - lo
    first_char = np.take_along_axis(matrix, np.minimum(lo, matrix.shape[1] - 1)[:, None], axis=1)[:, 0]
    is_dot = (n_chars == 1) & (first_char == _DOT)
    all_digits = (n_chars >= 1) & ~(span & ~is_digit).any(axis=1)
    place = 10 ** np.clip(hi[:, None] - 1 - offsets, 0, 18)
    value = np.where(span & is_digit, digits * place, 0).sum(axis=1)
    value = np.where(is_dot, MISSING_DOSAGE, np.minimum(value, 127))
    return value, all_digits | is_dot


def _first_genotype_problem(lines: _Lines, records: _Records, alleles: _Alleles, n_alt: np.ndarray):
    """``(index into records, problem)`` for the first line with a bad call, or None."""
    if not len(n_alt):
        return None
    highest = highest_alleles(alleles.first, alleles.second)
    out_of_range = highest > n_alt
    bad_code = alleles.code.any(axis=1)
    bad = np.flatnonzero(out_of_range | bad_code)
    if not len(bad):
        return None
    row = int(bad[0])
    fmt = next(fmt for fmt, rows in records.groups.items() if row in rows)
    layout = format_layout(fmt)
    if bad_code[row]:
        sample = int(np.flatnonzero(alleles.code[row])[0])
    else:
        calls = np.maximum(alleles.first[row], alleles.second[row])
        sample = int(np.flatnonzero(calls > n_alt[row])[0])
    code = alleles.code[row, sample]
    key = alleles.bad_key.get(row, "GT") if code == _BAD_NUMBER else "GT"
    subfields = lines.samples(records.index[row]).split("\t")[sample].split(":")
    gt = subfields[layout[key]] if layout[key] < len(subfields) else ""
    where = f"{key} {gt!r} of sample {sample + 1} (column {10 + sample})"
    if code == _BAD_NUMBER:
        problem = f"cannot parse {where}: expected a number or '.'"
    elif code == _UNPARSEABLE:
        problem = f"cannot parse {where}: expected allele indices or '.' separated by '/' or '|'"
    elif code == _POLYPLOID:
        ploidy = gt.count("/") + gt.count("|") + 1
        problem = f"{where} has ploidy {ploidy}; only haploid and diploid calls are supported"
    else:
        allele = int(max(alleles.first[row, sample], alleles.second[row, sample]))
        problem = f"{where} uses allele {allele} but the record has only {n_alt[row]} ALT allele(s)"
    return row, _RecordProblem(problem, f"{records.contig[row]}:{records.pos[row]}")


def _raise_first(line_problem, gt_problem, records: _Records, source: str, first_line_number: int) -> None:
    """Raise the problem on the earliest line, if any."""
    candidates = []
    if line_problem is not None:
        candidates.append(line_problem)
    if gt_problem is not None:
        row, problem = gt_problem
        candidates.append((records.index[row], problem))
    if candidates:
        index, problem = min(candidates, key=lambda c: c[0])
        raise InputError(source, problem.problem, line=first_line_number + index, record=problem.record)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _dosages(alleles: _Alleles, n_alt: np.ndarray) -> np.ndarray:
    """Split records per ALT and count alleles: ``int8`` of shape (sum(n_alt), n_samples)."""
    line_of = np.repeat(np.arange(len(n_alt)), n_alt)
    allele = (np.arange(len(line_of)) - np.repeat(np.cumsum(n_alt) - n_alt, n_alt) + 1).astype(np.int8)
    dosage = np.empty((len(line_of), alleles.first.shape[1]), dtype=np.int8)
    allele_dosages(alleles.first, alleles.second, line_of, allele, dosage)
    if alleles.ds:
        row_of_line = np.cumsum(n_alt) - n_alt
        for line, ds in alleles.ds.items():
            dosage[row_of_line[line] : row_of_line[line] + len(ds)] = ds
    return dosage


def _mean_over_samples(values: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN where a row has no value (without numpy's empty-slice warning)."""
    present = ~np.isnan(values)
    count = present.sum(axis=1)
    total = np.where(present, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _binary_column(dosage: np.ndarray) -> pa.ChunkedArray:
    """Pack each row of an ``int8`` matrix as one ``binary`` value, without copying rows."""
    n_rows, width = dosage.shape
    dosage = np.ascontiguousarray(dosage)
    # int32 offsets: chunk so that no chunk holds more than 2**31 - 1 bytes.
    per_chunk = max(1, (2**31 - 1) // max(width, 1))
    chunks = []
    for lo in range(0, n_rows, per_chunk):
        block = dosage[lo : lo + per_chunk]
        offsets = np.arange(0, (len(block) + 1) * width, width, dtype=np.int32)
        chunks.append(
            pa.Array.from_buffers(pa.binary(), len(block), [None, pa.py_buffer(offsets), pa.py_buffer(block)])
        )
    return pa.chunked_array(chunks, type=pa.binary())


def _build_table(records, alleles, n_alt, n_samples, first_line_number, with_line_numbers,
                 with_call_stats=False) -> pa.Table:
    def per_row(values):
        return [v for v, k in zip(values, n_alt.tolist(), strict=True) for _ in range(k)]

    columns = {
        "contig": pa.array(per_row(records.contig), type=pa.string()),
        "pos": pa.array(per_row(records.pos), type=pa.int64()),
        "id": pa.array(per_row(records.vid), type=pa.string()),
        "ref": pa.array(per_row(records.ref), type=pa.string()),
        "alt": pa.array([a for alts in records.alts for a in alts], type=pa.string()),
        "dosages": _binary_column(_dosages(alleles, n_alt).reshape(-1, n_samples)),
    }
    schema = VCF_RECORD_SCHEMA
    if with_line_numbers:
        lines = np.repeat(np.asarray(records.index, dtype=np.int64) + first_line_number, n_alt)
        columns["line"] = pa.array(lines, type=pa.int64())
        schema = schema.append(pa.field("line", pa.int64()))
    if with_call_stats:
        for key in ("DP", "GQ"):
            name = f"mean_{key.lower()}"
            if key not in alleles.numbers:
                columns[name] = pa.nulls(int(n_alt.sum()), type=pa.float64())
                schema = schema.append(pa.field(name, pa.float64()))
                continue
            mean = np.repeat(_mean_over_samples(alleles.numbers[key]), n_alt)
            columns[name] = pa.array(mean, type=pa.float64(), mask=np.isnan(mean))
            schema = schema.append(pa.field(name, pa.float64()))
    table = pa.table(columns, schema=schema)
    kept = np.fromiter((k for row in records.kept for k in row), dtype=bool, count=int(n_alt.sum()))
    return table if kept.all() else table.filter(pa.array(kept))

"""VCF header and line reading: the ``##`` meta lines, ``##contig`` lines and the ``#CHROM`` line,
and the text lines of a plain, gzip or bgzip file (streamed, with optional caps)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from genoflow.errors import InputError, InputTooLarge
from genoflow.io._streams import DECOMPRESSION_ERRORS, decompressing, truncation_problem

__all__ = ["VCF_FIXED_COLUMNS", "VcfHeader", "iter_vcf_lines", "parse_vcf_header"]

VCF_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")
_CONTIG_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,>]*)')


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

"""The reference genome by index: samtools' ``.fai`` (and ``.gzi`` for bgzip), bases read by byte range.

A human reference is 3.1 Gbp: held as Python strings it takes ~9 GB on the driver and a 3 GB
broadcast (decision 0013). Here the driver keeps only the index (a few arrays), checks it against
the FASTA, builds it once by streaming when it is missing or stale, and broadcasts an
:class:`IndexedReference`; each executor reads the few byte ranges its block of variants needs.

One module of ~550 lines on purpose: the index's parser, its streaming builder, its check against the
FASTA and the ranged reader are one format's four sides, and each change to the format touches all of them.

Formats, as ``samtools faidx`` writes them:

- ``.fai``: one line per contig, ``name  length  offset  linebases  linewidth`` (tab-separated;
  ``offset`` is the byte of the first base, in the uncompressed file for a bgzip FASTA).
- ``.gzi``: little-endian uint64 ``n``, then ``n`` pairs (compressed offset, uncompressed offset),
  one per BGZF block after the first.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import posixpath
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from genoflow.errors import InputError
from genoflow.io._streams import GZIP_MAGIC
from genoflow.storage.ranged import RangedFile

__all__ = ["FaiIndex", "IndexedReference", "build_fai", "open_reference", "parse_fai", "parse_gzi"]

log = logging.getLogger(__name__)

MAX_GAP = 8192  # plain FASTA: positions closer than this many bytes share one read (reading through is cheaper)
MAX_SPAN = 1 << 23  # bytes of FASTA read at once at most
_CHUNK = 1 << 24  # bytes per read while streaming a FASTA to index it
_HEADER_WINDOW = 4096  # bytes before a contig's offset searched for its '>' line
_BGZF_MAX_BLOCK = 1 << 16
_REMAKE_GZI = "make it with `samtools faidx {fasta}` (writes .fai and .gzi) or `bgzip -r {fasta}`"
_NEWLINE, _CR, _GT = 10, 13, ord(">")
_MAX_FAI_VALUE = 2**40  # 1 Tbp, 7x the largest genome: keeps byte offsets (up to 3 bytes a base) in int64


@dataclass(frozen=True)
class FaiIndex:
    """A ``.fai`` index: one entry per contig, in file order.

    Attributes
    ----------
    names : tuple of str
    lengths, offsets, linebases, linewidth : numpy.ndarray of int64, shape (n_contigs,)
        Bases in the contig; byte of its first base; bases per full line; bytes per full line
        (with the line end).
    """

    names: tuple[str, ...]
    lengths: np.ndarray
    offsets: np.ndarray
    linebases: np.ndarray
    linewidth: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[tuple[str, int, int, int, int]]) -> FaiIndex:
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
        return cls(tuple(columns[0]), *(np.asarray(c, dtype=np.int64) for c in columns[1:]))

    def to_text(self) -> str:
        return "".join(f"{n}\t{a}\t{b}\t{c}\t{d}\n" for n, a, b, c, d in zip(
            self.names, self.lengths.tolist(), self.offsets.tolist(), self.linebases.tolist(),
            self.linewidth.tolist(), strict=True))

    def byte_offsets(self, row: int, positions: np.ndarray) -> np.ndarray:
        """Byte (uncompressed) of each 0-based position of contig ``row``."""
        lines, within = np.divmod(positions, self.linebases[row])
        return self.offsets[row] + lines * self.linewidth[row] + within

    def ends(self) -> np.ndarray:
        """Byte just after each contig's last base."""
        last = np.maximum(self.lengths - 1, 0)
        lines, within = np.divmod(last, np.maximum(self.linebases, 1))
        return self.offsets + lines * self.linewidth + within + 1


def parse_fai(text: str, *, source: str) -> FaiIndex:
    """Parse a ``.fai`` file's text.

    Raises
    ------
    InputError
        A line without five integer-valued fields after the name, a duplicate name, no contigs.
    """
    rows, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) not in (5, 6):  # samtools adds a sixth (qualoffset) for FASTQ
            raise InputError(source, f"expected 5 tab-separated fields, found {len(fields)}", line=number)
        try:
            values = [int(f) for f in fields[1:5]]
        except ValueError:
            raise InputError(source, f"non-integer field in {line[:80]!r}", line=number) from None
        if max(values) > _MAX_FAI_VALUE:
            raise InputError(source, f"a field past {_MAX_FAI_VALUE} in {line[:80]!r}", line=number)
        if fields[0] in seen or min(values) < 0 or values[2] < 1 or values[3] <= values[2]:
            raise InputError(source, f"bad entry {line[:80]!r}", line=number, record=fields[0])
        seen.add(fields[0])
        rows.append((fields[0], *values))
    if not rows:
        raise InputError(source, "the index lists no contigs")
    return FaiIndex.from_rows(rows)


def parse_gzi(data: bytes, *, source: str, fasta: str) -> tuple[np.ndarray, np.ndarray]:
    """(compressed, uncompressed) start offset of every BGZF block, the first block's (0, 0) included."""
    n = int(np.frombuffer(data[:8], dtype="<u8")[0]) if len(data) >= 8 else -1
    if n < 0 or len(data) != 8 + 16 * n:
        raise InputError(source, f"not a .gzi index ({len(data)} bytes); " + _REMAKE_GZI.format(fasta=fasta))
    pairs = np.frombuffer(data, dtype="<u8", offset=8).reshape(n, 2).astype(np.int64)
    compressed = np.concatenate([[0], pairs[:, 0]])
    uncompressed = np.concatenate([[0], pairs[:, 1]])
    if (np.diff(compressed) <= 0).any() or (np.diff(uncompressed) <= 0).any():
        raise InputError(source, "block offsets are not increasing; " + _REMAKE_GZI.format(fasta=fasta))
    return compressed, uncompressed


# --- building a .fai by streaming the FASTA ---------------------------------------------------------


def build_fai(stream: BinaryIO, *, source: str) -> FaiIndex:
    """Index a FASTA the way ``samtools faidx`` does, reading it once in chunks (never a whole contig).

    Parameters
    ----------
    stream : BinaryIO
        The uncompressed FASTA bytes (decompress a bgzip FASTA first: offsets are uncompressed).
    source : str
        The FASTA's name, for error messages.

    Raises
    ------
    InputError
        Text before the first ``>`` line, an empty or duplicate name, an empty sequence, a line of
        another length than the contig's first (except its last line), a character that is not a
        letter, or no sequence at all.
    """
    builder = _FaiBuilder(source)
    carry = b""
    while chunk := stream.read(_CHUNK):
        data = carry + chunk
        end = data.rfind(b"\n") + 1
        if end:
            builder.feed(data[:end])
        carry = data[end:]
    if carry:
        builder.feed(carry + b"\n")
    return builder.finish()


class _FaiBuilder:
    """The state between chunks: the byte and line reached, and the contig being read."""

    def __init__(self, source: str):
        self.source = source
        self.rows: list[tuple[str, int, int, int, int]] = []
        self.names: set[str] = set()
        self.offset = 0  # byte where the next chunk starts
        self.n_lines = 0  # lines before the next chunk
        self.contig: dict | None = None

    def feed(self, data: bytes) -> None:
        """Whole lines (``data`` ends with a newline)."""
        arr = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(arr == _NEWLINE)
        starts = np.concatenate([[0], ends[:-1] + 1])
        widths = ends - starts + 1
        has_cr = (widths > 1) & (arr[np.maximum(ends - 1, 0)] == _CR)
        bases = widths - 1 - has_cr
        header = arr[starts] == _GT
        self._check_letters(data, arr, header, starts, widths, ends)
        cuts = [0, *np.flatnonzero(header).tolist(), len(starts)]
        for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            if k > 0:  # line a is a header
                self._start(data[starts[a] + 1:ends[a]], int(self.offset + ends[a] + 1), a)
                a += 1
            self._sequence_lines(bases[a:b], widths[a:b], a)
        self.offset += len(data)
        self.n_lines += len(starts)

    def _check_letters(self, data, arr, header, starts, widths, ends) -> None:
        # IUPAC codes are letters; anything else is a typo (or not a FASTA).
        upper = arr & 0xDF
        bad = ~((upper >= 65) & (upper <= 90)) & (arr != _NEWLINE) & (arr != _CR) & ~np.repeat(header, widths)
        if not bad.any():
            return
        at = int(bad.argmax())
        line = int(np.searchsorted(ends, at))
        headers = np.flatnonzero(header[:line])
        if headers.size:
            h = int(headers[-1])
            name = (data[starts[h] + 1:ends[h]].decode("latin-1").split(None, 1) or [""])[0]
        elif self.contig is not None:
            name = self.contig["name"]
        else:
            raise InputError(self.source, "expected a '>' header line before the sequence",
                             line=self.n_lines + line + 1)
        raise InputError(self.source, f"invalid character {chr(arr[at])!r} in sequence {name!r}",
                         line=self.n_lines + line + 1, record=name)

    def _start(self, title: bytes, offset: int, index: int) -> None:
        self._close()
        line = self.n_lines + index + 1
        words = title.decode("latin-1").split(None, 1)
        if not words:
            raise InputError(self.source, "empty sequence name after '>'", line=line)
        if words[0] in self.names:
            raise InputError(self.source, f"duplicate sequence name {words[0]!r}", line=line, record=words[0])
        self.names.add(words[0])
        self.contig = {"name": words[0], "line": line, "offset": offset, "bases": 0, "linebases": 0,
                       "linewidth": 0, "ended": False}

    def _sequence_lines(self, bases: np.ndarray, widths: np.ndarray, first: int) -> None:
        """Lines between headers (``first``: index of the first one in this chunk)."""
        if not bases.size:
            return
        c = self.contig
        if c is None:
            text = np.flatnonzero(bases > 0)
            if text.size:
                raise InputError(self.source, "expected a '>' header line before the sequence",
                                 line=self.n_lines + first + int(text[0]) + 1)
            return
        if not c["linebases"] and bases[0] > 0:
            c["linebases"], c["linewidth"] = int(bases[0]), int(widths[0])
        lb = c["linebases"]
        # samtools' rule: every line of a contig but its last has the same length (and line end).
        ended = np.maximum.accumulate(bases < lb) | c["ended"]
        follows_end = np.concatenate([[c["ended"]], ended[:-1]])
        bad = (bases > lb) | (follows_end & (bases > 0)) | (~ended & (widths != c["linewidth"]))
        if bad.any():
            i = int(bad.argmax())
            raise InputError(self.source, f"line of {int(bases[i])} bases in sequence {c['name']!r} whose lines "
                             f"have {lb}: every line but a sequence's last must have the same length",
                             line=self.n_lines + first + i + 1, record=c["name"])
        c["bases"] += int(bases.sum())
        c["ended"] = bool(ended[-1])

    def _close(self) -> None:
        c = self.contig
        if c is None:
            return
        if c["bases"] == 0:
            raise InputError(self.source, f"sequence {c['name']!r} is empty", line=c["line"], record=c["name"])
        self.rows.append((c["name"], c["bases"], c["offset"], c["linebases"], c["linewidth"]))

    def finish(self) -> FaiIndex:
        self._close()
        if not self.rows:
            raise InputError(self.source, "no sequences: the FASTA file has no '>' record")
        return FaiIndex.from_rows(self.rows)


# --- the indexed reference --------------------------------------------------------------------------


class IndexedReference:
    """A FASTA read by index: contig names and lengths from the ``.fai``, bases by byte range.

    Small and picklable (the index arrays and a :class:`~genoflow.storage.ranged.RangedFile`), so it
    can be broadcast; the file is opened lazily where bases are read. Iterating gives the contig names
    in file order, ``in`` tests a name.

    Parameters
    ----------
    file : RangedFile
        The FASTA (plain, or bgzip-compressed).
    index : FaiIndex
    index_source : str
        Where the index came from, for error messages.
    blocks : tuple of numpy.ndarray, optional
        For a bgzip FASTA: the ``.gzi`` block starts, compressed and uncompressed (`parse_gzi`).
    """

    def __init__(self, file: RangedFile, index: FaiIndex, *, index_source: str,
                 blocks: tuple[np.ndarray, np.ndarray] | None = None):
        self.file = file
        self.index = index
        self.index_source = index_source
        self.blocks = blocks
        self._rows = {name: i for i, name in enumerate(index.names)}

    @property
    def source(self) -> str:
        return self.file.uri

    @property
    def names(self) -> tuple[str, ...]:
        return self.index.names

    def __contains__(self, name) -> bool:
        return name in self._rows

    def __iter__(self):
        return iter(self.index.names)

    def __len__(self) -> int:
        return len(self.index.names)

    def __repr__(self) -> str:
        kind = "bgzip" if self.blocks is not None else "plain"
        return f"IndexedReference({self.source!r}, {len(self)} contigs, {kind}, index {self.index_source!r})"

    def length(self, name: str) -> int:
        return int(self.index.lengths[self._rows[name]])

    def fetch(self, name: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` (0-based, half-open, like pysam) of contig ``name``, upper-case."""
        if not 0 <= start <= end <= self.length(name):
            raise ValueError(f"fetch: range [{start}, {end}) is outside {name!r} (length {self.length(name)})")
        return self.bases(name, np.arange(start, end, dtype=np.int64)).tobytes().decode("latin-1")

    def bases(self, name: str, positions: np.ndarray) -> np.ndarray:
        """Upper-case base (uint8) at each 0-based position of contig ``name`` (all within the contig).

        The distinct positions are read in few spans: positions closer than `MAX_GAP` bytes (plain)
        or in the same or adjacent BGZF blocks (bgzip) share one read.
        """
        positions = np.asarray(positions, dtype=np.int64)
        wanted = np.unique(positions)
        if not wanted.size:
            return np.zeros(0, dtype=np.uint8)
        offsets = self.index.byte_offsets(self._rows[name], wanted)
        found = np.empty(len(wanted), dtype=np.uint8)
        for a, b in self._spans(offsets):
            lo, hi = int(offsets[a]), int(offsets[b - 1]) + 1
            found[a:b] = np.frombuffer(self._read(lo, hi, name), dtype=np.uint8)[offsets[a:b] - lo]
        found = np.where((found >= 97) & (found <= 122), found - 32, found).astype(np.uint8)
        return found[np.searchsorted(wanted, positions)]

    def _spans(self, offsets: np.ndarray):
        """(first, stop) index ranges of sorted byte ``offsets`` read together, each under `MAX_SPAN` bytes."""
        if self.blocks is None:
            breaks = np.diff(offsets) > MAX_GAP
        else:
            breaks = np.diff(np.searchsorted(self.blocks[1], offsets, side="right")) > 1
        starts = np.concatenate([[0], np.flatnonzero(breaks) + 1]).tolist()
        for a, b in zip(starts, [*starts[1:], len(offsets)], strict=True):
            if offsets[b - 1] - offsets[a] < MAX_SPAN:
                yield a, b
                continue
            piece = (offsets[a:b] - offsets[a]) // MAX_SPAN  # dense variants over a long stretch: bounded reads
            cuts = (np.flatnonzero(np.diff(piece)) + 1 + a).tolist()
            yield from zip([a, *cuts], [*cuts, b], strict=True)

    def _read(self, lo: int, hi: int, name: str) -> bytes:
        """Uncompressed bytes ``[lo, hi)`` of the FASTA."""
        data = self._read_plain(lo, hi) if self.blocks is None else self._read_bgzf(lo, hi)
        if len(data) != hi - lo:
            raise InputError(self.source, f"ends before byte {hi} where contig {name!r} continues by its index "
                             f"{self.index_source}: truncated, or the index is another file's")
        return data

    def _read_plain(self, lo: int, hi: int) -> bytes:
        return self.file.read(lo, hi - lo)

    def _read_bgzf(self, lo: int, hi: int) -> bytes:
        from Bio import bgzf

        compressed, uncompressed = self.blocks
        first = int(np.searchsorted(uncompressed, lo, side="right")) - 1
        last = int(np.searchsorted(uncompressed, hi - 1, side="right")) - 1
        start = int(compressed[first])
        length = int(compressed[last + 1]) - start if last + 1 < len(compressed) else None
        raw = self.file.read(start, length)
        try:
            reader = bgzf.BgzfReader(fileobj=io.BytesIO(raw), mode="rb")
            reader.seek(bgzf.make_virtual_offset(0, lo - int(uncompressed[first])))
            return reader.read(hi - lo)
        except (ValueError, EOFError, zlib.error) as err:
            raise InputError(self.source, f"damaged BGZF data at byte {start} ({err}); if the file is intact, "
                             f"its .gzi is another file's: " + _REMAKE_GZI.format(fasta=self.source)) from None

    def check_index(self, size: int) -> None:
        """Spot-check the index against the FASTA (``size`` uncompressed bytes): each contig's offset
        follows its ``>name`` line and its first line has the index's length.

        Raises
        ------
        InputError
            Naming the FASTA and the first contig where they disagree.
        """
        index = self.index
        los = np.maximum(index.offsets - _HEADER_WINDOW, 0)
        his = np.minimum(index.offsets + index.linewidth + 1, size)
        for row, data in enumerate(self._windows(los, his)):
            name = index.names[row]
            problem = _offset_problem(data, int(index.offsets[row] - los[row]), name, int(index.lengths[row]),
                                      int(index.linebases[row]), int(index.linewidth[row]))
            if problem:
                raise InputError(self.source, f"disagrees with its index {self.index_source} at contig {name!r}: "
                                 f"{problem}; rebuild the index (samtools faidx) or remove it", record=name)

    def _windows(self, los: np.ndarray, his: np.ndarray) -> list[bytes]:
        """Bytes ``[los[i], his[i])`` for each i; windows closer than `MAX_GAP` share one read."""
        order = np.argsort(los, kind="stable")
        found: list[bytes] = [b""] * len(los)
        span_lo, span_hi, members = None, None, []
        for row in [*order.tolist(), None]:
            if row is not None and span_hi is not None and los[row] - span_hi <= MAX_GAP:
                span_hi = max(span_hi, int(his[row]))
                members.append(row)
                continue
            if members:
                data = self._read(span_lo, span_hi, self.index.names[members[0]]) if span_hi > span_lo else b""
                for m in members:
                    found[m] = data[los[m] - span_lo:his[m] - span_lo]
            if row is not None:
                span_lo, span_hi, members = int(los[row]), int(his[row]), [row]
        return found


def _offset_problem(data: bytes, at: int, name: str, length: int, linebases: int, linewidth: int) -> str | None:
    """What is wrong with a contig's offset ``at`` in ``data`` (bytes around it), or None."""
    if at <= 0 or at > len(data) or data[at - 1] != _NEWLINE:
        return "the byte before its offset is not the end of a line"
    header_end = at - 1 - (at >= 2 and data[at - 2] == _CR)
    line_start = data.rfind(b"\n", 0, header_end) + 1
    header = data[line_start:header_end]
    words = header[1:].split(None, 1) if header.startswith(b">") else []
    if not words or words[0].decode("latin-1") != name:
        return f"the line before its offset is {header[:60].decode('latin-1')!r}, not '>{name}'"
    line_end = data.find(b"\n", at)
    line = data[at:] if line_end < 0 else data[at:line_end]
    line = line[:-1] if line.endswith(b"\r") else line
    if len(line) != min(length, linebases):
        return f"its first line has {len(line)} bases, the index says {min(length, linebases)}"
    if length > linebases and line_end - at + 1 != linewidth:
        return f"its first line is {line_end - at + 1} bytes with the line end, the index says {linewidth}"
    return None


# --- finding, checking and building the index --------------------------------------------------------


def open_reference(fasta: RangedFile, *, index_cache: str | None = None) -> IndexedReference:
    """The FASTA at ``fasta`` by its index, checked; a missing or stale ``.fai`` is built once.

    The index is ``<fasta>.fai`` (and ``<fasta>.gzi`` for bgzip) when present and fresh. Otherwise a
    ``.fai`` built by streaming the FASTA once is written under ``index_cache`` (a folder URI on the
    same storage, named by the FASTA's URI, size and mtime, written by temp + rename) and found there
    on the next run; without ``index_cache`` it is built in memory. The FASTA's own folder is input
    (DVC-tracked data, possibly read-only): nothing is written there (decision 0013).

    Raises
    ------
    InputError
        The FASTA is missing, gzip but not bgzip, bgzip without a (valid) ``.gzi``, malformed (see
        `build_fai`), or disagrees with its ``.fai`` (`IndexedReference.check_index`).
    """
    stat = fasta.stat()
    if stat is None:
        raise InputError(fasta.uri, "does not exist")
    blocks = _bgzf_blocks(fasta, stat)
    size = stat[0] if blocks is None else _uncompressed_size(fasta, blocks)
    fai = fasta.at(fasta.uri + ".fai")
    index = _fresh_fai(fai, stat, size)
    source = fai.uri
    if index is None:
        index, source = _built_fai(fasta, stat, blocks, index_cache, stale=fai.exists())
    reference = IndexedReference(fasta, index, index_source=source, blocks=blocks)
    reference.check_index(size)
    return reference


def _uncompressed_size(fasta: RangedFile, blocks) -> int:
    """The last block's start plus what it and the EOF block decompress to."""
    from Bio import bgzf

    start = int(blocks[0][-1])
    try:
        tail = bgzf.BgzfReader(fileobj=io.BytesIO(fasta.read(start)), mode="rb").read(2 * _BGZF_MAX_BLOCK)
    except (ValueError, EOFError, zlib.error) as err:
        raise InputError(fasta.uri, f"damaged BGZF data at byte {start} ({err}); "
                         + _REMAKE_GZI.format(fasta=posixpath.basename(fasta.path))) from None
    return int(blocks[1][-1]) + len(tail)


def _bgzf_blocks(fasta: RangedFile, stat: tuple[int, int]):
    """The ``.gzi`` block table of a bgzip FASTA; None for a plain one."""
    from genoflow.io.vcf.bgzf import is_bgzf

    head = fasta.read(0, 18)
    if head[:2] != GZIP_MAGIC:
        return None
    if not is_bgzf(head):
        raise InputError(fasta.uri, "gzip-compressed but not bgzip (BGZF): random access needs a bgzip file: "
                         f"`zcat {posixpath.basename(fasta.path)} | bgzip -i > ...` then `samtools faidx`")
    gzi = fasta.at(fasta.uri + ".gzi")
    if not gzi.exists():
        raise InputError(fasta.uri, "is bgzip-compressed but has no .gzi index next to it: "
                         + _REMAKE_GZI.format(fasta=posixpath.basename(fasta.path)))
    compressed, uncompressed = parse_gzi(gzi.read_all(), source=gzi.uri, fasta=posixpath.basename(fasta.path))
    if compressed[-1] >= stat[0]:
        raise InputError(gzi.uri, f"lists a block at byte {compressed[-1]} of a {stat[0]}-byte file; "
                         + _REMAKE_GZI.format(fasta=posixpath.basename(fasta.path)))
    return compressed, uncompressed


def _fresh_fai(fai: RangedFile, fasta_stat: tuple[int, int], size: int) -> FaiIndex | None:
    """The ``.fai`` beside the FASTA, or None when absent or stale (older than the FASTA, or past its end)."""
    fai_stat = fai.stat()
    if fai_stat is None:
        return None
    if fai_stat[1] < fasta_stat[1]:
        log.warning("%s is older than its FASTA: rebuilding the index", fai.uri)
        return None
    index = parse_fai(fai.read_all().decode("latin-1"), source=fai.uri)
    if int(index.ends().max()) > size:
        log.warning("%s reaches byte %d of a %d-byte FASTA: rebuilding the index", fai.uri,
                    int(index.ends().max()), size)
        return None
    return index


def _built_fai(fasta: RangedFile, stat, blocks, index_cache: str | None, *, stale: bool) -> tuple[FaiIndex, str]:
    """The index built from the FASTA, from ``index_cache`` when an earlier run built it."""
    key = hashlib.sha256(f"{fasta.uri}\n{stat[0]}\n{stat[1]}".encode()).hexdigest()[:16]
    cached = fasta.at(f"{index_cache.rstrip('/')}/{posixpath.basename(fasta.path)}.{key}.fai") if index_cache else None
    if cached is not None and cached.exists():
        log.info("reference index: %s (built from %s by an earlier run)", cached.uri, fasta.uri)
        return parse_fai(cached.read_all().decode("latin-1"), source=cached.uri), cached.uri
    (log.warning if stale else log.info)("%s: %s .fai, indexing it once by streaming it", fasta.uri,
                                         "stale" if stale else "no")
    with fasta.open_stream() as stream:
        plain = gzip.GzipFile(fileobj=stream, mode="rb") if blocks is not None else stream
        index = build_fai(plain, source=fasta.uri)
    if cached is None:
        return index, f"{fasta.uri} (indexed in memory)"
    cached.write_atomic(index.to_text().encode("latin-1"))
    log.info("reference index written to %s", cached.uri)
    return index, cached.uri

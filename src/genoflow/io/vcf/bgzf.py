"""BGZF text read in byte ranges from plain Python: a task inflates its own blocks and hands the
parser whole batches of lines in one buffer (decision 0029).

Before, Spark's text source read the file through Hadoop's line reader (``hadoop/bgzf-codec``) and
each line crossed from the JVM to the Python worker as its own Arrow string: that was most of the
JVM's CPU time of ingest. Here a range ``[start, end)`` of the compressed file owns the blocks
that start inside it, and the lines as Hadoop's readers share them: every range but the first
skips through the first line break of its first block, and reads on past its last block up to
the first line break of the next range's first block. Every line is read by exactly one range.

Damaged input raises :class:`genoflow.errors.InputError` naming the file and the block's byte
offset, as the JVM codec does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from genoflow.errors import InputError

__all__ = ["is_bgzf", "line_batches", "owned_text"]

MAX_BLOCK = 1 << 16
_MIN_HEADER = 18
_MAGIC = b"\x1f\x8b\x08"
# A real block start lies within MAX_BLOCK bytes of any offset, and is accepted only when the next
# block's header follows it: three blocks' worth always holds one (the JVM codec's rule).
_SCAN = 3 * MAX_BLOCK
_READ = 4 << 20  # compressed bytes per read: few requests on HDFS, bounded memory


def block_size_at(buf: bytes, i: int) -> int:
    """The total size (BSIZE + 1) of a BGZF block whose header starts at ``buf[i]``, or -1."""
    n = len(buf)
    if i + _MIN_HEADER > n or buf[i : i + 3] != _MAGIC or not buf[i + 3] & 4:
        return -1
    (xlen,) = struct.unpack_from("<H", buf, i + 10)
    if xlen < 6 or i + 12 + xlen > n:
        return -1
    size, k, stop = -1, i + 12, i + 12 + xlen
    while k + 4 <= stop:
        (length,) = struct.unpack_from("<H", buf, k + 2)
        if buf[k : k + 2] == b"BC" and length == 2 and k + 6 <= stop:
            size = struct.unpack_from("<H", buf, k + 4)[0] + 1
        k += 4 + length
    return size if size >= 12 + xlen + 8 else -1


def _u16(buf: bytes, i: int) -> int:
    return struct.unpack_from("<H", buf, i)[0]


def is_bgzf(head: bytes) -> bool:
    """Whether ``head`` (the file's first bytes) starts with a BGZF block."""
    return block_size_at(head, 0) > 0


def _first_block_at_or_after(ranged, start: int, source: str) -> int | None:
    """Offset of the first block starting at or after ``start``; None when none does (end of file)."""
    scan = ranged.read(start, _SCAN)
    i = scan.find(_MAGIC)
    while 0 <= i and i + _MIN_HEADER <= len(scan):
        size = block_size_at(scan, i)
        if size > 0:
            following = i + size
            last_block = following == len(scan) and len(scan) < _SCAN
            if last_block or block_size_at(scan, following) > 0:
                return start + i
        i = scan.find(_MAGIC, i + 1)
    if len(scan) < _SCAN:
        return None
    raise InputError(source, f"no BGZF block header within {_SCAN} bytes after byte offset {start}: "
                     "the file is corrupt")


def _blocks(ranged, offset: int, source: str) -> Iterator[tuple[int, bytes]]:
    """``(file offset, inflated bytes)`` of every block from ``offset`` to the end of the file."""
    buf, at, i = b"", offset, 0  # buf holds the file's bytes from `at`; the next block starts at buf[i]
    while True:
        if len(buf) - i < _MIN_HEADER + 8:
            buf, at, i = buf[i:] + ranged.read(at + len(buf), _READ), at + i, 0
            if not buf:
                return
        size = block_size_at(buf, i)
        if size < 0:
            if len(buf) - i < 12 or (buf[i : i + 3] == _MAGIC and len(buf) - i < 12 + _u16(buf, i + 10)):
                raise _truncated(source, at + i)
            raise _corrupt(source, at + i, "not a BGZF block header")
        if len(buf) - i < size:
            buf, at, i = buf[i:] + ranged.read(at + len(buf), max(_READ, size)), at + i, 0
            if len(buf) < size:
                raise _truncated(source, at)
        yield at + i, _inflate(memoryview(buf)[i : i + size], source, at + i)
        i += size


def _inflate(block: memoryview, source: str, at: int) -> bytes | bytearray:
    """The text of one whole block (header included): libdeflate where the system has it, else zlib."""
    inflater = _libdeflate()
    if inflater is None:
        try:  # a BGZF block is a whole gzip member: zlib checks its CRC32 and length itself
            data = zlib.decompress(block, 31)
        except zlib.error as err:
            raise _corrupt(source, at, str(err)) from None
        if len(data) > MAX_BLOCK:
            raise _corrupt(source, at, f"its uncompressed size {len(data)} is out of range")
        return data
    return inflater.inflate(block, source, at)


class _LibDeflate:
    """libdeflate through ctypes: about half zlib's time per block (ooa: 0.18 against 0.32 CPU s per
    430 MB of text, CRC32 included). htslib links it, so machines with bcftools have it; nothing
    else of genoflow needs it."""

    def __init__(self, lib):
        import ctypes

        self._ctypes = ctypes
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_deflate_decompress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                      ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        lib.libdeflate_crc32.restype = ctypes.c_uint32
        lib.libdeflate_crc32.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        self._lib = lib
        self._decompressor = lib.libdeflate_alloc_decompressor()
        if not self._decompressor:
            raise OSError("libdeflate_alloc_decompressor failed")

    def inflate(self, block: memoryview, source: str, at: int) -> bytearray:
        size = len(block)
        xlen = _u16(block, 10)
        crc, length = struct.unpack_from("<II", block, size - 8)
        if length > MAX_BLOCK:
            raise _corrupt(source, at, f"its uncompressed size {length} is out of range")
        out = bytearray(length)
        target = (self._ctypes.c_char * length).from_buffer(out)
        body = bytes(block[12 + xlen : size - 8])
        # 0 = success; with no "actual size" pointer, anything but exactly `length` bytes is an error.
        code = self._lib.libdeflate_deflate_decompress(self._decompressor, body, len(body), target, length, None)
        if code != 0:
            why = {1: "invalid deflate data", 2: f"it inflates to fewer bytes than its header's {length}",
                   3: f"it inflates to more bytes than its header's {length}"}.get(code, f"libdeflate error {code}")
            raise _corrupt(source, at, why)
        if self._lib.libdeflate_crc32(0, target, length) != crc:
            raise _corrupt(source, at, "CRC32 mismatch")
        return out


_LIBDEFLATE: list = []  # [] until looked for, then [_LibDeflate or None]


def _libdeflate() -> _LibDeflate | None:
    if not _LIBDEFLATE:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("deflate") or "libdeflate.so.0"
        try:
            _LIBDEFLATE.append(_LibDeflate(ctypes.CDLL(name)))
        except (OSError, AttributeError):
            _LIBDEFLATE.append(None)
    return _LIBDEFLATE[0]


def _truncated(source: str, at: int) -> InputError:
    return InputError(source, f"the BGZF block at byte offset {at} is truncated (the file ends inside it)")


def _corrupt(source: str, at: int, why: str) -> InputError:
    return InputError(source, f"the BGZF block at byte offset {at} is corrupt ({why})")


def owned_text(ranged, start: int, end: int, *, source: str) -> Iterator[bytes]:
    """The decompressed text of the lines the range ``[start, end)`` of a BGZF file owns, in pieces.

    ``ranged``: a :class:`genoflow.storage.ranged.RangedFile` (or anything with ``read(offset, length)``).
    """
    first = 0 if start == 0 else _first_block_at_or_after(ranged, start, source)
    if first is None or first >= end:
        return
    skipping = start != 0  # the first line (or its tail) belongs to the range before
    for at, data in _blocks(ranged, first, source):
        if at >= end:  # the next range's first block: finish the last line, then stop
            if skipping:
                return
            cut = data.find(b"\n")
            yield data if cut < 0 else data[: cut + 1]
            if cut >= 0:
                return
            continue
        if skipping:
            cut = data.find(b"\n")
            if cut < 0:
                continue
            data, skipping = data[cut + 1 :], False
        if data:
            yield data


def line_batches(pieces: Iterator[bytes], max_lines: int, first_lines: int | None = None) -> Iterator[pa.Array]:
    """Arrow ``large_string`` arrays of at most ``max_lines`` whole lines each, cut from text pieces.

    ``first_lines``: the first array has at most this many (a file's header lines kept apart from its
    records, so that every later array is one whole block for the parser). Each value keeps its line
    break (the parser trims it); a last line without one is a line too. An array's bytes are one
    buffer, never a Python string per line.
    """
    pending: list[bytes] = []  # text after the last cut
    ends: list[int] = []  # offsets (within the joined pending text) just past each line break
    size, limit = 0, first_lines or max_lines
    for piece in pieces:
        k = piece.find(b"\n")
        while k >= 0:
            ends.append(size + k + 1)
            k = piece.find(b"\n", k + 1)
        pending.append(piece)
        size += len(piece)
        while len(ends) >= limit:
            text = b"".join(pending) if len(pending) > 1 else pending[0]
            cut = ends[limit - 1]
            yield _lines_array(text, ends[:limit])
            pending, size = [text[cut:]], len(text) - cut
            ends = [e - cut for e in ends[limit:]]
            limit = max_lines
    text = b"".join(pending)
    if text and (not ends or ends[-1] < len(text)):
        ends.append(len(text))
    lo = 0
    while lo < len(ends):
        base = ends[lo - 1] if lo else 0
        chunk = ends[lo : lo + limit]
        yield _lines_array(text[base : chunk[-1]], [e - base for e in chunk])
        lo, limit = lo + limit, max_lines


def _lines_array(text: bytes, ends: list[int]) -> pa.Array:
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(text))

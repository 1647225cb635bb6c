"""Opening plain or gzip/bgzip byte streams, shared by the format parsers.

Private helpers: callers hand the parsers a binary stream (a local file, an HDFS/S3 stream, a
``BytesIO`` built from a Spark partition) and the parsers decide whether it is compressed by its
magic bytes, never by a file name that may not exist.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import BinaryIO, TextIO

try:  # ISA-L inflates 3x faster than zlib (pinned in requirements.lock; an executor without it uses zlib)
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover
    _isal_zlib = None

from genoflow.errors import InputError

__all__ = [
    "DECOMPRESSION_ERRORS",
    "GZIP_MAGIC",
    "LineCounter",
    "decompressing",
    "is_text_stream",
    "open_text",
    "replaying",
    "truncation_problem",
]

GZIP_MAGIC = b"\x1f\x8b"

# What a damaged gzip stream raises while being read: EOFError when it ends before the
# end-of-stream marker (a truncated download), BadGzipFile/zlib.error for corrupt bytes.
DECOMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error) + ((_isal_zlib.error,) if _isal_zlib else ())
_TRUNCATED = "Compressed file ended before the end-of-stream marker was reached"  # gzip's own words


class _Prefixed(io.RawIOBase):
    """A raw stream that first replays ``prefix`` and then reads from ``stream``.

    Lets us sniff magic bytes from streams that can neither ``peek`` nor ``seek``.
    """

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # read1 where there is one: a decompressing stream's read(n) drops what it inflated when it then breaks
        data = (self._stream.read1 if hasattr(self._stream, "read1") else self._stream.read)(len(buffer))
        if not data:
            return 0
        buffer[: len(data)] = data
        return len(data)


class _Inflating(io.RawIOBase):
    """The content of gzip members (bgzip's blocks too), inflated by ISA-L as it is read.

    Not ``isal.igzip.GzipFile``: it returns nothing of the block it was inflating when the stream turns out
    truncated or corrupt, so an error could not say how far the file was readable; zlib's ``gzip`` can,
    and so can this.
    """

    def __init__(self, compressed: BinaryIO):
        self._compressed = compressed
        self._inflater = _isal_zlib.decompressobj(31)
        self._in_member = False  # bytes of the current member were read and its end is not reached yet
        self._out, self._at = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._at == len(self._out):
            if not self._inflate_more():
                return 0
        n = min(len(buffer), len(self._out) - self._at)
        buffer[:n] = memoryview(self._out)[self._at:self._at + n]
        self._at += n
        return n

    def _inflate_more(self) -> bool:
        """Inflate the next piece of input; False at the end of the last member."""
        if self._inflater.eof:  # a member ended: what follows starts the next one
            data, self._inflater = self._inflater.unused_data, _isal_zlib.decompressobj(31)
        else:
            data = b""
        data = data or self._compressed.read(1 << 15)
        if not data:
            if self._in_member:
                raise EOFError(_TRUNCATED)
            return False
        self._out, self._at = self._inflater.decompress(data), 0
        self._in_member = not self._inflater.eof
        return True


def replaying(prefix: bytes, stream: BinaryIO) -> BinaryIO:
    """A buffered stream of ``prefix`` followed by the rest of ``stream`` (hand a parser bytes read ahead)."""
    return io.BufferedReader(_Prefixed(prefix, stream), buffer_size=1 << 20)


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def is_text_stream(stream) -> bool:
    """True for a stream whose ``read`` returns ``str``."""
    if isinstance(stream, io.TextIOBase):
        return True
    try:
        return isinstance(stream.read(0), str)
    except (AttributeError, TypeError, ValueError, OSError):
        return False


def decompressing(stream: BinaryIO, source: str) -> BinaryIO:
    """Return a binary stream of the content of ``stream``, gunzipped if it is gzip/bgzip.

    Parameters
    ----------
    stream : BinaryIO
        Plain or gzip-compressed bytes (bgzip is multi-member gzip, which ``gzip`` reads).
    source : str
        Name of the file, for error messages.

    Returns
    -------
    BinaryIO
        A buffered binary stream; reading it may raise ``EOFError``/``gzip.BadGzipFile`` on
        damaged compressed data (see `truncation_problem`).
    """
    head = _read_exactly(stream, 2)
    raw = replaying(head, stream)
    if head == GZIP_MAGIC:
        if _isal_zlib is None:
            return gzip.GzipFile(fileobj=raw, mode="rb")
        return io.BufferedReader(_Inflating(raw), buffer_size=1 << 20)
    return raw


def truncation_problem(error: BaseException) -> str:
    """Words for a decompression failure raised while reading a gzip stream."""
    if isinstance(error, EOFError):
        return "the gzip stream is truncated (it ends before the end-of-stream marker)"
    return f"the gzip stream is corrupt ({error})"


def open_text(stream, source: str, *, encoding: str = "utf-8") -> TextIO:
    """Return a text stream for a text stream, or a plain/gzip binary stream.

    Parameters
    ----------
    stream : TextIO or BinaryIO
        Text is returned as is; bytes are gunzipped when they start with the gzip magic and
        decoded with ``encoding`` using universal newlines.
    source : str
        Name of the file, for error messages.
    encoding : str
        Text encoding of a binary stream.
    """
    if is_text_stream(stream):
        return stream
    if not hasattr(stream, "read"):
        raise TypeError(f"{source}: expected a binary or text stream, got {type(stream).__name__}")
    return io.TextIOWrapper(decompressing(stream, source), encoding=encoding, newline=None)


class LineCounter:
    """A text handle that counts (and optionally remembers) the lines read through it.

    Biopython's parsers do not report line numbers; reading through this wrapper tells us
    how far they got when they raise, and where each record started.

    Parameters
    ----------
    handle : TextIO
        The text stream to read.
    source : str
        Name of the file, for error messages.
    keep : bool
        Keep the lines read since the last `mark` (to diagnose a malformed record).
    lines_before : int
        Lines of the file before the handle's first line (a parser taking over part-way through).
    """

    def __init__(self, handle: TextIO, source: str, *, keep: bool = False, lines_before: int = 0):
        self._handle = handle
        self._source = source
        self._keep = keep
        self.n_lines = lines_before
        self.at_eof = False
        self.kept: list[str] = []
        self.kept_first = lines_before + 1

    def read(self, size: int = -1) -> str:
        # Biopython calls read(0) to check the stream is in text mode.
        if size == 0:
            return ""
        raise io.UnsupportedOperation("LineCounter only supports line reads")

    def readline(self) -> str:
        try:
            line = self._handle.readline()
        except DECOMPRESSION_ERRORS as error:
            raise InputError(
                self._source,
                f"{truncation_problem(error)}, after line {self.n_lines}",
                line=self.n_lines + 1,
            ) from None
        except UnicodeDecodeError as error:
            raise InputError(self._source, f"the text is not valid: {error}", line=self.n_lines + 1) from None
        if line:
            self.n_lines += 1
            if self._keep:
                self.kept.append(line)
        else:
            self.at_eof = True
        return line

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def mark(self, *, keep_last: bool) -> None:
        """Forget the kept lines, except the last one when it was read ahead."""
        if keep_last and self.kept:
            self.kept = self.kept[-1:]
            self.kept_first = self.n_lines
        else:
            self.kept = []
            self.kept_first = self.n_lines + 1

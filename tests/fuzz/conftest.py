"""Shared strategies and the one property of the parser fuzz tests (issue 16, capability 6).

Every parser is handed mutations of a small valid file (byte flips, truncation, inserted, deleted and
duplicated lines and fields, huge numbers, NUL bytes, bad UTF-8, CRLF, gzip of garbage, empty) and
grammar-built files whose fields come from valid and hostile token pools. The property: the parser
returns, or raises `genoflow.errors.InputError` naming the file; never another exception, never a
hang (Hypothesis' per-example deadline, pytest-timeout on the test), and its output is no bigger
than its input allows.
"""

from __future__ import annotations

import gzip
import os
import resource
import tempfile
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from genoflow.errors import InputError

EXAMPLES = 10_000  # per parser, as issue 16 asks; the whole fuzz suite fits in ~4 minutes on 2 cores
# Reproducible in CI (derandomize) and nothing written into the repo (no example database). The
# deadline catches a hang or a quadratic blow-up in one example, with room for a busy shared machine.
# GENOFLOW_FUZZ_EXPLORE=<n> runs n random (not derandomized) examples per parser, to hunt for new bugs by hand.
_EXPLORE = int(os.environ.get("GENOFLOW_FUZZ_EXPLORE", "0"))
# Hypothesis caches what it learns (constants) under .hypothesis/ even without a database: keep it out of the repo.
set_hypothesis_home_dir(f"{tempfile.gettempdir()}/genoflow-hypothesis")
FUZZ = settings(
    max_examples=_EXPLORE or EXAMPLES,
    derandomize=not _EXPLORE,
    database=None,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
MAX_RSS_GROWTH_KIB = 1024 * 1024  # peak memory a fuzz test may add to the process (imports included)
TIMEOUT_S = 240  # per test (pytest-timeout): a hang that escapes the deadline still fails

# Field values a parser must refuse or take: huge and negative numbers, NaN, NUL, bad UTF-8,
# separators in the wrong place, a gzip magic in the middle of text.
HOSTILE = [
    b"", b"0", b"-1", b"-9", b"1e309", b"nan", b"inf", b"99999999999999999999999999999999",
    b"18446744073709551616", b"9" * 400, b"\x00", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\r", b"\r\n",
    b"\t", b",", b";", b"=", b'"', b"'", b"#", b"##", b">", b"@", b"+", b".", b"\x1f\x8b", b"\x0c",
    b"\xe2\x80\xa8", b"\x85", b"\xef\xbb\xbf", b" ", b"A" * 300,
]


_TOKEN = st.sampled_from(HOSTILE) | st.binary(max_size=8)
_EDITS = st.sampled_from(["flip", "truncate", "insert", "drop_line", "dup_line", "swap_lines", "drop_field",
                          "dup_field", "set_field", "crlf", "strip_newlines"])


@st.composite
def _edit(draw, data: bytes, sep: bytes) -> bytes:
    """One edit of ``data``: a byte, a line or a field changed."""
    kind = draw(_EDITS)
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "strip_newlines":
        return data.replace(b"\n", b"", 2)
    at = draw(st.integers(0, max(len(data), 1)))
    if kind == "flip" and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + draw(_TOKEN) + data[at:]
    lines = data.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "drop_line":
        return b"\n".join(lines[:i] + lines[i + 1:])
    if kind == "dup_line":
        return b"\n".join(lines[:i] + [lines[i]] * 3 + lines[i:])
    if kind == "swap_lines":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    fields = lines[i].split(sep)
    k = draw(st.integers(0, len(fields) - 1))
    if kind == "drop_field":
        del fields[k]
    elif kind == "dup_field":
        fields.insert(k, fields[k])
    else:
        fields[k] = draw(_TOKEN)
    lines[i] = sep.join(fields)
    return b"\n".join(lines)


@st.composite
def mutated(draw, valid: bytes, sep: bytes = b"\t") -> bytes:
    """``valid`` after 1 to 4 edits."""
    data = valid
    for _ in range(draw(st.integers(1, 4))):
        data = draw(_edit(data, sep))
    return data


def grammar(meta: list[bytes], columns: list[list[bytes]], sep: bytes = b"\t") -> st.SearchStrategy[bytes]:
    """Files built from their grammar: meta/header lines, then records whose i-th field is a valid
    value of ``columns[i]`` (three times in four) or a hostile one; one record in three has a field
    too many or too few."""
    fields = [st.sampled_from(pool * 3 + HOSTILE) for pool in columns]
    shapes = [fields, fields, fields[:-1], fields + fields[-1:]]
    record = st.one_of(*(st.tuples(*shape).map(sep.join) for shape in shapes))
    return st.builds(
        lambda head, records, newline, end: newline.join(head + records) + end,
        st.lists(st.sampled_from(meta), max_size=4), st.lists(record, max_size=6),
        st.sampled_from([b"\n", b"\n", b"\r\n"]), st.sampled_from([b"\n", b""]),
    )


@st.composite
def wrapped(draw, plain: st.SearchStrategy[bytes]) -> bytes:
    """Plain bytes, or gzip of them, truncated or with flipped bytes; or gzip magic on garbage."""
    data = draw(plain)
    how = draw(st.sampled_from(["plain"] * 8 + ["gzip", "gzip", "gzip_truncated", "gzip_flipped", "magic",
                                                "two_members", "trailing_garbage"]))
    if how == "plain":
        return data
    if how == "magic":
        return b"\x1f\x8b" + data
    packed = gzip.compress(data, compresslevel=1, mtime=0)
    if how == "gzip":
        return packed
    if how == "two_members":  # as bgzip writes: a second member, and the empty end-of-file one
        return packed + gzip.compress(data[: len(data) // 2], mtime=0) + gzip.compress(b"", mtime=0)
    if how == "trailing_garbage":
        return packed + draw(st.sampled_from(HOSTILE))
    at = draw(st.integers(0, len(packed) - 1))
    if how == "gzip_truncated":
        return packed[:at]
    return packed[:at] + bytes([packed[at] ^ draw(st.integers(1, 255))]) + packed[at + 1:]


def inputs(valid: bytes, meta: list[bytes], columns: list[list[bytes]], sep: bytes = b"\t",
           gzip_ok: bool = True) -> st.SearchStrategy[bytes]:
    """Mutations of ``valid`` (mostly), grammar-built files, random bytes and the empty file."""
    plain = st.one_of(mutated(valid, sep), mutated(valid, sep), grammar(meta, columns, sep),
                      st.binary(max_size=64), st.just(b""))
    return wrapped(plain) if gzip_ok else plain


def plain_size(data: bytes) -> int:
    """Bytes of text ``data`` stands for: its length, or what its gzip members decompress to."""
    size = len(data)
    if data[:2] != b"\x1f\x8b":
        return size
    out, stream = 0, zlib.decompressobj(wbits=31)
    try:
        while data:
            out += len(stream.decompress(data))
            data = stream.unused_data
            stream = zlib.decompressobj(wbits=31) if data else stream
    except zlib.error:
        pass
    return max(out, size)


def only_input_errors(call: Callable, *sources: str):
    """``call()``'s result, or None when it raised an `InputError` naming one of ``sources``."""
    try:
        return call()
    except InputError as error:
        assert any(source in str(error) for source in sources), f"the error names no input file: {error}"
        return None


class Counter:
    """Examples run by a fuzz test, checked after Hypothesis is done (a test that ran too few fails)."""

    def __init__(self):
        self.n = 0
        self.peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def __call__(self) -> None:
        self.n += 1

    def check(self, name: str) -> None:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.peak_kib
        print(f"\nfuzz {name}: {self.n} examples, peak RSS grew {grown // 1024} MiB")
        assert self.n >= EXAMPLES, f"{name}: only {self.n} examples ran"
        # Inputs are a few hundred bytes: a parser that held far more than that would show here.
        assert grown < MAX_RSS_GROWTH_KIB, f"{name}: peak RSS grew {grown // 1024} MiB"


@pytest.fixture
def counter() -> Counter:
    return Counter()

"""One pass over a block of VCF lines in their own bytes: where the fixed columns end, how many
columns each line has, and the calls of GT-only lines whose calls are all one-digit diploid
(``a/b``, ``a|b``), decoded straight from the text."""

from __future__ import annotations

import numpy as np
from numba import njit

from genoflow.genotypes import MISSING

BAD_ALLELE = -128  # a byte that is neither an allele digit nor '.'
_TAB, _SLASH, _PIPE, _DOT, _ZERO, _LF, _CR, _G, _T = (ord(c) for c in "\t/|.0\n\rGT")
_N_FIXED = 9  # CHROM ... FORMAT


def _allele_table():
    table = np.full(256, BAD_ALLELE, dtype=np.int8)
    table[_ZERO : _ZERO + 10] = np.arange(10)
    table[_DOT] = MISSING
    return table


ALLELE_OF_BYTE = _allele_table()  # byte -> allele index, MISSING for '.', BAD_ALLELE otherwise
# A call "a/b<TAB>" read as one little-endian 32-bit word, its separator and tab bytes masked in.
_SHAPE_MASK = np.uint32(0xFF00FF00)
_UNPHASED = np.uint32(_TAB << 24 | _SLASH << 8)
_PHASED = np.uint32(_TAB << 24 | _PIPE << 8)


def word_views(data: np.ndarray) -> tuple:
    """``data`` as 32-bit words from each of its first four bytes: a call starting at byte ``p``
    is word ``(p - p % 4) // 4`` of view ``p % 4`` (unaligned loads, one per call)."""
    return tuple(data[k : k + 4 * ((len(data) - k) // 4)].view(np.uint32) for k in range(4))


@njit(cache=True, nogil=True)
def _decode_calls(data, words, at, n_samples, first, second):
    """Decode ``n_samples`` calls ``a/b<TAB>`` from ``data[at:]`` (the last without its tab) into
    ``first``/``second``; False when any call has another shape (the row is then undefined)."""
    r = at % 4
    view = words[0] if r == 0 else words[1] if r == 1 else words[2] if r == 2 else words[3]
    base = (at - r) // 4
    ok = True
    for j in range(n_samples - 1):
        word = view[base + j]
        shape = word & _SHAPE_MASK
        a, b = ALLELE_OF_BYTE[word & np.uint32(0xFF)], ALLELE_OF_BYTE[(word >> np.uint32(16)) & np.uint32(0xFF)]
        ok &= ((shape == _UNPHASED) | (shape == _PHASED)) & (a != BAD_ALLELE) & (b != BAD_ALLELE)
        first[j] = a
        second[j] = b
    p = at + 4 * (n_samples - 1)
    a, b = ALLELE_OF_BYTE[data[p]], ALLELE_OF_BYTE[data[p + 2]]
    first[n_samples - 1] = a
    second[n_samples - 1] = b
    return ok and (data[p + 1] == _SLASH or data[p + 1] == _PIPE) and a != BAD_ALLELE and b != BAD_ALLELE


@njit(cache=True, nogil=True)
def scan_lines(data, words, starts, ends, n_samples, first, second):
    """Scan the lines ``data[starts[i]:ends[i]]`` (uint8) of a block.

    Parameters
    ----------
    data : numpy.ndarray of uint8
    words : tuple
        `word_views` of ``data``.
    starts, ends : numpy.ndarray of int64, shape (n_lines,)
        A trailing line break (``\\n``, ``\\r\\n``) is not counted as part of a line.
    n_samples : int
    first, second : numpy.ndarray of int8, shape (n_lines, n_samples)
        Receive the allele indices (-1 missing) of the decoded lines; other rows are left undefined.

    Returns
    -------
    ends : numpy.ndarray of int64
        Each line's end without its line break.
    fixed_end : numpy.ndarray of int64
        Offset of the tab after FORMAT (the 9th), -1 where the line has fewer.
    n_columns : numpy.ndarray of int64
        Tab-separated columns of each line; 0 for an empty line.
    decoded : numpy.ndarray of bool
        Lines with FORMAT ``GT`` whose calls were all one-digit diploid: their rows of ``first`` and
        ``second`` are set, and their column count is known from their length (``4 n - 1`` bytes
        of calls), without counting tabs.
    """
    n_lines = len(starts)
    trimmed = np.empty(n_lines, dtype=np.int64)
    fixed_end = np.full(n_lines, -1, dtype=np.int64)
    n_columns = np.zeros(n_lines, dtype=np.int64)
    decoded = np.zeros(n_lines, dtype=np.bool_)
    width = 4 * n_samples - 1
    for i in range(n_lines):
        start, end = starts[i], ends[i]
        while end > start and (data[end - 1] == _LF or data[end - 1] == _CR):
            end -= 1
        trimmed[i] = end
        if end == start:
            continue
        tabs, k, format_start = 0, start, start
        while k < end and tabs < _N_FIXED:
            if data[k] == _TAB:
                tabs += 1
                if tabs == _N_FIXED - 1:
                    format_start = k + 1
            k += 1
        if tabs < _N_FIXED:
            n_columns[i] = tabs + 1
            continue
        fixed_end[i] = k - 1
        gt_only = k - 1 - format_start == 2 and data[format_start] == _G and data[format_start + 1] == _T
        if gt_only and end - k == width and _decode_calls(data, words, k, n_samples, first[i], second[i]):
            decoded[i] = True
            n_columns[i] = _N_FIXED + n_samples
            continue
        for m in range(k, end):
            if data[m] == _TAB:
                tabs += 1
        n_columns[i] = tabs + 1
    return trimmed, fixed_end, n_columns, decoded


@njit(cache=True, nogil=True)
def allele_dosages(first, second, line_of, allele, dosage):
    """``dosage[r, j]``: copies of allele ``allele[r]`` in call ``j`` of line ``line_of[r]``; ``MISSING``
    where either of its alleles is (``second`` is -2, not missing, for a haploid call)."""
    for r in range(len(line_of)):
        line, k = line_of[r], allele[r]
        for j in range(dosage.shape[1]):
            a, b = first[line, j], second[line, j]
            copies = np.int8(a == k) + np.int8(b == k)
            dosage[r, j] = MISSING if (a == MISSING) | (b == MISSING) else copies


@njit(cache=True, nogil=True)
def highest_alleles(first, second):
    """The highest allele index called on each line (int8, shape (n_lines,))."""
    highest = np.empty(first.shape[0], dtype=np.int8)
    for i in range(first.shape[0]):
        top = np.int8(-128)
        for j in range(first.shape[1]):
            top = max(top, first[i, j], second[i, j])
        highest[i] = top
    return highest

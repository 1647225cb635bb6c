"""Decoding of GT-only VCF sample columns whose calls are all one-digit diploid (``a/b``, ``a|b``)."""

from __future__ import annotations

import numpy as np
from numba import njit

from genoflow.genotypes import MISSING

_BAD = -128  # neither a digit nor '.'
_TAB, _SLASH, _PIPE, _DOT, _ZERO = (ord(c) for c in "\t/|.0")


@njit(cache=True, nogil=True)
def _allele(byte):
    if _ZERO <= byte <= _ZERO + 9:
        return byte - _ZERO
    if byte == _DOT:
        return MISSING
    return _BAD


@njit(cache=True, nogil=True)
def decode_fixed_width_calls(calls, first, second):
    """Decode ``calls`` (uint8, shape (n_lines, n_samples, 4): ``a``, separator, ``b``, tab) into
    ``first``/``second`` (int8, (n_lines, n_samples)); returns the lines (bool, (n_lines,)) where
    every call had that shape. A line stops at its first other call; its rows are left undefined.
    """
    n_lines, n_samples = calls.shape[0], calls.shape[1]
    good = np.ones(n_lines, dtype=np.bool_)
    for i in range(n_lines):
        for j in range(n_samples):
            sep, tab = calls[i, j, 1], calls[i, j, 3]
            a, b = _allele(calls[i, j, 0]), _allele(calls[i, j, 2])
            if (sep != _SLASH and sep != _PIPE) or tab != _TAB or a == _BAD or b == _BAD:
                good[i] = False
                break
            first[i, j] = a
            second[i, j] = b
    return good

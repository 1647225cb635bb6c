"""Exact Hardy-Weinberg p-values, one variant at a time (see :func:`genoflow.qc.hwe_exact_p`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def hwe_exact_p_loop(n, n_rare, obs_het, tie_tolerance):
    """p-values of variants with ``n_rare >= 2``: ``n`` called samples, ``n_rare`` minor alleles.

    Probabilities are built outwards from the most likely het count with the exact ratio of
    neighbours, ``P(h + 2) / P(h) = 4 n_AA n_BB / ((h + 2)(h + 1))`` (Wigginton et al. 2005), relative
    to that mode; a walk stops where they underflow, so the work per variant is the width of its
    distribution rather than ``n_rare / 2``. Tables within ``tie_tolerance`` (relative) of the
    observed one's probability count as ties.
    """
    out = np.empty(n.size)
    scratch = np.empty(n_rare.max() // 2 + 1 if n.size else 1)  # probability of het count parity + 2k
    for v in range(n.size):
        out[v] = _one(n[v], n_rare[v], obs_het[v], tie_tolerance, scratch)
    return out


@njit(cache=True, nogil=True)
def _up(n, n_rare, h):
    """P(h + 2) / P(h)."""
    hom_rare = (n_rare - h) // 2
    return (4.0 * hom_rare * (n - h - hom_rare)) / ((h + 2.0) * (h + 1.0))


@njit(cache=True, nogil=True)
def _down(n, n_rare, h):
    """P(h - 2) / P(h)."""
    hom_rare = (n_rare - h) // 2 + 1
    return (h * (h - 1.0)) / (4.0 * hom_rare * (n - h + 2 - hom_rare))


@njit(cache=True, nogil=True)
def _one(n, n_rare, obs_het, tie_tolerance, prob):
    parity = n_rare % 2
    # The mode: start at the het count expected under HWE (with n_rare's parity) and climb; the
    # distribution is unimodal, so the first step that does not rise ends the climb.
    best = min((n_rare * (2 * n - n_rare)) // (2 * n), n_rare)
    if best % 2 != parity:
        best += 1
    while best + 2 <= n_rare and _up(n, n_rare, best) > 1.0:
        best += 2
    while best - 2 >= parity and _down(n, n_rare, best) > 1.0:
        best -= 2
    # prob[k] is P(parity + 2k) / P(mode), filled down and up from the mode until it underflows.
    lo = hi = (best - parity) // 2
    prob[lo] = 1.0
    h = best
    while h + 2 <= n_rare:
        p = prob[hi] * _up(n, n_rare, h)
        if p == 0.0:
            break
        hi += 1
        prob[hi] = p
        h += 2
    h = best
    while h - 2 >= parity:
        p = prob[lo] * _down(n, n_rare, h)
        if p == 0.0:
            break
        lo -= 1
        prob[lo] = p
        h -= 2
    k_obs = (obs_het - parity) // 2
    observed = prob[k_obs] if lo <= k_obs <= hi else 0.0  # 0: where the probabilities underflowed
    limit = observed * (1.0 + tie_tolerance)
    total = 0.0
    tail = 0.0
    for k in range(lo, hi + 1):
        total += prob[k]
        if prob[k] <= limit:
            tail += prob[k]
    return min(tail / total, 1.0)

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
    for v in range(n.size):
        out[v] = _one(n[v], n_rare[v], obs_het[v], tie_tolerance)
    return out


@njit(cache=True, nogil=True)
def _one(n, n_rare, obs_het, tie_tolerance):
    parity = n_rare % 2
    # The mode: the het count closest to its expectation under HWE, with n_rare's parity.
    mid = (n_rare * (2 * n - n_rare)) // (2 * n)
    if mid % 2 != parity:
        mid += 1
    mid = min(mid, n_rare)
    # Walk down and up from mid once to find the largest probability (the ratio is unimodal).
    log_mode = 0.0
    best = mid
    h = mid
    acc = 0.0
    while h + 2 <= n_rare:
        hom_rare = (n_rare - h) // 2
        hom_common = n - h - hom_rare
        acc += np.log((4.0 * hom_rare * hom_common) / ((h + 2.0) * (h + 1.0)))
        if acc <= log_mode:
            break
        log_mode, best = acc, h + 2
        h += 2
    if best == mid:
        h, acc = mid, 0.0
        while h - 2 >= parity:
            hom_rare = (n_rare - h) // 2 + 1
            hom_common = n - h - hom_rare + 2
            acc += np.log((h * (h - 1.0)) / (4.0 * hom_rare * hom_common))
            if acc <= log_mode:
                break
            log_mode, best = acc, h - 2
            h -= 2
    # Probabilities relative to the mode (1 there), down and up until they underflow.
    p_obs = -1.0
    total = 1.0
    if obs_het == best:
        p_obs = 1.0
    tail = 0.0  # mass of tables no more likely than the observed one, filled once p_obs is known
    # Pass 1: total mass and p_obs.
    prob = 1.0
    h = best
    while h + 2 <= n_rare:
        hom_rare = (n_rare - h) // 2
        hom_common = n - h - hom_rare
        prob *= (4.0 * hom_rare * hom_common) / ((h + 2.0) * (h + 1.0))
        h += 2
        if h == obs_het:
            p_obs = prob
        if prob == 0.0:
            break
        total += prob
    prob = 1.0
    h = best
    while h - 2 >= parity:
        hom_rare = (n_rare - h) // 2 + 1
        hom_common = n - h - hom_rare + 2
        prob *= (h * (h - 1.0)) / (4.0 * hom_rare * hom_common)
        h -= 2
        if h == obs_het:
            p_obs = prob
        if prob == 0.0:
            break
        total += prob
    if p_obs < 0.0:  # the observed table lies where the probabilities underflowed
        p_obs = 0.0
    # Pass 2: the tail, each table compared with the observed one.
    limit = p_obs * (1.0 + tie_tolerance)
    tail = 1.0 if 1.0 <= limit else 0.0
    prob = 1.0
    h = best
    while h + 2 <= n_rare:
        hom_rare = (n_rare - h) // 2
        hom_common = n - h - hom_rare
        prob *= (4.0 * hom_rare * hom_common) / ((h + 2.0) * (h + 1.0))
        h += 2
        if prob == 0.0:
            break
        if prob <= limit:
            tail += prob
    prob = 1.0
    h = best
    while h - 2 >= parity:
        hom_rare = (n_rare - h) // 2 + 1
        hom_common = n - h - hom_rare + 2
        prob *= (h * (h - 1.0)) / (4.0 * hom_rare * hom_common)
        h -= 2
        if prob == 0.0:
            break
        if prob <= limit:
            tail += prob
    return min(tail / total, 1.0)

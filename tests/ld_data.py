"""Genotypes in linkage disequilibrium for the LD tests (pruning, streaming, subsets)."""

from __future__ import annotations

import numpy as np


def linked_dosages(n: int, m: int, seed: int, *, switch: float = 0.15, monomorphic: bool = True) -> np.ndarray:
    """(m, n) dosages with LD: two haplotypes per sample walk along the variants, each site copying the
    previous site's allele unless it switches (prob. ``switch``); 3 % missing and, with ``monomorphic``,
    a few monomorphic rows."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.95, size=m)
    haplotypes = np.empty((m, 2, n), dtype=np.int8)
    haplotypes[0] = rng.random((2, n)) < freq[0]
    for i in range(1, m):
        fresh = rng.random((2, n)) < freq[i]
        haplotypes[i] = np.where(rng.random((2, n)) < switch, fresh, haplotypes[i - 1])
    dosages = haplotypes.sum(axis=1).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.03] = -1
    if monomorphic:
        dosages[rng.choice(m, size=max(1, m // 40), replace=False)] = 0
    return dosages

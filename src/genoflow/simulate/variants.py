"""The cohort's genotypes: msprime's coalescent of one human-like population, as biallelic SNVs.

:func:`variants_from_tree_sequence` turns any JC69 tree sequence (e.g. a stdpopsim model's,
:mod:`genoflow.simulate.ooa`) into the :class:`_Variants` the cohort writers and traits read.
"""

from __future__ import annotations

from dataclasses import dataclass

import msprime
import numpy as np

__all__ = ["variants_from_tree_sequence"]

# Coalescent model (a human-like single population).
_RECOMBINATION_RATE = 1e-8
_POPULATION_SIZE = 10_000
_MUTATION_RATE = 1.5e-8



@dataclass
class _Variants:
    """Biallelic SNVs of the simulation, sorted by position."""

    pos0: np.ndarray  # 0-based positions, int64
    ref: np.ndarray  # ancestral base, uint8 ASCII
    alt: np.ndarray  # derived base, uint8 ASCII
    haps: np.ndarray  # (n_sites, 2 * n_patients) int8 alt-allele indicator; patient i = cols 2i, 2i+1
    n_dropped: int  # sites hit by more than one mutation

    @property
    def dosage(self) -> np.ndarray:
        """Alternate-allele count per (site, patient), int8."""
        return self.haps[:, 0::2] + self.haps[:, 1::2]

    @property
    def maf(self) -> np.ndarray:
        """Minor-allele frequency per site."""
        af = self.haps.mean(axis=1, dtype=np.float64)
        return np.minimum(af, 1.0 - af)


def _simulate_variants(n: int, length: int, seed: int) -> _Variants:
    """Coalescent genotypes; keeps sites carrying exactly one mutation (biallelic SNVs)."""
    ts = msprime.sim_ancestry(
        samples=n,
        ploidy=2,
        sequence_length=length,
        recombination_rate=_RECOMBINATION_RATE,
        population_size=_POPULATION_SIZE,
        random_seed=seed,
    )
    ts = msprime.sim_mutations(ts, rate=_MUTATION_RATE, random_seed=seed)
    return variants_from_tree_sequence(ts)


def variants_from_tree_sequence(ts) -> _Variants:
    """Biallelic SNVs of a tree sequence with JC69 mutations (sites with >1 mutation dropped)."""
    tables = ts.tables
    if np.any(np.diff(tables.sites.ancestral_state_offset) != 1):
        raise RuntimeError("expected single-nucleotide ancestral states from msprime's JC69 model")
    n_mut = np.bincount(tables.mutations.site, minlength=ts.num_sites)
    # Sites with recurrent or back mutations may be multi-allelic; dropping them all is simplest
    # and costs ~0.3 % of sites.
    keep = np.flatnonzero(n_mut == 1)
    ts = ts.delete_sites(np.flatnonzero(n_mut != 1))
    # JC69 alleles are single nucleotides, so the ragged state columns are one byte per row.
    ref = tables.sites.ancestral_state[keep].view(np.uint8)
    mut_order = np.argsort(tables.mutations.site, kind="stable")
    first_mut = mut_order[np.searchsorted(tables.mutations.site[mut_order], keep)]
    alt = tables.mutations.derived_state[first_mut].view(np.uint8)
    pos0 = tables.sites.position[keep].astype(np.int64)
    haps = ts.genotype_matrix().astype(np.int8)
    # Guard against monomorphic columns (e.g. a mutation over every sample).
    ac = haps.sum(axis=1, dtype=np.int64)
    poly = (ac > 0) & (ac < haps.shape[1])
    return _Variants(pos0[poly], ref[poly], alt[poly], haps[poly], int(len(n_mut) - len(keep)))


"""Linkage disequilibrium: pairwise r² of unphased dosages and window pruning like ``plink2 --indep-pairwise``.

r² here is the squared Pearson correlation of two variants' allele counts over the samples called
at both (pairwise-complete, as plink2 computes it for pruning), computed for a whole window at once
with five matrix products. Pruning walks a window along each contig; inside a window, every pair
with r² above the threshold loses its lower-MAF variant (the later one on a tie), pairs taken in
order, as plink does; then the window moves ``step`` variants on.

Clumping (:mod:`genoflow.features.prs`) uses plink 1.9's r² instead: from two-locus haplotype
frequencies estimated by EM (:func:`haplotype_r2_with`), which is what ``plink --clump`` compares.

Spark: :func:`prune_contigs` groups the genotype table by contig and prunes each contig in an
executor (``applyInPandas``); only the kept variant keys come back.
"""

from __future__ import annotations

import numpy as np

from genoflow.genotypes import MISSING, rows_per_block, stack_dosages

__all__ = ["pairwise_r2", "r2_with", "haplotype_r2_with", "prune_window_indices", "indep_pairwise", "prune_contigs",
           "PRUNE_SCHEMA_DDL"]

PRUNE_SCHEMA_DDL = "contig string, pos long, ref string, alt string, alt_af double"
# haplotype_r2_with's one-hot genotypes: (m, 3, n) bools and their float64 copy, per (variant, sample).
_HAPLOTYPE_BYTES_PER_VALUE = 32


def _called(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values with missing as 0, float64; called mask, float64) of an (m, n) int8 block."""
    called = dosages != MISSING
    return np.where(called, dosages, 0).astype(np.float64), called.astype(np.float64)


def pairwise_r2(dosages: np.ndarray) -> np.ndarray:
    """r² between every pair of variants of a block, pairwise-complete over called samples.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (m, n), int8
        0/1/2 ALT counts, ``-1`` missing.

    Returns
    -------
    numpy.ndarray, shape (m, m), float64
        r² (0 where a variant has no variation among the samples called at both).
    """
    x, c = _called(dosages)
    return _r2(x, c, x, c)


def r2_with(one: np.ndarray, block: np.ndarray) -> np.ndarray:
    """r² of one variant, shape (n,), with each variant of ``block``, shape (m, n); shape (m,)."""
    x1, c1 = _called(np.asarray(one)[None, :])
    x2, c2 = _called(block)
    return _r2(x1, c1, x2, c2)[0]


def haplotype_r2_with(one: np.ndarray, block: np.ndarray, *, iterations: int = 100) -> np.ndarray:
    """r² from two-locus haplotype frequencies estimated by EM (plink 1.9's ``--ld``/``--clump`` r²).

    One variant, shape (n,), against each variant of ``block``, shape (m, n), over the samples
    called at both. Only double heterozygotes have an unknown phase; EM starts from linkage
    equilibrium. Returns shape (m,) float64 (0 where a variant has no variation).
    """
    one, block = np.asarray(one), np.asarray(block)
    rows = rows_per_block(block.shape[-1], _HAPLOTYPE_BYTES_PER_VALUE)
    if block.ndim == 2 and block.shape[0] > rows:  # each variant's r² is its own: a block at a time
        return np.concatenate([haplotype_r2_with(one, block[i : i + rows], iterations=iterations)
                               for i in range(0, block.shape[0], rows)])
    a = np.stack([one == k for k in (0, 1, 2)]).astype(np.float64)  # (3, n)
    b = np.stack([block == k for k in (0, 1, 2)], axis=1).astype(np.float64)  # (m, 3, n)
    t = np.einsum("an,mbn->mab", a, b)  # genotype table: t[m, alt count at one, alt count at the other]
    n2 = 2.0 * t.sum(axis=(1, 2))
    # Haplotype counts known without phase (11 = ALT-ALT, 10, 01, 00), double heterozygotes aside.
    k11 = 2 * t[:, 2, 2] + t[:, 2, 1] + t[:, 1, 2]
    k10 = 2 * t[:, 2, 0] + t[:, 2, 1] + t[:, 1, 0]
    k01 = 2 * t[:, 0, 2] + t[:, 1, 2] + t[:, 0, 1]
    k00 = 2 * t[:, 0, 0] + t[:, 1, 0] + t[:, 0, 1]
    het = t[:, 1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = (k11 + k10 + het) / n2
        pb = (k11 + k01 + het) / n2
        f11, f10, f01, f00 = pa * pb, pa * (1 - pb), (1 - pa) * pb, (1 - pa) * (1 - pb)
        for _ in range(iterations):
            cis = f11 * f00
            x = np.where(cis + f10 * f01 > 0, cis / (cis + f10 * f01), 0.5)
            f11, f00 = (k11 + het * x) / n2, (k00 + het * x) / n2
            f10, f01 = (k10 + het * (1 - x)) / n2, (k01 + het * (1 - x)) / n2
        d = f11 - pa * pb
        r2 = d * d / (pa * (1 - pa) * pb * (1 - pb))
    return np.where(np.isfinite(r2), np.clip(r2, 0.0, 1.0), 0.0)


def _r2(x1, c1, x2, c2) -> np.ndarray:
    """Pairwise-complete r² between the rows of two blocks (values with missing as 0, called masks)."""
    n = c1 @ c2.T
    s1 = x1 @ c2.T  # sum of variant i over samples called at j too
    s2 = c1 @ x2.T
    q1 = (x1 * x1) @ c2.T
    q2 = c1 @ (x2 * x2).T
    s12 = x1 @ x2.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = s12 - s1 * s2 / n
        v1 = q1 - s1 * s1 / n
        v2 = q2 - s2 * s2 / n
        r2 = cov * cov / (v1 * v2)
    # Rounding can leave a tiny positive variance for a constant variant: treat as no variation.
    bad = (v1 <= 1e-9 * np.maximum(q1, 1.0)) | (v2 <= 1e-9 * np.maximum(q2, 1.0)) | (n < 2)
    return np.where(bad, 0.0, np.clip(r2, 0.0, 1.0))


def prune_window_indices(positions: np.ndarray, *, window: int, step: int, window_kb: bool) -> list[tuple[int, int]]:
    """The ``[start, end)`` variant ranges of the pruning windows of one contig (sorted positions).

    A window of ``window`` variants moves ``step`` variants at a time; a kb window holds the
    variants within ``window`` kb of its first one (plink counts the end inclusive: pos - first <= kb * 1000)
    and moves one variant at a time (plink2 requires step 1 with kb).
    """
    m = len(positions)
    if window_kb:
        ends = np.searchsorted(positions, np.asarray(positions) + window * 1000, side="right")
        return [(i, int(ends[i])) for i in range(0, m)]
    return [(i, min(i + window, m)) for i in range(0, max(m - window, 0) + step, step) if i < m]


def indep_pairwise(dosages: np.ndarray, positions: np.ndarray, *, window: int, step: int, r2: float,
                   window_kb: bool = False) -> np.ndarray:
    """Variants of one contig kept by pairwise LD pruning; boolean mask, shape (m,).

    Parameters
    ----------
    dosages : numpy.ndarray, shape (m, n), int8
        The contig's variants in position order, ``-1`` missing.
    positions : numpy.ndarray, shape (m,), int
        Their positions, ascending.
    window, step : int
        Window size (variants, or kb with ``window_kb``) and step (variants).
    r2 : float
        Pairs with r² strictly above this lose one variant.

    Notes
    -----
    plink's order: in each window, every variant still in (in order) is compared with the later
    ones it has not yet been compared with; at the first pair above the threshold the variant with
    the lower MAF goes (the later one on a tie) and the scan moves on to the next variant; passes
    repeat until one removes nothing. Monomorphic variants are removed up front.
    """
    dosages = np.asarray(dosages)
    positions = np.asarray(positions)
    m = dosages.shape[0]
    if window < 1 or step < 1 or (window_kb and step != 1):
        raise ValueError(f"indep_pairwise: need window >= 1, step >= 1 (1 with kb), got {window}, {step}")
    maf = _maf(dosages)
    keep = maf > 0
    threshold = r2 * (1 + 1e-12)
    first_unchecked = np.arange(1, m + 1)  # each variant has been compared with every kept one before this
    for start, end in prune_window_indices(positions, window=window, step=step, window_kb=window_kb):
        high = pairwise_r2(dosages[start:end]) > threshold
        _prune_window(high, start, end, keep, maf, first_unchecked)
    return keep


def _prune_window(high: np.ndarray, start: int, end: int, keep: np.ndarray, maf: np.ndarray,
                  first_unchecked: np.ndarray) -> None:
    """One window of :func:`indep_pairwise` (updates ``keep`` and ``first_unchecked`` in place)."""
    offsets = np.arange(end - start)
    removed_any = True
    while removed_any:
        removed_any = False
        for a in range(end - start):
            i = start + a
            if not keep[i] or first_unchecked[i] >= end:
                continue
            open_ = keep[start:end] & (offsets > a) & (offsets >= first_unchecked[i] - start)
            hits = np.flatnonzero(open_ & high[a])
            if hits.size == 0:
                first_unchecked[i] = end
                continue
            b = hits[0]
            j = start + b
            removed_any = True
            if maf[i] < maf[j] * (1 - 1e-12):
                keep[i] = False
                continue
            keep[j] = False
            later = np.flatnonzero(open_ & (offsets > b))
            first_unchecked[i] = start + later[0] if later.size else end


def _alt_af(dosages: np.ndarray) -> np.ndarray:
    """ALT frequency of each row over its called samples (NaN when none), a block of rows at a time:
    :func:`_called`'s two float64 copies of a whole contig would be 16 bytes per genotype."""
    rows = rows_per_block(dosages.shape[1], 16)
    af = np.empty(dosages.shape[0])
    for start in range(0, dosages.shape[0], rows):
        x, c = _called(dosages[start : start + rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            af[start : start + rows] = x.sum(axis=1) / (2.0 * c.sum(axis=1))
    return af


def _maf(dosages: np.ndarray) -> np.ndarray:
    af = np.nan_to_num(_alt_af(dosages), nan=0.0)
    return np.minimum(af, 1.0 - af)


def prune_contigs(genotypes, *, sample_index: np.ndarray, window: int, step: int, r2: float, window_kb: bool = False):
    """Spark: LD-prune each contig of ``genotypes`` in an executor; the kept variants' keys.

    Parameters
    ----------
    genotypes : DataFrame
        Genotype table rows (contig, pos, ref, alt, dosages).
    sample_index : (n,) int
        Dosage columns (samples) to use.

    Returns
    -------
    DataFrame with ``PRUNE_SCHEMA_DDL`` columns (``alt_af`` over the called samples given).
    """
    index = np.asarray(sample_index, dtype=np.int64)

    def prune(frame):
        import pandas as pd

        frame = frame.sort_values(["pos", "ref", "alt"], kind="stable")
        g = stack_dosages(frame["dosages"], index)
        keep = indep_pairwise(g, frame["pos"].to_numpy(), window=window, step=step, r2=r2, window_kb=window_kb)
        af = _alt_af(g[keep])
        kept = frame.loc[keep, ["contig", "pos", "ref", "alt"]].reset_index(drop=True)
        return pd.concat([kept, pd.Series(af, name="alt_af")], axis=1)

    return genotypes.select("contig", "pos", "ref", "alt", "dosages").groupBy("contig").applyInPandas(
        prune, PRUNE_SCHEMA_DDL)

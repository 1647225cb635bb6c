"""Per-sample QC: missingness, heterozygosity, inbreeding F, accumulated over variant blocks.

Genotype blocks are variant-major (decision 0001), so per-sample statistics are sums over
blocks. A Spark job builds one :class:`SampleQcAccumulator` per partition (``update`` per block),
combines them with ``merge`` (e.g. in ``treeReduce``) and calls ``result`` once on the driver.

All statistics assume diploid calls (autosomes).
"""

from __future__ import annotations

import numpy as np

from genoflow.genotypes import MISSING

__all__ = ["SampleQcAccumulator", "expected_homozygosity", "flag_outliers", "inbreeding_f"]

# Variant rows per matmul in expected_homozygosity: bounds its float64 temporary to ~8 MB for
# 1,000 samples.
_ROWS_PER_CHUNK = 1024


class SampleQcAccumulator:
    """Additive per-sample genotype counts over any number of variant blocks.

    Parameters
    ----------
    n_samples : int
        Number of samples (columns of every block passed to :meth:`update`).

    Attributes
    ----------
    n_called, n_missing, n_het, n_hom_alt : numpy.ndarray, shape (n_samples,), int64
        Counts over all variants passed so far.
    e_hom : numpy.ndarray, shape (n_samples,), float64
        Expected homozygous genotype count over the called variants (see
        :func:`expected_homozygosity`), for the inbreeding coefficient.
    n_variants : int
        Variants passed so far.

    Examples
    --------
    >>> acc = SampleQcAccumulator(3)
    >>> acc.update(np.array([[0, 1, -1], [2, 1, 1]], dtype=np.int8))
    >>> acc.result()["het_rate"].tolist()
    [0.0, 1.0, 1.0]
    """

    def __init__(self, n_samples: int):
        if int(n_samples) < 0:
            raise ValueError(f"n_samples: must be >= 0, got {n_samples}")
        self.n_samples = int(n_samples)
        self.n_variants = 0
        self.n_called = np.zeros(self.n_samples, dtype=np.int64)
        self.n_missing = np.zeros(self.n_samples, dtype=np.int64)
        self.n_het = np.zeros(self.n_samples, dtype=np.int64)
        self.n_hom_alt = np.zeros(self.n_samples, dtype=np.int64)
        self.e_hom = np.zeros(self.n_samples, dtype=np.float64)

    def update(self, dosages: np.ndarray, alt_af: np.ndarray | None = None) -> None:
        """Add the counts of one block of variants.

        Parameters
        ----------
        dosages : numpy.ndarray, shape (n_variants, n_samples), int8
            Dosages 0/1/2, ``-1`` missing. Not modified.
        alt_af : numpy.ndarray, shape (n_variants,), float, optional
            ALT allele frequencies used for the expected homozygosity. Default: computed from
            the block itself, which is the whole-cohort frequency because every row holds all
            samples. Pass frequencies of a reference population to mimic ``plink --read-freq``.
        """
        dosages = _as_block(dosages, self.n_samples)
        n_missing = np.count_nonzero(dosages == MISSING, axis=0)
        n_hom_ref = np.count_nonzero(dosages == 0, axis=0)
        n_het = np.count_nonzero(dosages == 1, axis=0)
        n_hom_alt = np.count_nonzero(dosages == 2, axis=0)
        # The four codes cover every legal value: a shortfall means an illegal code.
        if (n_missing + n_hom_ref + n_het + n_hom_alt != dosages.shape[0]).any():
            raise ValueError(f"dosages: only {MISSING} (missing), 0, 1, 2 are allowed")
        self.n_called += n_hom_ref + n_het + n_hom_alt
        self.n_missing += n_missing
        self.n_het += n_het
        self.n_hom_alt += n_hom_alt
        self.e_hom += expected_homozygosity(dosages, alt_af)
        self.n_variants += dosages.shape[0]

    def merge(self, other: SampleQcAccumulator) -> SampleQcAccumulator:
        """Add another accumulator's counts (same samples, disjoint variants) into this one.

        Returns ``self`` so it can be used directly as a Spark ``reduce`` function.
        """
        if other.n_samples != self.n_samples:
            raise ValueError(f"other: has {other.n_samples} samples, this accumulator {self.n_samples}")
        self.n_called += other.n_called
        self.n_missing += other.n_missing
        self.n_het += other.n_het
        self.n_hom_alt += other.n_hom_alt
        self.e_hom += other.e_hom
        self.n_variants += other.n_variants
        return self

    def result(self) -> dict[str, np.ndarray]:
        """Per-sample QC statistics over all variants passed.

        Returns
        -------
        dict of str to numpy.ndarray, each shape (n_samples,)
            ``n_called``, ``n_missing``, ``n_het``, ``n_hom_alt`` (int64): counts;
            ``missingness`` (float64): ``n_missing / n_variants`` (NaN if no variants);
            ``het_rate`` (float64): ``n_het / n_called`` (NaN if nothing called);
            ``inbreeding_f`` (float64): method-of-moments F (see :func:`inbreeding_f`).
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            # 0/0 -> NaN: no variants yet, or a sample with nothing called.
            missingness = self.n_missing / np.float64(self.n_variants)
            het_rate = self.n_het / self.n_called
        o_hom = self.n_called - self.n_het
        return {
            "n_called": self.n_called.copy(),
            "n_missing": self.n_missing.copy(),
            "n_het": self.n_het.copy(),
            "n_hom_alt": self.n_hom_alt.copy(),
            "missingness": missingness,
            "het_rate": het_rate,
            "inbreeding_f": _f_from_counts(o_hom, self.e_hom, self.n_called),
        }


def expected_homozygosity(
    dosages: np.ndarray, alt_af: np.ndarray | None = None, *, small_sample: bool = False
) -> np.ndarray:
    """Expected homozygous genotype count per sample under HWE, over the variants it has called.

    ``E_j = sum_i [g_ij called] * (1 - 2 p_i (1 - p_i))``, with ``p_i`` the ALT frequency of
    variant ``i``. Variants with an undefined frequency (nothing called) contribute nothing.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
        Dosages 0/1/2, ``-1`` missing.
    alt_af : numpy.ndarray, shape (n_variants,), optional
        ALT allele frequencies; default computed from ``dosages`` (all samples of each variant).
    small_sample : bool, default False
        Multiply the expected heterozygosity by ``2n/(2n - 1)`` (``n`` = called samples of the
        variant), the unbiased-estimator correction of plink 1.07 (plink 1.9/2 ``--het
        small-sample``). Only honoured when frequencies come from ``dosages``.

    Returns
    -------
    numpy.ndarray, shape (n_samples,), float64
    """
    dosages = _as_block(dosages)
    called = dosages != MISSING
    n_called = np.count_nonzero(called, axis=1)
    if alt_af is None:
        alt_sum = np.where(called, dosages, 0).sum(axis=1, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            alt_af = alt_sum / (2.0 * n_called)
    else:
        alt_af = np.asarray(alt_af, dtype=np.float64)
        if alt_af.shape != (dosages.shape[0],):
            raise ValueError(f"alt_af: expected shape ({dosages.shape[0]},), got {alt_af.shape}")
        small_sample = False
    e_het = 2.0 * alt_af * (1.0 - alt_af)
    if small_sample:
        with np.errstate(divide="ignore", invalid="ignore"):
            e_het = e_het * (2.0 * n_called) / (2.0 * n_called - 1.0)
    e_hom = np.nan_to_num(1.0 - e_het, nan=0.0)
    # Sum over variants of E_hom_i, counting each variant only for the samples that called it.
    # Chunked because the matmul casts the boolean mask to float64 (8x the block's size).
    out = np.zeros(dosages.shape[1])
    for start in range(0, dosages.shape[0], _ROWS_PER_CHUNK):
        stop = start + _ROWS_PER_CHUNK
        out += e_hom[start:stop] @ called[start:stop]
    return out


def inbreeding_f(
    dosages: np.ndarray, alt_af: np.ndarray | None = None, *, small_sample: bool = False
) -> dict[str, np.ndarray]:
    """Method-of-moments inbreeding coefficient F per sample (``plink --het``).

    ``F = (O - E) / (N - E)``, with ``O`` the observed and ``E`` the expected (under HWE, given
    the allele frequencies) number of homozygous genotypes and ``N`` the number of called
    genotypes of the sample. F ~ 0 for an outbred sample, > 0 for excess homozygosity
    (inbreeding, or DNA of low quality with allele dropout), < 0 for excess heterozygosity
    (sample contamination). Like plink, use LD-pruned common autosomal variants.

    ``O``, ``E`` and ``N`` are sums over variants, so for a whole genome split into blocks add
    them up block by block (:class:`SampleQcAccumulator` does this) and form F once.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
        Dosages 0/1/2, ``-1`` missing.
    alt_af : numpy.ndarray, shape (n_variants,), optional
        ALT allele frequencies; default computed from ``dosages``.
    small_sample : bool, default False
        See :func:`expected_homozygosity`.

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_samples,)
        ``o_hom`` (int64), ``e_hom`` (float64), ``n_obs`` (int64), ``f`` (float64, NaN when
        ``n_obs == e_hom``, e.g. no called variants).

    References
    ----------
    Purcell S et al. (2007). PLINK: a tool set for whole-genome association and population-based
    linkage analyses. Am J Hum Genet 81(3):559-575 (``--het``).
    """
    dosages = _as_block(dosages)
    called = dosages != MISSING
    n_obs = np.count_nonzero(called, axis=0).astype(np.int64)
    o_hom = n_obs - np.count_nonzero(dosages == 1, axis=0)
    e_hom = expected_homozygosity(dosages, alt_af, small_sample=small_sample)
    return {"o_hom": o_hom, "e_hom": e_hom, "n_obs": n_obs, "f": _f_from_counts(o_hom, e_hom, n_obs)}


def flag_outliers(values: np.ndarray, n_sd: float) -> np.ndarray:
    """Flag values more than ``n_sd`` standard deviations from the mean.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,), float
        E.g. per-sample heterozygosity rate or F. NaNs are ignored when computing the mean and
        the SD (sample SD, ``ddof=1``) and are never flagged.
    n_sd : float
        Threshold in standard deviations, > 0 (3 is customary for heterozygosity).

    Returns
    -------
    numpy.ndarray, shape (n,), bool
        True where ``|x - mean| > n_sd * SD``. All False when fewer than two finite values.
    """
    if not n_sd > 0:
        raise ValueError(f"n_sd: must be > 0, got {n_sd}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got shape {values.shape}")
    finite = np.isfinite(values)
    if np.count_nonzero(finite) < 2:
        return np.zeros(values.shape, dtype=bool)
    mean = values[finite].mean()
    sd = values[finite].std(ddof=1)
    with np.errstate(invalid="ignore"):
        return finite & (np.abs(values - mean) > n_sd * sd)


def _f_from_counts(o_hom: np.ndarray, e_hom: np.ndarray, n_obs: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (o_hom - e_hom) / (n_obs - e_hom)
    return np.where(np.isfinite(f), f, np.nan)


def _as_block(dosages: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    dosages = np.asarray(dosages)
    if dosages.ndim != 2 or (n_samples is not None and dosages.shape[1] != n_samples):
        want = "(n_variants, n_samples)" if n_samples is None else f"(n_variants, {n_samples})"
        raise ValueError(f"dosages: expected shape {want}, got {dosages.shape}")
    if not np.issubdtype(dosages.dtype, np.integer):
        raise ValueError(f"dosages: expected an integer (int8) array, got dtype {dosages.dtype}")
    return dosages

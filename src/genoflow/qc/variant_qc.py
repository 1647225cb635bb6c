"""Per-variant QC statistics for a block of variants: call rate, allele frequencies, HWE.

Layering (as in sgkit): :func:`genotype_counts` reduces a dosage block to per-variant counts,
:func:`hwe_exact_p` turns counts into exact Hardy-Weinberg p-values for a whole block at once,
and :func:`variant_qc` is the thin helper a Spark ``mapInPandas`` job calls once per block.

All functions assume diploid calls (autosomes). A haploid call (dosage 0/1) is indistinguishable
from a homozygous-reference / heterozygous diploid call in the dosage encoding, so run these on
autosomal blocks only.
"""

from __future__ import annotations

import numpy as np

from genoflow._kernels.counts import dosage_counts, sample_missing_het
from genoflow._kernels.hwe import hwe_exact_p_loop
from genoflow.genotypes import MISSING

__all__ = ["genotype_counts", "sample_counts", "hwe_exact_p", "variant_qc"]

# Two tables whose probabilities differ by less than this relative amount are treated as tied
# (both counted in the p-value). Exact ties occur (P(h) == P(h + 2) whenever
# 4 * hom_rare * hom_common == (h + 2)(h + 1)) and rounding can put a tied table a few ULPs either
# side of the observed one. Our probabilities are accurate to ~1e-13 at cohort sizes, so 1e-9
# catches every real tie; plink 1.9 also used a tolerance, plink2 now resolves near-ties in
# extended precision, so the two can differ only for tables within 1e-9 of a tie (negligible).
_TIE_TOLERANCE = 1e-9


def genotype_counts(dosages: np.ndarray) -> dict[str, np.ndarray]:
    """Per-variant genotype counts of a dosage block.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), integer (normally int8)
        Alternate-allele dosages 0/1/2, ``-1`` missing (variant-major, decision 0001).

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_variants,), int64
        ``n_hom_ref``, ``n_het``, ``n_hom_alt``, ``n_missing``, ``n_called``.

    Raises
    ------
    ValueError
        If ``dosages`` is not 2-D or holds a value other than -1, 0, 1, 2.
    """
    dosages = _as_dosage_block(dosages)
    by_value = dosage_counts(dosages)  # columns: MISSING, 0, 1, 2
    counts = {"n_hom_ref": by_value[:, 1], "n_het": by_value[:, 2], "n_hom_alt": by_value[:, 3],
              "n_missing": by_value[:, 0]}
    counts["n_called"] = counts["n_hom_ref"] + counts["n_het"] + counts["n_hom_alt"]
    # The four counts cover every legal value, so any shortfall is an illegal code: this
    # validates the block without another pass over it.
    bad = np.flatnonzero(counts["n_called"] + counts["n_missing"] != dosages.shape[1])
    if bad.size:
        row = int(bad[0])
        values = np.unique(dosages[row])
        raise ValueError(
            f"dosages: variant row {row} holds values {values.tolist()}; "
            f"only {MISSING} (missing), 0, 1, 2 are allowed"
        )
    return counts


def sample_counts(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample counts of a dosage block: ``(missing, heterozygous)`` calls, each int64 of shape (n_samples,).

    >>> sample_counts(np.array([[0, 1, -1], [1, 1, 2]], dtype=np.int8))
    (array([0, 0, 1]), array([1, 2, 0]))
    """
    return sample_missing_het(_as_dosage_block(dosages))


def hwe_exact_p(n_het: np.ndarray, n_hom_ref: np.ndarray, n_hom_alt: np.ndarray) -> np.ndarray:
    """Exact Hardy-Weinberg equilibrium p-values, vectorised over variants.

    The two-sided exact test of Wigginton, Cutler & Abecasis (2005): conditional on the number of
    called samples ``N`` and of minor alleles ``n_A``, the heterozygote count has the
    distribution

    .. math:: P(n_{AB} \\mid N, n_A) = \\frac{2^{n_{AB}}\\, N!\\, n_A!\\, n_B!}
              {n_{AA}!\\, n_{AB}!\\, n_{BB}!\\, (2N)!}

    and the p-value is the total probability of all het counts no more likely than the observed
    one. This is plink2's default ``--hwe`` / ``--hardy`` p-value (not the mid-p variant).

    Each variant's distribution is built outwards from its most likely het count with the exact
    ratio of successive probabilities, ``P(h + 2) / P(h) = 4 n_AA n_BB / ((h + 2)(h + 1))``
    (integer products, far below 2**53, then one division), in a compiled loop
    (:mod:`genoflow._kernels.hwe`) that stops where the probabilities underflow: the work is the
    width of the distribution, not ``n_A / 2``, and relative errors stay ~1e-13 even for hundreds of
    thousands of samples (a ``gammaln`` formulation loses ~1e-8 there, enough to misclassify ties).

    Parameters
    ----------
    n_het, n_hom_ref, n_hom_alt : array_like of int, shape (n_variants,)
        Genotype counts among called samples.

    Returns
    -------
    numpy.ndarray, shape (n_variants,), float64
        p-values in [0, 1]. 1.0 for monomorphic variants (and a single minor allele); NaN where
        no sample is called. Values below ~1e-308 underflow to 0.0.

    References
    ----------
    Wigginton JE, Cutler DJ, Abecasis GR (2005). A note on exact tests of Hardy-Weinberg
    equilibrium. Am J Hum Genet 76(5):887-893. doi:10.1086/429864

    Chang CC et al. (2015). Second-generation PLINK. GigaScience 4:7 (``--hardy``/``--hwe``).
    """
    n_het = np.asarray(n_het, dtype=np.int64)
    hom_ref = np.asarray(n_hom_ref, dtype=np.int64)
    hom_alt = np.asarray(n_hom_alt, dtype=np.int64)
    if not (n_het.shape == hom_ref.shape == hom_alt.shape) or n_het.ndim != 1:
        raise ValueError("n_het, n_hom_ref, n_hom_alt: expected 1-D arrays of the same length")
    if (n_het < 0).any() or (hom_ref < 0).any() or (hom_alt < 0).any():
        raise ValueError("n_het, n_hom_ref, n_hom_alt: counts must be non-negative")

    n = n_het + hom_ref + hom_alt
    hom_rare = np.minimum(hom_ref, hom_alt)
    n_rare = 2 * hom_rare + n_het
    p = np.full(n.shape, np.nan)
    p[n > 0] = 1.0
    # Fewer than two copies of the minor allele: only one feasible table, p = 1.
    todo = np.flatnonzero(n_rare >= 2)
    p[todo] = hwe_exact_p_loop(n[todo], n_rare[todo], n_het[todo], _TIE_TOLERANCE)
    return p


def variant_qc(dosages: np.ndarray) -> dict[str, np.ndarray]:
    """Per-variant QC statistics of a block of variants.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
        Alternate-allele dosages 0/1/2, ``-1`` missing (variant-major, decision 0001). Not
        modified; read-only views (e.g. from ``genoflow.genotypes.stack_dosages``) are fine.

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_variants,)
        ``n_called``, ``n_hom_ref``, ``n_het``, ``n_hom_alt`` (int64): genotype counts;
        ``call_rate`` (float64): ``n_called / n_samples`` (0 when ``n_samples`` is 0);
        ``alt_af`` (float64): ALT allele frequency among called genotypes, NaN if none called;
        ``maf`` (float64): ``min(alt_af, 1 - alt_af)``, 0 for monomorphic, NaN if none called;
        ``hwe_p`` (float64): exact HWE p-value (:func:`hwe_exact_p`), 1 for monomorphic, NaN if
        none called.

    Raises
    ------
    ValueError
        If ``dosages`` is not 2-D or holds a value other than -1, 0, 1, 2.

    References
    ----------
    Wigginton JE, Cutler DJ, Abecasis GR (2005). Am J Hum Genet 76(5):887-893.

    Examples
    --------
    >>> out = variant_qc(np.array([[0, 1, 2, -1]], dtype=np.int8))
    >>> float(out["call_rate"][0]), float(out["alt_af"][0])
    (0.75, 0.5)
    """
    counts = genotype_counts(dosages)
    n_samples = np.shape(dosages)[1]
    n_called = counts["n_called"]
    with np.errstate(divide="ignore", invalid="ignore"):
        call_rate = n_called / n_samples if n_samples else np.zeros(n_called.shape)
        alt_af = (counts["n_het"] + 2 * counts["n_hom_alt"]) / (2.0 * n_called)
    return {
        "n_called": n_called,
        "call_rate": np.asarray(call_rate, dtype=np.float64),
        "alt_af": alt_af,
        "maf": np.minimum(alt_af, 1.0 - alt_af),
        "n_hom_ref": counts["n_hom_ref"],
        "n_het": counts["n_het"],
        "n_hom_alt": counts["n_hom_alt"],
        "hwe_p": hwe_exact_p(counts["n_het"], counts["n_hom_ref"], counts["n_hom_alt"]),
    }


def _as_dosage_block(dosages: np.ndarray) -> np.ndarray:
    """Check a dosage block is a 2-D integer array and return it as an ndarray (no copy)."""
    dosages = np.asarray(dosages)
    if dosages.ndim != 2:
        raise ValueError(f"dosages: expected shape (n_variants, n_samples), got {dosages.shape}")
    if not np.issubdtype(dosages.dtype, np.integer):
        raise ValueError(f"dosages: expected an integer (int8) array, got dtype {dosages.dtype}")
    return dosages

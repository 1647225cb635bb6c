"""Drift statistics between the training cohort and a new batch (numpy kernels, no Spark).

Three views of drift, each a pure function of arrays so the Spark job and the tests share them:

- **Genotypes.** Per variant, the alternate-allele frequency in the reference (training) and new
  samples, their difference, a 2x2 allelic chi-square test (alt/ref allele counts x reference/new,
  1 df, no continuity correction: the classic allelic case-control test, here batch vs reference)
  and Hudson's Fst (Bhatia et al. 2013). A batch from the training population gives uniform
  p-values and Fst near 0; a batch from a diverged population (another ancestry, a founder
  group) moves many variants at once.
- **Features.** The population stability index of each model input between the training split
  and the new batch, on bins fixed by the reference (see :func:`population_stability_index`).
- **Predictions.** PSI and the two-sample Kolmogorov-Smirnov statistic of the model's scores.

Dosages follow decision 0001 (int8, 0/1/2 alternate alleles, -1 missing); allele counts assume
diploid calls.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "allele_counts", "allele_frequency_shift", "hudson_fst", "summarise_af_shift",
    "psi_bin_edges", "bin_proportions", "population_stability_index", "score_drift", "drift_decision",
    "PSI_EPSILON",
]

PSI_EPSILON = 1e-4
"""Floor for a bin proportion in PSI, so an empty bin contributes a large but finite term."""


# --------------------------------------------------------------------------- genotypes


def allele_counts(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alternate-allele count and called-allele count per variant.

    Parameters
    ----------
    dosages : (n_variants, n_samples) int
        Dosages 0/1/2; negative values (``-1``) are missing calls and count for nothing.

    Returns
    -------
    ac, an : (n_variants,) int64
        Alternate alleles among called genotypes, and ``2 x`` the number of called genotypes.
    """
    d = np.asarray(dosages)
    if d.ndim != 2:
        raise ValueError(f"dosages must be 2-D (variants, samples), got shape {d.shape}")
    called = d >= 0
    ac = np.where(called, d, 0).sum(axis=1, dtype=np.int64)
    return ac, 2 * called.sum(axis=1, dtype=np.int64)


def allele_frequency_shift(ref_ac, ref_an, new_ac, new_an) -> dict[str, np.ndarray]:
    """Per-variant allele-frequency shift between a reference and a new sample.

    Parameters
    ----------
    ref_ac, ref_an, new_ac, new_an : (n,) int
        Alternate-allele and called-allele counts (:func:`allele_counts`) of each sample.

    Returns
    -------
    dict of (n,) float64 arrays
        ``af_ref``, ``af_new`` (NaN where nothing was called), ``delta`` = af_new - af_ref,
        ``chi2`` and ``p``: the 2x2 test of alt/ref allele counts in reference vs new,
        ``N (a d - b c)^2 / ((a+b)(c+d)(a+c)(b+d))``, 1 df, no continuity correction (0 and 1 when
        a margin is empty, e.g. monomorphic in both samples), and ``fst``: Hudson's estimator per
        variant, ``((p1-p2)^2 - p1 q1/(n1-1) - p2 q2/(n2-1)) / (p1 q2 + p2 q1)`` (NaN where the
        denominator is 0).
    """
    a = np.asarray(ref_ac, dtype=np.float64)
    b = np.asarray(ref_an, dtype=np.float64) - a
    c = np.asarray(new_ac, dtype=np.float64)
    d = np.asarray(new_an, dtype=np.float64) - c
    n_ref, n_new = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        af_ref = np.where(n_ref > 0, a / n_ref, np.nan)
        af_new = np.where(n_new > 0, c / n_new, np.nan)
        margins = n_ref * n_new * (a + c) * (b + d)
        chi2 = np.where(margins > 0, (n_ref + n_new) * (a * d - b * c) ** 2 / margins, 0.0)
        fst_num, fst_den = _hudson_terms(af_ref, n_ref, af_new, n_new)
        fst = np.where(fst_den > 0, fst_num / fst_den, np.nan)
    return {"af_ref": af_ref, "af_new": af_new, "delta": af_new - af_ref, "chi2": chi2,
            "p": stats.chi2.sf(chi2, df=1), "fst": fst}


def _hudson_terms(p1, n1, p2, n2):
    with np.errstate(divide="ignore", invalid="ignore"):
        num = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    return num, den


def hudson_fst(af_ref, n_ref, af_new, n_new) -> float:
    """Hudson's Fst over many variants as a ratio of averages (sum of numerators / sum of denominators).

    ``n_ref`` / ``n_new`` are the numbers of sampled alleles (scalars or per-variant arrays);
    variants with a NaN frequency or fewer than 2 alleles in a sample are left out. 0.0 when
    nothing is left.
    """
    p1, p2 = np.asarray(af_ref, dtype=np.float64), np.asarray(af_new, dtype=np.float64)
    n1 = np.broadcast_to(np.asarray(n_ref, dtype=np.float64), p1.shape)
    n2 = np.broadcast_to(np.asarray(n_new, dtype=np.float64), p2.shape)
    ok = np.isfinite(p1) & np.isfinite(p2) & (n1 > 1) & (n2 > 1)
    num, den = _hudson_terms(p1[ok], n1[ok], p2[ok], n2[ok])
    return float(num.sum() / den.sum()) if den.sum() > 0 else 0.0


def summarise_af_shift(shift: dict[str, np.ndarray], ref_an, new_an, *, alpha: float) -> dict:
    """Headline numbers of :func:`allele_frequency_shift` over the variants compared.

    A variant is significant when its p-value is below ``alpha / n`` (Bonferroni over the ``n``
    variants with a frequency in both samples), so ``alpha`` is the family-wise error rate: a batch
    from the training population has no significant variant with probability about ``1 - alpha``.
    """
    delta = np.abs(shift["delta"])
    ok = np.isfinite(delta)
    n = int(ok.sum())
    threshold = alpha / max(n, 1)
    significant = ok & (shift["p"] < threshold)
    chi2 = shift["chi2"][ok]
    return {
        "n_variants": n,
        "max_abs_af_shift": float(delta[ok].max()) if n else 0.0,
        "mean_abs_af_shift": float(delta[ok].mean()) if n else 0.0,
        "n_significant": int(significant.sum()),
        "fraction_significant": float(significant.sum() / n) if n else 0.0,
        "p_threshold": threshold,
        "mean_chi2": float(chi2.mean()) if n else 0.0,
        "fst": hudson_fst(shift["af_ref"], ref_an, shift["af_new"], new_an),
    }


# --------------------------------------------------------------------------- features and scores


def psi_bin_edges(reference, n_bins: int = 10) -> np.ndarray:
    """Interior bin edges fixed by the reference: its quantiles at 1/B, ..., (B-1)/B.

    Quantiles are observed reference values (``inverted_cdf``), duplicates are dropped, so a
    discrete feature (a 0/1/2 dosage, sex) gets one bin per value instead of empty slivers.
    Bins are right-closed: ``(-inf, e1], (e1, e2], ..., (ek, inf)``. NaNs are ignored.
    """
    if n_bins < 2:
        raise ValueError("n_bins must be >= 2")
    ref = _finite(reference)
    if ref.size == 0:
        raise ValueError("the reference sample has no finite value")
    probs = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(ref, probs, method="inverted_cdf"))


def bin_proportions(values, edges: np.ndarray) -> np.ndarray:
    """Share of the finite ``values`` in each bin of ``edges`` (length ``len(edges) + 1``)."""
    x = _finite(values)
    if x.size == 0:
        raise ValueError("no finite value to bin")
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    return counts / x.size


def population_stability_index(reference, new, n_bins: int = 10, eps: float = PSI_EPSILON) -> float:
    """PSI of a feature between a reference and a new sample.

    ``PSI = sum_i (q_i - p_i) ln(q_i / p_i)`` over the bins of :func:`psi_bin_edges` (fixed by
    the reference), where ``p_i`` and ``q_i`` are the reference and new proportions, each floored
    at ``eps`` (an empty bin would otherwise make PSI infinite). PSI is a symmetrised KL
    divergence: 0 for identical distributions; by the usual reading < 0.1 is stable, 0.1-0.25 a
    moderate shift and > 0.25 a major one. With ``B`` bins, two samples of one population give
    about ``(B - 1)(1/n_ref + 1/n_new)`` on average. Missing values (NaN) are ignored.
    """
    edges = psi_bin_edges(reference, n_bins)
    p = np.maximum(bin_proportions(reference, edges), eps)
    q = np.maximum(bin_proportions(new, edges), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def score_drift(reference_scores, new_scores, n_bins: int = 10, eps: float = PSI_EPSILON) -> dict:
    """Drift of the model's predicted scores: PSI (reference-quantile bins) and the two-sample KS test.

    Returns ``psi``, ``ks`` (the largest gap between the two empirical CDFs), ``ks_p`` (scipy's
    ``ks_2samp``, exact for small samples), ``n_reference``, ``n_new`` and both means.
    """
    ref, new = _finite(reference_scores), _finite(new_scores)
    ks = stats.ks_2samp(ref, new)
    return {
        "psi": population_stability_index(ref, new, n_bins=n_bins, eps=eps),
        "ks": float(ks.statistic), "ks_p": float(ks.pvalue),
        "n_reference": int(ref.size), "n_new": int(new.size),
        "mean_reference": float(ref.mean()), "mean_new": float(new.mean()),
    }


def drift_decision(summary: dict, thresholds: dict) -> tuple[bool, list[str]]:
    """Whether the batch has drifted, and the criteria that fired (human-readable).

    ``summary`` holds ``af`` (:func:`summarise_af_shift`), ``max_feature_psi`` and, optionally,
    ``score`` (:func:`score_drift`). ``thresholds``: ``min_significant_fraction``, ``max_fst``,
    ``psi_threshold`` and ``score_psi_threshold`` (a missing key disables that criterion).
    """
    af, reasons = summary["af"], []
    if "min_significant_fraction" in thresholds and af["n_significant"] > 0 \
            and af["fraction_significant"] >= float(thresholds["min_significant_fraction"]):
        reasons.append(f"{af['n_significant']} of {af['n_variants']} variants shifted significantly "
                       f"({af['fraction_significant']:.1%} >= {float(thresholds['min_significant_fraction']):.1%})")
    if "max_fst" in thresholds and af["fst"] >= float(thresholds["max_fst"]):
        reasons.append(f"Fst {af['fst']:.4f} >= {float(thresholds['max_fst'])}")
    psi = summary.get("max_feature_psi")
    if "psi_threshold" in thresholds and psi is not None and psi >= float(thresholds["psi_threshold"]):
        reasons.append(f"feature {summary.get('max_psi_feature')} PSI {psi:.3f} >= {thresholds['psi_threshold']}")
    score = summary.get("score")
    if "score_psi_threshold" in thresholds and score and score["psi"] >= float(thresholds["score_psi_threshold"]):
        reasons.append(f"score PSI {score['psi']:.3f} >= {thresholds['score_psi_threshold']}")
    return bool(reasons), reasons


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]

"""Statistics the report shows: genomic inflation, calibration bins with intervals (numpy).

Held-out model metrics (AUC, AUC-PR, Brier, calibration slope) are :mod:`genoflow.evaluation.metrics`';
the bins here add what sklearn's ``calibration_curve`` lacks: each bin's count and Wilson interval.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["genomic_inflation", "CHI2_1_MEDIAN", "calibration_bins", "wilson_interval", "expected_log10_p"]

CHI2_1_MEDIAN = float(stats.chi2.ppf(0.5, df=1))
"""Median of a 1-df chi-square, 0.4549364..."""


def genomic_inflation(p_values) -> float:
    """Genomic inflation factor lambda_GC of a set of 1-df association p-values.

    ``lambda = median(chi2_1 quantile of each p) / 0.4549`` (Devlin & Roeder 1999): about 1 when
    test statistics follow the null (most variants unassociated), above 1 with population
    structure, cryptic relatedness or a broken test. NaN p-values are ignored; NaN when none is left.
    """
    p = np.asarray(p_values, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return float("nan")
    chi2 = stats.chi2.isf(np.clip(p, 1e-300, 1.0), df=1)
    return float(np.median(chi2) / CHI2_1_MEDIAN)


def expected_log10_p(n: int) -> np.ndarray:
    """-log10 of the expected uniform order statistics ``(i - 0.5) / n``, largest first (QQ plot x-axis)."""
    return -np.log10((np.arange(1, n + 1) - 0.5) / n)


def calibration_bins(scores, labels, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-count bins of the predicted score: mean prediction vs observed rate per bin.

    Returns ``predicted`` (mean score), ``observed`` (fraction of positives), ``n``, and ``lo`` /
    ``hi``: the 95% Wilson score interval of ``observed`` (stays inside [0, 1] for small bins),
    one entry per non-empty bin.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(y)
    s, y = s[ok], y[ok]
    order = np.argsort(s, kind="mergesort")
    groups = [g for g in np.array_split(order, min(n_bins, max(len(s), 1))) if len(g)]
    predicted = np.array([s[g].mean() for g in groups])
    observed = np.array([y[g].mean() for g in groups])
    n = np.array([len(g) for g in groups])
    lo, hi = wilson_interval(observed, n)
    return {"predicted": predicted, "observed": observed, "n": n, "lo": lo, "hi": hi}


def wilson_interval(fraction, n, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``fraction`` observed in ``n`` trials."""
    f = np.asarray(fraction, dtype=np.float64)
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    centre = (f + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(f * (1 - f) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half

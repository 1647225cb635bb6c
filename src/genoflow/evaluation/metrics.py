"""Held-out metrics with their uncertainty, and paired tests of one model against another.

Pure numpy / scipy / scikit-learn: no Spark, no MLflow. The evaluate step logs these numbers on
every model's run and the promotion gate reads the paired tests (decision 0011).

- AUC-ROC with DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988), computed with the fast
  midrank algorithm of Sun & Xu (2014): O(n log n) instead of O(n^2) pairs.
- The 95% CI of an AUC is the normal interval ``auc +- 1.96 se`` clipped to [0, 1] (as pROC's
  ``ci.auc(method = "delong")``), not logit-transformed.
- R^2 and RMSE have percentile-bootstrap 95% CIs (``N_BOOTSTRAP`` resamples of the patients, fixed
  seed, so a rerun logs the same numbers).

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 44:837-845.
Sun X, Xu W (2014). Fast implementation of DeLong's algorithm for comparing the areas under
correlated receiver operating characteristic curves. IEEE Signal Processing Letters 21:1389-1393.
"""

from __future__ import annotations

import numpy as np

__all__ = ["auc_roc", "roc_points", "pr_points", "delong_auc", "paired_delong", "binary_report",
           "quantitative_report", "paired_squared_error_test", "N_BOOTSTRAP", "CALIBRATION_BINS"]

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 20140
CALIBRATION_BINS = 10
_EPS = 1e-15  # scores are clipped into [eps, 1 - eps] before their logit


def _binary_labels(y, *scores) -> tuple[np.ndarray, list[np.ndarray]]:
    """Validate 0/1 labels and same-length finite scores (the function's inputs, shape (n,))."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y: expected a 1-D array of 0/1 labels")
    if y.min(initial=1.0) == y.max(initial=0.0):
        raise ValueError(f"y: both classes are needed for an AUC, found only {y[:1].tolist() or 'no labels'}")
    out = []
    for s in scores:
        s = np.asarray(s, dtype=float)
        if s.shape != y.shape or not np.isfinite(s).all():
            raise ValueError(f"score: expected {y.shape[0]} finite values, got shape {s.shape}")
        out.append(s)
    return y, out


def auc_roc(y, score) -> float:
    """AUC-ROC of ``score`` against 0/1 labels ``y`` (sklearn's ``roc_auc_score``; ties count half).

    NaN when ``y`` holds one class only (an AUC is undefined there), so a simulation can report it
    instead of failing; use `delong_auc` for a held-out metric with its CI.

    Examples
    --------
    >>> auc_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score, dtype=float)))


def roc_points(y, score) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of the ROC curve, sklearn's ``roc_curve`` points
    (collinear points dropped), from (0, 0) to (1, 1): what the report and the run's ROC plot draw."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    return fpr, tpr


def pr_points(y, score) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) of the precision-recall curve, recall ascending (sklearn's
    ``precision_recall_curve`` reversed): the steps whose area is the average precision (``auc_pr``)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, score)
    return recall[::-1], precision[::-1]


def _delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs, shape (k,), and their DeLong covariance, shape (k, k), of k scores, shape (k, n).

    Sun & Xu's Algorithm: midranks within the positives (tx), within the negatives (ty) and over
    all patients (tz) give each patient's structural component (V10 for positives, V01 for
    negatives) without comparing pairs.
    """
    from scipy.stats import rankdata

    positive = y == 1
    pos, neg = scores[:, positive], scores[:, ~positive]
    m, n = pos.shape[1], neg.shape[1]
    tx, ty = rankdata(pos, axis=1), rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # P(score of this positive > a negative), ties counting half
    v01 = 1.0 - (tz[:, m:] - ty) / m  # P(a positive > this negative)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_auc(y, score) -> tuple[float, float, float, float]:
    """AUC-ROC with its DeLong standard error and 95% CI.

    Parameters
    ----------
    y : array_like, shape (n,)
        0/1 labels; both classes present.
    score : array_like, shape (n,), float
        Higher means more likely 1 (a probability or any monotone score).

    Returns
    -------
    (auc, se, ci_low, ci_high) : tuple of float
        The CI is ``auc +- 1.96 se`` clipped to [0, 1].

    Raises
    ------
    ValueError
        Labels not 0/1 or of one class only; scores of another length or not finite.

    Examples
    --------
    >>> auc, se, low, high = delong_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> float(auc)
    0.75
    """
    y, (score,) = _binary_labels(y, score)
    aucs, cov = _delong(y, score[None, :])
    auc, se = float(aucs[0]), float(np.sqrt(cov[0, 0]))
    return auc, se, max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)


def paired_delong(y, score_a, score_b) -> tuple[float, float, float, float, float, float]:
    """DeLong's paired test that model a has a higher AUC than model b on the same patients.

    Returns
    -------
    (auc_a, auc_b, delta, se, z, p_one_sided) : tuple of float
        ``delta = auc_a - auc_b``, ``se`` its DeLong standard error (the two AUCs' covariance
        included), ``z = delta / se`` and ``p = P(Z >= z)`` under H0: auc_a <= auc_b. Scores that
        rank every pair alike (se = 0) give z = 0 and p = 1 when delta = 0.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> paired_delong(y, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])[-1]
    1.0
    """
    from scipy.stats import norm

    y, (a, b) = _binary_labels(y, score_a, score_b)
    aucs, cov = _delong(y, np.vstack([a, b]))
    delta = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    if se == 0.0:  # identical rankings of the pairs: no evidence either way (or a certain sign)
        z = 0.0 if delta == 0 else np.copysign(np.inf, delta)
        p = 1.0 if delta <= 0 else 0.0
    else:
        z = delta / se
        p = float(norm.sf(z))
    return float(aucs[0]), float(aucs[1]), delta, se, float(z), p


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def calibration(y, score) -> tuple[float, float]:
    """Calibration slope and intercept: ``logit P(y=1) = intercept + slope * logit(score)``.

    Logistic recalibration (Cox 1958), unpenalised, both coefficients fitted together: a
    well-calibrated model has slope 1 and intercept 0; slope < 1 means over-confident scores.
    """
    from sklearn.linear_model import LogisticRegression

    y, (score,) = _binary_labels(y, score)
    fit = LogisticRegression(C=np.inf).fit(_logit(score)[:, None], y.astype(int))
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def binary_report(y, score) -> dict:
    """Held-out metrics of a probability model on a binary target.

    Parameters
    ----------
    y : array_like, shape (n,)
        0/1 labels, both classes present.
    score : array_like, shape (n,)
        Predicted P(y = 1), in [0, 1].

    Returns
    -------
    dict
        ``auc_roc``, ``auc_roc_se``, ``auc_roc_ci_low``, ``auc_roc_ci_high`` (DeLong, see
        `delong_auc`); ``auc_pr`` (average precision, sklearn); ``brier`` (sklearn);
        ``calibration_slope``, ``calibration_intercept`` (see `calibration`); ``calibration_bins``:
        ``{"mean_predicted": [...], "observed": [...]}`` over up to 10 quantile bins (sklearn
        ``calibration_curve``; fewer when scores tie); ``prevalence``; ``n``.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, brier_score_loss

    y, (score,) = _binary_labels(y, score)
    auc, se, low, high = delong_auc(y, score)
    slope, intercept = calibration(y, score)
    observed, predicted = calibration_curve(y, score, n_bins=CALIBRATION_BINS, strategy="quantile")
    return {
        "auc_roc": auc, "auc_roc_se": se, "auc_roc_ci_low": low, "auc_roc_ci_high": high,
        "auc_pr": float(average_precision_score(y, score)),
        "brier": float(brier_score_loss(y, score)),
        "calibration_slope": slope, "calibration_intercept": intercept,
        "calibration_bins": {"mean_predicted": predicted.tolist(), "observed": observed.tolist()},
        "prevalence": float(y.mean()), "n": int(y.size),
    }


def _quantitative(y, *preds) -> tuple[np.ndarray, list[np.ndarray]]:
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or y.size < 2 or not np.isfinite(y).all():
        raise ValueError(f"y: expected at least 2 finite values in a 1-D array, got shape {y.shape}")
    out = []
    for p in preds:
        p = np.asarray(p, dtype=float)
        if p.shape != y.shape or not np.isfinite(p).all():
            raise ValueError(f"pred: expected {y.size} finite values, got shape {p.shape}")
        out.append(p)
    return y, out


def _r2_rmse(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R^2 and RMSE along the last axis (so bootstrap resamples, shape (B, n), go in one call)."""
    sse = ((y - pred) ** 2).sum(axis=-1)
    sst = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    return r2, np.sqrt(sse / y.shape[-1])


def quantitative_report(y, pred) -> dict:
    """Held-out R^2 and RMSE of a quantitative prediction, each with a 95% bootstrap CI.

    The CIs are percentile intervals over `N_BOOTSTRAP` (2,000) resamples of the patients with a
    fixed seed; a resample whose labels are all equal (R^2 undefined) is left out of R^2's interval.

    Returns
    -------
    dict
        ``r2`` (as sklearn's ``r2_score``), ``r2_ci_low``, ``r2_ci_high``, ``rmse``,
        ``rmse_ci_low``, ``rmse_ci_high``, ``n``.
    """
    from sklearn.metrics import mean_squared_error, r2_score

    y, (pred,) = _quantitative(y, pred)
    rows = np.random.default_rng(BOOTSTRAP_SEED).integers(0, y.size, size=(N_BOOTSTRAP, y.size))
    r2s, rmses = _r2_rmse(y[rows], pred[rows])
    r2s = r2s[np.isfinite(r2s)]
    return {
        "r2": float(r2_score(y, pred)),
        "r2_ci_low": float(np.percentile(r2s, 2.5)), "r2_ci_high": float(np.percentile(r2s, 97.5)),
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "rmse_ci_low": float(np.percentile(rmses, 2.5)), "rmse_ci_high": float(np.percentile(rmses, 97.5)),
        "n": int(y.size),
    }


def paired_squared_error_test(y, pred_a, pred_b) -> float:
    """One-sided p that prediction a has a lower mean squared error than b on the same patients.

    A paired t-test on the per-patient differences ``(y - a)^2 - (y - b)^2`` (H0: mean >= 0). The t
    test, not Wilcoxon's signed-rank test, because the MSE (and so R^2) compares means, and the
    patients of a held-out split are many enough for the mean difference to be near normal.
    Identical errors give p = 1.
    """
    from scipy.stats import ttest_1samp

    y, (a, b) = _quantitative(y, pred_a, pred_b)
    diff = (y - a) ** 2 - (y - b) ** 2
    if np.all(diff == diff[0]):  # no spread: the t statistic is undefined
        return 0.0 if diff[0] < 0 else 1.0
    return float(ttest_1samp(diff, 0.0, alternative="less").pvalue)

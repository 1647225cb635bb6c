"""genoflow.evaluation.metrics against independent references: sklearn for point estimates, a slow
O(n^2) DeLong written from the 1988 paper's definitions, a bootstrap SE and hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import r2_score, roc_auc_score

from genoflow.evaluation.metrics import (
    auc_roc,
    binary_report,
    calibration,
    delong_auc,
    paired_delong,
    paired_squared_error_test,
    pr_points,
    quantitative_report,
    roc_points,
)


def slow_delong(y, scores):
    """DeLong 1988 straight from its definitions: psi over all (positive, negative) pairs."""
    y = np.asarray(y)
    pos, neg = [np.asarray(s)[y == 1] for s in scores], [np.asarray(s)[y == 0] for s in scores]
    psi = [(p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :]) for p, q in zip(pos, neg, strict=True)]
    aucs = np.array([m.mean() for m in psi])
    v10 = np.array([m.mean(axis=1) for m in psi])  # per positive
    v01 = np.array([m.mean(axis=0) for m in psi])  # per negative
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


@pytest.fixture
def cohort():
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.35).astype(int)
    a = y * 0.9 + rng.normal(size=300)
    b = y * 0.4 + 0.5 * a + rng.normal(size=300)  # correlated with a, as two models of one cohort are
    return y, a, np.round(b, 1)  # rounding makes ties, which midranks must count half


def test_delong_auc__matches_sklearn_and_slow_delong(cohort):
    y, a, b = cohort
    for score in (a, b):
        auc, se, low, high = delong_auc(y, score)
        aucs, cov = slow_delong(y, [score])
        assert auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        assert se == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-10)
        assert (low, high) == pytest.approx((auc - 1.959964 * se, auc + 1.959964 * se), abs=1e-6)


def test_delong_auc__se_close_to_bootstrap(cohort):
    y, a, _ = cohort
    rng = np.random.default_rng(1)
    boots = []
    for _ in range(1000):
        rows = rng.integers(0, y.size, y.size)
        if 0 < y[rows].sum() < y.size:
            boots.append(roc_auc_score(y[rows], a[rows]))
    # DeLong's SE is asymptotic; 1,000 resamples estimate the bootstrap SE to about 2%.
    assert delong_auc(y, a)[1] == pytest.approx(np.std(boots), rel=0.1)


def test_delong_auc__hand_computed_and_ci_clipped():
    # 4 pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4): 3 of 4.
    assert delong_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])[0] == 0.75
    auc, se, low, high = delong_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (auc, se, low, high) == (1.0, 0.0, 1.0, 1.0)
    auc, se, low, high = delong_auc([0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 0.95])
    assert high == 1.0 and low < auc < 1.0


@pytest.mark.parametrize("y, score, message", [
    ([1, 1, 1], [0.1, 0.2, 0.3], "both classes"),
    ([0, 1, 2], [0.1, 0.2, 0.3], "0/1 labels"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "finite"),
    ([0, 1, 1], [0.1, 0.3], "finite"),
])
def test_delong_auc__bad_input(y, score, message):
    with pytest.raises(ValueError, match=message):
        delong_auc(y, score)


def test_paired_delong__matches_slow_delong(cohort):
    y, a, b = cohort
    auc_a, auc_b, delta, se, z, p = paired_delong(y, a, b)
    aucs, cov = slow_delong(y, [a, b])
    assert (auc_a, auc_b) == pytest.approx(tuple(aucs), abs=1e-12)
    assert se == pytest.approx(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), rel=1e-10)
    assert z == pytest.approx(delta / se) and delta > 0
    from scipy.stats import norm
    assert p == pytest.approx(norm.sf(z))
    # One-sided: the reverse comparison is the complement.
    assert paired_delong(y, b, a)[-1] == pytest.approx(1 - p)


def test_paired_delong__chance_model_not_better_than_a_good_one(cohort):
    y, a, _ = cohort
    noise = np.random.default_rng(3).normal(size=y.size)
    assert paired_delong(y, noise, a)[-1] > 0.99
    assert paired_delong(y, a, noise)[-1] < 1e-6
    assert paired_delong(y, a, a)[-1] == 1.0  # identical models: no evidence


def test_paired_delong__against_a_constant_baseline(cohort):
    # evaluate's baseline without covariates is the training prevalence for everyone: AUC 0.5, no variance.
    y, a, _ = cohort
    auc_a, auc_b, delta, se, z, p = paired_delong(y, a, np.full(y.size, 0.3))
    assert auc_b == 0.5 and se == pytest.approx(delong_auc(y, a)[1]) and p < 1e-6


def test_calibration__recovers_a_known_miscalibration():
    rng = np.random.default_rng(5)
    true_logit = rng.normal(0, 1.5, 20000)
    y = (rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(int)
    assert calibration(y, 1 / (1 + np.exp(-true_logit))) == pytest.approx((1.0, 0.0), abs=0.05)
    # Scores twice as extreme as the truth, shifted up by 0.5 on the logit scale: slope 1/2, intercept -0.25.
    slope, intercept = calibration(y, 1 / (1 + np.exp(-(2 * true_logit + 0.5))))
    assert slope == pytest.approx(0.5, abs=0.03) and intercept == pytest.approx(-0.25, abs=0.05)


def test_binary_report__fields_and_values(cohort):
    from sklearn.metrics import average_precision_score, brier_score_loss

    y, a, _ = cohort
    p = 1 / (1 + np.exp(-a))
    report = binary_report(y, p)
    assert report["auc_roc"] == pytest.approx(roc_auc_score(y, p))
    assert report["auc_roc_ci_low"] < report["auc_roc"] < report["auc_roc_ci_high"]
    assert report["auc_pr"] == pytest.approx(average_precision_score(y, p))
    assert report["brier"] == pytest.approx(brier_score_loss(y, p))
    assert report["prevalence"] == pytest.approx(y.mean()) and report["n"] == 300
    bins = report["calibration_bins"]
    assert len(bins["mean_predicted"]) == len(bins["observed"]) == 10
    assert np.all(np.diff(bins["mean_predicted"]) > 0)


def test_quantitative_report__point_values_and_ci(cohort):
    rng = np.random.default_rng(11)
    y = rng.normal(size=400)
    pred = 0.6 * y + rng.normal(scale=0.8, size=400)
    report = quantitative_report(y, pred)
    assert report["r2"] == pytest.approx(r2_score(y, pred))
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))
    assert report["r2_ci_low"] < report["r2"] < report["r2_ci_high"]
    assert report["rmse_ci_low"] < report["rmse"] < report["rmse_ci_high"]
    # Percentile CI width ~ 2 x 1.96 x the SE of an RMSE of 400 residuals (~ rmse / sqrt(2n)): about 0.1.
    assert 0.05 < report["rmse_ci_high"] - report["rmse_ci_low"] < 0.2
    assert quantitative_report(y, pred) == report  # fixed seed: reruns log the same numbers
    assert report["n"] == 400


def test_paired_squared_error_test__direction_and_ties():
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    good, bad = y + rng.normal(scale=0.5, size=300), y + rng.normal(scale=1.0, size=300)
    assert paired_squared_error_test(y, good, bad) < 1e-6
    assert paired_squared_error_test(y, bad, good) > 1 - 1e-6
    assert paired_squared_error_test(y, good, good) == 1.0
    from scipy.stats import ttest_rel
    diff_p = ttest_rel((y - good) ** 2, (y - bad) ** 2, alternative="less").pvalue
    assert paired_squared_error_test(y, good, bad) == pytest.approx(diff_p)


def test_auc_roc_counts_tied_pairs_half_and_is_nan_for_one_class():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, size=60).astype(float)  # many ties
    label = rng.random(60) < 0.4
    pos, neg = score[label], score[~label]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc_roc(label, score) == pytest.approx(pairwise)
    assert np.isnan(auc_roc(np.ones(5), np.arange(5.0)))


def test_curve_points_integrate_to_the_reported_areas():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.3
    score = np.round((y * 0.3 + rng.random(200)) / 1.3, 2)  # probabilities, ties included
    fpr, tpr = roc_points(y, score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc_roc(y, score))
    recall, precision = pr_points(y, score)
    assert np.all(np.diff(recall) >= 0)  # ascending, as the step plot draws it
    assert np.sum(np.diff(recall) * precision[1:]) == pytest.approx(binary_report(y, score)["auc_pr"])

"""Tests for genoflow.features.association: null logistic fit and the block score test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from genoflow.features.association import NullModel, fit_null_logistic, score_test_block


def _simulate(rng, n, n_variants, log_or, maf_range=(0.05, 0.5), missing=0.0):
    """Cohort with 3 covariates (age-like, sex, a PC) affecting risk, and a variant block."""
    cov = np.column_stack([rng.normal(size=n), rng.integers(0, 2, size=n), rng.normal(size=n)])
    af = rng.uniform(*maf_range, size=(n_variants, 1))
    g = (rng.random((n_variants, n)) < af).astype(np.int8) + (rng.random((n_variants, n)) < af)
    eta = -0.7 + cov @ np.array([0.4, 0.5, -0.3]) + np.ravel(log_or) @ g
    y = (rng.random(n) < special.expit(eta)).astype(np.int8)
    g[rng.random(g.shape) < missing] = -1
    return y, cov, g


def _logistic_mle(y, x):
    """Full logistic MLE by plain Newton-Raphson: (coef, log-likelihood)."""
    coef = np.zeros(x.shape[1])
    for _ in range(50):
        mu = special.expit(x @ coef)
        hess = x.T @ (x * (mu * (1 - mu))[:, None])
        step = np.linalg.solve(hess, x.T @ (y - mu))
        coef += step
        if np.abs(step).max() < 1e-10:
            break
    eta = x @ coef
    return coef, float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _impute(g):
    g = g.astype(float)
    for row in g:
        miss = row < 0
        row[miss] = row[~miss].mean() if (~miss).any() else 0.0
    return g


def test_fit_null_logistic__matches_direct_likelihood_maximisation():
    rng = np.random.default_rng(0)
    y, cov, _ = _simulate(rng, 800, 1, np.zeros(1))
    null = fit_null_logistic(y, cov)
    x = np.column_stack([np.ones(len(y)), cov])

    def nll(b):
        eta = x @ b
        return np.sum(np.logaddexp(0.0, eta) - y * eta)

    ref = optimize.minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(null.coef, ref.x, atol=1e-5)
    assert null.converged and 1 <= null.n_iter < 15
    assert null.loglik == pytest.approx(-ref.fun, rel=1e-10)
    np.testing.assert_allclose(null.fitted, special.expit(x @ null.coef))
    assert isinstance(null, NullModel) and null.n == 800


def test_fit_null_logistic__intercept_only():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    null = fit_null_logistic(y, None)
    np.testing.assert_allclose(null.coef, [special.logit(3 / 8)], atol=1e-12)
    np.testing.assert_allclose(null.fitted, 3 / 8)


def test_fit_null_logistic__no_variation_in_y_raises():
    with pytest.raises(ValueError, match="y: has no variation"):
        fit_null_logistic(np.ones(10), np.arange(10.0))


def test_fit_null_logistic__complete_separation_raises():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    with pytest.raises(ValueError, match="separated"):
        fit_null_logistic((x > 0.3).astype(int), np.column_stack([x, rng.normal(size=200)]))


def test_fit_null_logistic__quasi_complete_separation_raises():
    # Every sample with z = 1 is a case; z = 0 has both: the MLE of z's coefficient is infinite.
    rng = np.random.default_rng(2)
    z = np.r_[np.zeros(100), np.ones(100)]
    y = np.r_[rng.integers(0, 2, size=100), np.ones(100)]
    with pytest.raises(ValueError, match="separated"):
        fit_null_logistic(y, z)


def test_fit_null_logistic__strong_but_finite_effect_is_accepted():
    # |eta| reaches ~20 (fitted probabilities numerically 0/1) yet classes overlap: not separated.
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000) * 4
    y = (rng.random(3000) < special.expit(5 * x)).astype(int)
    null = fit_null_logistic(y, x)
    assert null.converged and null.coef[1] == pytest.approx(5, rel=0.3)


def test_fit_null_logistic__bad_inputs_raise_naming_the_argument():
    y = np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(ValueError, match="y: must be binary"):
        fit_null_logistic(np.array([0, 1, 2, 1, 0, 1]), None)
    with pytest.raises(ValueError, match="y: must be binary"):
        fit_null_logistic(np.array([0, 1, np.nan, 1, 0, 1]), None)
    with pytest.raises(ValueError, match="covariates: contain NaN"):
        fit_null_logistic(y, np.array([1.0, 2, np.nan, 4, 5, 6]))
    with pytest.raises(ValueError, match="covariates: the design"):
        fit_null_logistic(y, np.column_stack([np.arange(6.0), 2 * np.arange(6.0)]))
    with pytest.raises(ValueError, match="covariates: expected shape"):
        fit_null_logistic(y, np.zeros((5, 2)))


def test_score_test_block__matches_textbook_formula_with_missing_values():
    # U = g'(y - mu), V = g'Wg - g'WX (X'WX)^-1 X'Wg with explicit inverses on mean-imputed g.
    rng = np.random.default_rng(4)
    y, cov, g = _simulate(rng, 400, 30, np.full(30, 0.02), missing=0.1)
    null = fit_null_logistic(y, cov)
    out = score_test_block(null, g)
    x = np.column_stack([np.ones(len(y)), cov])
    w = null.fitted * (1 - null.fitted)
    gi = _impute(g)
    u = gi @ (y - null.fitted)
    gwx = (gi * w) @ x
    v = (gi * gi) @ w - np.einsum("ij,jk,ik->i", gwx, np.linalg.inv(x.T @ (x * w[:, None])), gwx)
    np.testing.assert_allclose(out["chi2"], u**2 / v, rtol=1e-8)
    np.testing.assert_allclose(out["beta"], u / v, rtol=1e-8)
    np.testing.assert_allclose(out["se"], 1 / np.sqrt(v), rtol=1e-8)
    np.testing.assert_allclose(out["p"], stats.chi2.sf(u**2 / v, 1), rtol=1e-7)
    np.testing.assert_array_equal(out["n"], (g >= 0).sum(axis=1))


def test_score_test_block__agrees_with_likelihood_ratio_test():
    # Large n, effects from none to strong: score chi2 vs LRT of a full per-variant fit.
    # Asymptotically equivalent; stated tolerance: Pearson r of -log10 p > 0.99, and within
    # 10% (+0.2) in -log10 p for every variant.
    rng = np.random.default_rng(5)
    n, n_variants = 3000, 60
    # Every third variant causal, 0.05..0.35 per allele, on top of the covariates.
    log_or = np.where(np.arange(n_variants) % 3 == 0, np.linspace(0.05, 0.35, n_variants), 0.0)
    y, cov, g = _simulate(rng, n, n_variants, log_or)
    null = fit_null_logistic(y, cov)
    out = score_test_block(null, g)

    x0 = np.column_stack([np.ones(n), cov])
    _, ll0 = _logistic_mle(y, x0)
    lrt, mle_beta = np.empty(n_variants), np.empty(n_variants)
    for i in range(n_variants):
        coef, ll1 = _logistic_mle(y, np.column_stack([x0, g[i]]))
        lrt[i], mle_beta[i] = 2 * (ll1 - ll0), coef[-1]
    assert null.loglik == pytest.approx(ll0, rel=1e-10)
    lp_score = -np.log10(out["p"])
    lp_lrt = -np.log10(stats.chi2.sf(lrt, 1))
    assert np.corrcoef(lp_score, lp_lrt)[0, 1] > 0.99
    np.testing.assert_allclose(lp_score, lp_lrt, rtol=0.1, atol=0.2)
    assert lp_lrt.max() > 5  # the comparison covers strong signals, not only the null
    # The one-step beta approximates the per-allele log OR for these modest effects.
    # (other seeds show differences up to ~0.03; 0.05 is ~1 SE here).
    np.testing.assert_allclose(out["beta"], mle_beta, atol=0.05)


def test_score_test_block__p_uniform_under_the_null():
    rng = np.random.default_rng(6)
    y, cov, g = _simulate(rng, 1000, 2000, np.zeros(2000), missing=0.02)
    out = score_test_block(fit_null_logistic(y, cov), g)
    assert stats.kstest(out["p"], "uniform").pvalue > 1e-3
    assert 0.03 < np.mean(out["p"] < 0.05) < 0.07


def test_score_test_block__strong_signal_detected():
    rng = np.random.default_rng(7)
    y, cov, g = _simulate(rng, 1000, 3, np.array([1.0, 0.0, 0.0]), maf_range=(0.3, 0.3))
    out = score_test_block(fit_null_logistic(y, cov), g)
    assert out["p"][0] < 1e-10 and out["beta"][0] > 0.5
    assert out["p"][1] > 1e-4 and out["p"][2] > 1e-4


def test_score_test_block__uninformative_variants_give_p_one():
    rng = np.random.default_rng(8)
    y, cov, g = _simulate(rng, 200, 1, np.zeros(1))
    cov[:, 1] = rng.integers(0, 3, size=200)  # an integer covariate a variant can copy
    null = fit_null_logistic(y, cov)
    block = np.stack(
        [
            np.zeros(200),  # monomorphic hom-ref
            np.full(200, 2),  # monomorphic hom-alt
            np.where(np.arange(200) % 3 == 0, -1, 1),  # monomorphic het with missing
            np.full(200, -1),  # all missing
            cov[:, 1],  # collinear with a covariate
            g[0],  # an ordinary variant
        ]
    ).astype(np.int8)
    out = score_test_block(null, block)
    np.testing.assert_array_equal(out["p"][:5], 1.0)
    np.testing.assert_array_equal(out["chi2"][:5], 0.0)
    assert np.isnan(out["beta"][:5]).all() and np.isnan(out["se"][:5]).all()
    assert np.isfinite(out["beta"][5]) and out["p"][5] < 1.0
    assert out["n"].tolist() == [200, 200, 133, 0, 200, 200]


def test_score_test_block__chunking_does_not_change_results():
    rng = np.random.default_rng(9)
    y, cov, g = _simulate(rng, 300, 50, np.zeros(50), missing=0.05)
    null = fit_null_logistic(y, cov)
    whole = score_test_block(null, g)
    chunked = score_test_block(null, g, budget=7 * 300 * 24)  # chunks of 7 variants (24 bytes per cell)
    for key in whole:
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-12, err_msg=key)


def test_score_test_block__empty_block_and_bad_inputs():
    rng = np.random.default_rng(10)
    y, cov, _ = _simulate(rng, 50, 1, np.zeros(1))
    null = fit_null_logistic(y, cov)
    out = score_test_block(null, np.empty((0, 50), dtype=np.int8))
    assert set(out) == {"chi2", "p", "beta", "se", "n"}
    assert all(v.shape == (0,) for v in out.values())
    with pytest.raises(ValueError, match="dosages: expected shape"):
        score_test_block(null, np.zeros((2, 49), dtype=np.int8))
    with pytest.raises(ValueError, match="dosages: only"):
        score_test_block(null, np.full((1, 50), 3, dtype=np.int8))

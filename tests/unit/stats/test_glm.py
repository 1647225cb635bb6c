"""Tests for genoflow.stats.glm against per-variant reference fits written independently here.

The references fit one variant at a time, on its called samples only, with textbook formulas:
OLS by ``numpy.linalg.lstsq``, logistic and Firth regressions by ``scipy.optimize.minimize`` of the
(penalised) negative log-likelihood. Tolerances: coefficients agree to 1e-6 (BFGS stops at a
gradient of 1e-10; the kernel at steps of 1e-8, Firth 1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from genoflow.stats.glm import RESULT_COLUMNS, glm_block, prepare_glm


def _cohort(rng, n=300, n_variants=6, missing=0.02):
    cov = np.column_stack([rng.normal(50, 10, size=n), rng.integers(1, 3, size=n), rng.normal(size=n)])
    af = rng.uniform(0.1, 0.5, size=(n_variants, 1))
    g = ((rng.random((n_variants, n)) < af).astype(np.int8) + (rng.random((n_variants, n)) < af)).astype(np.int8)
    eta = -0.5 + 0.02 * (cov[:, 0] - 50) + 0.3 * cov[:, 2] + 0.6 * g[0]
    y_bin = (rng.random(n) < special.expit(eta)).astype(float)
    y_qt = eta + rng.normal(size=n)
    g[rng.random(g.shape) < missing] = -1
    return cov, g, y_bin, y_qt


def _design(cov, g_row):
    keep = g_row >= 0
    return np.column_stack([np.ones(keep.sum()), cov[keep], g_row[keep]]), keep


def _ols(cov, g_row, y):
    x, keep = _design(cov, g_row)
    coef, rss, *_ = np.linalg.lstsq(x, y[keep], rcond=None)
    df = keep.sum() - x.shape[1]
    se = np.sqrt(rss[0] / df * np.linalg.inv(x.T @ x)[-1, -1])
    return coef[-1], se, 2 * stats.t.sf(abs(coef[-1] / se), df)


def _logistic(cov, g_row, y, firth=False):
    x, keep = _design(cov, g_row)
    x = (x - np.r_[0, x[:, 1:].mean(axis=0)]) / np.r_[1, x[:, 1:].std(axis=0)]  # conditioning only
    yk = y[keep]

    def info(b):
        mu = special.expit(x @ b)
        return x.T @ (x * (mu * (1 - mu))[:, None])

    def objective(b):
        eta = x @ b
        value = -np.sum(yk * eta - np.logaddexp(0, eta))
        return value - 0.5 * np.linalg.slogdet(info(b))[1] if firth else value

    res = optimize.minimize(objective, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-10})
    scale = x[:, -1].std() and np.std(g_row[keep])  # undo the standardisation of the dosage column
    beta = res.x[-1] / scale
    se = np.sqrt(np.linalg.inv(info(res.x))[-1, -1]) / scale
    return beta, se, 2 * stats.norm.sf(abs(beta / se))


@pytest.fixture(params=["fused", "blas"])
def xwx_path(request, monkeypatch):
    """Run a test with X' W X from the compiled per-pair sums (few covariates) and from BLAS (many)."""
    import genoflow.stats.glm as glm

    if request.param == "blas":
        monkeypatch.setattr(glm, "_FUSED_MAX_Q", 0)
    return request.param


def test_glm_block__linear_matches_per_variant_ols(xwx_path):
    rng = np.random.default_rng(1)
    cov, g, _, y = _cohort(rng)
    res = glm_block(prepare_glm(y, cov, family="linear"), g)
    for i in range(g.shape[0]):
        beta, se, p = _ols(cov, g[i], y)
        assert res["beta"][i] == pytest.approx(beta, rel=1e-9)
        assert res["se"][i] == pytest.approx(se, rel=1e-9)
        assert res["p"][i] == pytest.approx(p, rel=1e-7)
        assert res["n_obs"][i] == np.count_nonzero(g[i] >= 0)
    assert res["p"][0] < 1e-6 and not res["firth"].any()
    np.testing.assert_allclose(res["neglog10_p"], -np.log10(res["p"]), rtol=1e-10)
    assert list(res) == list(RESULT_COLUMNS)


def test_glm_block__logistic_matches_per_variant_mle(xwx_path):
    rng = np.random.default_rng(2)
    cov, g, y, _ = _cohort(rng)
    res = glm_block(prepare_glm(y, cov, family="logistic"), g)
    for i in range(g.shape[0]):
        beta, se, p = _logistic(cov, g[i], y)
        assert res["beta"][i] == pytest.approx(beta, abs=1e-6)
        assert res["se"][i] == pytest.approx(se, rel=1e-6)
        assert res["p"][i] == pytest.approx(p, rel=1e-5)
    assert not res["firth"].any()
    np.testing.assert_allclose(res["stat"], res["beta"] / res["se"])


def test_glm_block__separated_variant_falls_back_to_firth(xwx_path):
    rng = np.random.default_rng(3)
    cov, g, y, _ = _cohort(rng, n_variants=2, missing=0.0)
    g[1] = 0
    cases = np.flatnonzero(y == 1)
    g[1, cases[:3]] = 1  # three carriers, all cases: the logistic MLE is infinite
    res = glm_block(prepare_glm(y, cov, family="logistic"), g)
    assert res["firth"].tolist() == [False, True]
    beta, se, p = _logistic(cov, g[1], y, firth=True)
    assert res["beta"][1] == pytest.approx(beta, abs=1e-4)
    assert res["se"][1] == pytest.approx(se, rel=1e-4)
    no_firth = glm_block(prepare_glm(y, cov, family="logistic"), g, firth_fallback=False)
    assert np.isnan(no_firth["p"][1]) and no_firth["p"][0] == pytest.approx(res["p"][0])


@pytest.mark.parametrize("family", ["linear", "logistic"])
def test_glm_block__untestable_variants_get_nan(family, xwx_path):
    rng = np.random.default_rng(4)
    cov, g, y_bin, y_qt = _cohort(rng, n_variants=4, missing=0.0)
    y = y_bin if family == "logistic" else y_qt
    g[0] = 1  # constant
    g[1] = -1  # nothing called
    # Collinear with the sex covariate (1/2): VIF infinite.
    g[2] = (cov[:, 1] - 1).astype(np.int8)
    res = glm_block(prepare_glm(y, cov, family=family), g)
    assert np.isnan(res["p"][:3]).all() and np.isnan(res["beta"][:3]).all()
    assert np.isfinite(res["p"][3])
    assert res["n_obs"].tolist() == [300, 0, 300, 300]


def test_glm_block__chunks_give_the_same_answer(monkeypatch):
    import genoflow.stats.glm as glm

    rng = np.random.default_rng(5)
    cov, g, y, _ = _cohort(rng, n_variants=9)
    whole = glm_block(prepare_glm(y, cov, family="logistic"), g)
    monkeypatch.setattr(glm, "_MAX_CHUNK_CELLS", 2 * 300)  # two variants per chunk
    chunked = glm_block(prepare_glm(y, cov, family="logistic"), g)
    for key in RESULT_COLUMNS:
        # BLAS may sum in another order, and the single-precision Newton phase ends ~1e-7 from the
        # maximum at a point that depends on it: the double-precision step takes the coefficients to
        # the same maximum, the standard errors (information at the step's start) agree to ~1e-7.
        np.testing.assert_allclose(whole[key], chunked[key], rtol=1e-6)


def test_glm_block__empty_block():
    rng = np.random.default_rng(6)
    cov, _, _, y = _cohort(rng)
    res = glm_block(prepare_glm(y, cov, family="linear"), np.empty((0, 300), dtype=np.int8))
    assert all(res[k].shape == (0,) for k in RESULT_COLUMNS)


def test_prepare_glm__rejects_bad_input():
    rng = np.random.default_rng(7)
    cov, g, y, _ = _cohort(rng)
    with pytest.raises(ValueError, match="family"):
        prepare_glm(y, cov, family="poisson")
    with pytest.raises(ValueError, match="0/1"):
        prepare_glm(y + 1, cov, family="logistic")
    with pytest.raises(ValueError, match="NaN"):
        prepare_glm(np.r_[np.nan, y[1:]], cov, family="linear")
    with pytest.raises(ValueError, match="constant"):
        prepare_glm(y, np.column_stack([cov, np.ones(300)]), family="linear")
    with pytest.raises(ValueError, match="rank-deficient"):
        prepare_glm(y, np.column_stack([cov, 2 * cov[:, 0]]), family="linear")
    with pytest.raises(ValueError, match="no variation"):
        prepare_glm(np.zeros(300), cov, family="logistic")
    null = prepare_glm(y, cov, family="logistic")
    with pytest.raises(ValueError, match=r"shape \(n_variants, 300\)"):
        glm_block(null, g[:, :10])
    with pytest.raises(ValueError, match="-1 \\(missing\\), 0, 1 or 2"):
        glm_block(null, np.full((1, 300), 3, dtype=np.int8))
    with pytest.raises(ValueError, match="integer"):
        glm_block(null, g.astype(float))


def test_glm_block__fits_not_converged_in_max_iter_go_to_firth_or_nan():
    rng = np.random.default_rng(4)
    cov, g, y, _ = _cohort(rng)
    null = prepare_glm(y, cov, family="logistic")
    assert np.isnan(glm_block(null, g, max_iter=1, firth_fallback=False)["beta"]).all()
    firth = glm_block(null, g, max_iter=1)
    assert firth["firth"].all() and np.isfinite(firth["beta"]).all()

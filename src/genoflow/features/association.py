"""Covariate-adjusted score test for a binary trait, vectorised over a block of variants.

Fit the null logistic model (trait ~ intercept + covariates) once with :func:`fit_null_logistic`
on the driver, broadcast the small :class:`NullModel`, and call :func:`score_test_block` per
block of variants inside ``mapInPandas``. The score test needs no per-variant fit: for a block
``G`` (variants x samples) it is two matrix products with the null model's quantities.

With ``X`` the design (intercept + covariates), ``mu`` the null fitted probabilities and
``W = diag(mu (1 - mu))``, the efficient score statistic of a variant ``g`` is

    U = g'(y - mu),    V = g'Wg - g'WX (X'WX)^-1 X'Wg,    chi2 = U^2 / V  (1 df).

``V`` is computed as ``||(I - P) W^1/2 g||^2`` with ``P`` the projection onto ``W^1/2 X`` (from a
QR decomposition), which avoids the cancellation of the two-term formula.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from genoflow.genotypes import BLOCK_BYTES, MISSING, rows_per_block
from genoflow.stats.null_model import NullModel, fit_null_linear, fit_null_logistic

# The null fits live in genoflow.stats.null_model (stats.glm starts from them too); they are
# re-exported here for the feature code that pairs them with the score test.
__all__ = ["NullModel", "fit_null_logistic", "fit_null_linear", "score_test_block"]

# Bytes per (variant, sample) cell of score_test_block's chunks: three float64 arrays live at once
# (the imputed g, W^1/2 g and its residual), so a chunk is sized by rows_per_block (decision 0012).
_BYTES_PER_VALUE = 24

# A variant whose covariate-adjusted information V is below this fraction of its unadjusted
# information g'Wg carries no information beyond the covariates (e.g. it is collinear with them):
# report p = 1 rather than an arbitrary ratio of rounding errors.
_COLLINEAR_TOL = 1e-10


def score_test_block(null: NullModel, dosages: np.ndarray, *, budget: int = BLOCK_BYTES) -> dict[str, np.ndarray]:
    """Covariate-adjusted score test of every variant of a block against the null model.

    Parameters
    ----------
    null : NullModel
        From :func:`fit_null_logistic` on the same samples, in the same order.
    dosages : numpy.ndarray, shape (n_variants, n), int8
        Dosages 0/1/2, ``-1`` missing. Not modified. Missing dosages are replaced by the
        variant's mean dosage over the called samples passed here (mean imputation, as in
        regenie and SAIGE). Imputed samples carry no genotype information, which
        shrinks ``beta`` slightly towards 0 but keeps the test valid when missingness is
        unrelated to the trait; missingness that differs between cases and controls can inflate
        it, so filter on call rate first.
    budget : int
        Bytes of float64 temporaries per chunk of variants; the result does not depend on it.

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_variants,)
        ``chi2`` (float64): score statistic ``U^2 / V``, 1 df;
        ``p`` (float64): its upper-tail chi-square p-value; 1.0 for a variant with no information
        beyond the covariates (monomorphic, all missing, collinear with the covariates);
        ``beta`` (float64): one-step estimate ``U / V`` of the per-ALT-allele log odds ratio
        (close to the MLE for small effects, shrunk towards 0 for large ones); NaN where ``p`` is
        1 for lack of information;
        ``se`` (float64): ``1 / sqrt(V)``, NaN likewise;
        ``n`` (int64): called (non-imputed) samples.

    References
    ----------
    Rao CR (1948). Large sample tests of statistical hypotheses concerning several parameters
    with applications to problems of estimation. Proc Camb Philos Soc 44:50-57.

    Boos DD, Stefanski LA (2013). Essential Statistical Inference, ch. 3 (efficient score test
    with nuisance parameters).

    Chen H et al. (2016). Control for population structure and relatedness for binary traits in
    genetic association studies via logistic mixed models (GMMAT). Am J Hum Genet 98:653-666.
    """
    dosages = np.asarray(dosages)
    if dosages.ndim != 2 or dosages.shape[1] != null.n:
        raise ValueError(f"dosages: expected shape (n_variants, {null.n}), got {dosages.shape}")
    if not np.issubdtype(dosages.dtype, np.integer):
        raise ValueError(f"dosages: expected an integer (int8) array, got dtype {dosages.dtype}")
    rows = rows_per_block(null.n, _BYTES_PER_VALUE, budget)
    parts = [_score_chunk(null, dosages[i : i + rows]) for i in range(0, dosages.shape[0], rows)]
    if not parts:
        parts = [_score_chunk(null, dosages)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _score_chunk(null: NullModel, dosages: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`score_test_block` on a chunk small enough for float64 temporaries."""
    if ((dosages < MISSING) | (dosages > 2)).any():
        raise ValueError(f"dosages: only {MISSING} (missing), 0, 1, 2 are allowed")
    g, n_called, no_variation = _mean_impute(dosages)
    u = g @ null.residual
    gw = g * null.sqrt_weight
    resid = gw - (gw @ null.q) @ null.q.T  # W^1/2 g with its covariate component removed
    v = np.einsum("ij,ij->i", resid, resid)
    raw = np.einsum("ij,ij->i", gw, gw)
    no_info = no_variation | (v <= _COLLINEAR_TOL * raw)
    v_safe = np.where(no_info, 1.0, v)
    chi2 = np.where(no_info, 0.0, u * u / v_safe)
    return {
        "chi2": chi2,
        "p": np.where(no_info, 1.0, special.chdtrc(1, chi2)),
        "beta": np.where(no_info, np.nan, u / v_safe),
        "se": np.where(no_info, np.nan, 1.0 / np.sqrt(v_safe)),
        "n": n_called,
    }


def _mean_impute(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 copy of a chunk with missing dosages set to the variant's called mean.

    Returns the imputed chunk, the called counts (int64) and a mask of variants without variation
    among their called samples (including all-missing ones).
    """
    missing = dosages == MISSING
    n_called = dosages.shape[1] - np.count_nonzero(missing, axis=1)
    g = dosages.astype(np.float64)
    g[missing] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n_called > 0, g.sum(axis=1) / n_called, 0.0)
    g[missing] = np.broadcast_to(mean[:, None], g.shape)[missing]
    # Dosages are small integers, so "no variation" is exact: max == min over called samples.
    hi = np.where(missing, -1, dosages).max(axis=1, initial=-1)
    lo = np.where(missing, 3, dosages).min(axis=1, initial=3)
    return g, n_called.astype(np.int64), (n_called == 0) | (hi == lo)

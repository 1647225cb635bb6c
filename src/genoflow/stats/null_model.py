"""Null models of a trait on its covariates (no variant), fitted once on the driver.

- :func:`fit_null_logistic`: ``logit P(y = 1) = b0 + covariates @ b`` by IRLS, refusing separated
  classes (the MLE does not exist);
- :func:`fit_null_linear`: least squares, as a :class:`NullModel` scaled so that the score test is
  the linear model's.

The per-variant tests built on them live above: the score test in
:mod:`genoflow.features.association`, the per-variant regressions in :mod:`genoflow.stats.glm`
(which starts its logistic Newton iterations from the null fit's coefficients).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import special

__all__ = ["NullModel", "fit_null_logistic", "fit_null_linear"]


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == and hash meaningless
class NullModel:
    """A fitted null logistic model and what the score test needs from it.

    Attributes
    ----------
    coef : numpy.ndarray, shape (1 + n_covariates,), float64
        Coefficients, intercept first, then the covariates in column order.
    fitted : numpy.ndarray, shape (n,), float64
        Fitted probabilities ``mu``.
    loglik : float
        Log-likelihood at ``coef``.
    n_iter : int
        IRLS iterations run.
    converged : bool
        Whether the relative change in deviance fell below the tolerance.
    residual : numpy.ndarray, shape (n,), float64
        ``y - mu``.
    sqrt_weight : numpy.ndarray, shape (n,), float64
        ``sqrt(mu (1 - mu))``.
    q : numpy.ndarray, shape (n, 1 + n_covariates), float64
        Orthonormal basis of ``W^1/2 X`` (reduced QR), to project variants on the covariates.
    """

    coef: np.ndarray
    fitted: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    residual: np.ndarray = field(repr=False)
    sqrt_weight: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        """Number of samples the model was fitted on."""
        return self.fitted.shape[0]


def fit_null_logistic(
    y: np.ndarray, covariates: np.ndarray | None = None, *, max_iter: int = 50, tol: float = 1e-10
) -> NullModel:
    """Fit ``logit P(y = 1) = b0 + covariates @ b`` by iteratively reweighted least squares.

    Parameters
    ----------
    y : numpy.ndarray, shape (n,)
        Binary trait, 0/1 (bool or numeric). No missing values: drop those samples first.
    covariates : numpy.ndarray, shape (n, c), float, optional
        Covariates (e.g. age, sex, principal components), without an intercept column: one is
        added. ``None`` or ``c = 0`` fits the intercept only.
    max_iter : int, default 50
        Maximum IRLS iterations.
    tol : float, default 1e-10
        Convergence when ``|dev - dev_old| / (|dev| + 0.1) < tol`` (the criterion of R's
        ``glm.fit``, tighter default).

    Returns
    -------
    NullModel
        If IRLS does not converge a ``RuntimeWarning`` is issued and ``converged`` is False.

    Raises
    ------
    ValueError
        If ``y`` is not 0/1 or has no variation; if the inputs have NaNs or mismatched shapes; if
        the design (intercept + covariates) is rank-deficient; or if the covariates separate the
        classes perfectly or quasi-perfectly (the maximum-likelihood estimate does not exist).
    """
    if max_iter < 1:
        raise ValueError(f"max_iter: must be >= 1, got {max_iter}")
    y = _check_y(y)
    x = _design(covariates, y.shape[0])
    coef, mu, n_iter, converged = _irls(y, x, max_iter=max_iter, tol=tol)
    eta = x @ coef
    # Fitted probabilities pinned at 0/1 (or no convergence) are the signature of separation;
    # confirm it with an LP so that a merely strong covariate is not rejected.
    if (not converged or np.abs(eta).max() > 15.0) and _is_separated(y, x):
        raise ValueError(
            "covariates: the classes of y are perfectly or quasi-perfectly separated by the "
            "covariates, so the logistic MLE does not exist; drop or coarsen the separating "
            "covariate(s) or remove the samples they predict perfectly"
        )
    if not converged:
        warnings.warn(
            f"fit_null_logistic: IRLS did not converge in {max_iter} iterations",
            RuntimeWarning,
            stacklevel=2,
        )
    sqrt_w = np.sqrt(mu * (1.0 - mu))
    q, _ = np.linalg.qr(sqrt_w[:, None] * x)
    return NullModel(
        coef=coef,
        fitted=mu,
        loglik=_loglik(y, eta),
        n_iter=n_iter,
        converged=converged,
        residual=y - mu,
        sqrt_weight=sqrt_w,
        q=q,
    )


def _check_y(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y: expected shape (n,), got {y.shape}")
    y = y.astype(np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y: must be binary 0/1 with no missing values")
    if y.size == 0 or y.min() == y.max():
        raise ValueError("y: has no variation (all cases or all controls); nothing to fit")
    return y


def _design(covariates: np.ndarray | None, n: int) -> np.ndarray:
    """Design matrix ``[1, covariates]``, shape (n, 1 + c), after checks."""
    if covariates is None:
        covariates = np.empty((n, 0))
    cov = np.asarray(covariates, dtype=np.float64)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.ndim != 2 or cov.shape[0] != n:
        raise ValueError(f"covariates: expected shape ({n}, n_covariates), got {cov.shape}")
    if not np.isfinite(cov).all():
        raise ValueError("covariates: contain NaN or infinite values; impute or drop those samples")
    x = np.column_stack([np.ones(n), cov])
    if n <= x.shape[1] or np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(
            f"covariates: the design (intercept + {cov.shape[1]} covariates, {n} samples) is "
            "rank-deficient: a covariate is constant or a linear combination of others"
        )
    return x


def _irls(y: np.ndarray, x: np.ndarray, *, max_iter: int, tol: float):
    """Newton-Raphson / IRLS for logistic regression, with step-halving if deviance rises."""
    coef = np.zeros(x.shape[1])
    coef[0] = special.logit(y.mean())  # exact MLE of the intercept-only model: a good start
    dev = -2.0 * _loglik(y, x @ coef)
    n_iter, converged = 0, False
    while n_iter < max_iter and not converged:
        n_iter += 1
        mu = special.expit(x @ coef)
        sqrt_w = np.sqrt(np.maximum(mu * (1.0 - mu), 1e-300))
        # Weighted least squares on the working response, via lstsq (QR/SVD) for stability.
        step = np.linalg.lstsq(sqrt_w[:, None] * x, (y - mu) / sqrt_w, rcond=None)[0]
        new_coef, new_dev = _halve_until_no_worse(y, x, coef, step, dev)
        converged = abs(new_dev - dev) / (abs(new_dev) + 0.1) < tol
        coef, dev = new_coef, new_dev
    return coef, special.expit(x @ coef), n_iter, converged


def _halve_until_no_worse(y, x, coef, step, dev, max_halvings: int = 30):
    """Take the Newton step, halving it while it increases the deviance (like R's glm.fit)."""
    for _ in range(max_halvings):
        new_dev = -2.0 * _loglik(y, x @ (coef + step))
        if new_dev <= dev + 1e-12 * abs(dev):
            break
        step = step / 2.0
    return coef + step, new_dev


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    # log(mu) = -log1p(exp(-eta)) and log(1 - mu) = -log1p(exp(eta)), stable for large |eta|.
    return float(-(y * np.logaddexp(0.0, -eta) + (1.0 - y) * np.logaddexp(0.0, eta)).sum())


def _is_separated(y: np.ndarray, x: np.ndarray) -> bool:
    """Whether some direction ``b != 0`` has ``s_i x_i'b >= 0`` for all i (``s = 2y - 1``).

    That is the condition (Albert & Anderson 1984) for complete or quasi-complete separation,
    under which the logistic MLE does not exist. Solved as a linear programme: maximise the sum
    of margins over ``b`` in the unit box subject to all margins being non-negative.
    """
    from scipy.optimize import linprog  # only needed on this rare path

    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # the intercept
    a = (2.0 * y - 1.0)[:, None] * (x / scale)
    res = linprog(-a.sum(axis=0), A_ub=-a, b_ub=np.zeros(a.shape[0]), bounds=(-1.0, 1.0), method="highs")
    if res.status != 0:
        return False
    margins = a @ res.x
    # Guard against the solver's feasibility tolerance passing a non-separating b.
    return bool(margins.max() > 1e-6 and margins.min() >= -1e-9)


def fit_null_linear(y: np.ndarray, covariates: np.ndarray | None = None) -> NullModel:
    """Least squares ``y = b0 + covariates @ b``, as a :class:`NullModel` whose score test
    (:func:`genoflow.features.burden.score_test_values`) is the linear model's: residuals and weights
    are scaled by the residual variance, so ``u^2 / v`` is ``(x'r)^2 / (sigma^2 x'(I - H)x)``.

    Raises ValueError for a constant ``y``, NaNs, or a rank-deficient design.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError("y: expected a 1-D array of finite values")
    if np.ptp(y) == 0:
        raise ValueError("y: has no variation")
    x = _design(covariates, y.shape[0])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ coef
    residual = y - fitted
    sigma2 = float(residual @ residual) / max(y.shape[0] - x.shape[1], 1)
    q, _ = np.linalg.qr(x)
    return NullModel(coef=coef, fitted=fitted, loglik=float("nan"), n_iter=1, converged=True,
                     residual=residual / sigma2, sqrt_weight=np.full(y.shape[0], 1.0 / np.sqrt(sigma2)), q=q)

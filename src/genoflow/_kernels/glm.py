"""The per-iteration sums of logistic IRLS for a block of variants, in one pass over each variant."""

from __future__ import annotations

import numpy as np
from numba import njit

# Reassociation lets LLVM split each sum over SIMD lanes; no flag that assumes finite values, since
# e = exp(-eta) is inf where eta is very negative (mu = 0 there, as it should be).
_FLAGS = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def _dot(a, b):
    total = a.dtype.type(0)
    for j in range(a.shape[0]):
        total += a[j] * b[j]
    return total


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def negative_eta(coef, dosages, xt, out):
    """``out[i] = -(X coef[i, :q] + g_i coef[i, q])``, the negated linear predictor of each variant,
    with ``g_i`` the int8 dosages (a missing call, -1, counts 0: its weight is 0 anyway)."""
    q = xt.shape[0]
    zero = out.dtype.type(0)
    for i in range(out.shape[0]):
        beta = -out.dtype.type(coef[i, q])
        for j in range(out.shape[1]):
            out[i, j] = beta * max(dosages[i, j], zero)
        for k in range(q):
            c = -out.dtype.type(coef[i, k])
            for j in range(out.shape[1]):
                out[i, j] += c * xt[k, j]


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def irls_sums(e, dosages, y, xt, xxt, info, score, weights):
    """Fisher information and score of ``y ~ X + g`` at ``mu = 1 / (1 + e)``, for each variant.

    Parameters
    ----------
    e : (v, n) float
        ``exp(-eta)`` of each variant's linear predictor.
    dosages : (v, n) int8
        0, 1, 2 or -1 (missing: the sample drops out of that variant's sums).
    y : (n,) float
    xt : (q, n) float
        The covariate design (intercept included), transposed.
    xxt : (q (q + 1) / 2, n) float
        Products ``x_k x_l`` of its columns, ``k <= l`` in row-major order.
    info : (v, q + 1, q + 1) float, out
        ``[X, g]' W [X, g]`` with ``W = diag(mu (1 - mu))`` over the called samples.
    score : (v, q + 1) float, out
        ``[X, g]' (y - mu)`` over the called samples.
    weights : (v, n) float, out, or shape (0, 0)
        When given, each variant's weights are written here and ``info[:, :q, :q]`` is left to the
        caller (``weights @ x x'``: BLAS does better than one dot per pair once q is large).

    Each variant's weights are made once into rows that stay in cache, then reduced against the
    covariates: one pass over the variant's data in memory, where numpy makes ~15.
    """
    n, q = e.shape[1], xt.shape[0]
    w = np.empty(n, dtype=e.dtype)
    wg = np.empty(n, dtype=e.dtype)
    r = np.empty(n, dtype=e.dtype)
    zero, one = e.dtype.type(0), e.dtype.type(1)
    for i in range(e.shape[0]):
        wgg = zero
        rg = zero
        for j in range(n):
            called = dosages[i, j] >= 0
            g = max(e.dtype.type(dosages[i, j]), zero)
            mu = one / (one + e[i, j])
            weight = mu * (one - mu) if called else zero
            residual = (y[j] - mu) if called else zero
            w[j] = weight
            wg[j] = weight * g
            r[j] = residual
            wgg += weight * g * g
            rg += residual * g
        kl = 0
        for k in range(q):
            score[i, k] = _dot(r, xt[k])
            info[i, k, q] = info[i, q, k] = _dot(wg, xt[k])
            if weights.shape[0]:
                continue
            for k2 in range(k, q):
                info[i, k, k2] = info[i, k2, k] = _dot(w, xxt[kl])
                kl += 1
        if weights.shape[0]:
            weights[i] = w
        info[i, q, q] = wgg
        score[i, q] = rg


# Columns of `call_sums`' result before the covariate sums.
N_OBS, SUM_G, SUM_GG, CARRIERS, CARRIER_CASES, BELOW_TWO, BELOW_TWO_CASES = range(7)


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def call_sums(dosages, y, xt, xxt, out, called_out):
    """What a variant's screening needs from its calls, in one pass (float64, (v, 7 + q (q + 1) / 2 + q)).

    Columns: called samples, sum and sum of squares of the dosage, carriers (dosage > 0) and those
    that are cases (``y`` = 1), called samples below dosage 2 and their cases; then ``X' M X`` (the
    ``xxt`` products over the called samples, upper triangle) and ``X' g``. Given ``called_out``
    ((v, n), else shape (0, 0)), the called masks go there and ``X' M X`` is left to the caller.
    """
    n, q, pairs = dosages.shape[1], xt.shape[0], xxt.shape[0]
    called = np.empty(n)
    dosage = np.empty(n)
    for i in range(dosages.shape[0]):
        n_obs = sum_g = sum_gg = carriers = carrier_cases = below_two = below_two_cases = 0.0
        for j in range(n):
            d = dosages[i, j]
            c = 1.0 if d >= 0 else 0.0
            g = max(float(d), 0.0)
            carrier = 1.0 if d > 0 else 0.0
            low = 1.0 if (d >= 0) & (d < 2) else 0.0
            called[j] = c
            dosage[j] = g
            n_obs += c
            sum_g += g
            sum_gg += g * g
            carriers += carrier
            carrier_cases += carrier * y[j]
            below_two += low
            below_two_cases += low * y[j]
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = n_obs, sum_g, sum_gg, carriers
        out[i, 4], out[i, 5], out[i, 6] = carrier_cases, below_two, below_two_cases
        if called_out.shape[0]:
            called_out[i] = called
        else:
            for kl in range(pairs):
                out[i, 7 + kl] = _dot(called, xxt[kl])
        for k in range(q):
            out[i, 7 + pairs + k] = _dot(dosage, xt[k])

"""Newton-Raphson for per-variant logistic regression (see :func:`genoflow.stats.glm_block`)."""

from __future__ import annotations

import numpy as np
from numba import njit

# Sums may be reordered (and so vectorised); NaN and infinity keep their meaning, as the
# convergence checks below rely on them.
_REORDER = {"reassoc", "nsz", "arcp", "contract"}


@njit(cache=True, nogil=True, fastmath=_REORDER)
def logistic_newton(xt, y, null_mu, g, m, skip, start, max_iter, tol, coef_out, hinv_out, done_out):
    """Fit ``y ~ X + g_v`` for every variant ``v``, each from ``start`` (the null fit, dosage 0).

    ``xt`` (q, n) is the design transposed, ``null_mu`` (n,) the null fit's probabilities, ``g`` and
    ``m`` (v, n) the dosages (0 where missing) and the called-sample mask. A variant converges when
    no coefficient moves by ``tol`` in an iteration: ``done_out[v]``, its coefficients and the
    inverse information at the last iterate are written. Variants in ``skip``, with a singular
    information or a non-finite step, or still moving after ``max_iter`` are left not done (the
    caller falls back to Firth). Per iteration: one pass for the probabilities, then each entry of
    the information and the score as one dot product over samples.
    """
    q, n = xt.shape
    p = q + 1
    h = np.empty((p, p))
    score = np.empty(p)
    inv = np.empty((p, p))
    work = np.empty((p, p))
    coef = np.empty(p)
    eta = np.empty(n)
    w = np.empty(n)
    r = np.empty(n)
    for v in range(g.shape[0]):
        done_out[v] = False
        if skip[v]:
            continue
        gv, mv = g[v], m[v]
        coef[:] = start
        for iteration in range(max_iter):
            if iteration == 0:  # the null model's probabilities: no exp
                for i in range(n):
                    w[i] = null_mu[i] * (1.0 - null_mu[i]) * mv[i]
                    r[i] = (y[i] - null_mu[i]) * mv[i]
            else:
                for i in range(n):
                    eta[i] = coef[q] * gv[i]
                for a in range(q):
                    c, xa = coef[a], xt[a]
                    for i in range(n):
                        eta[i] += c * xa[i]
                for i in range(n):
                    mu = 1.0 / (1.0 + np.exp(-eta[i]))
                    w[i] = mu * (1.0 - mu) * mv[i]
                    r[i] = (y[i] - mu) * mv[i]
            for a in range(p):
                za = gv if a == q else xt[a]
                score[a] = _dot(za, r)
                for b in range(a + 1):
                    h[a, b] = h[b, a] = _weighted_dot(w, za, gv if b == q else xt[b])
            if not _invert(h, inv, work):
                break
            largest, finite = 0.0, True
            for a in range(p):
                step = 0.0
                for b in range(p):
                    step += inv[a, b] * score[b]
                coef[a] += step
                largest = max(largest, abs(step))
                finite = finite and np.isfinite(coef[a])
            if not finite:
                break
            if largest < tol:
                done_out[v] = True
                coef_out[v] = coef
                hinv_out[v] = inv
                break


@njit(cache=True, nogil=True, fastmath=_REORDER)
def _dot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@njit(cache=True, nogil=True, fastmath=_REORDER)
def _weighted_dot(w, a, b):
    total = 0.0
    for i in range(w.shape[0]):
        total += w[i] * a[i] * b[i]
    return total


@njit(cache=True, nogil=True)
def _invert(h, inv, work):
    """``inv`` = h^-1 by Gauss-Jordan with partial pivoting; False when h is singular or the
    inverse is not finite (as ``numpy.linalg.inv`` failing, or returning infinities)."""
    p = h.shape[0]
    work[:, :] = h
    for i in range(p):
        for j in range(p):
            inv[i, j] = 1.0 if i == j else 0.0
    for c in range(p):
        pivot, largest = c, abs(work[c, c])
        for row in range(c + 1, p):
            if abs(work[row, c]) > largest:
                pivot, largest = row, abs(work[row, c])
        if largest == 0.0 or not np.isfinite(largest):
            return False
        if pivot != c:
            for j in range(p):
                work[c, j], work[pivot, j] = work[pivot, j], work[c, j]
                inv[c, j], inv[pivot, j] = inv[pivot, j], inv[c, j]
        d = work[c, c]
        for j in range(p):
            work[c, j] /= d
            inv[c, j] /= d
        for row in range(p):
            f = work[row, c]
            if row != c and f != 0.0:
                for j in range(p):
                    work[row, j] -= f * work[c, j]
                    inv[row, j] -= f * inv[c, j]
    for i in range(p):
        for j in range(p):
            if not np.isfinite(inv[i, j]):
                return False
    return True

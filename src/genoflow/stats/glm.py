"""Per-variant linear and logistic regression with covariates, vectorised over a block of variants.

The model of each variant ``g`` is ``y ~ 1 + covariates + g`` (``plink2 --glm`` with an additive
ALT-dosage term): linear regression (t test) for a quantitative trait, logistic regression (Wald
z test) for a binary one, with Firth's penalised likelihood where the logistic fit fails.

One module of ~600 lines on purpose: the linear, logistic (IRLS) and Firth fits share the block's design
products, call sums and solver, and each is a few dozen lines on top of them; split apart, every piece
would import the others' private helpers (the Spark scan and the null fits already live elsewhere).

Layering (kernel -> block -> Spark): :func:`prepare_glm` validates the trait and covariates and fits
the null model once (on the driver); :func:`glm_block` tests every variant of a dosage block at
once; :func:`genoflow.stats.spark_glm.glm_scan` streams a genotype table through
:func:`glm_block` partition by partition.

Vectorisation. A block ``G`` (variants x samples) is fitted in NumPy for all its variants
together: each variant has its own (1 + c + 1)-square normal equations (its own samples, see
below), built for the whole block with a few matrix products
(``X' W_v X = W @ (x_i x_i')``, ``X' W_v g_v = (W * G) @ X``) and solved with one batched
``numpy.linalg.solve``. The logistic Newton-Raphson (IRLS) iterates all unconverged variants of a
block together, starting from the null model's coefficients, in single precision until close, then
in double precision to convergence (the float32 iterations cost half as much; the results are the
double-precision maximum).

Matching plink2 2.00a3.5 ``--glm`` (the concordance tests compare with it):

- missing genotypes: the sample is dropped for that variant only (plink2 does not impute hard
  calls), so ``n_obs`` varies by variant; samples with a missing trait or covariate must be
  removed before :func:`prepare_glm` (plink2 removes them for every variant);
- linear: ordinary least squares, ``t = beta / se`` with ``n_obs - (c + 2)`` degrees of freedom;
- logistic: maximum likelihood by Newton-Raphson; where it does not converge (separation, a
  variant seen only in cases...) the Firth-penalised fit replaces it (``firth-fallback``, plink2's
  default), reported with ``firth = True``; the Wald z of the (Firth) estimate and its p-value;
- a variant that is constant among its samples, or whose variance inflation factor with the
  covariates exceeds ``max_vif`` (plink2 ``--vif``, default 50: the variant is almost a linear
  combination of the covariates), gets NaN statistics (plink2 writes NA). plink2 also checks the
  VIF of every covariate with the variant added; this kernel checks the variant's only;
- covariates are standardised internally (plink2 ``--covar-variance-standardize``): the variant's
  estimate does not change, the numerics do.

Effects are per ALT allele (plink2 ``omit-ref``; without it plink2 reports the minor allele, whose
beta has the opposite sign where ALT is the major allele; p-values are the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from genoflow._kernels.glm import (
    BELOW_TWO,
    BELOW_TWO_CASES,
    CARRIER_CASES,
    CARRIERS,
    N_OBS,
    SUM_G,
    SUM_GG,
    call_sums,
    irls_sums,
    negative_eta,
)
from genoflow.genotypes import MISSING
from genoflow.stats.null_model import fit_null_logistic

__all__ = ["FAMILIES", "GlmNull", "prepare_glm", "glm_block", "RESULT_COLUMNS"]

FAMILIES = ("linear", "logistic")

RESULT_COLUMNS = ("n_obs", "alt_freq", "beta", "se", "stat", "p", "neglog10_p", "firth")
"""Keys of :func:`glm_block`'s result, in order."""

# Float64 cells (variants x samples) per chunk of a block: bounds each temporary to ~8 MB.
_MAX_CHUNK_CELLS = 1 << 20
_LN10 = float(np.log(10.0))
# Firth convergence: coefficient steps below this. Where the penalty dominates (singletons) the
# penalised log-likelihood is flat to rounding near its maximum and the steps stall at ~1e-7
# instead of shrinking; 1e-5 is already ten times tighter than R's logistf (xconv = 1e-4).
_FIRTH_TOL = 1e-5
# The single-precision Newton phase hands a variant to the double-precision one once no coefficient
# moves more than this. Newton converges quadratically: after a step of 1e-3 the coefficients are
# within ~1e-6, and one double-precision step still converges every variant (1e-5 cost each variant
# ~0.6 more single-precision iterations for nothing: ooa, 36,731 variants, 3.39 -> 2.76 single
# passes, double passes 1.00 either way, betas within 1e-12; decision 0029).
_SINGLE_TOL = 1e-3
# Up to this many covariates (intercept included) the compiled sums also make X' W X, one dot per
# pair; past it BLAS does. One core, 4,096 ooa8k variants x 7,998 samples, CPU s fused / BLAS:
# q = 3: 0.50 / 0.73, 5: 0.83 / 0.91, 8: 2.07 / 1.50 (1.96 before the compiled sums, at q = 3).
_FUSED_MAX_Q = 5


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == and hash meaningless
class GlmNull:
    """A validated trait + covariate design and its null fit, shared by every variant block.

    Small (samples x covariates), so it is shipped to Spark executors inside the task closure.

    Attributes
    ----------
    family : str
        ``"linear"`` or ``"logistic"``.
    y : numpy.ndarray, shape (n,), float64
        The trait: 0/1 for logistic; for linear, centred (the intercept absorbs the mean, and
        centring avoids cancellation in the residual sum of squares).
    x : numpy.ndarray, shape (n, q), float64
        The design: an intercept column, then the standardised covariates (``q = 1 + c``).
    coef : numpy.ndarray, shape (q,), float64
        Null model coefficients on ``x`` (the logistic Newton start).
    max_vif : float
        See :func:`prepare_glm`.
    """

    family: str
    y: np.ndarray
    x: np.ndarray
    coef: np.ndarray
    max_vif: float

    @property
    def n(self) -> int:
        """Number of samples (columns of every dosage block)."""
        return self.y.shape[0]


def prepare_glm(y, covariates=None, *, family: str, max_vif: float = 50.0) -> GlmNull:
    """Validate a trait and its covariates and fit the null model ``y ~ 1 + covariates``.

    Parameters
    ----------
    y : array-like, shape (n,)
        The trait of the samples to test, in dosage-column order. Logistic: 0/1 (control/case).
        No missing values: drop those samples (and their dosage columns) first.
    covariates : array-like, shape (n, c), optional
        E.g. sex, age and principal components; no intercept column (one is added), no NaN.
    family : {"linear", "logistic"}
    max_vif : float, default 50
        Variance-inflation-factor limit of a variant given the covariates (plink2 ``--vif``).

    Returns
    -------
    GlmNull

    Raises
    ------
    ValueError
        Unknown family; y or covariates of the wrong shape, with NaN, or a non-binary trait for
        logistic; y constant; the design rank-deficient (a covariate constant or collinear with
        others); covariates separating cases from controls (the logistic null fit has no MLE).
    """
    if family not in FAMILIES:
        raise ValueError(f"prepare_glm: family must be one of {FAMILIES}, got {family!r}")
    if not max_vif > 1:
        raise ValueError(f"prepare_glm: max_vif must be > 1, got {max_vif}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError(f"prepare_glm: y must be a 1-D array without NaN, got shape {y.shape}")
    if y.size == 0 or y.min() == y.max():
        raise ValueError("prepare_glm: y has no variation; nothing to test")
    x = _standardised_design(covariates, y.shape[0])
    if family == "logistic":
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("prepare_glm: a logistic trait must be 0/1 (control/case)")
        coef = fit_null_logistic(y, x[:, 1:]).coef
    else:
        y = y - y.mean()
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return GlmNull(family=family, y=y, x=x, coef=coef, max_vif=float(max_vif))


def glm_block(null: GlmNull, dosages, *, firth_fallback: bool = True, max_iter: int = 25,
              tol: float = 1e-6) -> dict[str, np.ndarray]:
    """Test every variant of a dosage block: ``y ~ 1 + covariates + dosage``, one fit per variant.

    Parameters
    ----------
    null : GlmNull
        From :func:`prepare_glm` on the same samples in the same order.
    dosages : numpy.ndarray, shape (n_variants, n), integer (normally int8)
        ALT dosages 0/1/2, ``-1`` missing (dropped per variant). Not modified.
    firth_fallback : bool, default True
        Logistic only: refit with Firth's penalised likelihood where Newton-Raphson does not
        converge (plink2's default ``firth-fallback``). False: NaN statistics there (``no-firth``).
    max_iter : int, default 25
        Newton-Raphson iterations (logistic, and Firth) before a fit is declared not converged.
    tol : float, default 1e-6
        Convergence when no coefficient moves by more than ``tol`` in a double-precision Newton
        iteration (Firth: at least 1e-5, see ``_FIRTH_TOL``). Newton converges quadratically: the
        coefficients are then within ~tol**2 of the maximum (R's ``glm`` stops at a relative
        deviance change of 1e-8, about a 1e-4 step).

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_variants,), keys :data:`RESULT_COLUMNS`
        ``n_obs`` (int64): samples with a called genotype; ``alt_freq`` (float64): ALT allele
        frequency among them; ``beta`` (float64): effect per ALT allele (log odds ratio for
        logistic); ``se``: its standard error; ``stat``: t (linear) or Wald z (logistic);
        ``p``: two-sided p-value; ``neglog10_p``: ``-log10 p``, accurate below 1e-300 too;
        ``firth`` (bool): the Firth fit was used. Statistics are NaN for a variant that cannot be
        tested (constant, too few samples, VIF above ``max_vif``, a fit that failed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 3, size=(2, 200)).astype(np.int8)
    >>> y = 0.5 * g[0] + rng.normal(size=200)
    >>> res = glm_block(prepare_glm(y, rng.normal(size=(200, 1)), family="linear"), g)
    >>> bool(res["p"][0] < 1e-4), bool(res["p"][1] > 1e-4)
    (True, True)
    """
    dosages = np.asarray(dosages)
    if dosages.ndim != 2 or dosages.shape[1] != null.n:
        raise ValueError(f"glm_block: dosages must have shape (n_variants, {null.n}), got {dosages.shape}")
    if not np.issubdtype(dosages.dtype, np.integer):
        raise ValueError(f"glm_block: dosages must be an integer (int8) array, got dtype {dosages.dtype}")
    if max_iter < 1:
        raise ValueError(f"glm_block: max_iter must be >= 1, got {max_iter}")
    rows = max(1, _MAX_CHUNK_CELLS // max(1, null.n))
    designs = (_design(null, np.float64), _design(null, np.float32))
    parts = [_glm_chunk(null, designs, dosages[i : i + rows], firth_fallback, max_iter, tol)
             for i in range(0, max(dosages.shape[0], 1), rows)]
    return {key: np.concatenate([part[key] for part in parts]) for key in RESULT_COLUMNS}


def _glm_chunk(null, designs, dosages, firth_fallback, max_iter, tol) -> dict[str, np.ndarray]:
    """One chunk of `glm_block`; ``designs`` is the covariate design in float64 and float32."""
    if _out_of_range(dosages):
        raise ValueError(f"glm_block: dosages must be {MISSING} (missing), 0, 1 or 2")
    # Row-major int8 whatever the input: a sample subset taken as dosages[:, index] is column-major,
    # and every per-variant pass would then stride across memory (6x slower).
    calls = np.ascontiguousarray(dosages, dtype=np.int8)
    double = designs[0]
    sums = _call_sums(calls, double)
    n_obs = sums.column(N_OBS).astype(np.int64)
    q = null.x.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        alt_freq = sums.column(SUM_G) / (2.0 * n_obs)
    testable = _testable(null, sums, n_obs)
    out = {
        "n_obs": n_obs,
        "alt_freq": alt_freq,
        **{k: np.full(calls.shape[0], np.nan) for k in ("beta", "se", "stat", "p", "neglog10_p")},
        "firth": np.zeros(calls.shape[0], dtype=bool),
    }
    idx = np.flatnonzero(testable & (n_obs > q + 1))
    if idx.size == 0:
        return out
    if idx.size < calls.shape[0]:
        calls, sums = calls[idx], sums.rows(idx)
    if null.family == "linear":
        beta, se, stat, log_p = _linear(null, double.xx, *_float_calls(calls), n_obs[idx])
        firth = np.zeros(idx.size, dtype=bool)
    else:
        beta, se, firth = _logistic(null, designs, calls, sums, firth_fallback, max_iter, tol)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = beta / se
        log_p = np.log(2.0) + special.log_ndtr(-np.abs(stat))
    out["beta"][idx], out["se"][idx], out["stat"][idx] = beta, se, stat
    out["p"][idx] = np.exp(log_p)
    out["neglog10_p"][idx] = -log_p / _LN10
    out["firth"][idx] = firth
    return out


@dataclass(frozen=True)
class _CallSums:
    """`call_sums` of a block: per-variant counts and covariate sums over the called samples."""

    values: np.ndarray  # (v, 7 + q (q + 1) / 2 + q), columns as `call_sums` documents
    q: int

    def rows(self, idx) -> _CallSums:
        return _CallSums(self.values[idx], self.q)

    def column(self, name: int) -> np.ndarray:
        return self.values[:, name]

    def xmx(self) -> np.ndarray:
        """X' M_v X per variant, (v, q, q)."""
        upper = np.triu_indices(self.q)
        pairs = self.values[:, 7 : 7 + len(upper[0])]
        full = np.empty((self.values.shape[0], self.q, self.q))
        full[:, upper[0], upper[1]] = pairs
        full[:, upper[1], upper[0]] = pairs
        return full

    def xg(self) -> np.ndarray:
        """X' g per variant, (v, q)."""
        return self.values[:, -self.q :]


def _call_sums(calls, design) -> _CallSums:
    q, n_pairs = design.xt.shape[0], design.xxt.shape[0]
    values = np.empty((calls.shape[0], 7 + n_pairs + q))
    called = np.empty(calls.shape if design.xx_by_blas else (0, 0))
    call_sums(calls, design.y, design.xt, design.xxt, values, called)
    if design.xx_by_blas:
        values[:, 7 : 7 + n_pairs] = called @ design.xxt.T
    return _CallSums(values, q)


def _float_calls(calls):
    """(g, m) as float64: dosages with a missing call as 0, and the called mask."""
    return np.maximum(calls, 0).astype(np.float64), (calls >= 0).astype(np.float64)


def _out_of_range(dosages: np.ndarray) -> bool:
    """Any dosage other than MISSING (-1), 0, 1, 2."""
    if dosages.dtype == np.int8:  # one pass: -1..2 plus one is 0..3 as (wrapping) unsigned bytes
        return bool(((dosages.view(np.uint8) + np.uint8(1)) > 3).any())
    return bool(((dosages < MISSING) | (dosages > 2)).any())


def _testable(null, sums: _CallSums, n_obs) -> np.ndarray:
    """Variants that vary among their samples and whose VIF given the covariates is <= max_vif.

    VIF = SS(g) / RSS(g ~ covariates) over the variant's samples (unweighted, as plink2).
    """
    q = null.x.shape[1]
    gg = sums.column(SUM_GG)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = gg - sums.column(SUM_G) ** 2 / n_obs
        rss = _residual_ss(sums.xmx().reshape(-1, q * q), sums.xg(), gg, q)
        vif = ss / rss
    return (n_obs > 0) & (ss > 1e-12 * np.maximum(n_obs, 1)) & (rss > 0) & (vif <= null.max_vif)


def _linear(null, xx, g, m, n_obs):
    """OLS of y on [X, g] per variant by Frisch-Waugh: (beta, se, t, log p), each (v,)."""
    q = null.x.shape[1]
    a = (m @ xx).reshape(-1, q, q)  # X' M_v X
    xg = g @ null.x  # X' g_v (missing g are 0)
    xy = m @ (null.x * null.y[:, None])  # X' M_v y
    ainv = np.linalg.solve(a, np.stack([xg, xy], axis=2))  # (v, q, 2)
    ainv_g, ainv_y = ainv[..., 0], ainv[..., 1]
    s_gg = (g * g).sum(axis=1) - np.einsum("vq,vq->v", xg, ainv_g)  # residual SS of g ~ X
    s_gy = g @ null.y - np.einsum("vq,vq->v", xg, ainv_y)
    s_yy = m @ (null.y * null.y) - np.einsum("vq,vq->v", xy, ainv_y)
    beta = s_gy / s_gg
    df = n_obs - q - 1
    rss = np.maximum(s_yy - beta * s_gy, 0.0)
    se = np.sqrt(rss / df / s_gg)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    from scipy import stats  # here, not at import: ~0.4 s that the logistic scan's workers skip

    log_p = np.log(2.0) + stats.t.logsf(np.abs(t), df)
    return beta, se, t, log_p


def _logistic(null, designs, calls, sums: _CallSums, firth_fallback, max_iter, tol):
    """Newton-Raphson per variant, Firth where it fails: (beta, se, firth), each (v,).

    Single precision first, to within ``_SINGLE_TOL``, then double precision to ``tol``: a float32
    iteration moves half the bytes and its exp costs a third, and its rounding (~1e-7 on the
    coefficients: the score's rounding error is divided by an information that grows with n) is
    within Newton's quadratic reach, so one double-precision step then converges. The
    single-precision phase can only send a variant on, never decide its result.
    """
    q = null.x.shape[1]
    start = np.concatenate([null.coef, [0.0]])
    coef = np.tile(start, (calls.shape[0], 1))
    hinv = np.full((calls.shape[0], q + 1, q + 1), np.nan)
    done = np.zeros(calls.shape[0], dtype=bool)
    # Where the dosage alone separates cases from controls the MLE does not exist and Newton-Raphson
    # would only walk beta towards infinity for max_iter iterations: go to Firth at once.
    rows = np.flatnonzero(~_separated_by_dosage(sums))
    fitted = calls if rows.size == calls.shape[0] else calls[rows]
    # Every fit starts from the null model (dosage coefficient 0), whose probabilities are the same
    # for all variants: the first iteration needs no per-variant exp.
    null_e = np.exp(-(null.x @ null.coef)).astype(np.float32)
    double, single = designs
    near, _, unsettled = _newton(single, fitted, coef, rows, max_iter, _SINGLE_TOL, null_e=null_e)
    # Every row goes on to double precision; one that failed in single precision starts over.
    coef[np.setdiff1d(rows, np.concatenate([near, unsettled]))] = start
    converged, inv, _ = _newton(double, fitted, coef, rows, max_iter, tol)
    hinv[converged], done[converged] = inv, True
    firth = ~done
    beta = coef[:, q].copy()
    if firth.any():
        if firth_fallback:
            g, m = _float_calls(calls[firth])
            beta[firth], hinv[firth] = _firth(null, double.xx, g, m, max_iter, max(tol, _FIRTH_TOL))
        else:
            beta[firth] = np.nan
    with np.errstate(invalid="ignore"):
        se = np.sqrt(hinv[:, q, q])
    return beta, se, firth


@dataclass(frozen=True)
class _Design:
    """The covariate design in one precision, laid out for `irls_sums`."""

    x: np.ndarray  # (n, q)
    y: np.ndarray  # (n,)
    xt: np.ndarray  # (q, n)
    xxt: np.ndarray  # (q (q + 1) / 2, n): x_k x_l for k <= l
    xx: np.ndarray  # (n, q * q): the row outer products x_i x_i'

    @property
    def xx_by_blas(self) -> bool:
        """Whether X' W X goes through BLAS rather than a dot per covariate pair."""
        return self.x.shape[1] > _FUSED_MAX_Q


def _design(null, dtype) -> _Design:
    x = null.x.astype(dtype)
    q = x.shape[1]
    pairs = [(k, k2) for k in range(q) for k2 in range(k, q)]
    xxt = np.stack([x[:, k] * x[:, k2] for k, k2 in pairs]) if pairs else np.empty((0, x.shape[0]), dtype)
    return _Design(x=x, y=null.y.astype(dtype), xt=np.ascontiguousarray(x.T), xxt=xxt, xx=_outer_rows(x))


def _newton(design: _Design, dosages, coef, rows, max_iter, tol, null_e=None):
    """Newton-Raphson (IRLS) on the variants ``rows`` of ``coef`` (updated in place), in the precision
    of ``design``; ``dosages`` (int8) are those rows'.

    ``null_e``: ``exp(-eta)`` at ``coef`` when every row is at the null start (the same for all).
    Returns (rows converged: no coefficient moved more than ``tol``, their inverse information at the
    last step (float64), rows neither converged nor failed after ``max_iter``); a singular
    information or a non-finite coefficient fails a row.
    """
    q = design.x.shape[1]
    finished_rows, finished_inv = [np.empty(0, dtype=np.int64)], [np.empty((0, q + 1, q + 1))]
    for iteration in range(max_iter):
        if iteration == 0 and null_e is not None:
            e = np.broadcast_to(null_e, dosages.shape)
        else:
            e = np.empty(dosages.shape, dtype=design.x.dtype)
            negative_eta(coef[rows], dosages, design.xt, e)
            np.exp(e, out=e)  # numpy's SIMD exp; inf for eta < -88 (float32), where mu = 0 as it should be
        h = np.empty((rows.size, q + 1, q + 1), dtype=design.x.dtype)
        score = np.empty((rows.size, q + 1), dtype=design.x.dtype)
        weights = np.empty(dosages.shape if design.xx_by_blas else (0, 0), dtype=design.x.dtype)
        irls_sums(e, dosages, design.y, design.xt, design.xxt, h, score, weights)
        if design.xx_by_blas:
            h[:, :q, :q] = (weights @ design.xx).reshape(-1, q, q)
        step, inv, ok = _solve(h.astype(np.float64, copy=False), score.astype(np.float64, copy=False))
        coef[rows] += np.where(ok[:, None], step, 0.0)
        finished = ok & (np.abs(step).max(axis=1) < tol)
        finished_rows.append(rows[finished])
        finished_inv.append(inv[finished])
        going = ~finished & ok & np.isfinite(coef[rows]).all(axis=1)
        if not going.all():
            rows, dosages = rows[going], dosages[going]
        if rows.size == 0:
            break
    return np.concatenate(finished_rows), np.concatenate(finished_inv), rows


def _separated_by_dosage(sums: _CallSums) -> np.ndarray:
    """Variants whose carriers (or whose samples not homozygous ALT) are all cases or all controls.

    Either is a quasi-complete separation along the dosage (or along 2 * intercept - dosage), so the
    logistic MLE does not exist. Shape (v,), bool.
    """
    carriers, carrier_cases = sums.column(CARRIERS), sums.column(CARRIER_CASES)
    below, below_cases = sums.column(BELOW_TWO), sums.column(BELOW_TWO_CASES)
    return (carrier_cases == 0) | (carrier_cases == carriers) | (below_cases == 0) | (below_cases == below)


def _firth(null, xx, g, m, max_iter, tol):
    """Firth-penalised logistic fits (Heinze & Schemper 2002), step-halved on the penalised
    log-likelihood: (beta, inverse information), NaN where it also fails."""
    q = null.x.shape[1]
    v = g.shape[0]
    coef = np.tile(np.concatenate([null.coef, [0.0]]), (v, 1))
    penalised, mu, w, info = _firth_state(null, xx, coef, g, m)
    converged = np.zeros(v, dtype=bool)
    active = np.arange(v)
    for _ in range(max(max_iter, 50)):
        c, ga, ma = coef[active], g[active], m[active]
        _, inv, ok = _solve(info[active], np.zeros((active.size, q + 1)))
        # Firth's modified score: X'(y - mu + h (1/2 - mu)), h the leverages of W^1/2 X.
        mu_a = mu[active]
        lev = _leverages(null, ga, w[active], inv)
        step = np.einsum("vij,vj->vi", inv, _score(null.x, ga, (null.y - mu_a + lev * (0.5 - mu_a)) * ma))
        new = list(_firth_state(null, xx, c + step, ga, ma))
        # Fisher scoring overshoots where the penalty dominates (rare variants: about twice the
        # step, so it oscillates): halve the step while that raises the penalised log-likelihood, or
        # while the step lowers it (at most 12 halvings).
        current = penalised[active]
        cand = np.arange(active.size)
        for _ in range(12):
            half = _firth_state(null, xx, c[cand] + step[cand] / 2.0, ga[cand], ma[cand])
            halve = (half[0] > new[0][cand]) | ~(new[0][cand] >= current[cand] - 1e-12 * np.abs(current[cand]))
            if not halve.any():
                break
            cand = cand[halve]
            step[cand] /= 2.0
            for k in range(4):
                new[k][cand] = half[k][halve]
        coef[active] += step
        penalised[active], mu[active], w[active], info[active] = new
        finished = ok & (np.abs(step).max(axis=1) < tol)
        converged[active[finished]] = True
        active = active[~finished & ok & np.isfinite(coef[active]).all(axis=1)]
        if active.size == 0:
            break
    _, hinv, ok = _solve(info, np.zeros((v, q + 1)))
    good = converged & ok
    beta = np.where(good, coef[:, q], np.nan)
    hinv[~good] = np.nan
    return beta, hinv


def _firth_state(null, xx, coef, g, m):
    """At ``coef`` (v, q + 1): penalised log-likelihood (log-likelihood + 1/2 log det information,
    -inf where singular), mu, weights and the information, for each variant."""
    q = null.x.shape[1]
    eta = coef[:, :q] @ null.x.T + coef[:, q:] * g
    # log(1 + e^eta) with one exp and one log1p per cell; mu from the same exp.
    e = np.exp(-np.abs(eta))
    softplus = np.maximum(eta, 0.0) + np.log1p(e)
    ll = (m * (null.y * eta - softplus)).sum(axis=1)
    mu = np.where(eta >= 0, 1.0, e) / (1.0 + e)
    w = mu * (1.0 - mu) * m
    info = _information(null.x, xx, g, w)
    sign, logdet = np.linalg.slogdet(info)
    return np.where(sign > 0, ll + 0.5 * logdet, -np.inf), mu, w, info


def _information(x, xx, g, w):
    """Per-variant Fisher information [X, g]' W_v [X, g], shape (v, q + 1, q + 1), in w's precision."""
    q = x.shape[1]
    wg = w * g
    h = np.empty((g.shape[0], q + 1, q + 1), dtype=w.dtype)
    h[:, :q, :q] = (w @ xx).reshape(-1, q, q)
    h[:, :q, q] = h[:, q, :q] = wg @ x
    h[:, q, q] = np.einsum("vn,vn->v", wg, g)
    return h


def _score(x, g, r):
    """[X, g]' r per variant, shape (v, q + 1), for residuals r (v, n)."""
    return np.concatenate([r @ x, np.einsum("vn,vn->v", r, g)[:, None]], axis=1)


def _solve(h, rhs):
    """Batched solve and inverse of information matrices; a singular one gives ok = False."""
    eye = np.broadcast_to(np.eye(h.shape[1]), h.shape)
    ok = np.isfinite(h).all(axis=(1, 2))
    inv = np.full(h.shape, np.nan)
    try:
        inv[ok] = np.linalg.inv(h[ok])
    except np.linalg.LinAlgError:  # rare: invert one by one to isolate the singular ones
        for i in np.flatnonzero(ok):
            try:
                inv[i] = np.linalg.inv(h[i])
            except np.linalg.LinAlgError:
                ok[i] = False
    ok &= np.isfinite(inv).all(axis=(1, 2))
    inv = np.where(ok[:, None, None], inv, eye)
    return np.einsum("vij,vj->vi", inv, rhs), inv, ok


def _leverages(null, g, w, inv):
    """Diagonal of W^1/2 Z (Z'WZ)^-1 Z' W^1/2 per variant, shape (v, n), Z = [X, g]."""
    q = null.x.shape[1]
    a, b, d = inv[:, :q, :q], inv[:, :q, q], inv[:, q, q]
    xa = ((null.x @ a) * null.x).sum(axis=2)  # x_i' A_v x_i for every variant v and sample i
    xb = b @ null.x.T
    return w * (xa + 2.0 * xb * g + d[:, None] * g * g)


def _residual_ss(a_flat, xg, gg, q):
    """Residual sum of squares of g regressed on X per variant, from X'M_vX (flat), X'g, g'g."""
    a = a_flat.reshape(-1, q, q)
    try:
        sol = np.linalg.solve(a, xg[..., None])[..., 0]
    except np.linalg.LinAlgError:
        sol = np.stack([np.linalg.lstsq(ai, bi, rcond=None)[0] for ai, bi in zip(a, xg, strict=True)])
    return gg - np.einsum("vq,vq->v", xg, sol)


def _outer_rows(x):
    """Row-wise outer products x_i x_i', flattened: shape (n, q * q)."""
    return (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)


def _standardised_design(covariates, n: int) -> np.ndarray:
    """``[1, (covariates - mean) / sd]``, shape (n, 1 + c), after checks."""
    cov = np.empty((n, 0)) if covariates is None else np.asarray(covariates, dtype=np.float64)
    if cov.ndim == 1:
        cov = cov[:, None]
    if cov.ndim != 2 or cov.shape[0] != n:
        raise ValueError(f"prepare_glm: covariates must have shape ({n}, n_covariates), got {cov.shape}")
    if not np.isfinite(cov).all():
        raise ValueError("prepare_glm: covariates contain NaN or infinite values; drop or impute those samples")
    sd = cov.std(axis=0)
    if (sd == 0).any():
        raise ValueError(f"prepare_glm: covariate column(s) {np.flatnonzero(sd == 0).tolist()} are constant")
    x = np.column_stack([np.ones(n), (cov - cov.mean(axis=0)) / sd])
    if n <= x.shape[1] + 1 or np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(
            f"prepare_glm: the design (intercept + {cov.shape[1]} covariates, {n} samples) is rank-deficient: "
            "a covariate is a linear combination of others, or there are too few samples"
        )
    return x

"""Linear genotype scores: one formula for PC projections, polygenic scores and gene burdens.

Every such feature is ``f = offset + sum_j (x_j - 2 p_j) * w_j`` over its variants, ``x_j`` the ALT
allele count and ``p_j`` the ALT frequency, where a missing call contributes 0 (it is imputed by
its mean ``2 p_j``). With that one form:

- a principal component is a projection: ``w_j = loading_j / sqrt(2 p_j (1 - p_j))``, offset 0;
- a polygenic score ``sum_j beta_j x_j`` (plink2 ``--score`` SCORE_SUM with mean imputation):
  ``w_j = beta_j``, offset ``sum_j 2 p_j beta_j``;
- a burden (minor alleles over a gene's rare variants): ``w_j = +1`` when ALT is the minor allele
  and ``-1`` otherwise, offset ``sum_j 2 maf_j``.

The features job computes the scores of every patient in the Spark executors (:func:`spark_scores`:
each partition multiplies its block of variants, ``treeReduce`` sums the (n, F) partials), and the
model API computes one patient's with :meth:`ScoreBlock.apply`, from the same arrays saved in the
feature spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from genoflow.genotypes import BLOCK_BYTES, MISSING, rows_per_block, stack_dosages, variant_label

__all__ = ["ScoreBlock", "spark_scores", "pca_block", "prs_block", "burden_block", "threshold_label", "burden_name"]


def threshold_label(threshold: float) -> str:
    """A p-value threshold as a column-safe label (Spark reads '.' in a column name as a field):
    1e-4 -> ``1em4``, 0.05 -> ``5em2``, 1 -> ``1e0``."""
    mantissa, exponent = f"{threshold:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", "m")


def burden_name(gene: str, prefix: str = "burden") -> str:
    """The feature column of a gene's burden, e.g. ``burden_GF01`` (characters other than letters,
    digits and '_' become '_')."""
    return f"{prefix}_" + re.sub(r"[^A-Za-z0-9_]", "_", gene)


@dataclass
class ScoreBlock:
    """A group of linear genotype scores over one variant list.

    Attributes
    ----------
    kind : str
        ``pca``, ``prs`` or ``burden`` (what the scores are, for people and reports).
    names : list of str
        The F feature columns.
    variants : list of [contig, pos, ref, alt]
        The V variants, in weight-row order.
    alt_freq : list of float
        ALT frequency of each variant (its missing calls are imputed with ``2 p``).
    weights : list of list of float
        (V, F) weights.
    offset : list of float
        (F,) constants.
    meta : dict
        What the weights came from (loadings and eigenvalues, p-value thresholds and p-values,
        gene names), kept for people; ``apply`` does not read it.
    """

    kind: str
    names: list[str]
    variants: list[list]
    alt_freq: list[float]
    weights: list[list[float]]
    offset: list[float]
    meta: dict = field(default_factory=dict)

    @property
    def variant_columns(self) -> list[str]:
        return [variant_label(c, int(p), r, a) for c, p, r, a in self.variants]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(center (V,), weights (V, F), offset (F,)) as float64 (built once: the lists are not changed)."""
        if getattr(self, "_arrays", None) is None:
            w = np.asarray(self.weights, dtype=np.float64).reshape(len(self.variants), len(self.names))
            self._arrays = (2.0 * np.asarray(self.alt_freq, dtype=np.float64), w,
                            np.asarray(self.offset, dtype=np.float64))
        return self._arrays

    def apply(self, dosages: np.ndarray) -> np.ndarray:
        """Scores of patients from their dosages, shape (n, V) float (NaN or negative = missing); (n, F)."""
        center, w, offset = self.arrays()
        x = np.asarray(dosages, dtype=np.float64)
        deviation = np.where(np.isfinite(x) & (x >= 0), x - center, 0.0)
        return offset + deviation @ w

    def subset_names(self, names: list[str]) -> ScoreBlock:
        """The block restricted to some of its scores (variants no score uses are dropped)."""
        cols = [self.names.index(n) for n in names]
        w = self.arrays()[1][:, cols]
        used = np.flatnonzero(np.abs(w).sum(axis=1) > 0)
        return ScoreBlock(self.kind, list(names), [self.variants[i] for i in used],
                          [self.alt_freq[i] for i in used], w[used].tolist(),
                          [self.offset[c] for c in cols], dict(self.meta))


def _keys(frame) -> list[list]:
    return [[c, int(p), r, a] for c, p, r, a in zip(frame["contig"], frame["pos"], frame["ref"], frame["alt"],
                                                   strict=True)]


def pca_block(frame, eigenvalues: np.ndarray, names: list[str]) -> ScoreBlock:
    """PC projection scores from variant rows (contig, pos, ref, alt, alt_af, loadings (k,))."""
    p = frame["alt_af"].to_numpy(dtype=np.float64)
    v = np.vstack(frame["loadings"].to_list()) if len(frame) else np.empty((0, len(names)))
    w = v / np.sqrt(2.0 * p * (1.0 - p))[:, None]
    return ScoreBlock("pca", names, _keys(frame), p.tolist(), w.tolist(), [0.0] * len(names),
                      {"eigenvalues": [float(e) for e in eigenvalues], "loadings": v.tolist()})


def prs_block(frame, thresholds: list[float], prefix: str) -> ScoreBlock:
    """P+T polygenic scores from clumped index variants (contig, pos, ref, alt, alt_af, beta, p).

    One score per p-value threshold ``T``: the variants with ``p <= T`` and their betas.
    """
    p_freq = frame["alt_af"].to_numpy(dtype=np.float64)
    beta = frame["beta"].to_numpy(dtype=np.float64)
    pvalue = frame["p"].to_numpy(dtype=np.float64)
    w = np.column_stack([np.where(pvalue <= t, beta, 0.0) for t in thresholds]) if thresholds else \
        np.empty((len(frame), 0))
    names = [f"{prefix}_p{threshold_label(t)}" for t in thresholds]
    offset = (2.0 * p_freq) @ w
    return ScoreBlock("prs", names, _keys(frame), p_freq.tolist(), w.tolist(), offset.tolist(),
                      {"thresholds": list(thresholds), "p": pvalue.tolist(), "beta": beta.tolist()})


def burden_block(frame, genes: list[str], prefix: str = "burden") -> ScoreBlock:
    """Minor-allele counts per gene from rare variants (contig, pos, ref, alt, alt_af, gene)."""
    p = frame["alt_af"].to_numpy(dtype=np.float64)
    column = {g: i for i, g in enumerate(genes)}
    w = np.zeros((len(frame), len(genes)))
    rows = np.flatnonzero(frame["gene"].isin(column).to_numpy())
    cols = np.asarray([column[g] for g in frame["gene"].to_numpy()[rows]], dtype=np.int64)
    w[rows, cols] = np.where(p[rows] <= 0.5, 1.0, -1.0)
    minor_expected = 2.0 * np.minimum(p, 1.0 - p)
    offset = minor_expected @ (w != 0)
    keep = rows
    return ScoreBlock("burden", [burden_name(g, prefix) for g in genes], [_keys(frame)[i] for i in keep],
                      p[keep].tolist(), w[keep].tolist(), offset.tolist(), {"genes": list(genes)})


def spark_scores(variants, sample_index: np.ndarray, n_scores: int, *, budget: int = BLOCK_BYTES) -> np.ndarray:
    """Spark: ``offset``-free scores ``sum_j (x_j - 2 p_j) w_j`` of every sample; (n, F) float64.

    ``variants`` has columns dosages (binary), alt_af (double), weights (array<double>, length F).
    Each partition multiplies blocks of variants whose float64 deviations fit ``budget`` bytes
    (:func:`genoflow.genotypes.rows_per_block`); ``treeReduce`` sums the partials in the executors.
    """
    index = np.asarray(sample_index, dtype=np.int64)
    n = index.size
    block_rows = rows_per_block(n, 8, budget)

    def partial(rows):
        total = np.zeros((n, n_scores))
        packed, freq, weights = [], [], []

        def flush():
            x = stack_dosages(packed, index)
            deviation = np.where(x == MISSING, 0.0, x - 2.0 * np.asarray(freq)[:, None])
            return deviation.T @ np.asarray(weights, dtype=np.float64).reshape(len(packed), n_scores)

        for row in rows:
            packed.append(row["dosages"])
            freq.append(row["alt_af"])
            weights.append(row["weights"])
            if len(packed) == block_rows:
                total += flush()
                packed, freq, weights = [], [], []
        if packed:
            total += flush()
        yield total

    return variants.select("dosages", "alt_af", "weights").rdd.mapPartitions(partial).treeReduce(np.add)

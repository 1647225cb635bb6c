"""What the features step learns from labels, learnt once per learning set (decision 0011).

A *learning set* is a group of labelled training patients that the label-driven statistics are
fitted on: the whole training split (``final``, whose features the promoted model uses) and, for
nested cross-validation, the training split less each CV fold (``cv0``, ``cv1``...). Per set: the
association scan, LD clumping, the top-K variants, the polygenic-score weights (with ``prs_folds``
>= 2, cross-fitted for the set's own patients over inner folds) and the burden genes. A fold's
validation patients are then scored by weights that never saw their labels, exactly as test
patients are scored by the final set's, so the CV estimate is an honest one.

Cost: every scan of a target (sets x inner folds) runs in one pass over the genotype table
(:func:`genoflow.stats.spark_glm.glm_scans`), every clumping in one Spark job
(:func:`genoflow.features.prs.clump_scans`) and every polygenic score in one more
(:func:`score_blocks`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from genoflow.features.scores import ScoreBlock
from genoflow.genotypes import BLOCK_BYTES, arrow_batch_conf

__all__ = ["LearningSet", "Learnt", "learning_sets", "learn_target", "score_blocks", "cross_fitted_prs",
           "clumped_index", "clumped_indexes", "top_variants", "standardise", "FINAL"]

log = logging.getLogger(__name__)

FINAL = "final"
_KEYS = ["contig", "pos", "ref", "alt"]


@dataclass(frozen=True)
class LearningSet:
    """Rows are positions in the features step's sample frame."""

    name: str
    fit: np.ndarray  # the labelled patients the statistics are learnt on
    scored: np.ndarray  # the patients whose features this set computes
    inner: np.ndarray | None  # inner fold of each fit row for cross-fitted scores; None: in-sample scores

    @property
    def validate(self) -> np.ndarray:
        """Scored rows the set did not learn from (a CV fold's validation patients)."""
        return np.setdiff1d(self.scored, self.fit)


@dataclass
class Learnt:
    """One learning set's label-driven choices."""

    selected: list[tuple]  # top-K variants (contig, pos, ref, alt, gene, p), smallest p first
    prs: ScoreBlock  # weights from all of the set's fit rows
    inner_prs: list[ScoreBlock]  # weights of each inner fold's complement (cross-fitted scores)
    genes: list[str]  # burden genes
    n_index: int  # clump index variants
    n_ld_samples: int = 0  # patients the final scan's clumping measured r² on (features.ld_max_samples)


def learning_sets(samples, labelled: np.ndarray, target: str, binary: bool, f: dict, cv_folds: int) -> list:
    """The final set (every labelled training patient; scores every patient), then one per CV fold
    (scores every labelled training patient, learns from the other folds)."""
    from genoflow.features.split import stratified_folds

    seed = int(f["split_seed"])
    pids = samples["pid"].to_numpy()
    labels = samples[target].to_numpy()

    def folds(rows: np.ndarray, k: int) -> np.ndarray:
        strata = labels[rows] if binary else np.zeros(len(rows))
        return stratified_folds(pids[rows].tolist(), strata, k=k, seed=seed)

    prs_folds = int(f.get("prs_folds") or 0)

    def inner(rows: np.ndarray) -> np.ndarray | None:
        return folds(rows, prs_folds) if prs_folds >= 2 and f["prs_thresholds"] else None

    everyone = np.arange(len(samples))
    sets = [LearningSet(FINAL, labelled, everyone, inner(labelled))]
    outer = folds(labelled, cv_folds)
    for k in range(cv_folds):
        fit = labelled[outer != k]
        sets.append(LearningSet(f"cv{k}", fit, labelled, inner(fit)))
    return sets


def scan_fits(sets: list[LearningSet]) -> list[tuple[int, int, np.ndarray]]:
    """Every scan the sets need: (set position, inner fold or -1 for the whole fit, its rows)."""
    fits = []
    for s, ls in enumerate(sets):
        fits.append((s, -1, ls.fit))
        if ls.inner is not None:
            fits += [(s, j, ls.fit[ls.inner != j]) for j in range(int(ls.inner.max()) + 1)]
    return fits


def learn_target(spark, genotypes, samples, sets: list[LearningSet], target: str, binary: bool,
                 covariates: np.ndarray, burden_values: np.ndarray, all_genes: list[str], f: dict,
                 scans_uri: str, budget: int = BLOCK_BYTES, *, scanned=None) -> tuple[list[Learnt], object]:
    """Learn every set's choices for ``target``; returns them and the scans (Spark DataFrame with a
    ``scan`` column, written to ``scans_uri``; scan 0 is the final set's whole-fit scan). ``budget``:
    bytes of one block of genotype rows (:func:`genoflow.genotypes.rows_per_block`). ``scanned``: the
    rows of ``genotypes`` as the scans read them (a DataFrame or a
    :class:`~genoflow.storage.parts.ParquetFolder`), default ``genotypes``."""
    from genoflow.features.ld import ld_samples
    from genoflow.spark import session_conf
    from genoflow.stats.spark_glm import glm_scans

    fits = scan_fits(sets)
    index = samples["sample_index"].to_numpy()
    y = samples[target].to_numpy(dtype=float)
    design = [(y[rows], standardise(covariates[rows]), index[rows]) for _, _, rows in fits]
    # Arrow batches of packed dosages (one byte per sample of the table); glm_scans cuts them into
    # blocks for its float64 arrays.
    with session_conf(spark, arrow_batch_conf(len(samples), 1, budget)):
        glm_scans(genotypes if scanned is None else scanned, design, family="logistic" if binary else "linear",
                  key_columns=(*_KEYS, "gene"), budget=budget).write.parquet(scans_uri)
    scans = spark.read.parquet(scans_uri)

    by_scan = clumped_indexes(scans, genotypes, {i: index[rows] for i, (_, _, rows) in enumerate(fits)}, f,
                              budget=budget, table_samples=len(samples))

    learnt = []
    for s, ls in enumerate(sets):
        mine = [i for i, (owner, _, _) in enumerate(fits) if owner == s]
        whole, inner = mine[0], mine[1:]
        learnt.append(Learnt(
            selected=top_variants(scans.filter(f"scan = {whole}"), by_scan[whole], f),
            prs=_prs(by_scan[whole], f, target),
            inner_prs=[_prs(by_scan[i], f, target) for i in inner],
            genes=_burden_genes(samples, ls.fit, target, binary, covariates, burden_values, all_genes, f),
            n_index=len(by_scan[whole]),
            n_ld_samples=len(ld_samples(index[fits[whole][2]], f)),
        ))
    return learnt, scans


# Clumping threshold when no polygenic score sets one (the index variants still pick the top K).
_CLUMP_P1_WITHOUT_SCORES = 0.05


def clumped_indexes(scans, genotypes, sample_indexes: dict[int, np.ndarray], f: dict, *, budget: int = BLOCK_BYTES,
                    table_samples: int | None = None) -> dict:
    """Each scan clumped like plink --clump (LD on its own fit patients, at most ``f["ld_max_samples"]`` of
    them: :func:`genoflow.features.ld.ld_samples`): one index variant per clump, with p <= the largest score
    threshold, as pandas (contig, pos, ref, alt, beta, p, clump_size, gene, alt_af) in genome order, keyed
    by scan. ``table_samples``: the genotype table's width (default: the largest index + 1), which sizes the
    Arrow batches that cut the dosages down."""
    from genoflow.features.ld import ld_samples
    from genoflow.features.prs import clump_scans
    from genoflow.spark import session_conf

    p1 = max((float(t) for t in f["prs_thresholds"]), default=_CLUMP_P1_WITHOUT_SCORES)
    ld = {s: ld_samples(index, f) for s, index in sample_indexes.items()}
    log.info("clumping: LD on %s patients per scan", sorted({len(index) for index in ld.values()}))
    clumped = clump_scans(scans.filter(f"p <= {p1!r}"), genotypes, sample_indexes=ld,
                          p1=p1, p2=float(f["clump_p2"]), r2=float(f["clump_r2"]), kb=float(f["clump_kb"]))
    width = table_samples or max((int(index.max()) + 1 for index in sample_indexes.values() if index.size), default=1)
    with session_conf(scans.sparkSession, arrow_batch_conf(width, 1, budget)):
        rows = clumped.join(genotypes.select(*_KEYS, "gene", "alt_af"), _KEYS).toPandas()
    rows = rows.sort_values(["scan", *_KEYS], ignore_index=True)
    return {s: rows[rows["scan"] == s].drop(columns="scan").reset_index(drop=True) for s in sample_indexes}


def clumped_index(scan, genotypes, sample_index: np.ndarray, f: dict):
    """:func:`clumped_indexes` of one scan (a DataFrame without a ``scan`` column)."""
    from pyspark.sql import functions as F

    return clumped_indexes(scan.withColumn("scan", F.lit(0)), genotypes, {0: sample_index}, f)[0]


def top_variants(scan, index, f: dict) -> list[tuple]:
    """The K variants that become model features: (contig, pos, ref, alt, gene, p), smallest p first.

    With ``top_k_independent`` (the default) they are the K strongest clump index variants (``index``,
    from :func:`clumped_index`), one per LD clump; otherwise the K smallest p-values of ``scan``, which
    around a strong locus are mostly its LD proxies (on the three-population cohort the 40 smallest
    fell in 4 loci).
    """
    k = int(f["top_k"])
    if not f.get("top_k_independent", True):
        top = scan.orderBy("p", "contig", "pos").limit(k).select(*_KEYS, "gene", "p")
        return [tuple(r) for r in top.collect()]
    top = index.sort_values(["p", "contig", "pos"], kind="stable").head(k)
    return [(str(r.contig), int(r.pos), str(r.ref), str(r.alt), None if r.gene is None else str(r.gene), float(r.p))
            for r in top.itertuples(index=False)]


def _prs(index, f: dict, target: str) -> ScoreBlock:
    from genoflow.features.scores import prs_block

    thresholds = sorted(float(t) for t in f["prs_thresholds"])
    # Switched off (no thresholds): an empty block, which reads no variant.
    return prs_block(index if thresholds else index.iloc[:0], thresholds, f"prs_{target}")


def _burden_genes(samples, rows, target: str, binary: bool, covariates, burden_values, genes: list[str],
                  f: dict) -> list[str]:
    """The ``burden_top_k`` genes whose burden (the set's fit rows) goes most with the trait (p < 1)."""
    from genoflow.features.association import fit_null_linear, fit_null_logistic
    from genoflow.features.burden import score_test_values

    k = int(f["burden_top_k"])
    if not genes or k <= 0:
        return []
    fit_null = fit_null_logistic if binary else fit_null_linear
    try:
        null = fit_null(samples[target].to_numpy(dtype=float)[rows], standardise(covariates[rows]))
    except ValueError as err:  # e.g. PCs that separate a small fold's classes: no gene can be ranked
        log.warning("%s: no burden genes for a set of %d patients: %s", target, len(rows), err)
        return []
    p = score_test_values(null, burden_values[rows].T)
    order = sorted(range(len(genes)), key=lambda i: (p[i], genes[i]))
    return [genes[i] for i in order[:k] if p[i] < 1.0]


def cross_fitted_prs(ls: LearningSet, learnt: Learnt, values: dict[int, np.ndarray]) -> np.ndarray:
    """The set's polygenic scores of every sample (rows of the sample frame): the whole-fit weights,
    except that each fit row in inner fold j takes the weights learnt without fold j."""
    out = values[id(learnt.prs)].copy()
    if ls.inner is not None:
        for j, block in enumerate(learnt.inner_prs):
            rows = ls.fit[ls.inner == j]
            out[rows] = values[id(block)][rows]
    return out


def score_blocks(spark, genotypes, sample_index: np.ndarray, blocks: list[ScoreBlock],
                 budget: int = BLOCK_BYTES) -> dict[int, np.ndarray]:
    """Every block's scores of the samples ``sample_index`` (offsets included), in one Spark pass:
    the blocks' variants are joined once, each block's weights in its own columns. Keyed by id(block)."""
    import pandas as pd

    from genoflow.features.scores import spark_scores

    width = sum(len(b.names) for b in blocks)
    rows: dict[tuple, tuple[float, np.ndarray]] = {}
    start = 0
    for block in blocks:
        for variant, af, weights in zip(block.variants, block.alt_freq, block.weights, strict=True):
            key = (str(variant[0]), int(variant[1]), str(variant[2]), str(variant[3]))
            _, w = rows.setdefault(key, (float(af), np.zeros(width)))
            w[start:start + len(block.names)] = weights
        start += len(block.names)
    n = len(sample_index)
    total = np.zeros((n, width))
    if rows:
        weights = spark.createDataFrame(pd.DataFrame({
            "contig": [k[0] for k in rows], "pos": [k[1] for k in rows], "ref": [k[2] for k in rows],
            "alt": [k[3] for k in rows], "block_af": [v[0] for v in rows.values()],
            "weights": [v[1].tolist() for v in rows.values()]}),
            "contig string, pos long, ref string, alt string, block_af double, weights array<double>")
        joined = genotypes.select(*_KEYS, "dosages").join(weights, _KEYS).withColumnRenamed("block_af", "alt_af")
        total = spark_scores(joined, sample_index, width, budget=budget)
    out, start = {}, 0
    for block in blocks:
        stop = start + len(block.names)
        out[id(block)] = total[:, start:stop] + np.asarray(block.offset, dtype=np.float64)
        start = stop
    return out


def standardise(x: np.ndarray) -> np.ndarray:
    """Centre and scale each covariate; drop constant ones (e.g. one sex only), which carry nothing."""
    sd = x.std(axis=0)
    keep = sd > 0
    return (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]

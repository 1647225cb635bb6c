"""Polygenic score by clumping + thresholding, like ``plink --clump`` then ``plink2 --score``.

Clumping (plink 1.9's greedy algorithm): variants with ``p <= p1`` are taken in order of p-value
(position breaks ties); each one not yet in a clump becomes an index variant, and every other
unclumped variant within ``kb`` kb on its contig with ``p <= p2`` and r² >= ``r2`` with it joins
its clump. r² is plink 1.9's: from EM haplotype frequencies (:func:`genoflow.features.ld.haplotype_r2_with`).
LD is measured on the training patients only.

Scoring: for each p-value threshold T, the score of a patient is ``sum_j beta_j x_j`` over the index
variants with ``p <= T``, ``x_j`` the ALT allele count and a missing call replaced by ``2 p_j``
(mean imputation, ``p_j`` the ALT frequency). That is plink2 ``--score ... cols=+scoresums``'s
``SCORE1_SUM`` (no division by the allele count), so a patient's score does not depend on
how many calls they lack.

Spark: :func:`clump_contigs` clumps each contig in an executor (``applyInPandas``); only the index
variants come back. :func:`clump_scans` cuts each candidate's dosages down to its scan's LD samples before
the groups are formed, so a group holds candidates x LD samples bytes: with ``features.ld_max_samples``
(:func:`genoflow.features.ld.ld_subset`) that no longer grows with the cohort.
"""

from __future__ import annotations

import numpy as np

from genoflow.features.ld import haplotype_r2_with
from genoflow.genotypes import dosage_matrix, stack_dosages

__all__ = ["clump", "clump_contigs", "clump_scans", "CLUMP_SCHEMA_DDL"]

CLUMP_SCHEMA_DDL = "contig string, pos long, ref string, alt string, beta double, p double, clump_size long"


def clump(p: np.ndarray, positions: np.ndarray, dosages: np.ndarray, *, p1: float, p2: float, r2: float,
          kb: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy LD clumping of one contig's association results.

    Parameters
    ----------
    p : (m,) float64
        Association p-values.
    positions : (m,) int
        Positions (any order).
    dosages : (m, n) int8
        The variants' dosages (``-1`` missing) on the samples LD is measured on.
    p1, p2 : float
        Index (``p <= p1``) and clump-member (``p <= p2``) thresholds.
    r2 : float
        Members have r² (haplotype-based, as plink 1.9) with the index variant >= this.
    kb : float
        Members lie within ``kb`` kilobases of the index variant (inclusive).

    Returns
    -------
    is_index : (m,) bool
    clump_size : (m,) int64
        Variants in each index variant's clump, itself included (0 for non-index variants).
    """
    p = np.asarray(p, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.int64)
    m = p.size
    clumped = np.zeros(m, dtype=bool)
    is_index = np.zeros(m, dtype=bool)
    size = np.zeros(m, dtype=np.int64)
    order = np.lexsort((positions, p))
    for i in order[p[order] <= p1]:
        if clumped[i]:
            continue
        is_index[i] = clumped[i] = True
        near = np.flatnonzero(~clumped & (p <= p2) & (np.abs(positions - positions[i]) <= kb * 1000))
        if near.size:
            members = near[haplotype_r2_with(dosages[i], dosages[near]) >= r2]
            clumped[members] = True
            size[i] = members.size
        size[i] += 1
    return is_index, size


def clump_contigs(scan, genotypes, *, sample_index: np.ndarray, p1: float, p2: float, r2: float, kb: float):
    """Spark: clump an association scan (contig, pos, ref, alt, beta, p) per contig in the executors.

    LD is measured on the ``sample_index`` columns of the genotype table (the training patients).
    Returns the index variants as a DataFrame with ``CLUMP_SCHEMA_DDL`` columns.
    """
    index = np.asarray(sample_index, dtype=np.int64)

    def run(frame):
        frame = frame.sort_values(["pos", "ref", "alt"], kind="stable").reset_index(drop=True)
        g = stack_dosages(frame["dosages"], index)
        is_index, size = clump(frame["p"].to_numpy(), frame["pos"].to_numpy(), g, p1=p1, p2=p2, r2=r2, kb=kb)
        out = frame.loc[is_index, ["contig", "pos", "ref", "alt", "beta", "p"]].copy()
        out["clump_size"] = size[is_index]
        return out

    candidates = scan.filter(f"p <= {max(p1, p2)!r}").select("contig", "pos", "ref", "alt", "beta", "p")
    rows = candidates.join(genotypes.select("contig", "pos", "ref", "alt", "dosages"),
                           ["contig", "pos", "ref", "alt"])
    return rows.groupBy("contig").applyInPandas(run, CLUMP_SCHEMA_DDL)


def clump_scans(scans, genotypes, *, sample_indexes: dict[int, np.ndarray], p1: float, p2: float, r2: float,
                kb: float):
    """Spark: :func:`clump_contigs` for many scans at once (``scans`` has a ``scan`` column, as
    :func:`genoflow.stats.spark_glm.glm_scans` writes), LD of scan ``s`` on ``sample_indexes[s]``.

    Returns the index variants with a leading ``scan`` column. Lazy: run its action under
    ``genoflow.spark.session_conf(spark, genoflow.genotypes.arrow_batch_conf(n_table_samples, 1, budget))``,
    or the Arrow batches that cut the dosages down are Spark's 10,000 rows of the whole table's width.
    """
    indexes = {int(s): np.asarray(index, dtype=np.int64) for s, index in sample_indexes.items()}

    def run(frame):
        frame = frame.sort_values(["pos", "ref", "alt"], kind="stable").reset_index(drop=True)
        g = stack_dosages(frame["dosages"])  # already the scan's LD samples (_ld_dosages)
        is_index, size = clump(frame["p"].to_numpy(), frame["pos"].to_numpy(), g, p1=p1, p2=p2, r2=r2, kb=kb)
        out = frame.loc[is_index, ["scan", "contig", "pos", "ref", "alt", "beta", "p"]].copy()
        out["clump_size"] = size[is_index]
        return out

    candidates = scans.filter(f"p <= {max(p1, p2)!r}").select("scan", "contig", "pos", "ref", "alt", "beta", "p")
    rows = candidates.join(genotypes.select("contig", "pos", "ref", "alt", "dosages"),
                           ["contig", "pos", "ref", "alt"])
    rows = rows.mapInArrow(lambda batches: _ld_dosages(batches, indexes), rows.schema)
    return rows.groupBy("scan", "contig").applyInPandas(run, "scan int, " + CLUMP_SCHEMA_DDL)


def _ld_dosages(batches, indexes: dict[int, np.ndarray]):
    """``mapInArrow``: each row's packed dosages cut down to its scan's LD samples (``indexes[scan]``)."""
    import pyarrow as pa

    for batch in batches:
        if not batch.num_rows:
            continue
        column = batch.column("dosages")
        g = dosage_matrix(column, len(column[0].as_py()))  # a view of the batch's buffer
        scans = batch.column("scan").to_numpy()
        packed = [b""] * batch.num_rows
        for scan in np.unique(scans):
            rows = np.flatnonzero(scans == scan)
            for r, values in zip(rows, np.take(g[rows], indexes[int(scan)], axis=1), strict=True):
                packed[r] = values.tobytes()
        at = batch.schema.get_field_index("dosages")
        yield batch.set_column(at, batch.schema.field(at), pa.array(packed, batch.schema.field(at).type))

"""Per-gene burden of rare variants, and which genes' burdens go with a trait.

A gene's burden is the number of minor alleles a patient carries over the gene's QC-passing rare
variants (MAF below a threshold); :func:`genoflow.features.scores.burden_block` turns that into a
linear score. Genes are then ranked by a covariate-adjusted score test of the burden on the
training patients only (:func:`score_test_values`, the test of
:mod:`genoflow.features.association` for a real-valued predictor).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from genoflow.features.association import NullModel

__all__ = ["score_test_values", "rare_gene_variants"]


def score_test_values(null: NullModel, values: np.ndarray) -> np.ndarray:
    """p-values of the covariate-adjusted logistic score test of each row of ``values``.

    Parameters
    ----------
    null : NullModel
        Fitted on the same samples, same order.
    values : (m, n) float64
        Real-valued predictors (e.g. gene burdens), no missing values.

    Returns
    -------
    (m,) float64 p-values (1.0 for a predictor with no information beyond the covariates).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != null.n:
        raise ValueError(f"values: expected shape (m, {null.n}), got {x.shape}")
    u = x @ null.residual
    xw = x * null.sqrt_weight
    resid = xw - (xw @ null.q) @ null.q.T
    v = np.einsum("ij,ij->i", resid, resid)
    raw = np.einsum("ij,ij->i", xw, xw)
    no_info = v <= 1e-10 * np.maximum(raw, 1e-300)
    chi2 = np.where(no_info, 0.0, u * u / np.where(no_info, 1.0, v))
    return np.where(no_info, 1.0, special.chdtrc(1, chi2))


def rare_gene_variants(genotypes, *, max_maf: float, min_variants: int):
    """Spark: QC-passing variants in a gene with ``maf < max_maf``, in genes with >= ``min_variants``.

    Returns a pandas frame (contig, pos, ref, alt, alt_af, gene), variant metadata only (no
    genotypes), sorted by gene then position.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    rare = genotypes.filter((F.col("gene") != "") & (F.col("maf") < float(max_maf)))
    counted = rare.withColumn("n_in_gene", F.count("*").over(Window.partitionBy("gene")))
    rows = counted.filter(F.col("n_in_gene") >= int(min_variants)).select(
        "contig", "pos", "ref", "alt", "alt_af", "gene").toPandas()
    return rows.sort_values(["gene", "contig", "pos", "ref", "alt"], ignore_index=True)

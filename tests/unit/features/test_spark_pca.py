"""genoflow.features.pca's Spark paths (exact Gram, randomized, loadings) on a real local[2] Spark session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genoflow.features.pca as pca
from genoflow.genotypes import pack_dosages

pytestmark = pytest.mark.integration  # starts a SparkSession


def test_spark_gram__row_bands_add_up_to_the_whole_matrix(spark, monkeypatch):
    rng = np.random.default_rng(21)
    dosages = rng.integers(0, 3, size=(40, 60)).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.05] = -1
    called = np.where(dosages >= 0, dosages, 0)
    alt_af = called.sum(axis=1) / (2.0 * (dosages >= 0).sum(axis=1))
    frame = pd.DataFrame({"dosages": [pack_dosages(row) for row in dosages], "alt_af": alt_af})
    variants = spark.createDataFrame(frame).repartition(4)
    index = rng.permutation(60)[:50]
    # 3 rows per band: 17 bands of a 50 x 50 matrix, the last one short.
    monkeypatch.setattr(pca, "_BAND_BYTES", 3 * 8 * 50)

    gram, count = pca.spark_gram(variants, index)

    z = pca.standardise(dosages[:, index], alt_af)
    np.testing.assert_allclose(gram, z.T @ z, rtol=1e-12, atol=1e-9)
    assert count == 40


def _cohort(spark, n: int, m: int, seed: int):
    """(m, n) dosages of four drifted populations with 2 % missing calls, and the table rows in Spark."""
    rng = np.random.default_rng(seed)
    freq = np.clip(rng.uniform(0.1, 0.9, size=m)[:, None] + rng.normal(0, 0.08, size=(m, 4)), 0.02, 0.98)
    dosages = rng.binomial(2, freq[:, np.arange(n) % 4]).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.02] = -1
    called = dosages >= 0
    alt_af = np.where(called, dosages, 0).sum(axis=1) / (2.0 * called.sum(axis=1))
    frame = pd.DataFrame({"contig": "1", "pos": np.arange(1, m + 1), "ref": "A", "alt": "G", "alt_af": alt_af,
                          "dosages": [pack_dosages(row) for row in dosages]})
    return dosages, alt_af, spark.createDataFrame(frame).repartition(3)


def test_spark_randomized_pca__matches_the_exact_gram_path(spark):
    dosages, alt_af, variants = _cohort(spark, n=300, m=1200, seed=5)
    index = np.arange(300)[::-1]  # a sample order other than the table's
    exact = pca.pca_from_gram(*pca.spark_gram(variants, index), 5)

    approx = pca.spark_randomized_pca(variants, index, 5, seed=3)

    assert approx.n_variants == 1200
    for k in range(5):
        assert abs(np.corrcoef(approx.scores[:, k], exact.scores[:, k])[0, 1]) >= 0.99, k
    np.testing.assert_allclose(approx.eigenvalues, exact.eigenvalues, rtol=0.02)
    np.testing.assert_allclose(approx.scores[:, :3], exact.scores[:, :3], atol=0.05)  # same signs and scale
    z = pca.standardise(dosages[:, index], alt_af)
    local = pca.randomized_pca(lambda q: z.T @ (z @ q), 300, 1200, 5, seed=3)
    # The three partitions' partials add up to the products (the same components to rounding).
    np.testing.assert_allclose(approx.scores, local.scores, atol=1e-8)


def test_collect_loadings__project_back_to_the_scores_with_batches_sized_by_bytes(spark, monkeypatch):
    dosages, alt_af, variants = _cohort(spark, n=200, m=400, seed=6)
    index = np.arange(200)
    fitted = pca.pca_from_gram(*pca.spark_gram(variants, index), 3)
    monkeypatch.setattr(pca, "arrow_batch_conf", lambda n, bytes_per_value, budget: {  # on the driver: 25 batches
        "spark.sql.execution.arrow.maxRecordsPerBatch": "16"})
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key, None)

    rows = pca.collect_loadings(variants, index, fitted)

    assert spark.conf.get(key, None) == before  # set for the query only
    assert rows["pos"].tolist() == list(range(1, 401))
    weights = np.stack(rows["loadings"].to_numpy())
    z = pca.standardise(dosages, alt_af)
    np.testing.assert_allclose(z.T @ weights, fitted.scores, atol=1e-9)


def test_ancestry_components__pca_method_picks_the_path_and_both_agree(spark):
    from genoflow.pipeline.features import ancestry_components

    _, _, variants = _cohort(spark, n=240, m=600, seed=7)
    index = np.arange(240)
    f = {"pca_components": 4, "prune_window": 50, "prune_step": 5, "prune_r2": 0.2, "prune_window_kb": False}
    exact = ancestry_components(spark, variants, index, {**f, "pca_method": "auto"})  # 240 samples: exact
    approx = ancestry_components(spark, variants, index, {**f, "pca_method": "randomized"})

    assert (exact["method"], approx["method"]) == ("exact", "randomized")
    assert exact["n_variants"] == approx["n_variants"] > 500  # unlinked variants: pruning keeps nearly all
    assert approx["block"].names == ["pc1", "pc2", "pc3", "pc4"]
    for k in range(4):
        assert abs(np.corrcoef(approx["scores"][:, k], exact["scores"][:, k])[0, 1]) >= 0.99, k
    np.testing.assert_allclose(approx["block"].meta["eigenvalues"], exact["block"].meta["eigenvalues"], rtol=0.02)

"""genoflow.features.pca.spark_gram on a real (in-process, local[2]) Spark session."""

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

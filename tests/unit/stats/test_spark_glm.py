"""genoflow.stats.spark_glm.glm_scan on a real (in-process, local[2]) Spark session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from genoflow.genotypes import pack_dosages
from genoflow.stats import RESULT_COLUMNS, glm_block, glm_scan, prepare_glm

pytestmark = pytest.mark.integration  # starts a SparkSession


def _table(rng, n_variants=37, n_samples=120):
    dosages = rng.integers(0, 3, size=(n_variants, n_samples)).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.03] = -1
    frame = pd.DataFrame({
        "contig": "1", "pos": np.arange(1, n_variants + 1) * 100, "id": [f"v{i}" for i in range(n_variants)],
        "ref": "A", "alt": "G", "dosages": [pack_dosages(row) for row in dosages],
    })
    return frame, dosages


@pytest.mark.parametrize("family", ["linear", "logistic"])
def test_glm_scan__equals_glm_block_on_the_selected_samples(spark, family):
    rng = np.random.default_rng(11)
    frame, dosages = _table(rng)
    # Test 90 of the 120 samples, in an order other than the table's.
    index = rng.permutation(120)[:90]
    cov = rng.normal(size=(90, 2))
    eta = cov @ [0.5, -0.4] + 0.4 * np.where(dosages[0, index] < 0, 1, dosages[0, index])
    y = (rng.random(90) < special.expit(eta)).astype(float) if family == "logistic" else eta + rng.normal(size=90)
    genotypes = spark.createDataFrame(frame).repartition(3)

    scan = glm_scan(genotypes, y, cov, family=family, sample_index=index, block_size=5).toPandas()
    scan = scan.sort_values("pos").reset_index(drop=True)
    expected = glm_block(prepare_glm(y, cov, family=family), dosages[:, index])
    assert scan["id"].tolist() == frame["id"].tolist()
    for key in RESULT_COLUMNS:
        # Blocks of 5 here, one block of 37 there: see test_glm_block__chunks_give_the_same_answer.
        np.testing.assert_allclose(scan[key].to_numpy(dtype=float), expected[key].astype(float), rtol=1e-6)


def test_glm_scan__checks_its_arguments_before_spark_runs(spark):
    rng = np.random.default_rng(12)
    frame, _ = _table(rng, n_variants=3)
    genotypes = spark.createDataFrame(frame)
    y, cov = rng.normal(size=50), rng.normal(size=(50, 1))
    with pytest.raises(ValueError, match="sample_index must have shape"):
        glm_scan(genotypes, y, cov, family="linear", sample_index=np.arange(10))
    with pytest.raises(ValueError, match="key_columns"):
        glm_scan(genotypes, y, cov, family="linear", key_columns=("contig", "rsid"))
    with pytest.raises(Exception, match="sample_index reaches 199"):
        glm_scan(genotypes, rng.normal(size=200), rng.normal(size=(200, 1)), family="linear").collect()


@pytest.mark.parametrize("family", ["linear", "logistic"])
def test_glm_scans__each_scan_equals_its_own_glm_scan(spark, family):
    """One pass, many (y, covariates, samples): scan s is exactly glm_scan of fit s."""
    from genoflow.stats import glm_scans

    rng = np.random.default_rng(13)
    frame, _ = _table(rng)
    genotypes = spark.createDataFrame(frame).repartition(2)
    fits = []
    for n in (60, 90, 75):
        index = rng.permutation(120)[:n]
        y = (rng.random(n) < 0.4).astype(float) if family == "logistic" else rng.normal(size=n)
        fits.append((y, rng.normal(size=(n, 2)), index))

    scans = glm_scans(genotypes, fits, family=family, block_size=7, key_columns=("contig", "pos")).toPandas()
    assert sorted(scans["scan"].unique()) == [0, 1, 2]
    for s, (y, cov, index) in enumerate(fits):
        got = scans[scans["scan"] == s].sort_values("pos").reset_index(drop=True)
        expected = glm_scan(genotypes, y, cov, family=family, sample_index=index, block_size=7,
                            key_columns=("contig", "pos")).toPandas().sort_values("pos").reset_index(drop=True)
        assert len(got) == len(frame)
        for key in RESULT_COLUMNS:
            np.testing.assert_allclose(got[key].to_numpy(dtype=float), expected[key].to_numpy(dtype=float),
                                       rtol=1e-9)

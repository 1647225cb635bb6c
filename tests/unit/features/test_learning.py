"""genoflow.features.learning: the learning sets of nested CV, and its one-pass Spark pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.features.learning import FINAL, learning_sets, scan_fits, score_blocks
from genoflow.features.scores import prs_block, spark_scores
from genoflow.genotypes import pack_dosages

F = {"split_seed": 42, "prs_folds": 3, "prs_thresholds": [0.01]}


def _samples(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"pid": [f"p{i:03d}" for i in range(n)], "sample_index": np.arange(n),
                         "y": (rng.random(n) < 0.4).astype(float)})


def test_learning_sets__final_then_one_per_fold_that_never_learns_from_its_validation_rows():
    samples = _samples()
    labelled = np.arange(0, 50)  # rows 50..59: test patients
    sets = learning_sets(samples, labelled, "y", True, F, cv_folds=3)
    assert [s.name for s in sets] == [FINAL, "cv0", "cv1", "cv2"]
    assert np.array_equal(sets[0].fit, labelled) and len(sets[0].scored) == len(samples)
    validate = [s.validate for s in sets[1:]]
    assert np.array_equal(np.sort(np.concatenate(validate)), labelled)  # each labelled row validated once
    for s in sets[1:]:
        assert not np.isin(s.validate, s.fit).any() and np.array_equal(np.union1d(s.fit, s.validate), labelled)
        # Inner folds (cross-fitted scores) cover the fit rows only.
        assert s.inner is not None and len(s.inner) == len(s.fit) and set(s.inner) == {0, 1, 2}
    # Stratified: each fold's validation rows hold cases in about the labelled share.
    share = samples.loc[labelled, "y"].mean()
    assert all(abs(samples.loc[v, "y"].mean() - share) < 0.15 for v in validate)


def test_learning_sets__no_inner_folds_without_scores_and_no_strata_for_a_quantitative_target():
    samples = _samples().assign(y=np.linspace(0.0, 1.0, 60))
    sets = learning_sets(samples, np.arange(60), "y", False, {**F, "prs_thresholds": []}, cv_folds=2)
    assert all(s.inner is None for s in sets) and len(sets) == 3
    assert [len(s) for _, _, s in scan_fits(sets)] == [60, 30, 30]


def test_scan_fits__a_whole_fit_then_each_inner_complement_per_set():
    sets = learning_sets(_samples(), np.arange(50), "y", True, F, cv_folds=2)
    fits = scan_fits(sets)
    assert len(fits) == 3 * (1 + 3)
    owner, inner, rows = fits[1]
    assert (owner, inner) == (0, 0) and np.array_equal(rows, sets[0].fit[sets[0].inner != 0])


@pytest.mark.integration  # a SparkSession
def test_score_blocks__each_block_as_if_scored_alone(spark):
    rng = np.random.default_rng(3)
    n, m = 40, 12
    dosages = rng.integers(0, 3, size=(m, n)).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.05] = -1
    keys = pd.DataFrame({"contig": "1", "pos": np.arange(1, m + 1) * 10, "ref": "A", "alt": "C"})
    af = rng.uniform(0.1, 0.5, m)
    genotypes = spark.createDataFrame(keys.assign(dosages=[pack_dosages(r) for r in dosages]))
    # Two blocks sharing variants 4..7, each with its own weights and thresholds.
    frames = [keys.iloc[0:8].assign(alt_af=af[0:8], beta=rng.normal(size=8), p=rng.uniform(0, 0.02, 8)),
              keys.iloc[4:12].assign(alt_af=af[4:12], beta=rng.normal(size=8), p=rng.uniform(0, 0.02, 8))]
    blocks = [prs_block(frames[0], [0.01, 0.02], "a"), prs_block(frames[1], [0.02], "b")]
    index = rng.permutation(n)[:30]
    got = score_blocks(spark, genotypes, index, blocks)
    for block, frame in zip(blocks, frames, strict=True):
        rows = genotypes.join(spark.createDataFrame(frame.assign(weights=block.weights)[
            ["contig", "pos", "ref", "alt", "alt_af", "weights"]]), ["contig", "pos", "ref", "alt"])
        alone = spark_scores(rows, index, len(block.names)) + np.asarray(block.offset)
        np.testing.assert_allclose(got[id(block)], alone, rtol=1e-12, atol=1e-12)
        assert np.abs(got[id(block)]).sum() > 0

"""Tests for genoflow.qc.sample_qc: accumulated per-sample counts, F, outliers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from genoflow.qc.sample_qc import SampleQcAccumulator, expected_homozygosity, flag_outliers, inbreeding_f


def _random_block(rng, n_variants, n_samples, missing=0.05):
    af = rng.uniform(0.05, 0.5, size=(n_variants, 1))
    block = (rng.random((n_variants, n_samples)) < af).astype(np.int8)
    block += rng.random((n_variants, n_samples)) < af
    block[rng.random(block.shape) < missing] = -1
    return block


def test_sample_qc_accumulator__counts_by_hand():
    acc = SampleQcAccumulator(3)
    acc.update(np.array([[0, 1, -1], [2, 1, 1], [-1, 2, 0]], dtype=np.int8))
    out = acc.result()
    assert out["n_called"].tolist() == [2, 3, 2]
    assert out["n_missing"].tolist() == [1, 0, 1]
    assert out["n_het"].tolist() == [0, 2, 1]
    assert out["n_hom_alt"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(out["missingness"], [1 / 3, 0.0, 1 / 3])
    np.testing.assert_allclose(out["het_rate"], [0.0, 2 / 3, 0.5])
    assert acc.n_variants == 3


def test_sample_qc_accumulator__nothing_called_gives_nan_rates():
    acc = SampleQcAccumulator(2)
    out = acc.result()
    assert np.isnan(out["missingness"]).all() and np.isnan(out["het_rate"]).all()
    acc.update(np.array([[-1, 0]], dtype=np.int8))
    out = acc.result()
    assert np.isnan(out["het_rate"][0]) and out["het_rate"][1] == 0.0
    assert out["missingness"].tolist() == [1.0, 0.0]


def test_sample_qc_accumulator__blocks_and_merge_equal_one_pass():
    rng = np.random.default_rng(0)
    block = _random_block(rng, 300, 40)
    whole = SampleQcAccumulator(40)
    whole.update(block)
    # Two "partitions", each fed two blocks, merged as a Spark reduce would.
    left, right = SampleQcAccumulator(40), SampleQcAccumulator(40)
    left.update(block[:50])
    left.update(block[50:120])
    right.update(block[120:])
    merged = left.merge(pickle.loads(pickle.dumps(right)))
    assert merged is left
    for key, value in whole.result().items():
        np.testing.assert_allclose(merged.result()[key], value, rtol=1e-12, err_msg=key)


def test_sample_qc_accumulator__rejects_mismatched_samples_and_bad_codes():
    acc = SampleQcAccumulator(3)
    with pytest.raises(ValueError, match="dosages"):
        acc.update(np.zeros((2, 4), dtype=np.int8))
    with pytest.raises(ValueError, match="dosages"):
        acc.update(np.array([[0, 5, 1]], dtype=np.int8))
    with pytest.raises(ValueError, match="other"):
        acc.merge(SampleQcAccumulator(4))
    with pytest.raises(ValueError, match="n_samples"):
        SampleQcAccumulator(-1)


def test_inbreeding_f__hand_computed_with_given_frequencies():
    # Two variants with p = 0.5: E_hom = 1 - 2pq = 0.5 per called genotype.
    # Sample [0, 1]: O=1, E=1, N=2 -> F = 0.  [0, 2]: O=2 -> F = 1.  [1, 1]: O=0 -> F = -1.
    # [1, -1]: O=0, E=0.5, N=1 -> F = -1.
    block = np.array([[0, 0, 1, 1], [1, 2, 1, -1]], dtype=np.int8)
    out = inbreeding_f(block, alt_af=np.array([0.5, 0.5]))
    np.testing.assert_allclose(out["f"], [0.0, 1.0, -1.0, -1.0])
    assert out["o_hom"].tolist() == [1, 2, 0, 0]
    np.testing.assert_allclose(out["e_hom"], [1.0, 1.0, 1.0, 0.5])
    assert out["n_obs"].tolist() == [2, 2, 2, 1]


def test_inbreeding_f__small_sample_correction_by_hand():
    # One variant, 2 samples [0, 1]: p = 1/4, 2pq = 3/8; corrected by 2n/(2n-1) = 4/3 -> 1/2.
    block = np.array([[0, 1]], dtype=np.int8)
    np.testing.assert_allclose(expected_homozygosity(block), [5 / 8, 5 / 8])
    np.testing.assert_allclose(expected_homozygosity(block, small_sample=True), [0.5, 0.5])


def test_inbreeding_f__near_zero_under_hwe_and_one_for_fully_homozygous():
    rng = np.random.default_rng(1)
    block = _random_block(rng, 2000, 30, missing=0.0)
    # Sample 0 is made fully homozygous (e.g. a sample from a consanguineous line).
    block[:, 0] = np.where(block[:, 0] == 1, 2, block[:, 0])
    f = inbreeding_f(block)["f"]
    assert f[0] > 0.9
    assert np.abs(f[1:]).max() < 0.1


def test_inbreeding_f__accumulator_matches_direct_computation():
    rng = np.random.default_rng(2)
    block = _random_block(rng, 500, 25)
    acc = SampleQcAccumulator(25)
    acc.update(block[:200])
    acc.update(block[200:])
    np.testing.assert_allclose(acc.result()["inbreeding_f"], inbreeding_f(block)["f"], rtol=1e-10)


def test_inbreeding_f__nothing_called_is_nan():
    out = inbreeding_f(np.array([[-1, 0], [-1, 1]], dtype=np.int8))
    assert np.isnan(out["f"][0])


def test_flag_outliers__flags_beyond_n_sd_only():
    values = np.array([0.0] * 19 + [10.0])  # mean 0.5, sample SD sqrt(5) ~ 2.24
    np.testing.assert_array_equal(flag_outliers(values, 3), [False] * 19 + [True])
    np.testing.assert_array_equal(flag_outliers(values, 5), [False] * 20)


def test_flag_outliers__ignores_nan_and_tiny_inputs():
    values = np.array([0.0] * 19 + [10.0, np.nan])
    assert flag_outliers(values, 3).tolist() == [False] * 19 + [True, False]
    assert flag_outliers(np.array([1.0, np.nan]), 3).tolist() == [False, False]


def test_flag_outliers__rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_sd"):
        flag_outliers(np.zeros(3), 0)
    with pytest.raises(ValueError, match="values"):
        flag_outliers(np.zeros((2, 2)), 3)

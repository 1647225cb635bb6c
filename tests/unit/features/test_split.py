"""Tests for genoflow.features.split.stratified_split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from genoflow.features.split import stratified_split


def _cohort(n_cases=37, n_controls=100):
    ids = [f"P{i:04d}" for i in range(n_cases + n_controls)]
    labels = np.array([1] * n_cases + [0] * n_controls)
    return ids, labels


def test_stratified_split__deterministic():
    ids, labels = _cohort()
    first = stratified_split(ids, labels, test_fraction=0.2, seed=7)
    second = stratified_split(ids, labels, test_fraction=0.2, seed=7)
    np.testing.assert_array_equal(first, second)
    assert first.dtype == bool and first.shape == (len(ids),)


def test_stratified_split__independent_of_input_order():
    ids, labels = _cohort()
    base = dict(zip(ids, stratified_split(ids, labels, test_fraction=0.3, seed=1), strict=True))
    order = np.random.default_rng(0).permutation(len(ids))
    shuffled_ids = [ids[i] for i in order]
    shuffled = stratified_split(shuffled_ids, labels[order], test_fraction=0.3, seed=1)
    assert dict(zip(shuffled_ids, shuffled, strict=True)) == base


def test_stratified_split__stratum_proportions():
    ids, labels = _cohort(n_cases=37, n_controls=100)
    is_test = stratified_split(ids, labels, test_fraction=0.2, seed=3)
    assert is_test[labels == 1].sum() == round(0.2 * 37)  # 7
    assert is_test[labels == 0].sum() == 20


def test_stratified_split__follows_the_sha256_ranking_rule():
    ids = ["b", "a", "d", "c", "e"]
    labels = np.array(["x"] * 5)
    is_test = stratified_split(ids, labels, test_fraction=0.4, seed=42)
    ranked = sorted(ids, key=lambda pid: hashlib.sha256(f"42:{pid}".encode()).hexdigest())
    assert {pid for pid, t in zip(ids, is_test, strict=True) if t} == set(ranked[:2])


def _ranked_test_ids(ids, labels, fraction, seed):
    """The documented rule, written out: per stratum, the first round(fraction * n) ids by seeded digest."""
    chosen = set()
    for label in set(labels.tolist()):
        stratum = [pid for pid, lab in zip(ids, labels, strict=True) if lab == label]
        ranked = sorted(stratum, key=lambda pid: (hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest(), pid))
        chosen |= set(ranked[:round(fraction * len(stratum))])
    return chosen


def test_stratified_split__seed_changes_assignment():
    ids, labels = _cohort()
    by_seed = {}
    for seed in (1, 2):
        is_test = stratified_split(ids, labels, test_fraction=0.5, seed=seed)
        by_seed[seed] = {pid for pid, t in zip(ids, is_test, strict=True) if t}
        assert by_seed[seed] == _ranked_test_ids(ids, labels, 0.5, seed)  # each seed follows its own ranking
    assert by_seed[1] != by_seed[2]


def test_stratified_split__each_stratum_on_both_sides():
    # round(0.1 * 2) = 0 and round(0.9 * 3) = 3 are clamped to 1 and 2.
    ids = ["a", "b", "c", "d", "e"]
    labels = np.array([0, 0, 1, 1, 1])
    assert stratified_split(ids, labels, test_fraction=0.1, seed=0)[:2].sum() == 1
    assert stratified_split(ids, labels, test_fraction=0.9, seed=0)[2:].sum() == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split__rejects_test_fraction_outside_unit_interval(fraction):
    ids, labels = _cohort()
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(ids, labels, test_fraction=fraction, seed=0)


def test_stratified_split__rejects_singleton_stratum():
    with pytest.raises(ValueError, match="labels: stratum 2 has 1"):
        stratified_split(["a", "b", "c"], np.array([1, 1, 2]), test_fraction=0.5, seed=0)


def test_stratified_split__rejects_bad_ids_labels_and_seed():
    with pytest.raises(ValueError, match="ids: duplicate id 'a'"):
        stratified_split(["a", "b", "a", "c"], np.array([0, 0, 1, 1]), test_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="labels: expected shape"):
        stratified_split(["a", "b", "c"], np.array([0, 0]), test_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="labels: contain NaN"):
        stratified_split(["a", "b", "c"], np.array([0.0, 0.0, np.nan]), test_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        stratified_split(["a", "b"], np.array([0, 0]), test_fraction=0.5, seed="1")

"""Deterministic, order-independent stratified train/test split of patients."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["stratified_split", "stratified_folds"]


def stratified_split(
    ids: Sequence[str], labels: np.ndarray, *, test_fraction: float, seed: int
) -> np.ndarray:
    """Assign each patient to the test set (True) or the training set (False), per label stratum.

    Within each stratum (patients sharing a label) patients are ranked by
    ``sha256(f"{seed}:{id}")`` (hex digest, ties broken by id) and the first
    ``round(test_fraction * stratum_size)`` go to the test set, clamped to
    ``[1, stratum_size - 1]`` so that every stratum is on both sides of the split. ``round`` is
    Python's (half to even).

    A patient's assignment therefore depends only on its id, its stratum's membership, the
    fraction and the seed: not on the order of the input, nor on the process (no RNG state, no
    ``PYTHONHASHSEED``), so reruns, Spark partitions and reordered cohorts agree.

    Parameters
    ----------
    ids : sequence of str, length n
        Unique patient ids (pseudonyms).
    labels : numpy.ndarray, shape (n,)
        Stratification labels (e.g. disease status); any dtype ``numpy.unique`` can sort. No NaN.
    test_fraction : float
        Target fraction of each stratum in the test set, 0 < test_fraction < 1.
    seed : int
        Changes the assignment; the same seed always gives the same split.

    Returns
    -------
    numpy.ndarray, shape (n,), bool
        True = test, aligned with ``ids``.

    Raises
    ------
    ValueError
        Naming the argument: ``test_fraction`` outside (0, 1); ``seed`` not an int; ``ids``
        duplicated or of a different length than ``labels``; ``labels`` not 1-D, with NaN, or
        with a stratum of fewer than 2 patients.

    Examples
    --------
    >>> stratified_split(["a", "b", "c", "d"], np.array([0, 0, 1, 1]), test_fraction=0.5, seed=1).sum()
    np.int64(2)
    """
    ids, labels = _check(ids, labels, test_fraction, seed)
    strata, stratum_of, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    if sizes.size and sizes.min() < 2:
        small = strata[sizes.argmin()]
        small = small.item() if isinstance(small, np.generic) else small
        raise ValueError(f"labels: stratum {small!r} has {sizes.min()} patient(s); each needs >= 2")
    is_test = np.zeros(len(ids), dtype=bool)
    for s, ranked in enumerate(_ranked_strata(ids, stratum_of, len(sizes), seed)):
        n_test = min(max(round(test_fraction * sizes[s]), 1), sizes[s] - 1)
        is_test[ranked[:n_test]] = True
    return is_test


def stratified_folds(ids: Sequence[str], labels: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """Assign each patient to one of ``k`` folds, per label stratum, as `stratified_split` ranks them.

    Within each stratum patients are ranked by ``sha256(f"{seed}:{id}")`` and dealt to folds
    0, 1, ..., k - 1, 0, ... in that order, so every fold has each label in proportion (when the
    stratum has at least ``k`` patients) and an assignment depends only on the id, its stratum, ``k``
    and the seed.

    Returns
    -------
    numpy.ndarray, shape (n,), int64
        The fold of each patient, aligned with ``ids``.

    Examples
    --------
    >>> stratified_folds(["a", "b", "c", "d"], np.array([0, 0, 1, 1]), k=2, seed=1).tolist().count(0)
    2
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k: must be an int >= 2, got {k!r}")
    ids, labels = _check(ids, labels, 0.5, seed)
    strata, stratum_of = np.unique(labels, return_inverse=True)
    fold = np.zeros(len(ids), dtype=np.int64)
    for ranked in _ranked_strata(ids, stratum_of, len(strata), seed):
        fold[ranked] = np.arange(len(ranked)) % k
    return fold


def _ranked_strata(ids: list[str], stratum_of: np.ndarray, n_strata: int, seed: int) -> list[list[int]]:
    """Each stratum's positions, ranked by their seeded id digests."""
    keys = [hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest() for pid in ids]
    # Ties between digests are practically impossible; the id makes the order total anyway.
    return [sorted(np.flatnonzero(stratum_of == s), key=lambda i: (keys[i], ids[i])) for s in range(n_strata)]


def _check(ids, labels, test_fraction, seed) -> tuple[list[str], np.ndarray]:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed: must be an int, got {seed!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: must be strictly between 0 and 1, got {test_fraction!r}")
    ids = [str(pid) for pid in ids]
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != len(ids):
        raise ValueError(f"labels: expected shape ({len(ids)},) to match ids, got {labels.shape}")
    if labels.dtype.kind in "fc" and np.isnan(labels).any():
        raise ValueError("labels: contain NaN; drop patients without a label first")
    seen: set[str] = set()
    for pid in ids:
        if pid in seen:
            raise ValueError(f"ids: duplicate id {pid!r}")
        seen.add(pid)
    return ids, labels

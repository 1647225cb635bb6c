"""Kernels of LD pruning, PCA and linear genotype scores on tiny hand-checkable inputs.

Their agreement with plink2 / plink 1.9 is tested in tests/concordance/test_ld_pca_prs.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from genoflow.features.ld import haplotype_r2_with, indep_pairwise, pairwise_r2, prune_window_indices
from genoflow.features.pca import choose_method, loadings, pca_from_gram, randomized_pca, standardise
from genoflow.features.scores import ScoreBlock, burden_block, prs_block


def test_pairwise_r2__pairwise_complete_pearson():
    g = np.array([[0, 1, 2, -1, 1], [0, 1, 2, 2, 0], [2, 1, 0, 0, 1]], dtype=np.int8)
    r2 = pairwise_r2(g)
    both = g[0] >= 0
    expected = np.corrcoef(g[0, both], g[1, both])[0, 1] ** 2
    assert r2[0, 1] == pytest.approx(expected) and r2[1, 0] == pytest.approx(expected)
    assert np.allclose(np.diag(r2), 1.0)


def test_pairwise_r2__monomorphic_is_zero():
    assert pairwise_r2(np.array([[1, 1, 1], [0, 1, 2]], dtype=np.int8))[0, 1] == 0.0


def test_haplotype_r2__complete_linkage_is_one_and_independence_near_zero():
    g = np.array([0, 1, 2, 1, 0, 2, 1, 0], dtype=np.int8)
    assert haplotype_r2_with(g, g[None, :])[0] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 4000).astype(np.int8), rng.integers(0, 3, 4000).astype(np.int8)
    assert haplotype_r2_with(a, b[None, :])[0] < 0.01


def test_indep_pairwise__removes_lower_maf_of_a_linked_pair():
    common = np.array([0, 1, 2, 1, 0, 2, 1, 1], dtype=np.int8)
    rarer = np.array([0, 1, 1, 1, 0, 1, 1, 1], dtype=np.int8)  # correlated with `common`, lower MAF
    unlinked = np.array([1, 0, 1, 2, 1, 0, 2, 0], dtype=np.int8)
    keep = indep_pairwise(np.stack([rarer, common, unlinked]), np.array([1, 2, 3]), window=3, step=1, r2=0.2)
    assert pairwise_r2(np.stack([rarer, common]))[0, 1] > 0.2
    assert keep.tolist() == [False, True, True]


def test_indep_pairwise__rejects_kb_with_step_above_one():
    with pytest.raises(ValueError, match="step"):
        indep_pairwise(np.zeros((2, 3), dtype=np.int8), np.array([1, 2]), window=10, step=2, r2=0.5, window_kb=True)


def test_prune_window_indices__variant_and_kb_windows():
    assert prune_window_indices(np.arange(7), window=3, step=2, window_kb=False) == [(0, 3), (2, 5), (4, 7)]
    assert prune_window_indices(np.array([1, 500, 1001, 3000]), window=1, step=1, window_kb=True)[0] == (0, 3)


def test_pca__scores_reproduced_by_loadings_and_standardisation_like_plink2():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 3, size=(60, 25)).astype(np.int8)
    g[3, 4] = -1
    c = g >= 0
    af = np.where(c, g, 0).sum(axis=1) / (2.0 * c.sum(axis=1))
    z = standardise(g, af)
    assert z[3, 4] == 0.0 and z[0, 0] == pytest.approx((g[0, 0] - 2 * af[0]) / np.sqrt(2 * af[0] * (1 - af[0])))
    pca = pca_from_gram(z.T @ z, g.shape[0], 3)
    assert np.all(np.diff(pca.eigenvalues) <= 0)
    np.testing.assert_allclose(pca.scores.std(axis=0) ** 2 + pca.scores.mean(axis=0) ** 2, 1.0, rtol=1e-9)
    np.testing.assert_allclose(z.T @ loadings(g, af, pca), pca.scores, atol=1e-10)
    with pytest.raises(ValueError, match="components"):
        pca_from_gram(z.T @ z, g.shape[0], 25)


def _structured_genotypes(n: int, m: int, seed: int) -> np.ndarray:
    """(m, n) dosages of ``n`` samples from four populations with drifted allele frequencies, so that the top
    components are separated (three structure PCs) and the next ones are near-degenerate noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.9, size=m)
    freq = np.clip(base[:, None] + rng.normal(0, 0.08, size=(m, 4)), 0.02, 0.98)  # (m, populations)
    population = np.arange(n) % 4
    return rng.binomial(2, freq[:, population]).astype(np.int8)


def test_randomized_pca__top5_match_the_exact_decomposition():
    g = _structured_genotypes(n=400, m=1500, seed=3)
    z = standardise(g, g.mean(axis=1) / 2.0)
    exact = pca_from_gram(z.T @ z, g.shape[0], 5)
    products = []

    def product(q):
        products.append(q.shape)
        return z.T @ (z @ q)

    approx = randomized_pca(product, z.shape[1], z.shape[0], 5, oversampling=10, passes=10, seed=1)
    assert products == [(400, 15)] * 10  # one (n, k + oversampling) product per pass, never n x n
    for k in range(5):
        assert abs(np.corrcoef(approx.scores[:, k], exact.scores[:, k])[0, 1]) >= 0.99, k
    np.testing.assert_allclose(approx.eigenvalues, exact.eigenvalues, rtol=0.02)
    # The same scaling and sign convention: the scores themselves agree, not just up to sign.
    np.testing.assert_allclose(approx.scores[:, :3], exact.scores[:, :3], atol=0.05)
    again = randomized_pca(lambda q: z.T @ (z @ q), z.shape[1], z.shape[0], 5, seed=1)
    np.testing.assert_array_equal(again.scores, approx.scores)  # seeded: reruns are identical


def test_randomized_pca__one_pass_is_not_enough_and_passes_are_capped_by_samples():
    g = _structured_genotypes(n=400, m=1500, seed=3)
    z = standardise(g, g.mean(axis=1) / 2.0)
    exact = pca_from_gram(z.T @ z, 400, 5)
    rough = randomized_pca(lambda q: z.T @ (z @ q), 400, 1500, 5, passes=1)
    r = [abs(np.corrcoef(rough.scores[:, k], exact.scores[:, k])[0, 1]) for k in range(3, 5)]
    assert min(r) < 0.9  # the noise components need the Krylov passes (else the test above shows nothing)
    small = standardise(g[:, :30], g[:, :30].mean(axis=1) / 2.0)
    calls = []
    randomized_pca(lambda q: calls.append(1) or small.T @ (small @ q), 30, 1500, 5, oversampling=10, passes=10)
    assert len(calls) == 2  # 30 samples hold two blocks of 15 orthonormal columns
    with pytest.raises(ValueError, match="passes"):
        randomized_pca(lambda q: q, 30, 10, 2, passes=0)


def test_randomized_pca__fewer_variants_than_the_basis_is_exact_and_projects_back():
    # 52 pruned variants (the 20k-patient medium cohort's count) against a basis of up to 14 x 10 columns:
    # once the Krylov blocks span Z's row space, what is left of a new block is rounding noise. Kept as
    # directions, they made Q non-orthonormal: eigenvalues 4.7x too large, scores of variance ~5.
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.5, 52)
    g = ((rng.random((52, 3000)) < p[:, None]).astype(np.int8) + (rng.random((52, 3000)) < p[:, None]))
    g = g.astype(np.int8)
    freq = g.mean(axis=1) / 2.0
    z = standardise(g, freq)
    exact = pca_from_gram(z.T @ z, 52, 4)
    approx = randomized_pca(lambda q: z.T @ (z @ q), 3000, 52, 4)
    np.testing.assert_allclose(approx.eigenvalues, exact.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(approx.scores, exact.scores, atol=1e-6)
    np.testing.assert_allclose(z.T @ loadings(g, freq, approx), approx.scores, atol=1e-6)  # the served projection


def test_choose_method__by_samples_unless_named():
    assert choose_method("auto", 1000) == "exact" and choose_method("auto", 100_000) == "randomized"
    assert choose_method("randomized", 50) == "randomized" and choose_method("exact", 10**6) == "exact"
    with pytest.raises(ValueError, match="approx"):
        choose_method("approx", 10)


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"contig": ["1"] * n, "pos": list(range(1, n + 1)), "ref": ["A"] * n, "alt": ["G"] * n}
    return pd.DataFrame({**base, **columns})


def test_prs_block__score_sum_with_mean_imputation():
    block = prs_block(_frame(alt_af=[0.2, 0.5], beta=[0.5, -1.0], p=[1e-5, 0.02]), [1e-3, 0.05], "prs")
    dosages = np.array([[2, 1], [-1, 0]], dtype=float)
    scores = block.apply(dosages)
    assert block.names == ["prs_p1em3", "prs_p5em2"]
    np.testing.assert_allclose(scores[:, 0], [1.0, 0.5 * 0.4])  # missing -> 2p = 0.4 copies
    np.testing.assert_allclose(scores[:, 1], [0.0, 0.2])


def test_burden_block__counts_minor_alleles_per_gene():
    block = burden_block(_frame(alt_af=[0.01, 0.98, 0.02], gene=["G1", "G1", "G2"]), ["G1"])
    assert block.names == ["burden_G1"] and len(block.variants) == 2
    # ALT minor at the first (count ALT), REF minor at the second (count 2 - ALT).
    np.testing.assert_allclose(block.apply(np.array([[1, 2], [0, 1], [2, 0]], dtype=float)), [[1], [1], [4]])


def test_score_block__json_round_trip_and_subset():
    block = prs_block(_frame(alt_af=[0.2, 0.5], beta=[0.5, -1.0], p=[1e-5, 0.02]), [1e-3, 0.05], "prs")
    again = ScoreBlock(**json.loads(json.dumps(asdict(block))))
    np.testing.assert_array_equal(again.apply(np.ones((1, 2))), block.apply(np.ones((1, 2))))
    small = block.subset_names(["prs_p1em3"])
    assert len(small.variants) == 1 and small.offset == [block.offset[0]]


def test_threshold_label__column_safe():
    from genoflow.features.scores import burden_name, threshold_label

    assert [threshold_label(t) for t in (1e-4, 0.05, 1.0, 5e-8)] == ["1em4", "5em2", "1e0", "5em8"]
    assert burden_name("GENE-1.2") == "burden_GENE_1_2"

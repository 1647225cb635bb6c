"""Tests for genoflow.qc.variant_qc: counts, call rate, allele frequencies, exact HWE."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from genoflow.qc.variant_qc import genotype_counts, hwe_exact_p, variant_qc


def _reference_hwe_p(n_het: int, n_hom1: int, n_hom2: int) -> float:
    """Scalar SNPHWE from Wigginton, Cutler & Abecasis (2005), in exact rational arithmetic.

    Follows the paper's algorithm: start at the (approximate) modal het count with relative
    probability 1, fill both directions with the recurrences
    P(h - 2) = P(h) h (h - 1) / (4 (n_AA + 1)(n_BB + 1)) and
    P(h + 2) = P(h) 4 n_AA n_BB / ((h + 2)(h + 1)), normalise, and sum every probability no
    larger than the observed one. Fractions make ties exact, so this is the ground truth.
    """
    n = n_het + n_hom1 + n_hom2
    hom_rare, hom_common = min(n_hom1, n_hom2), max(n_hom1, n_hom2)
    rare = 2 * hom_rare + n_het
    if rare == 0:
        return 1.0
    mid = rare * (2 * n - rare) // (2 * n)
    if (rare - mid) % 2:
        mid += 1
    probs = {mid: Fraction(1)}
    homr, homc = (rare - mid) // 2, n - mid - (rare - mid) // 2
    h = mid
    while h > 1:
        probs[h - 2] = probs[h] * h * (h - 1) / (4 * (homr + 1) * (homc + 1))
        h, homr, homc = h - 2, homr + 1, homc + 1
    homr, homc = (rare - mid) // 2, n - mid - (rare - mid) // 2
    h = mid
    while h <= rare - 2:
        probs[h + 2] = probs[h] * 4 * homr * homc / ((h + 2) * (h + 1))
        h, homr, homc = h + 2, homr - 1, homc - 1
    total = sum(probs.values())
    observed = probs[n_het]
    assert hom_common >= 0
    return float(sum(p for p in probs.values() if p <= observed) / total)


def _block(rows: list[list[int]]) -> np.ndarray:
    return np.array(rows, dtype=np.int8)


def test_variant_qc__counts_call_rate_and_af_by_hand():
    out = variant_qc(_block([[0, 1, 2, -1], [0, 0, 1, 1], [2, 2, -1, -1]]))
    assert out["n_called"].tolist() == [3, 4, 2]
    assert out["n_hom_ref"].tolist() == [1, 2, 0]
    assert out["n_het"].tolist() == [1, 2, 0]
    assert out["n_hom_alt"].tolist() == [1, 0, 2]
    np.testing.assert_allclose(out["call_rate"], [0.75, 1.0, 0.5])
    np.testing.assert_allclose(out["alt_af"], [3 / 6, 2 / 8, 4 / 4])
    np.testing.assert_allclose(out["maf"], [0.5, 0.25, 0.0])
    assert {k: v.shape for k, v in out.items()} == {k: (3,) for k in out}


def test_variant_qc__monomorphic_gives_hwe_p_one_and_maf_zero():
    out = variant_qc(_block([[0, 0, 0, -1], [2, 2, 2, 2]]))
    np.testing.assert_array_equal(out["hwe_p"], [1.0, 1.0])
    np.testing.assert_array_equal(out["maf"], [0.0, 0.0])
    np.testing.assert_array_equal(out["alt_af"], [0.0, 1.0])


def test_variant_qc__all_missing_gives_call_rate_zero_and_nan_af():
    out = variant_qc(_block([[-1, -1, -1], [0, 1, 1]]))
    assert out["call_rate"][0] == 0.0
    assert out["n_called"][0] == 0
    assert np.isnan(out["alt_af"][0]) and np.isnan(out["maf"][0]) and np.isnan(out["hwe_p"][0])
    assert not np.isnan(out["hwe_p"][1])


def test_variant_qc__all_het_matches_hand_computed_p():
    # N = 4, n_A = 4: P(h = 0, 2, 4) = 6/70, 48/70, 16/70 from the Wigginton formula (by hand),
    # so all-het (h = 4) has p = (6 + 16) / 70.
    out = variant_qc(_block([[1, 1, 1, 1], [0, 2, 1, 1], [0, 0, 2, 2]]))
    np.testing.assert_allclose(out["hwe_p"], [22 / 70, 1.0, 6 / 70], rtol=1e-12)


def test_variant_qc__zero_variants_and_zero_samples():
    out = variant_qc(np.empty((0, 5), dtype=np.int8))
    assert all(v.shape == (0,) for v in out.values())
    out = variant_qc(np.empty((2, 0), dtype=np.int8))
    np.testing.assert_array_equal(out["call_rate"], [0.0, 0.0])
    assert np.isnan(out["hwe_p"]).all()


def test_variant_qc__does_not_write_to_read_only_input():
    block = _block([[0, 1, 2, -1]])
    block.flags.writeable = False
    variant_qc(block)
    assert block.tolist() == [[0, 1, 2, -1]]


def test_variant_qc__rejects_illegal_codes_and_shapes():
    with pytest.raises(ValueError, match="dosages: variant row 1"):
        variant_qc(_block([[0, 1], [3, 0]]))
    with pytest.raises(ValueError, match="dosages"):
        variant_qc(np.zeros(4, dtype=np.int8))
    with pytest.raises(ValueError, match="dosages"):
        variant_qc(np.zeros((2, 2), dtype=np.float32))


def test_genotype_counts__n_called_plus_missing_is_n_samples():
    rng = np.random.default_rng(3)
    block = rng.integers(-1, 3, size=(50, 17)).astype(np.int8)
    counts = genotype_counts(block)
    np.testing.assert_array_equal(counts["n_called"] + counts["n_missing"], 17)
    np.testing.assert_array_equal(counts["n_het"], (block == 1).sum(axis=1))


def test_hwe_exact_p__matches_scalar_reference_on_random_counts():
    rng = np.random.default_rng(2024)
    cases = [(0, 0, 1), (1, 0, 0), (1, 1, 1), (2, 0, 0), (0, 1, 1)]
    for _ in range(300):
        n = int(rng.integers(1, 250))
        af = rng.uniform(0.0, 1.0)
        f = rng.uniform(-0.3, 0.6)  # departures both ways from HWE
        p_het = float(np.clip(2 * af * (1 - af) * (1 - f), 0, 1))
        p_hom_alt = (1 - p_het) * af
        het, hom_alt, hom_ref = rng.multinomial(n, [p_het, p_hom_alt, 1 - p_het - p_hom_alt])
        cases.append((int(het), int(hom_ref), int(hom_alt)))
    het, hom_ref, hom_alt = (np.array(c) for c in zip(*cases, strict=True))
    got = hwe_exact_p(het, hom_ref, hom_alt)
    want = np.array([_reference_hwe_p(*c) for c in cases])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


def test_hwe_exact_p__published_values():
    # (n_het, n_hom1, n_hom2, p) for the two-sided, non-mid-p test. Sources, as collected in
    # chrchang/stats (Christopher Chang, plink2's author) Python/tests/test_HWE.py:
    # rows 1-2 from the vignettes of the R HardyWeinberg package (Graffelman), rows 3-6 from the
    # test suite of jeremymcrae/snphwe (a wrapper of Wigginton's C code).
    published = [
        (489, 298, 213, 0.6556635),
        (314, 230, 107, 1.0),
        (500, 10, 5000, 0.65157189991),
        (1000, 20, 5000, 1.26598491e-5),
        (4990, 495000, 10, 0.570223198305),
        (200000, 200000, 200000, 0.0),  # far beyond float64 range: underflows to 0
    ]
    het, hom1, hom2, want = (np.array(c) for c in zip(*published, strict=True))
    np.testing.assert_allclose(hwe_exact_p(het, hom1, hom2), want, rtol=1e-6, atol=0)


def test_hwe_exact_p__exact_ties_are_counted():
    # N = 6, n_A = 4: P(h = 0, 2, 4) = 1/33, 16/33, 16/33 (exact tie, from the formula by hand).
    # Counting the tied table, h = 4 has p = 1, not 17/33.
    p = hwe_exact_p([4, 2, 0], [0, 1, 2], [2, 3, 4])
    np.testing.assert_allclose(p, [1.0, 1.0, 1 / 33], rtol=1e-12)


def test_hwe_exact_p__symmetric_in_ref_and_alt():
    rng = np.random.default_rng(5)
    het, a, b = rng.integers(0, 60, size=(3, 40))
    np.testing.assert_allclose(hwe_exact_p(het, a, b), hwe_exact_p(het, b, a), rtol=1e-12)


def test_hwe_exact_p__large_cohorts_stop_where_probabilities_underflow():
    # At 5,000 samples the kernel walks only the distribution's width (it stops where the
    # probabilities underflow relative to the mode): the p-values must still be the exact ones,
    # in the bulk, in both tails, and for an observed table far out where nothing else is smaller.
    cases = [(2000, 2000, 1000), (2300, 1900, 800), (1700, 2200, 1100), (30, 4750, 220), (2, 4995, 3)]
    het, hom1, hom2 = (np.array(c) for c in zip(*cases, strict=True))
    want = np.array([_reference_hwe_p(*c) for c in cases])
    np.testing.assert_allclose(hwe_exact_p(het, hom1, hom2), want, rtol=1e-9, atol=1e-300)


def test_hwe_exact_p__rejects_negative_counts_and_bad_shapes():
    with pytest.raises(ValueError, match="non-negative"):
        hwe_exact_p([1], [-1], [2])
    with pytest.raises(ValueError, match="same length"):
        hwe_exact_p([1, 2], [1], [2])


def test_variant_qc__block_of_10k_by_1000_all_finite():
    rng = np.random.default_rng(11)
    af = rng.uniform(0.0, 0.5, size=(10_000, 1))
    block = (rng.random((10_000, 1000)) < af).astype(np.int8) + (rng.random((10_000, 1000)) < af)
    block[rng.random(block.shape) < 0.02] = -1
    out = variant_qc(block)
    assert np.isfinite(out["hwe_p"]).all()
    assert ((out["hwe_p"] >= 0) & (out["hwe_p"] <= 1)).all()

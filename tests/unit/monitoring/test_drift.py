"""Drift kernels against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genoflow.monitoring import drift


def test_allele_counts__missing_calls_count_for_nothing():
    dosages = np.array([[0, 1, 2, -1], [-1, -1, -1, -1], [2, 2, 2, 2]], dtype=np.int8)
    ac, an = drift.allele_counts(dosages)
    assert ac.tolist() == [3, 0, 8]
    assert an.tolist() == [6, 0, 8]


def test_af_shift__2x2_chi_square_and_hudson_fst_by_hand():
    # reference 30 ALT of 100 alleles, new 50 of 100: table [[30, 70], [50, 50]], N = 200
    # chi2 = 200 (30*50 - 70*50)^2 / (100 * 100 * 80 * 120) = 8e8 / 9.6e7 = 8.3333
    out = drift.allele_frequency_shift([30], [100], [50], [100])
    assert out["af_ref"][0] == 0.3 and out["af_new"][0] == 0.5
    assert out["delta"][0] == pytest.approx(0.2)
    assert out["chi2"][0] == pytest.approx(25 / 3)
    assert out["p"][0] == pytest.approx(stats.chi2.sf(25 / 3, 1))
    assert out["p"][0] == pytest.approx(0.003892, abs=1e-6)
    # Hudson: ((0.3-0.5)^2 - 0.21/99 - 0.25/99) / (0.3*0.5 + 0.5*0.7) = 0.0353535 / 0.5
    assert out["fst"][0] == pytest.approx((0.04 - 0.46 / 99) / 0.5)


def test_af_shift__matches_scipy_contingency_without_correction():
    rng = np.random.default_rng(0)
    ref_an, new_an = rng.integers(50, 400, 30) * 2, rng.integers(50, 400, 30) * 2
    ref_ac, new_ac = rng.integers(1, 50, 30), rng.integers(1, 50, 30)
    out = drift.allele_frequency_shift(ref_ac, ref_an, new_ac, new_an)
    for i in range(30):
        table = [[ref_ac[i], ref_an[i] - ref_ac[i]], [new_ac[i], new_an[i] - new_ac[i]]]
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        assert out["chi2"][i] == pytest.approx(chi2) and out["p"][i] == pytest.approx(p)


def test_af_shift__empty_margins_are_not_significant():
    out = drift.allele_frequency_shift([0, 5], [100, 10], [0, 0], [100, 0])
    assert out["chi2"].tolist() == [0.0, 0.0] and out["p"].tolist() == [1.0, 1.0]
    assert math.isnan(out["fst"][0])  # monomorphic in both: no diversity to apportion
    assert math.isnan(out["af_new"][1])  # nothing called in the new sample


def test_hudson_fst__ratio_of_averages_skips_unusable_variants():
    fst = drift.hudson_fst([0.3, 0.1, np.nan], 100, [0.5, 0.1, 0.2], 100)
    num = (0.04 - 0.46 / 99) + (0.0 - 0.18 / 99)
    den = 0.5 + 2 * 0.1 * 0.9
    assert fst == pytest.approx(num / den)


def test_summarise_af_shift__bonferroni_over_variants_compared():
    shift = {"delta": np.array([0.2, -0.05, np.nan, 0.01]), "p": np.array([1e-4, 0.02, np.nan, 0.9]),
             "chi2": np.array([15.0, 5.4, 0.0, 0.02]), "af_ref": np.array([0.3, 0.2, np.nan, 0.5]),
             "af_new": np.array([0.5, 0.15, 0.1, 0.51])}
    out = drift.summarise_af_shift(shift, 200, 100, alpha=0.05)
    assert out["n_variants"] == 3
    assert out["p_threshold"] == pytest.approx(0.05 / 3)
    assert out["n_significant"] == 1 and out["fraction_significant"] == pytest.approx(1 / 3)
    assert out["max_abs_af_shift"] == pytest.approx(0.2)
    assert out["mean_abs_af_shift"] == pytest.approx(0.26 / 3)
    assert out["mean_chi2"] == pytest.approx((15 + 5.4 + 0.02) / 3)


def test_psi__hand_value_with_reference_median_bins():
    reference = np.arange(1, 11)  # median (inverted cdf) = 5: bins (-inf, 5], (5, inf) hold 1/2, 1/2
    new = [1, 1, 1, 6]  # 3/4, 1/4
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert drift.population_stability_index(reference, new, n_bins=2) == pytest.approx(expected)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi__empty_bin_takes_epsilon():
    reference = np.arange(1, 11)
    new = [1, 2, 3]  # everything in the first bin; the second is empty -> eps
    eps = drift.PSI_EPSILON
    expected = (1 - 0.5) * math.log(1 / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
    assert drift.population_stability_index(reference, new, n_bins=2) == pytest.approx(expected)


def test_psi__identical_samples_are_zero_and_nan_ignored():
    x = np.random.default_rng(1).normal(size=500)
    assert drift.population_stability_index(x, x) == pytest.approx(0.0)
    assert drift.population_stability_index(x, np.r_[x, np.nan, np.nan]) == pytest.approx(0.0)


def test_psi_bins__discrete_feature_gets_one_bin_per_value():
    dosage = np.array([0] * 60 + [1] * 30 + [2] * 10)
    edges = drift.psi_bin_edges(dosage, n_bins=10)
    assert edges.tolist() == [0, 1]  # the 10%..90% quantiles are 0 or 1: bins (-inf, 0], (0, 1], (1, inf)
    assert drift.bin_proportions(dosage, edges).tolist() == [0.6, 0.3, 0.1]
    # 2 -> 0 copies: (0.7-0.6) ln(0.7/0.6) + 0 + (eps-0.1) ln(eps/0.1)
    new = np.array([0] * 7 + [1] * 3)
    eps = drift.PSI_EPSILON
    expected = 0.1 * math.log(0.7 / 0.6) + (eps - 0.1) * math.log(eps / 0.1)
    assert drift.population_stability_index(dosage, new) == pytest.approx(expected)


def test_psi__null_expectation_is_small_and_a_shift_is_large():
    rng = np.random.default_rng(2)
    ref, same, shifted = rng.normal(size=2000), rng.normal(size=2000), rng.normal(0.8, 1, size=2000)
    assert drift.population_stability_index(ref, same) < 0.05  # ~ 9 (1/2000 + 1/2000) = 0.009
    assert drift.population_stability_index(ref, shifted) > 0.25


def test_score_drift__ks_by_hand():
    ref = [0.1, 0.2, 0.3, 0.4]
    new = [0.35, 0.45, 0.55, 0.65]
    # ECDF gap is largest at 0.3 / 0.4: F_ref(0.3) = 3/4, F_new(0.3) = 0 -> D = 0.75
    out = drift.score_drift(ref, new, n_bins=2)
    assert out["ks"] == pytest.approx(0.75)
    assert out["ks_p"] == pytest.approx(stats.ks_2samp(ref, new).pvalue)
    assert out["n_reference"] == 4 and out["n_new"] == 4
    assert out["mean_reference"] == pytest.approx(0.25) and out["mean_new"] == pytest.approx(0.5)
    # median 0.2: reference 1/2, 1/2; new 0, 1
    eps = drift.PSI_EPSILON
    assert out["psi"] == pytest.approx((eps - 0.5) * math.log(eps / 0.5) + 0.5 * math.log(2))


def test_drift_decision__each_criterion_and_none():
    calm = {"af": {"n_significant": 0, "n_variants": 1000, "fraction_significant": 0.0, "fst": 0.0004},
            "max_feature_psi": 0.08, "max_psi_feature": "age", "score": {"psi": 0.05}}
    thresholds = {"min_significant_fraction": 0.01, "max_fst": 0.01, "psi_threshold": 0.25,
                  "score_psi_threshold": 0.25}
    assert drift.drift_decision(calm, thresholds) == (False, [])
    shifted = {**calm, "af": {"n_significant": 120, "n_variants": 1000, "fraction_significant": 0.12,
                              "fst": 0.03}}
    detected, reasons = drift.drift_decision(shifted, thresholds)
    assert detected and len(reasons) == 2 and "120 of 1000" in reasons[0] and "Fst" in reasons[1]
    assert drift.drift_decision({**calm, "score": {"psi": 0.4}}, thresholds)[0]
    assert drift.drift_decision({**calm, "max_feature_psi": 0.3}, thresholds)[1] == ["feature age PSI 0.300 >= 0.25"]
    assert drift.drift_decision(shifted, {})[0] is False  # no thresholds, no criteria

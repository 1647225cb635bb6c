"""genoflow.qc.plink_qc on tiny hand-computed cases (plink concordance: tests/concordance/test_qc.py)."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.qc.plink_qc import (
    QcThresholds,
    f_from_counts,
    het_f_counts,
    hwe_x_exact_p,
    male_x_haploid_coded,
    plink_qc,
    sex_check,
    variant_filter_pass,
    variant_filter_stats,
)
from genoflow.qc.variant_qc import hwe_exact_p


def test_hwe_x_exact_p__single_male_allele():
    # One ALT allele among 267 females (all REF/REF) and 330 males: it sits in one of 330 males
    # (weight 330) or is a female het (weight 2 x 267). Observed: in a male, the less likely one.
    p = hwe_x_exact_p([267], [0], [0], [329], [1])
    assert p[0] == pytest.approx(330 / (330 + 534), rel=1e-12)  # plink2 --hardy prints 0.381944
    assert hwe_x_exact_p([266], [1], [0], [330], [0])[0] == pytest.approx(1.0)


def test_hwe_x_exact_p__no_males_equals_the_autosomal_test():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 40, size=(20, 3))
    x = hwe_x_exact_p(counts[:, 0], counts[:, 1], counts[:, 2], np.zeros(20), np.zeros(20))
    np.testing.assert_allclose(x, hwe_exact_p(counts[:, 1], counts[:, 0], counts[:, 2]), rtol=1e-9)


def test_hwe_x_exact_p__edge_cases():
    p = hwe_x_exact_p([0, 5, 0], [0, 0, 0], [0, 0, 0], [0, 3, 0], [0, 0, 4])
    assert np.isnan(p[0]) and p[1] == 1.0 and p[2] == 1.0
    midp = hwe_x_exact_p([40], [2], [8], [30], [12], midp=True)
    assert 0 < midp[0] < hwe_x_exact_p([40], [2], [8], [30], [12])[0]


def test_variant_filter_stats__x_counts_males_once():
    # Variant on X: females 0/1/2/missing, males coded 0/2 (diploid) with one het haploid call.
    d = np.array([[0, 1, 2, -1, 0, 2, 1]], dtype=np.int8)
    male = np.array([False, False, False, False, True, True, True])
    s = variant_filter_stats(d, is_x=np.array([True]), male=male)
    # ALT alleles: females 1 + 2, males 1 + half of the het haploid; alleles: 6 + 3.
    assert s["alt_af"][0] == pytest.approx(4.5 / 9)
    assert s["call_rate"][0] == pytest.approx(6 / 7)
    assert not male_x_haploid_coded(d, male)
    haploid = np.array([[0, 1, 2, -1, 0, 1, 1]], dtype=np.int8)
    assert male_x_haploid_coded(haploid, male)
    assert variant_filter_stats(haploid, is_x=np.array([True]), male=male)["alt_af"][0] == pytest.approx(5 / 9)


def test_variant_filter_pass__thresholds_inclusive_like_plink():
    stats = {"call_rate": np.array([0.95, 0.9499, 1.0, 1.0]), "maf": np.array([0.01, 0.2, 0.0099, 0.2]),
             "hwe_p": np.array([1e-6, 0.5, 0.5, 9.9e-7]), "n_called": np.array([10, 10, 10, 10]),
             "het_excess": np.array([False, False, False, False])}
    t = QcThresholds(min_call_rate=0.95, min_maf=0.01, min_hwe_p=1e-6)
    assert variant_filter_pass(stats, t).tolist() == [True, False, False, False]
    # keep-fewhet: an HWE failure with too few hets is kept.
    fewhet = QcThresholds(min_call_rate=0.95, min_maf=0.01, min_hwe_p=1e-6, hwe_keep_fewhet=True)
    assert variant_filter_pass(stats, fewhet).tolist() == [True, False, False, True]


def test_het_f_counts__skips_monomorphic_and_matches_the_formula():
    d = np.array([[0, 1, 2, 1], [0, 0, 0, 0], [0, 0, 1, -1]], dtype=np.int8)
    c = het_f_counts(d)
    # Variant 2 is monomorphic: skipped. p = 0.5 and 1/6: E_hom = 0.5 and 1 - 2(1/6)(5/6) = 13/18.
    assert c["n_obs"].tolist() == [2, 2, 2, 1]
    assert c["o_hom"].tolist() == [2, 1, 1, 0]
    np.testing.assert_allclose(c["e_hom"], [0.5 + 13 / 18, 0.5 + 13 / 18, 0.5 + 13 / 18, 0.5])
    f = f_from_counts(c)
    assert f[0] == pytest.approx((2 - (0.5 + 13 / 18)) / (2 - (0.5 + 13 / 18)))


def test_sex_check__plink19_thresholds():
    out = sex_check([0.95, 0.05, 0.5, 0.95, np.nan], [True, False, True, False, True])
    assert out["snp_sex"].tolist() == [1, 2, 0, 1, 0]
    assert out["problem"].tolist() == [False, False, True, True, False]


def test_sex_check__unknown_sex_is_never_a_problem():
    out = sex_check([0.95, 0.05, 0.5], [False, False, False], known=[True, False, False])
    assert out["problem"].tolist() == [True, False, False]  # only the first has a reported sex to contradict


def test_plink_qc__mind_runs_before_the_variant_filters():
    # Sample 0 misses 3 of 4 calls: --mind removes it first, so variant 0 (missing only in sample
    # 0) then has a call rate of 1 and passes --geno 0.05, as in plink2.
    d = np.array([[-1] + [0, 1] * 10, [-1] + [1, 0] * 10, [-1] + [2, 1] * 10, [0] + [1, 1] * 10], dtype=np.int8)
    t = QcThresholds(min_call_rate=0.95, min_maf=0.01, min_hwe_p=0.0, max_sample_missingness=0.5, max_het_sd=10)
    out = plink_qc(d, ["1"] * 4, np.zeros(21, dtype=bool), t)
    assert out["mind_pass"].tolist() == [False] + [True] * 20
    assert out["variant_pass"].tolist() == [True, True, True, True]
    assert np.isnan(out["het_f"][0]) and np.isnan(out["sex_f"]).all() and not out["sex_problem"].any()


def test_qc_thresholds__from_params_ignores_other_keys():
    t = QcThresholds.from_params({"min_call_rate": "0.9", "min_maf": 0.05, "vcf": "raw/x.vcf.gz", "hwe_midp": True})
    assert t.min_call_rate == 0.9 and t.min_maf == 0.05 and t.hwe_midp is True and t.min_hwe_p == 1e-6

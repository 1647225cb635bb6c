"""Tests of biallelic SNV calling and joint genotyping (genoflow.reads.genotyping).

Likelihoods are checked against the model written out base by base; QUAL against bcftools' formula
(mcall.c: ``-4.343 * (ref_lk - logsumexp(lk_sum, ref_lk))`` with the prior added to every non-reference
allele set); the behaviours the issue names (a het at 30x, errors at 1 %, no coverage, joint rescue)
against what the model implies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from genoflow.reads.genotyping import (
    call_window,
    candidate_sites,
    em_allele_frequency,
    genotype_log_likelihoods,
    site_qual,
    watterson_prior,
)
from genoflow.reads.pileup import pileup_window

A, C, G, T = range(4)
REF_A = np.frombuffer(b"A", dtype=np.uint8)


def site(*samples: dict[str, list[int]]):
    """A one-position pileup (window 0..0): each sample a dict base -> list of qualities."""
    bases, quals, idx = [], [], []
    for i, sample in enumerate(samples):
        for base, qs in sample.items():
            for q in qs:
                bases.append(base.encode())
                quals.append(bytes([q]))
                idx.append(i)
    return pileup_window(bases, quals, [0] * len(bases), idx, len(samples), 0, 1, 13)


def p_base(base: str, genotype: str, q: int) -> float:
    e = 10 ** (-q / 10)
    return sum((1 - e) if base == allele else e / 3 for allele in genotype) / 2


def test_genotype_log_likelihoods__three_reads_by_hand():
    p = site({"A": [30], "G": [20, 40]})
    gl = genotype_log_likelihoods(p, np.array([0]), np.array([A]), np.array([G]))
    for k, genotype in enumerate(("AA", "AG", "GG")):
        expected = sum(math.log(p_base(b, genotype, q)) for b, q in (("A", 30), ("G", 20), ("G", 40)))
        assert gl[0, 0, k] == pytest.approx(expected, rel=1e-12)


def test_genotype_log_likelihoods__other_alleles_drop_out():
    # With C and T bases too, the full likelihood differs from the REF/ALT-only one by the same amount
    # for RR, RA and AA: those bases have P = e/3 under each, so they cannot change any call.
    reads = {"A": [30, 25, 35], "G": [20, 40], "C": [15, 22], "T": [18]}
    gl = genotype_log_likelihoods(site(reads), np.array([0]), np.array([A]), np.array([G]))[0, 0]
    full = np.array([sum(math.log(p_base(b, genotype, q)) for b, qs in reads.items() for q in qs)
                     for genotype in ("AA", "AG", "GG")])
    assert np.allclose(full - gl, (full - gl)[0], rtol=0, atol=1e-10)
    assert (full - gl)[0] == pytest.approx(sum(math.log(10 ** (-q / 10) / 3) for q in (15, 22, 18)))


def test_candidate_sites__alt_by_quality_weighted_support():
    # Three C of Q 13 against two G of Q 40: G has more quality-weighted support.
    p = site({"A": [30] * 10, "C": [13] * 3, "G": [40] * 2})
    columns, ref, alt = candidate_sites(p, REF_A, 2)
    assert columns.tolist() == [0] and ref.tolist() == [A] and alt.tolist() == [G]
    assert candidate_sites(p, REF_A, 3)[0].tolist() == []  # no sample has 3 G
    assert candidate_sites(p, np.frombuffer(b"N", dtype=np.uint8), 1)[0].tolist() == []  # REF N: never


def test_call_window__het_at_30x():
    calls = call_window(site({"A": [30] * 15, "G": [30] * 15}), REF_A)
    assert len(calls) == 1 and calls.dosage.tolist() == [[1]] and calls.gq.tolist() == [[99]]
    assert calls.dp.tolist() == [[30]] and calls.qual[0] > 100 and calls.alt.tolist() == [G]


def test_call_window__hom_alt():
    calls = call_window(site({"G": [30] * 29, "A": [20]}, {"G": [35] * 20}), REF_A)
    assert calls.dosage.tolist() == [[2, 2]] and calls.gq.tolist() == [[99, 99]]
    assert calls.af[0] == pytest.approx(1.0, abs=1e-6)


def test_call_window__errors_at_1_percent_at_30x_not_called():
    # 5 samples x 30 reads over 2,000 hom-ref positions, 1 % of bases replaced by a random other base,
    # qualities Q20 (e = 1 %, calibrated): candidates there are (>= 2 errors of one base), calls none.
    rng = np.random.default_rng(7)
    n_pos, depth, n_samples = 2000, 30, 5
    reference = rng.choice(list(b"ACGT"), n_pos).astype(np.uint8)
    bases, idx = [], []
    for s in range(n_samples):
        for _ in range(depth):
            read = reference.copy()
            wrong = rng.random(n_pos) < 0.01
            read[wrong] = (np.searchsorted(list(b"ACGT"), read[wrong]) + rng.integers(1, 4, wrong.sum())) % 4
            read[wrong] = np.frombuffer(b"ACGT", dtype=np.uint8)[read[wrong]]
            bases.append(read.tobytes())
            idx.append(s)
    p = pileup_window(bases, [bytes([20]) * n_pos] * len(bases), [0] * len(bases), idx, n_samples, 0, n_pos, 13)
    calls = call_window(p, reference)
    assert calls.n_candidates > 10
    assert len(calls) == 0


def test_call_window__no_coverage_is_missing():
    calls = call_window(site({"A": [30] * 15, "G": [30] * 15}, {}, {"G": [30]}), REF_A)
    assert calls.dosage.tolist() == [[1, -1, -1]]  # no reads; one base < min_dp 2
    assert calls.gq.tolist() == [[99, 0, 0]] and calls.dp.tolist() == [[30, 0, 1]]
    assert call_window(site({"A": [30] * 15, "G": [30] * 15}, {}, {"G": [30]}), REF_A, min_dp=1).dosage[0, 2] == 2


def test_call_window__joint_rescue():
    # One ALT base among 8 (Q30): alone, QUAL stays far below 20 (the prior 1.1e-3 against
    # L(RA)/L(RR) ~ e^2.5), so no site. In a cohort where the site is common (f ~ 0.5), the same
    # reads are genotyped 0/1: L(RA) > L(RR), and the HWE prior at f favours RA (2f(1-f) vs (1-f)^2).
    lonely = {"A": [30] * 7, "G": [30]}
    assert len(call_window(site(lonely), REF_A)) == 0
    others = [{"A": [30] * 10, "G": [30] * 10}] * 6 + [{"G": [30] * 20}] * 2 + [{"A": [30] * 20}] * 2
    calls = call_window(site(*others, lonely), REF_A)
    assert calls.dosage.tolist() == [[1] * 6 + [2] * 2 + [0] * 2 + [1]]
    assert 0.4 < calls.af[0] < 0.6 and calls.gq[0, -1] < 99  # called, with less confidence


def test_em_allele_frequency__known_genotypes_at_depth():
    cohort = [{"A": [30] * 20}] * 5 + [{"A": [30] * 10, "G": [30] * 10}] * 4 + [{"G": [30] * 20}]
    p = site(*cohort)
    gl = genotype_log_likelihoods(p, np.array([0]), np.array([A]), np.array([G]))
    f = em_allele_frequency(gl, p.depth.sum(axis=2).T > 0)
    assert f[0] == pytest.approx((4 + 2) / 20, abs=1e-6)
    # A sample without data changes nothing.
    p2 = site(*cohort, {})
    gl2 = genotype_log_likelihoods(p2, np.array([0]), np.array([A]), np.array([G]))
    assert em_allele_frequency(gl2, p2.depth.sum(axis=2).T > 0)[0] == pytest.approx(f[0], abs=1e-9)


def test_site_qual__bcftools_formula():
    rng = np.random.default_rng(3)
    gl = rng.normal(-20, 5, (4, 6, 3))
    f = rng.uniform(0.05, 0.95, 4)
    prior = watterson_prior(1.1e-3, 6)
    hwe = np.stack([(1 - f) ** 2, 2 * f * (1 - f), f ** 2], axis=-1)
    for i in range(4):
        ref_lk = gl[i, :, 0].sum()
        lk_ra = np.log((np.exp(gl[i]) * hwe[i]).sum(axis=1)).sum() + math.log(prior)
        lk_aa = gl[i, :, 2].sum() + math.log(prior)
        lk_sum = np.logaddexp(lk_ra, lk_aa)
        assert site_qual(gl, f, prior)[i] == pytest.approx(-4.342944819 * (ref_lk - np.logaddexp(lk_sum, ref_lk)))


def test_site_qual__no_evidence():
    # Every genotype alike: P(all RR) = 1 / (1 + 2 prior), a QUAL near 0.
    qual = site_qual(np.zeros((1, 3, 3)), np.array([0.5]), 1e-3)
    assert qual[0] == pytest.approx(10 * math.log10(1 + 2e-3))


def test_watterson_prior__as_bcftools():
    assert watterson_prior(1.1e-3, 5) == pytest.approx(1.1e-3 * sum(1 / i for i in range(1, 10)))
    assert watterson_prior(0.5, 1000) == 0.99

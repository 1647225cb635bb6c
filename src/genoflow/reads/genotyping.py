"""Biallelic SNV calling and joint genotyping of a cohort from a window's pileup (:mod:`genoflow.reads.pileup`).

A kernel of the ``call`` step, vectorised over the sites of a window and the samples of the cohort. SNVs
only: short indels are out in this release (the pileup drops deletions and the reads carry no insertions).

Model, after bcftools' multiallelic caller (``bcftools call -m``, ``mcall.c``), restricted to two alleles:

1. Candidates. At each position whose reference base is A, C, G or T, the candidate ALT is the
   non-reference allele with the most quality-weighted support over the cohort (the sum over its bases
   of ``-log(e/3)``); the position is a candidate when some sample has ``min_alt_reads`` bases of it.
2. Genotype likelihoods. For genotypes RR, RA, AA and ``e`` each base's error probability:
   ``log L(RR) = hom[R] + other[A]``, ``log L(RA) = het[R] + het[A]``, ``log L(AA) = other[R] + hom[A]``.
   Bases of the two other alleles have ``P = e/3`` under all three genotypes and drop out.
3. Joint. The ALT frequency ``f`` is the maximum-likelihood estimate over every sample with data, by EM
   with Hardy-Weinberg genotype frequencies (bcftools estimates it from the QS sums in one step instead).
   Site quality, as ``mcall_find_best_alleles``: with ``theta' = theta * a_M`` (``--prior``, times
   Watterson's ``a_M = sum_{i=1}^{2N-1} 1/i`` over the ``N`` diploid samples, capped at 0.99)::

       L0 = prod_s L_s(RR)                                  all samples hom-ref, prior weight 1
       L1 = theta' * prod_s sum_g HWE(f)_g L_s(g)           the allele set {R, A}
       L2 = theta' * prod_s L_s(AA)                         the allele set {A}
       QUAL = -10 log10(L0 / (L0 + L1 + L2)) = -10 log10 P(every sample RR | data)

   A site is kept with ``QUAL >= min_qual`` and at least one called non-reference genotype.
4. Each sample: the posterior ``P(g | data) ~ HWE(f)_g L_s(g)``; GT its argmax, GQ ``-10 log10(1 - max
   posterior)`` truncated to an integer and capped at 99, DP its counted bases at the site. GT is missing
   (``./.``, dosage -1, GQ 0) when DP < ``min_dp`` and always when DP is 0.

Every candidate that passes is genotyped in every sample: the joint part. A sample with a little
evidence at a site common in the cohort is called from its likelihoods under the cohort's frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoflow.genotypes import MISSING
from genoflow.reads.pileup import ALLELES, Pileup

__all__ = ["SiteCalls", "call_window", "candidate_sites", "em_allele_frequency", "genotype_log_likelihoods",
           "genotype_posteriors", "site_qual", "watterson_prior"]

GQ_CAP = 99
_LOG10 = np.log(10.0)
_F_MIN = 1e-9  # EM frequencies stay inside (0, 1): at 0 or 1 the HWE prior would rule genotypes out for good
_EM_ITERATIONS = 200
_EM_TOLERANCE = 1e-8
_REF_CODE = np.full(256, -1, dtype=np.int8)  # reference byte (either case) -> allele 0..3, -1 for N and others
for _i, _b in enumerate(ALLELES):
    _REF_CODE[_b] = _REF_CODE[_b | 0x20] = _i


@dataclass(frozen=True)
class SiteCalls:
    """The called sites of a window, in position order.

    Attributes
    ----------
    pos : numpy.ndarray of int64, shape (n_sites,)
        0-based reference positions.
    ref, alt : numpy.ndarray of int8, shape (n_sites,)
        Allele indices into ``ALLELES`` (A, C, G, T).
    qual, af : numpy.ndarray of float64, shape (n_sites,)
        Site QUAL and the EM ALT frequency.
    dosage : numpy.ndarray of int8, shape (n_sites, n_samples)
        0/1/2 ALT copies, -1 missing.
    gq : numpy.ndarray of uint8, shape (n_sites, n_samples)
    dp : numpy.ndarray of int32, shape (n_sites, n_samples)
    n_candidates : int
        Candidate positions of the window, kept or not.
    """

    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    qual: np.ndarray
    af: np.ndarray
    dosage: np.ndarray
    gq: np.ndarray
    dp: np.ndarray
    n_candidates: int

    def __len__(self) -> int:
        return len(self.pos)


def watterson_prior(theta: float, n_samples: int) -> float:
    """bcftools' site prior ``theta * a_M`` (``mcall_init``) for ``n_samples`` diploid samples, capped at 0.99.

    >>> round(watterson_prior(1.1e-3, 1), 6)  # 2 haplotypes: a_M = 1
    0.0011
    """
    n = 2 * max(int(n_samples), 1)
    a_m = float(np.sum(1.0 / np.arange(1, n))) if n > 1 else 1.0
    return min(theta * a_m, 0.99)


def candidate_sites(pileup: Pileup, ref_codes: np.ndarray, min_alt_reads: int):
    """The window columns that are SNV candidates, with their REF and candidate ALT allele.

    Parameters
    ----------
    pileup : Pileup
    ref_codes : numpy.ndarray of uint8, shape (win_len,)
        The reference bases of the window (ASCII).
    min_alt_reads : int

    Returns
    -------
    columns : numpy.ndarray of int64
        Window columns (0 .. win_len - 1).
    ref, alt : numpy.ndarray of int8
        Allele indices.
    """
    ref = _REF_CODE[np.asarray(ref_codes, dtype=np.uint8)]
    support = -pileup.other.sum(axis=0)  # (win_len, 4): quality-weighted base counts over the cohort
    support[np.arange(len(ref)), np.maximum(ref, 0)] = -np.inf
    alt = support.argmax(axis=1).astype(np.int8)
    alt_reads = np.take_along_axis(pileup.depth, alt[None, :, None].astype(np.int64), axis=2)[:, :, 0]
    is_candidate = (ref >= 0) & (alt_reads.max(axis=0, initial=0) >= min_alt_reads)
    columns = np.flatnonzero(is_candidate)
    return columns, ref[columns], alt[columns]


def genotype_log_likelihoods(pileup: Pileup, columns: np.ndarray, ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    """Natural-log likelihoods of RR, RA, AA per site and sample, shape (n_sites, n_samples, 3).

    A sample without counted bases has 0 for all three (no evidence either way).
    """
    columns = np.asarray(columns, dtype=np.int64)

    def at(sums: np.ndarray, allele: np.ndarray) -> np.ndarray:  # (n_sites, n_samples)
        return sums[:, columns, np.asarray(allele, dtype=np.int64)].T

    return np.stack([at(pileup.hom, ref) + at(pileup.other, alt),
                     at(pileup.het, ref) + at(pileup.het, alt),
                     at(pileup.other, ref) + at(pileup.hom, alt)], axis=-1)


def _log_hwe(f: np.ndarray) -> np.ndarray:
    """log HWE genotype frequencies (RR, RA, AA) for ALT frequencies ``f``, shape f.shape + (3,)."""
    f = np.clip(f, _F_MIN, 1.0 - _F_MIN)
    return np.stack([2 * np.log1p(-f), np.log(2.0) + np.log(f) + np.log1p(-f), 2 * np.log(f)], axis=-1)


def genotype_posteriors(gl: np.ndarray, f: np.ndarray) -> np.ndarray:
    """P(genotype | data) under HWE at ALT frequency ``f`` (n_sites,), from ``gl`` (n_sites, n_samples, 3)."""
    joint = gl + _log_hwe(np.asarray(f, dtype=np.float64))[:, None, :]
    joint -= joint.max(axis=-1, keepdims=True)
    post = np.exp(joint)
    return post / post.sum(axis=-1, keepdims=True)


def em_allele_frequency(gl: np.ndarray, has_data: np.ndarray) -> np.ndarray:
    """Maximum-likelihood ALT frequency per site under HWE, by EM over the samples with data.

    Parameters
    ----------
    gl : numpy.ndarray of float64, shape (n_sites, n_samples, 3)
        Genotype log-likelihoods (RR, RA, AA).
    has_data : numpy.ndarray of bool, shape (n_sites, n_samples)

    Returns
    -------
    numpy.ndarray of float64, shape (n_sites,)
        0 where no sample has data.
    """
    n = has_data.sum(axis=1)
    if gl.shape[0] == 0:
        return np.zeros(0)
    # Start from the flat-prior genotype posteriors' frequency: close to the answer at any depth.
    f = _expected_alt_fraction(genotype_posteriors(gl, np.full(gl.shape[0], 0.5)), has_data, n)
    for _ in range(_EM_ITERATIONS):
        updated = _expected_alt_fraction(genotype_posteriors(gl, f), has_data, n)
        done = np.abs(updated - f).max() < _EM_TOLERANCE
        f = updated
        if done:
            break
    return f


def _expected_alt_fraction(post: np.ndarray, has_data: np.ndarray, n: np.ndarray) -> np.ndarray:
    alt_copies = (post[..., 1] + 2 * post[..., 2]) * has_data
    return alt_copies.sum(axis=1) / np.maximum(2 * n, 1)


def site_qual(gl: np.ndarray, f: np.ndarray, prior: float) -> np.ndarray:
    """Phred of P(every sample RR | data) with site prior ``prior`` (:func:`watterson_prior`), shape (n_sites,).

    Samples without data have equal likelihoods (0) and drop out of every hypothesis.
    """
    log_prior = np.log(prior)
    ref_lk = gl[..., 0].sum(axis=1)
    joint = gl + _log_hwe(np.asarray(f, dtype=np.float64))[:, None, :]
    het_lk = np.logaddexp.reduce(joint, axis=-1).sum(axis=1) + log_prior
    hom_alt_lk = gl[..., 2].sum(axis=1) + log_prior
    total = np.logaddexp(ref_lk, np.logaddexp(het_lk, hom_alt_lk))
    return -(ref_lk - total) * (10.0 / _LOG10) + 0.0  # + 0.0: no -0.0


def call_window(pileup: Pileup, ref_codes: np.ndarray, *, min_alt_reads: int = 2, min_qual: float = 20.0,
                min_dp: int = 2, prior: float = 1.1e-3) -> SiteCalls:
    """Call and jointly genotype the SNVs of one window (see the module docstring for the model).

    Parameters
    ----------
    pileup : Pileup
        Every sample of the cohort (samples without reads have zero depth).
    ref_codes : numpy.ndarray of uint8, shape (pileup.win_len,)
        The reference bases of the window (ASCII; positions whose base is not A, C, G, T are never called).
    min_alt_reads, min_qual, min_dp, prior
        The ``reads`` params of the same names; ``prior`` is bcftools' ``--prior`` (theta).

    Returns
    -------
    SiteCalls

    Examples
    --------
    >>> from genoflow.reads.pileup import pileup_window
    >>> reads = [b"A" * 10] * 5 + [b"G" * 10] * 5  # one sample, 10x, half G over a reference of A
    >>> p = pileup_window(reads, [bytes([30]) * 10] * 10, [0] * 10, [0] * 10, 1, 0, 10, 13)
    >>> calls = call_window(p, np.frombuffer(b"A" * 10, dtype=np.uint8))
    >>> len(calls), calls.dosage[:, 0].tolist()[:3], chr(ALLELES[calls.alt[0]])
    (10, [1, 1, 1], 'G')
    """
    if len(ref_codes) != pileup.win_len:
        raise ValueError(f"call_window: {len(ref_codes)} reference bases for a window of {pileup.win_len}")
    columns, ref, alt = candidate_sites(pileup, ref_codes, min_alt_reads)
    gl = genotype_log_likelihoods(pileup, columns, ref, alt)
    dp = pileup.depth[:, columns, :].sum(axis=2).T.astype(np.int32)  # (n_sites, n_samples)
    has_data = dp > 0
    f = em_allele_frequency(gl, has_data)
    qual = site_qual(gl, f, watterson_prior(prior, pileup.n_samples))
    post = genotype_posteriors(gl, f)
    called = has_data & (dp >= min_dp)
    dosage = np.where(called, post.argmax(axis=-1), MISSING).astype(np.int8)
    # 1 - max posterior as the sum of the others: exact where max posterior rounds to 1.
    best = post.argmax(axis=-1)
    rest = post.sum(axis=-1) - np.take_along_axis(post, best[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore"):
        gq = np.minimum(np.floor(-10.0 * np.log10(np.maximum(rest, 0.0))), GQ_CAP)
    gq = np.where(called, gq, 0).astype(np.uint8)
    keep = (qual >= min_qual) & (dosage > 0).any(axis=1)
    return SiteCalls(pos=pileup.win_start + columns[keep], ref=ref[keep], alt=alt[keep], qual=qual[keep],
                     af=f[keep], dosage=dosage[keep], gq=gq[keep], dp=dp[keep], n_candidates=len(columns))

"""Cohort QC with plink2's semantics and order: --mind, then --geno / --hwe / --maf, then --het and sex check.

plink2 2.00a3.5 (verified from its log on the concordance cohort) applies, with
``--mind m --geno g --hwe p --maf f``:

1. ``--mind``: sample missing-call rate over **all** variants (X included); samples with a rate
   above ``m`` are removed;
2. on the remaining samples, allele frequencies and per-variant filters: ``--geno`` (missing-call
   rate above ``g``), ``--hwe`` (exact test p below ``p``; founders only, and every sample here is
   a founder), ``--maf`` (minor allele frequency below ``f``). Each is a per-variant test on the
   same samples, so their relative order does not change the surviving set;
3. reports on the survivors: ``--het`` (method-of-moments F of autosomal variants, plink2
   semantics: frequencies from the samples, monomorphic variants skipped, no small-sample
   correction) and plink 1.9's ``--check-sex`` (X-chromosome F; below 0.2 female, above 0.8 male).

genoflow then flags heterozygosity outliers (F beyond mean +- ``max_het_sd`` SD of the surviving
samples, plink's customary follow-up of ``--het``) and sex-check problems; neither changes the
variant set (plink has no such filter: it would take a second run).

Chromosome X (contig ``X``, ``chrX`` or ``23``) uses the reported sex, as plink2 does: a male
contributes one allele (dosage 0 = REF; 1 = a haploid ALT call, 2 = a diploid-coded ALT call) to
allele frequencies and, for ``--hwe``, Graffelman & Weir's exact test with males; females are
diploid. Samples of unknown sex are treated as female on X. Pseudo-autosomal regions are not split
(like plink2 without ``--split-par``): keep them off contig X.

The functions take whole in-memory arrays (:func:`plink_qc`, the reference driver, used by the
tests and small cohorts) or blocks (:func:`variant_filter_stats`, :func:`het_f_counts`,
:func:`sex_check_counts`: additive per-sample counts a Spark job sums over partitions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from genoflow.genotypes import MISSING
from genoflow.qc.variant_qc import _TIE_TOLERANCE, genotype_counts, hwe_exact_p

__all__ = [
    "X_CONTIGS", "QcThresholds", "is_x_contig", "variant_filter_stats", "variant_filter_pass", "hwe_x_exact_p",
    "het_f_counts", "male_x_haploid_coded", "sex_check_counts", "f_from_counts", "sex_check", "het_outliers",
    "plink_qc",
]

X_CONTIGS = ("X", "chrX", "23")

# plink compares its thresholds with a little slack for rounding (e.g. 1 - 0.95 != 0.05 in binary).
_EPS = 1e-9


@dataclass(frozen=True)
class QcThresholds:
    """The QC parameters (``params.yaml`` ``preprocess:``) and the plink2 flags they correspond to.

    Attributes
    ----------
    min_call_rate : float
        ``--geno 1-min_call_rate``: variants with missing rate above ``1 - min_call_rate`` fail.
    min_maf : float
        ``--maf``: variants with minor allele frequency below it fail.
    min_hwe_p : float
        ``--hwe``: variants with an exact-test p-value below it fail.
    max_sample_missingness : float
        ``--mind``: samples with missing rate above it fail (before the variant filters).
    max_het_sd : float
        Samples whose ``--het`` F is more than this many SD from the mean fail.
    hwe_midp, hwe_keep_fewhet : bool
        plink2 ``--hwe`` modifiers ``midp`` and ``keep-fewhet`` (both off by default, as in plink2).
    sex_f_female, sex_f_male : float
        plink 1.9 ``--check-sex`` thresholds (0.2, 0.8).
    """

    min_call_rate: float = 0.95
    min_maf: float = 0.01
    min_hwe_p: float = 1e-6
    max_sample_missingness: float = 0.05
    max_het_sd: float = 4.0
    hwe_midp: bool = False
    hwe_keep_fewhet: bool = False
    sex_f_female: float = 0.2
    sex_f_male: float = 0.8

    @classmethod
    def from_params(cls, p: dict) -> QcThresholds:
        """From the ``preprocess`` params section (unknown keys ignored, missing ones default)."""
        def value(key, raw):
            if isinstance(getattr(cls, key), bool) and isinstance(raw, str):
                return raw.strip().lower() in ("true", "1", "yes")
            return type(getattr(cls, key))(raw)

        return cls(**{k: value(k, v) for k, v in p.items() if k in cls.__dataclass_fields__})


def is_x_contig(contig) -> np.ndarray:
    """Boolean mask of X-chromosome contig names (``X``, ``chrX``, ``23``)."""
    return np.isin(np.asarray(contig, dtype=object), X_CONTIGS)


def variant_filter_stats(dosages, *, is_x, male, hwe_midp: bool = False,
                         haploid_coded: bool | None = None) -> dict[str, np.ndarray]:
    """plink2's per-variant filter statistics of a block, on the samples passed.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
        ALT dosages (0/1/2, ``-1`` missing) of the samples that survived ``--mind``.
    is_x : numpy.ndarray, shape (n_variants,), bool
        Variants on chromosome X.
    male : numpy.ndarray, shape (n_samples,), bool
        Reported sex of the same samples.
    hwe_midp : bool
        plink2 ``--hwe ... midp``.
    haploid_coded : bool, optional
        Whether male X calls are haploid-coded (:func:`male_x_haploid_coded` over the whole cohort;
        a Spark job computes it once). Default: inferred from this block.

    Returns
    -------
    dict of str to numpy.ndarray, each shape (n_variants,)
        ``n_called`` (int64), ``call_rate``, ``alt_af`` (X: males counted once), ``maf``,
        ``hwe_p`` (autosomes: Wigginton et al.; X: Graffelman & Weir), ``het_excess`` (bool:
        observed heterozygotes above HWE expectation; for ``keep-fewhet``). NaN where nothing
        is called.
    """
    dosages = np.asarray(dosages)
    is_x = np.asarray(is_x, dtype=bool)
    male = np.asarray(male, dtype=bool)
    n_var, n = dosages.shape
    if is_x.shape != (n_var,) or male.shape != (n,):
        raise ValueError(f"variant_filter_stats: is_x must have shape ({n_var},) and male ({n},)")
    counts = genotype_counts(dosages)  # validates the codes
    out = {k: np.full(n_var, np.nan) for k in ("call_rate", "alt_af", "maf", "hwe_p")}
    out["n_called"] = counts["n_called"]
    out["het_excess"] = np.zeros(n_var, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["call_rate"] = counts["n_called"] / np.float64(n) if n else np.zeros(n_var)
    auto = np.flatnonzero(~is_x)
    if auto.size:
        c = {k: v[auto] for k, v in counts.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            alt_af = (c["n_het"] + 2.0 * c["n_hom_alt"]) / (2.0 * c["n_called"])
        out["alt_af"][auto] = alt_af
        out["hwe_p"][auto] = _with_midp(c["n_het"], c["n_hom_ref"], c["n_hom_alt"], hwe_midp)
        out["het_excess"][auto] = c["n_het"] > 2.0 * alt_af * (1 - alt_af) * c["n_called"]
    xs = np.flatnonzero(is_x)
    if xs.size:
        if haploid_coded is None:
            haploid_coded = male_x_haploid_coded(dosages[xs], male)
        _x_stats(dosages[xs], male, xs, out, hwe_midp, haploid_coded)
    out["maf"] = np.minimum(out["alt_af"], 1.0 - out["alt_af"])
    return out


def _x_stats(dosages, male, rows, out, hwe_midp, haploid_coded) -> None:
    """X rows: a male carries one allele. With diploid coding a male's heterozygous call (dosage 1,
    plink's "het haploid") counts half an ALT allele in the frequency and is left out of the HWE
    test, as plink2 does; with haploid coding dosage 1 is his ALT allele."""
    female = dosages[:, ~male]
    males = dosages[:, male]
    f = genotype_counts(female)
    m_ref = np.count_nonzero(males == 0, axis=1)
    if haploid_coded:
        m_alt, m_het = np.count_nonzero(males >= 1, axis=1), np.zeros(len(rows), dtype=np.int64)
    else:
        m_alt, m_het = np.count_nonzero(males == 2, axis=1), np.count_nonzero(males == 1, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alt_af = ((f["n_het"] + 2.0 * f["n_hom_alt"] + m_alt + 0.5 * m_het)
                  / (2.0 * f["n_called"] + m_alt + m_ref + m_het))
    out["alt_af"][rows] = alt_af
    out["hwe_p"][rows] = hwe_x_exact_p(f["n_hom_ref"], f["n_het"], f["n_hom_alt"], m_ref, m_alt, midp=hwe_midp)
    out["het_excess"][rows] = f["n_het"] > 2.0 * alt_af * (1 - alt_af) * f["n_called"]


def _with_midp(het, hom_ref, hom_alt, midp: bool) -> np.ndarray:
    p = hwe_exact_p(het, hom_ref, hom_alt)
    if not midp:
        return p
    return np.maximum(p - 0.5 * _hwe_observed_prob(het, hom_ref, hom_alt), 0.0)


def _hwe_observed_prob(het, hom_ref, hom_alt) -> np.ndarray:
    """Probability of the observed table under HWE given the allele counts (Levene's formula)."""
    het, hom_ref, hom_alt = (np.asarray(a, dtype=np.float64) for a in (het, hom_ref, hom_alt))
    n = het + hom_ref + hom_alt
    n_a, n_b = 2 * hom_ref + het, 2 * hom_alt + het
    lf = special.gammaln
    log_p = (het * np.log(2.0) + lf(n + 1) + lf(n_a + 1) + lf(n_b + 1)
             - lf(hom_ref + 1) - lf(het + 1) - lf(hom_alt + 1) - lf(2 * n + 1))
    return np.exp(log_p)


def hwe_x_exact_p(f_hom_ref, f_het, f_hom_alt, m_ref, m_alt, *, midp: bool = False) -> np.ndarray:
    """Graffelman & Weir's exact HWE test for chromosome X (females diploid, males haploid).

    Conditional on the sample sizes and the total allele counts, a configuration (males' ALT
    count ``m_A``, females' het count ``f_AB``) has probability

        n_A! n_B! n_f! n_m! 2^f_AB / (f_AA! f_AB! f_BB! m_A! m_B! (2 n_f + n_m)!)

    and the p-value sums the configurations no more likely than the observed one (plink2's
    ``--hwe``/``--hardy`` on chrX). Vectorised per variant over the configuration grid.

    Parameters
    ----------
    f_hom_ref, f_het, f_hom_alt, m_ref, m_alt : array_like of int, shape (n_variants,)
        Female genotype counts and male allele counts among called samples.
    midp : bool
        Subtract half the observed configuration's probability (plink2 ``midp``).

    Returns
    -------
    numpy.ndarray, shape (n_variants,), float64
        NaN where nothing is called; 1 for a monomorphic variant.

    References
    ----------
    Graffelman J, Weir BS (2016). Testing for Hardy-Weinberg equilibrium at biallelic genetic
    markers on the X chromosome. Heredity 116:558-568.
    """
    arrays = [np.asarray(a, dtype=np.int64) for a in (f_hom_ref, f_het, f_hom_alt, m_ref, m_alt)]
    out = np.full(arrays[0].shape, np.nan)
    for i, (aa, ab, bb, mr, ma) in enumerate(zip(*arrays, strict=True)):
        out[i] = _hwe_x_one(int(aa), int(ab), int(bb), int(mr), int(ma), midp)
    return out


def _hwe_x_one(f_rr: int, f_ra: int, f_aa: int, m_r: int, m_a: int, midp: bool) -> float:
    n_f, n_m = f_rr + f_ra + f_aa, m_r + m_a
    if n_f + n_m == 0:
        return float("nan")
    n_alt = 2 * f_aa + f_ra + m_a
    n_ref = 2 * f_rr + f_ra + m_r
    if n_alt == 0 or n_ref == 0:
        return 1.0
    lf = special.gammaln
    # Grid: males' ALT count (rows) x females' het count (columns, parity fixed by the row).
    males_alt = np.arange(max(0, n_alt - 2 * n_f), min(n_m, n_alt) + 1)[:, None]
    female_alt = n_alt - males_alt
    het = (female_alt % 2) + 2 * np.arange(n_f + 1)[None, :]
    hom_alt = (female_alt - het) // 2
    hom_ref = n_f - het - hom_alt
    valid = (het <= female_alt) & (hom_alt >= 0) & (hom_ref >= 0)
    with np.errstate(invalid="ignore"):
        log_p = (het * np.log(2.0) - lf(hom_ref + 1) - lf(het + 1) - lf(hom_alt + 1)
                 - lf(males_alt + 1) - lf(n_m - males_alt + 1))
    log_p = np.where(valid, log_p, -np.inf)
    observed = (f_ra * np.log(2.0) - lf(f_rr + 1) - lf(f_ra + 1) - lf(f_aa + 1) - lf(m_a + 1) - lf(m_r + 1))
    top = log_p.max()
    prob = np.exp(log_p - top)
    total = prob.sum()
    tail = prob[log_p <= observed + _TIE_TOLERANCE].sum()
    p = tail / total
    if midp:
        p -= 0.5 * np.exp(observed - top) / total
    return float(min(max(p, 0.0), 1.0))


def variant_filter_pass(stats: dict, t: QcThresholds) -> np.ndarray:
    """plink2 ``--geno``, ``--hwe`` and ``--maf`` together (bool, shape (n_variants,)).

    A variant with nothing called fails. With ``hwe_keep_fewhet`` a variant failing the HWE test
    with too few heterozygotes is kept (plink2 ``keep-fewhet``).
    """
    call_ok = stats["call_rate"] >= t.min_call_rate - _EPS
    maf_ok = stats["maf"] >= t.min_maf * (1 - _EPS)
    hwe_ok = stats["hwe_p"] >= t.min_hwe_p * (1 - _EPS)
    if t.hwe_keep_fewhet:
        hwe_ok |= ~stats["het_excess"] & np.isfinite(stats["hwe_p"])
    return call_ok & maf_ok & hwe_ok & (stats["n_called"] > 0)


def het_f_counts(dosages) -> dict[str, np.ndarray]:
    """Per-sample additive counts for plink2 ``--het`` over a block of autosomal variants.

    Frequencies come from the samples passed (plink2 without ``--read-freq``); monomorphic variants
    (among the called samples) are skipped, as plink2 does; no small-sample correction.

    Returns ``o_hom``, ``n_obs`` (int64) and ``e_hom`` (float64), each shape (n_samples,). Sum them
    over blocks and call :func:`f_from_counts`.
    """
    dosages = np.asarray(dosages)
    called = dosages != MISSING
    n_called = called.sum(axis=1)
    alt = np.where(called, dosages, 0).sum(axis=1, dtype=np.int64)
    polymorphic = (alt > 0) & (alt < 2 * n_called)
    d, c = dosages[polymorphic], called[polymorphic]
    p = alt[polymorphic] / (2.0 * n_called[polymorphic])
    e_hom_variant = 1.0 - 2.0 * p * (1.0 - p)
    return {
        "o_hom": (c & (d != 1)).sum(axis=0).astype(np.int64),
        "n_obs": c.sum(axis=0).astype(np.int64),
        "e_hom": e_hom_variant @ c,
    }


def male_x_haploid_coded(dosages_x, male) -> bool:
    """Whether male X calls are haploid-coded (ALT = 1, genoflow's reading of a haploid GT) rather
    than homozygous diploid (ALT = 2, callers with ploidy 2): no reported male has a dosage of 2."""
    d = np.asarray(dosages_x)
    return not bool((d[:, np.asarray(male, dtype=bool)] == 2).any())


def sex_check_counts(dosages_x, male, *, haploid_coded: bool) -> dict[str, np.ndarray]:
    """Per-sample additive counts for plink 1.9 ``--check-sex`` over a block of X variants.

    plink stores a haploid call as a homozygous one, so the F of every sample counts observed
    homozygous calls, whatever its reported sex: a male's haploid-coded ALT (1) is homozygous.
    Allele frequencies as plink 1.9 computes them on X: a reported male counts one allele, a female
    two, and a male's heterozygous call (only possible with diploid coding) is missing there.
    Variants with frequency 0 or 1 are skipped. Returns ``o_hom``, ``n_obs``, ``e_hom`` like
    :func:`het_f_counts`; ``haploid_coded`` from :func:`male_x_haploid_coded` over the whole cohort.
    """
    d = np.asarray(dosages_x)
    male = np.asarray(male, dtype=bool)[None, :]
    called = d != MISSING
    if haploid_coded:
        het = called & (d == 1) & ~male
        m_alt, m_called = male & (d == 1), male & called
    else:
        het = called & (d == 1)
        m_alt, m_called = male & (d == 2), male & called & (d != 1)
    female_called = called & ~male
    alt = (np.where(female_called, d, 0).sum(axis=1) + m_alt.sum(axis=1)).astype(np.float64)
    n_alleles = 2.0 * female_called.sum(axis=1) + m_called.sum(axis=1)
    keep = (alt > 0) & (alt < n_alleles)
    p = alt[keep] / n_alleles[keep]
    c = called[keep]
    return {
        "o_hom": (c & ~het[keep]).sum(axis=0).astype(np.int64),
        "n_obs": c.sum(axis=0).astype(np.int64),
        "e_hom": (1.0 - 2.0 * p * (1.0 - p)) @ c,
    }


def f_from_counts(counts: dict) -> np.ndarray:
    """``F = (O_hom - E_hom) / (N - E_hom)`` per sample; NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (counts["o_hom"] - counts["e_hom"]) / (counts["n_obs"] - counts["e_hom"])
    return np.where(np.isfinite(f), f, np.nan)


def sex_check(f, male, t: QcThresholds = QcThresholds(), *, known=None) -> dict[str, np.ndarray]:
    """plink 1.9 ``--check-sex`` calls from X F: ``snp_sex`` 1 male (F > 0.8), 2 female (F < 0.2), 0
    undetermined; ``problem`` where that disagrees with the reported sex (or is undetermined).
    ``known`` (bool per sample; default all): a sample of unknown sex has no problem (plink's sex 0)."""
    f = np.asarray(f, dtype=np.float64)
    snp_sex = np.where(f > t.sex_f_male, 1, np.where(f < t.sex_f_female, 2, 0))
    reported = np.where(np.asarray(male, dtype=bool), 1, 2)
    problem = np.isfinite(f) & (snp_sex != reported)
    if known is not None:
        problem &= np.asarray(known, dtype=bool)
    return {"snp_sex": snp_sex, "problem": problem}


def het_outliers(f, max_het_sd: float) -> np.ndarray:
    """F more than ``max_het_sd`` sample SD from the mean of the finite F values (bool)."""
    from genoflow.qc.sample_qc import flag_outliers

    return flag_outliers(np.asarray(f, dtype=np.float64), max_het_sd)


def plink_qc(dosages, contig, male, t: QcThresholds = QcThresholds()) -> dict[str, np.ndarray]:
    """The whole QC of an in-memory cohort in plink2's order (see the module docstring).

    Parameters
    ----------
    dosages : numpy.ndarray, shape (n_variants, n_samples), int8
    contig : array-like of str, shape (n_variants,)
    male : array-like of bool, shape (n_samples,)
        Reported sex.
    t : QcThresholds

    Returns
    -------
    dict
        ``sample_missingness`` (all variants), ``mind_pass`` (bool), the
        :func:`variant_filter_stats` of the ``mind_pass`` samples and ``variant_pass``;
        ``het_f`` (NaN for samples failing ``--mind``), ``het_outlier``; ``sex_f``, ``snp_sex``,
        ``sex_problem`` (no problem when there is no X variant); ``sample_pass``
        (``mind_pass`` and neither a het outlier nor a sex-check problem).
    """
    dosages = np.asarray(dosages)
    male = np.asarray(male, dtype=bool)
    is_x = is_x_contig(contig)
    missingness = (dosages == MISSING).mean(axis=0) if dosages.shape[0] else np.zeros(dosages.shape[1])
    mind_pass = missingness <= t.max_sample_missingness + _EPS
    kept = dosages[:, mind_pass]
    coding = male_x_haploid_coded(dosages[is_x], male)
    stats = variant_filter_stats(kept, is_x=is_x, male=male[mind_pass], hwe_midp=t.hwe_midp, haploid_coded=coding)
    variant_pass = variant_filter_pass(stats, t)
    n = dosages.shape[1]
    het_f = np.full(n, np.nan)
    het_f[mind_pass] = f_from_counts(het_f_counts(kept[variant_pass & ~is_x]))
    het_outlier = np.zeros(n, dtype=bool)
    het_outlier[mind_pass] = het_outliers(het_f[mind_pass], t.max_het_sd)
    sex_f = np.full(n, np.nan)
    x_rows = variant_pass & is_x
    if x_rows.any():
        sex_f[mind_pass] = f_from_counts(sex_check_counts(kept[x_rows], male[mind_pass], haploid_coded=coding))
    sex = sex_check(sex_f, male, t)
    return {
        "sample_missingness": missingness, "mind_pass": mind_pass, **stats, "variant_pass": variant_pass,
        "het_f": het_f, "het_outlier": het_outlier, "sex_f": sex_f, "snp_sex": sex["snp_sex"],
        "sex_problem": sex["problem"], "sample_pass": mind_pass & ~het_outlier & ~sex["problem"],
    }

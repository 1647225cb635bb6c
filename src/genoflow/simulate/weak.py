"""A weak-effect, two-stratum cohort: the kind of study where cross-validation used to lie (issue 13).

Like a real GWAS-style case/control study (e.g. snpStats' ``for.exercise``): a few causal loci with
per-allele odds ratios of 1.2-1.5, two ancestry strata whose case rates differ, and a quantitative
trait (``ldl``) with its own few loci and noise. The files are laid out like the demo cohort
(:func:`genoflow.simulate.cohort.make_demo_cohort` writes them); each patient's clinical CSV gains
``stratum`` (text, a categorical covariate) and ``ldl`` (a float, empty when missing), and
``disease_status`` follows this module's logistic model instead of the demo's liability threshold.

Genotypes: msprime, an ancestral population split into two strata ``split_generations`` ago
(F_ST about split / (2 N) = 0.1 by default, roughly CEU vs East Asian), so allele frequencies differ by
stratum and an association scan without ancestry covariates (PCs or the stratum) finds spurious hits.

Disease: logit P(case) = b0[stratum] + sum_j log(OR_j) * alt dosage_j; each stratum's intercept is solved
so that its expected case rate is ``case_rates[stratum]``. LDL: ``ldl_mean`` + ``ldl_stratum_shift`` for the
second stratum + sum_j beta_j * alt dosage_j + N(0, ``ldl_noise_sd``^2). ``truth/truth.json`` records the
causal loci, the odds ratios, the intercepts, each patient's stratum and the oracle AUC (the true logit's).
"""

from __future__ import annotations

import os

import msprime
import numpy as np
from scipy import optimize, special

from genoflow.evaluation.metrics import auc_roc
from genoflow.simulate.cohort import Ancestry, _patient_ids, make_demo_cohort, variants_from_tree_sequence

__all__ = ["make_weak_effect_cohort", "STRATA"]

STRATA = ("north", "south")
_POPULATION_SIZE = 10_000
_RECOMBINATION_RATE = 1e-8
_MUTATION_RATE = 1.5e-8
_COMMON_MAF = 0.1  # causal loci are common in both strata, so both can detect them
# Streams of this module (the demo's own streams stay as make_demo_cohort derives them).
_STREAMS = ("disease_loci", "disease", "ldl_loci", "ldl", "ldl_missing")


def make_weak_effect_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = 700,
    sequence_length: int = 1_000_000,
    seed: int = 11,
    odds_ratios: tuple[float, ...] = (1.5, 1.4, 1.3, 1.2),
    case_rates: tuple[float, float] = (0.55, 0.35),
    ldl_betas: tuple[float, ...] = (0.35, 0.3, 0.25),
    ldl_mean: float = 3.2,
    ldl_stratum_shift: float = 0.3,
    ldl_noise_sd: float = 0.6,
    ldl_missing_rate: float = 0.02,
    split_generations: int = 2_000,
    reads_per_patient: int = 30,
    contig: str = "chr22",
    progress: bool = False,
) -> dict:
    """Simulate a weak-effect two-stratum cohort and write ``raw/`` and ``truth/`` under ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Local folder; ``raw/`` and ``truth/`` inside it are replaced once complete.
    n_patients : int
        Diploid patients (>= 4), the first half in stratum ``north``, the rest ``south`` (VCF order).
    sequence_length, seed, reads_per_patient, contig, progress
        As in :func:`genoflow.simulate.cohort.make_demo_cohort`.
    odds_ratios : tuple of float
        Per-alt-allele odds ratio of each disease causal locus (one locus each, > 0).
    case_rates : (float, float)
        Expected case rate in ``north`` and in ``south``, each in (0, 1).
    ldl_betas : tuple of float
        Per-alt-allele effect (mmol/L) of each LDL causal locus, distinct from the disease loci.
    ldl_mean, ldl_stratum_shift, ldl_noise_sd : float
        LDL of a patient with no alt allele in ``north``; the shift in ``south``; the noise SD (> 0).
    ldl_missing_rate : float
        Fraction of patients whose LDL is missing (empty cell), in [0, 1).
    split_generations : int
        Generations since the strata split (> 0).

    Returns
    -------
    dict
        The summary of :func:`~genoflow.simulate.cohort.make_demo_cohort` (``oracle_auc_disease`` is this
        model's) plus ``strata`` (patients per stratum) and ``case_rate_by_stratum`` (observed).

    Raises
    ------
    ValueError
        Naming the parameter, on out-of-range values or too few common variants for the causal loci.
    """
    _check(n_patients, odds_ratios, case_rates, ldl_noise_sd, ldl_missing_rate, split_generations)
    variants = _simulate_strata(n_patients, sequence_length, seed, split_generations)
    stratum = np.repeat(STRATA, [n_patients // 2, n_patients - n_patients // 2])
    rngs = dict(zip(_STREAMS, map(np.random.default_rng, np.random.SeedSequence([seed, 13]).spawn(5)), strict=True))
    disease = _disease(variants, stratum, odds_ratios, case_rates, rngs)
    ldl = _ldl(variants, stratum, disease["loci"], ldl_betas, (ldl_mean, ldl_stratum_shift, ldl_noise_sd),
               ldl_missing_rate, rngs)
    truth = _truth(variants, stratum, disease, ldl, split_generations, contig)
    ancestry = Ancestry(variants=variants, disease_shift=np.zeros(n_patients), truth=truth,
                        disease_status=disease["status"], clinical={"stratum": stratum, "ldl": ldl["value"]})
    # The demo's liability trait is still drawn (its streams keep the reads and clinical data as they are),
    # but only this module's disease status is written.
    summary = make_demo_cohort(
        out_dir, n_patients=n_patients, sequence_length=sequence_length, seed=seed, heritability=0.05,
        prevalence=float(np.mean(case_rates)), n_causal=len(odds_ratios), reads_per_patient=reads_per_patient,
        contig=contig, progress=progress, ancestry=ancestry,
    )
    summary["strata"] = {s: int(np.sum(stratum == s)) for s in STRATA}
    summary["case_rate_by_stratum"] = {s: float(disease["status"][stratum == s].mean()) for s in STRATA}
    return summary


def _check(n, odds_ratios, case_rates, noise_sd, missing_rate, split) -> None:
    checks = [
        (n >= 4, "n_patients must be >= 4 (two per stratum)"),
        (len(odds_ratios) >= 1 and all(r > 0 for r in odds_ratios), "odds_ratios must be one or more values > 0"),
        (len(case_rates) == 2 and all(0 < r < 1 for r in case_rates), "case_rates must be two rates in (0, 1)"),
        (noise_sd > 0, "ldl_noise_sd must be > 0"),
        (0 <= missing_rate < 1, "ldl_missing_rate must be in [0, 1)"),
        (split > 0, "split_generations must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"make_weak_effect_cohort: {message}")


def _simulate_strata(n: int, length: int, seed: int, split: int):
    """Biallelic SNVs of two strata split from one ancestral population ``split`` generations ago."""
    demography = msprime.Demography()
    for name in (*STRATA, "ancestral"):
        demography.add_population(name=name, initial_size=_POPULATION_SIZE)
    demography.add_population_split(time=split, derived=list(STRATA), ancestral="ancestral")
    samples = {STRATA[0]: n // 2, STRATA[1]: n - n // 2}
    ts = msprime.sim_ancestry(samples=samples, demography=demography, sequence_length=length, ploidy=2,
                              recombination_rate=_RECOMBINATION_RATE, random_seed=seed)
    return variants_from_tree_sequence(msprime.sim_mutations(ts, rate=_MUTATION_RATE, random_seed=seed))


def _common_in_both(variants, stratum: np.ndarray) -> np.ndarray:
    """Site indices with MAF >= _COMMON_MAF in each stratum."""
    dosage = variants.dosage
    ok = np.ones(len(variants.pos0), dtype=bool)
    for s in STRATA:
        af = dosage[:, stratum == s].mean(axis=1) / 2.0
        ok &= np.minimum(af, 1.0 - af) >= _COMMON_MAF
    return np.flatnonzero(ok)


def _pick_loci(candidates: np.ndarray, k: int, rng: np.random.Generator, name: str) -> np.ndarray:
    if k > len(candidates):
        raise ValueError(f"make_weak_effect_cohort: {name} needs {k} loci, only {len(candidates)} are common "
                         "in both strata (lengthen sequence_length)")
    return np.sort(rng.choice(candidates, size=k, replace=False))


def _disease(variants, stratum, odds_ratios, case_rates, rngs) -> dict:
    """Logistic disease: per-stratum intercepts solved for the expected case rates."""
    loci = _pick_loci(_common_in_both(variants, stratum), len(odds_ratios), rngs["disease_loci"], "odds_ratios")
    log_or = np.log(np.asarray(odds_ratios, dtype=np.float64))
    genetic = log_or @ variants.dosage[loci].astype(np.float64)
    intercepts = {}
    for s, rate in zip(STRATA, case_rates, strict=True):
        g = genetic[stratum == s]
        intercepts[s] = float(optimize.brentq(lambda b, g=g, rate=rate: special.expit(b + g).mean() - rate, -20, 20))
    logit = genetic + np.array([intercepts[s] for s in stratum])
    status = (rngs["disease"].random(len(logit)) < special.expit(logit)).astype(np.int8)
    return {"loci": loci, "log_or": log_or, "intercepts": intercepts, "logit": logit, "status": status}


def _ldl(variants, stratum, disease_loci, betas, levels, missing_rate, rngs) -> dict:
    """LDL: additive alt-allele effects at loci other than the disease's, a stratum shift and noise."""
    mean, shift, noise_sd = levels
    candidates = np.setdiff1d(_common_in_both(variants, stratum), disease_loci)
    loci = _pick_loci(candidates, len(betas), rngs["ldl_loci"], "ldl_betas")
    beta = np.asarray(betas, dtype=np.float64)
    expected = mean + shift * (stratum == STRATA[1]) + beta @ variants.dosage[loci].astype(np.float64)
    value = expected + rngs["ldl"].normal(scale=noise_sd, size=len(expected))
    value[rngs["ldl_missing"].random(len(value)) < missing_rate] = np.nan
    return {"loci": loci, "beta": beta, "expected": expected, "value": value, "noise_sd": noise_sd}


def _locus(variants, site: int, contig: str, **effect) -> dict:
    return {"contig": contig, "pos": int(variants.pos0[site] + 1), "ref": chr(variants.ref[site]),
            "alt": chr(variants.alt[site]), "maf": round(float(variants.maf[site]), 6), **effect}


def _truth(variants, stratum, disease, ldl, split, contig) -> dict:
    """truth.json entries of this model. ``traits`` replaces the demo's: disease_status and ldl as written
    (treatment_response is the demo's liability trait, its truth under ``patients``)."""
    ids = _patient_ids(len(stratum))
    explained = np.var(ldl["expected"]) / (np.var(ldl["expected"]) + ldl["noise_sd"] ** 2)
    oracle = round(auc_roc(disease["status"], disease["logit"]), 6)
    return {
        "generator": "genoflow.simulate.weak.make_weak_effect_cohort",
        "model": {"msprime": msprime.__version__, "strata": list(STRATA), "split_generations": split,
                  "population_size": _POPULATION_SIZE, "disease": "logit = intercept[stratum] + log(OR) @ alt dosage",
                  "ldl": "mean + shift[stratum] + beta @ alt dosage + N(0, noise_sd^2)"},
        "traits": {
            "disease_status": {
                "intercepts": disease["intercepts"],
                "causal_variants": [_locus(variants, s, contig, odds_ratio_per_alt_allele=round(float(np.exp(b)), 6))
                                    for s, b in zip(disease["loci"], disease["log_or"], strict=True)],
            },
            "ldl": {
                "noise_sd": ldl["noise_sd"], "expected_r2": round(float(explained), 6),
                "causal_variants": [_locus(variants, s, contig, beta_per_alt_allele=float(b))
                                    for s, b in zip(ldl["loci"], ldl["beta"], strict=True)],
            },
        },
        "oracle_auc_disease": oracle,
        "expected_auc_genetic_plus_clinical": oracle,
        "strata": dict(zip(ids, stratum.tolist(), strict=True)),
    }

"""The cohort's traits and their truth: clinical covariates, liability-threshold phenotypes, truth.json.

Phenotypes follow a liability-threshold model: liability = genetic value (variance = heritability,
on standardised genotypes) + clinical effects (age, sex) + environmental noise, with total variance
about 1; a patient is a case when the liability exceeds the (1 - prevalence) quantile. The truth is
everything the simulation knows and the pipeline must not read (causal variants, liabilities, the
oracle AUCs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msprime
import numpy as np
from scipy import special, stats

from genoflow.evaluation.metrics import auc_roc
from genoflow.simulate.variants import _MUTATION_RATE, _POPULATION_SIZE, _RECOMBINATION_RATE

if TYPE_CHECKING:
    from genoflow.simulate.variants import _Variants

# Clinical covariates. Age: truncated normal, a typical adult disease cohort.
_AGE_MEAN, _AGE_SD, _AGE_MIN, _AGE_MAX = 55.0, 14.0, 18, 90
_FRACTION_MALE = 0.5

# Liability scale effects (liability has total variance ~1, so these are in SD units).
_DISEASE_AGE_EFFECT = 0.015  # per year: older -> higher risk, 0.15 SD per decade
_DISEASE_MALE_EFFECT = 0.10
_RESPONSE_AGE_EFFECT = -0.010  # older patients respond a little less often
_RESPONSE_MALE_EFFECT = -0.05
_RESPONSE_HERITABILITY = 0.3
_RESPONSE_N_CAUSAL = 5
_RESPONSE_RATE = 0.5
_COMMON_MAF = 0.05



@dataclass
class _Trait:
    """One simulated binary trait and its truth."""

    causal: np.ndarray  # site indices
    effects: np.ndarray  # per standardised genotype
    per_allele: np.ndarray  # per alternate allele
    genetic: np.ndarray
    clinical: np.ndarray
    liability: np.ndarray
    status: np.ndarray  # int8 0/1
    threshold: float
    noise_sd: float


def _clinical(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Integer ages (truncated normal, 18..90) and a male indicator."""
    a, b = (_AGE_MIN - _AGE_MEAN) / _AGE_SD, (_AGE_MAX + 0.5 - _AGE_MEAN) / _AGE_SD
    age = stats.truncnorm.rvs(a, b, loc=_AGE_MEAN, scale=_AGE_SD, size=n, random_state=rng)
    age = np.clip(np.floor(age), _AGE_MIN, _AGE_MAX).astype(np.int64)
    male = (rng.random(n) < _FRACTION_MALE).astype(np.int8)
    return age, male


def _phenotypes(
    var: _Variants,
    age: np.ndarray,
    male: np.ndarray,
    params: dict,
    rngs: dict,
    disease_shift: np.ndarray | None = None,
) -> tuple[_Trait, _Trait]:
    """Disease status (user parameters) and treatment response (fixed, weaker genetics).

    ``disease_shift`` (per patient, liability SD units) adds a non-genetic effect such as an
    ancestry-linked environment; it counts with the clinical part, so the oracle knows it.
    """
    common = np.flatnonzero(var.maf >= _COMMON_MAF)
    centred_age = age - _AGE_MEAN
    shift = np.zeros(len(age)) if disease_shift is None else np.asarray(disease_shift, dtype=np.float64)
    disease = _trait(
        var,
        common,
        params["n_causal"],
        params["heritability"],
        params["prevalence"],
        _DISEASE_AGE_EFFECT * centred_age + _DISEASE_MALE_EFFECT * male + shift,
        rngs["disease"],
    )
    response = _trait(
        var,
        common,
        _RESPONSE_N_CAUSAL,
        _RESPONSE_HERITABILITY,
        _RESPONSE_RATE,
        _RESPONSE_AGE_EFFECT * centred_age + _RESPONSE_MALE_EFFECT * male,
        rngs["response"],
    )
    return disease, response


def _trait(
    var: _Variants,
    common: np.ndarray,
    n_causal: int,
    h2: float,
    case_rate: float,
    clinical: np.ndarray,
    rng: np.random.Generator,
) -> _Trait:
    """Liability-threshold trait: genetic (variance h2) + clinical + noise, total variance ~1."""
    if n_causal > len(common):
        raise ValueError(f"n_causal={n_causal} but only {len(common)} variants have MAF >= {_COMMON_MAF}")
    causal = np.sort(rng.choice(common, size=n_causal, replace=False))
    dosage = var.dosage[causal].astype(np.float64)
    p = dosage.mean(axis=1) / 2.0
    sd = np.sqrt(2.0 * p * (1.0 - p))
    z = (dosage - 2.0 * p[:, None]) / sd[:, None]  # standardised genotypes, (causal, patients)
    effects = rng.normal(size=n_causal)
    genetic = effects @ z
    scale = np.sqrt(h2 / genetic.var()) if n_causal and h2 > 0 and genetic.var() > 0 else 0.0
    # Rescale so the genetic variance equals h2 exactly in this cohort.
    effects, genetic = effects * scale, genetic * scale
    clinical = clinical - clinical.mean()
    noise_var = 1.0 - h2 - clinical.var()
    if noise_var <= 0:
        raise ValueError(
            f"heritability={h2} leaves no room for clinical ({clinical.var():.3f}) and environmental variance"
        )
    liability = genetic + clinical + rng.normal(scale=np.sqrt(noise_var), size=genetic.size)
    threshold = float(np.quantile(liability, 1.0 - case_rate))
    status = (liability > threshold).astype(np.int8)
    return _Trait(
        causal=causal,
        effects=effects,
        per_allele=effects / sd,
        genetic=genetic,
        clinical=clinical,
        liability=liability,
        status=status,
        threshold=threshold,
        noise_sd=float(np.sqrt(noise_var)),
    )


def _expected_auc(explained_var: float, prevalence: float) -> float:
    """Population AUC of a predictor explaining ``explained_var`` of a unit-variance liability.

    Normal approximation of the liability-threshold model, integrated on a grid: AUC =
    P(S_case > S_control) with S ~ N(0, v), case iff S + E > T, E ~ N(0, 1 - v).
    """
    v = min(max(explained_var, 1e-12), 1 - 1e-12)
    t = special.ndtri(1.0 - prevalence)
    s = np.linspace(-8, 8, 20001) * np.sqrt(v)
    density = np.exp(-0.5 * s * s / v)
    p_case = special.ndtr((s - t) / np.sqrt(1.0 - v))
    f1, f0 = density * p_case, density * (1.0 - p_case)
    f1, f0 = f1 / f1.sum(), f0 / f0.sum()
    return float(np.sum(f1 * (np.cumsum(f0) - 0.5 * f0)))


def _truth(
    params: dict,
    contig: str,
    ids: list[str],
    var: _Variants,
    region: tuple[int, int],
    disease: _Trait,
    response: _Trait,
) -> dict:
    """Everything the simulation knows and the pipeline must not read."""
    disease_explained = float(np.var(disease.genetic + disease.clinical))
    return {
        "generator": "genoflow.simulate.make_demo_cohort",
        "seed": params["seed"],
        "parameters": params,
        "model": {
            "msprime": msprime.__version__,
            "recombination_rate": _RECOMBINATION_RATE,
            "population_size": _POPULATION_SIZE,
            "mutation_rate": _MUTATION_RATE,
            "mutation_model": "JC69",
            "dropped_sites": "every site hit by more than one mutation (possibly multi-allelic)",
            "liability": "genetic (standardised genotypes @ effects) + clinical + N(0, noise_sd^2)",
            "age": {
                "distribution": "truncated normal",
                "mean": _AGE_MEAN,
                "sd": _AGE_SD,
                "min": _AGE_MIN,
                "max": _AGE_MAX,
            },
        },
        "n_variants": int(len(var.pos0)),
        "n_dropped_multiallelic": var.n_dropped,
        "target_region": {"contig": contig, "start": region[0] + 1, "end": region[1]},
        "traits": {
            "disease_status": _trait_truth(
                contig,
                var,
                disease,
                params["heritability"],
                params["prevalence"],
                _DISEASE_AGE_EFFECT,
                _DISEASE_MALE_EFFECT,
            ),
            "treatment_response": _trait_truth(
                contig,
                var,
                response,
                _RESPONSE_HERITABILITY,
                _RESPONSE_RATE,
                _RESPONSE_AGE_EFFECT,
                _RESPONSE_MALE_EFFECT,
            ),
        },
        "oracle_auc_disease": _round(auc_roc(disease.status, disease.genetic + disease.clinical)),
        "oracle_auc_response": _round(auc_roc(response.status, response.genetic + response.clinical)),
        "auc_genetic_only_disease": _round(auc_roc(disease.status, disease.genetic)),
        "auc_clinical_only_disease": _round(auc_roc(disease.status, disease.clinical)),
        "expected_auc_genetic_plus_clinical": _round(_expected_auc(disease_explained, params["prevalence"])),
        "patients": {
            pid: {
                "liability_disease": _round(disease.liability[i]),
                "genetic_value_disease": _round(disease.genetic[i]),
                "liability_response": _round(response.liability[i]),
                "genetic_value_response": _round(response.genetic[i]),
            }
            for i, pid in enumerate(ids)
        },
    }


def _trait_truth(
    contig: str,
    var: _Variants,
    trait: _Trait,
    h2: float,
    case_rate: float,
    age_effect: float,
    male_effect: float,
) -> dict:
    maf = var.maf
    causal = [
        {
            "contig": contig,
            "pos": int(var.pos0[s] + 1),
            "ref": chr(var.ref[s]),
            "alt": chr(var.alt[s]),
            "effect": _round(trait.effects[j]),
            "effect_per_alt_allele": _round(trait.per_allele[j]),
            "maf": _round(maf[s]),
        }
        for j, s in enumerate(trait.causal)
    ]
    return {
        "heritability": h2,
        "case_rate": case_rate,
        "threshold": _round(trait.threshold),
        "noise_sd": _round(trait.noise_sd),
        "age_effect_per_year": age_effect,
        "male_effect": male_effect,
        "effect_scale": "liability SD per standardised genotype (dosage - 2p) / sqrt(2p(1-p))",
        "causal_variants": causal,
    }


def _round(x: float) -> float:
    return round(float(x), 6)


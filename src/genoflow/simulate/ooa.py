"""A three-population cohort: stdpopsim's HomSap OutOfAfrica_3G09 model, laid out like the demo cohort.

Genotypes come from stdpopsim 0.3.0 (Gutenkunst et al. 2009: YRI, CEU, CHB with growth and
migration), simulated offline with msprime on a generic contig with HomSap's flat mean
recombination rate and the model's own mutation rate (no genetic map download). Everything
else (reference, GFF, clinical CSVs, FASTQ reads, phenotypes, truth) is written by
:func:`genoflow.simulate.cohort.make_demo_cohort`, so the pipeline reads it like the demo cohort.

Population stratification matters on purpose: each population shifts the disease liability (an
ancestry-linked environment, in liability SD units), and allele frequencies differ between
populations, so an association scan without ancestry covariates finds spurious hits. The shift is
part of the truth: the oracle score is genetic value + clinical effects + population shift.
"""

from __future__ import annotations

import os

import numpy as np

from genoflow.simulate.cohort import Ancestry, make_demo_cohort, variants_from_tree_sequence
from genoflow.simulate.spec import OOA

__all__ = ["make_ooa_cohort", "POPULATIONS", "DEFAULT_POPULATION_SHIFT"]

POPULATIONS = ("YRI", "CEU", "CHB")
# Liability shift per population (SD units): large enough that ancestry confounds naive scans.
DEFAULT_POPULATION_SHIFT = {"YRI": 0.3, "CEU": 0.0, "CHB": -0.3}
_MODEL = "OutOfAfrica_3G09"


def make_ooa_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = OOA.n_patients,
    sequence_length: int = OOA.sequence_length,
    seed: int = OOA.seed,
    heritability: float = OOA.heritability,
    prevalence: float = OOA.prevalence,
    n_causal: int = OOA.n_causal,
    population_shift: dict[str, float] | None = None,
    reads_per_patient: int = OOA.reads_per_patient,
    missing_rate: float = OOA.missing_rate,
    contig: str = OOA.contig,
    progress: bool = False,
) -> dict:
    """Simulate an OutOfAfrica_3G09 cohort and write ``raw/`` and ``truth/`` under ``out_dir``.

    Patients are split as evenly as possible between YRI, CEU and CHB (YRI takes the remainder)
    and listed in that order in the VCF. ``truth/truth.json`` adds ``populations`` (each
    patient's), ``population_shift`` and the stdpopsim ``model``. About 18,000 biallelic SNVs per
    Mb for 2,000 patients.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Local folder; ``raw/`` and ``truth/`` inside it are replaced once complete.
    n_patients : int
        Diploid individuals (>= 3).
    sequence_length : int
        Contig length in bp.
    seed : int
        Seed of the coalescent, the mutations and every random stream of the cohort.
    heritability, prevalence, n_causal, reads_per_patient, missing_rate, contig
        As in :func:`genoflow.simulate.cohort.make_demo_cohort`.
    population_shift : dict, optional
        Disease liability shift per population name (default :data:`DEFAULT_POPULATION_SHIFT`).
    progress : bool
        Print stage names to stderr.

    Returns
    -------
    dict
        The summary of :func:`~genoflow.simulate.cohort.make_demo_cohort` plus ``populations``
        (patients per population).

    Raises
    ------
    ValueError
        On fewer than 3 patients, an unknown population name, or the checks of make_demo_cohort.
    """
    shift_of = dict(DEFAULT_POPULATION_SHIFT if population_shift is None else population_shift)
    unknown = sorted(set(shift_of) - set(POPULATIONS))
    if unknown:
        raise ValueError(f"population_shift: unknown population(s) {unknown}; expected {list(POPULATIONS)}")
    if n_patients < 3:
        raise ValueError("n_patients must be >= 3 (one per population)")
    sizes = _population_sizes(n_patients)
    ts, model_truth = _simulate(sizes, sequence_length, seed)
    labels = np.repeat(POPULATIONS, [sizes[p] for p in POPULATIONS])
    shift = np.array([shift_of.get(p, 0.0) for p in labels], dtype=np.float64)
    width = max(5, len(str(n_patients)))
    ids = [f"PT{i:0{width}d}" for i in range(1, n_patients + 1)]
    ancestry = Ancestry(
        variants=variants_from_tree_sequence(ts),
        disease_shift=shift,
        truth={
            "model": model_truth,
            "population_shift": {p: shift_of.get(p, 0.0) for p in POPULATIONS},
            "populations": dict(zip(ids, labels.tolist(), strict=True)),
        },
    )
    summary = make_demo_cohort(
        out_dir, n_patients=n_patients, sequence_length=sequence_length, seed=seed,
        heritability=heritability, prevalence=prevalence, n_causal=n_causal,
        reads_per_patient=reads_per_patient, missing_rate=missing_rate, contig=contig,
        progress=progress, ancestry=ancestry,
    )
    summary["populations"] = sizes
    return summary


def _population_sizes(n: int) -> dict[str, int]:
    third = n // 3
    return {"YRI": n - 2 * third, "CEU": third, "CHB": third}


def _simulate(sizes: dict[str, int], length: int, seed: int):
    """The tree sequence with mutations, and how it was made (for truth.json)."""
    import stdpopsim

    species = stdpopsim.get_species("HomSap")
    model = species.get_demographic_model(_MODEL)
    # A generic contig: HomSap's mean recombination rate, flat, so nothing is downloaded.
    contig = species.get_contig(length=length, mutation_rate=model.mutation_rate)
    ts = stdpopsim.get_engine("msprime").simulate(model, contig, dict(sizes), seed=seed)
    truth = {
        "simulator": f"stdpopsim {stdpopsim.__version__} (msprime engine)",
        "species": "HomSap",
        "demographic_model": _MODEL,
        "recombination_rate": float(contig.recombination_map.mean_rate),
        "mutation_rate": float(contig.mutation_rate),
        "sequence_length": length,
        "liability": "genetic (standardised genotypes @ effects) + clinical + population shift + noise",
    }
    return ts, truth

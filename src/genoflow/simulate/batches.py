"""Incoming patient batches for drift monitoring, comparable with a demo cohort.

A batch is a new cohort on the same variant sites (contig, positions, REF/ALT) as the training
cohort :func:`~genoflow.simulate.make_demo_cohort` writes for the same ``seed``, ``n_reference``
and ``sequence_length``: the generator re-runs that coalescent simulation (same seed, same
msprime call, so the same genealogy and sites; the files ``make_demo_cohort`` wrote are never
touched) and draws new patients from it:

- **unshifted** (the same population): new haplotypes by Li & Stephens copying from the
  reference haplotypes, each drawn haplotype joining the panel it is copied from (a product of
  approximate conditionals). At every site the new allele counts then follow a Polya urn started
  from the reference counts, so reference and batch behave as two samples of one population: an
  allele-frequency test between them is calibrated (no drift to find).
- **shifted** (a diverged population): ``diverged_size`` founders are drawn the same way, then
  evolve by Wright-Fisher drift with recombination for ``split_generations`` generations (a
  population that split that long ago and stayed small); the batch is a sample of the last
  generation. Allele frequencies drift with variance ``F p (1 - p)``, ``F = 1 - (1 - 1/(2 N))^t``
  (Balding-Nichols; Hudson's Fst to the reference is about F / 2), in linkage-disequilibrium
  blocks, as between real populations; no new mutations are added (the sites stay the reference's).

Clinical covariates follow the demo model, and disease status / treatment response apply the
reference cohort's own liability model (its causal variants, effects, reference allele
frequencies and thresholds) to the new genotypes, so labels stay meaningful across batches.

Written under ``out_dir`` (the storage root layout of decision 0001)::

    incoming/<batch>/cohort.vcf.gz                               bgzip VCF 4.2, new samples
    incoming/<batch>/patient_data/<patient>/clinical_data.csv    and genome_sequence.fastq.gz
    truth/incoming/<batch>.json                                  what was simulated (never read by the pipeline)
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from genoflow.monitoring.drift import hudson_fst
from genoflow.simulate.cohort import _Progress, _rngs, _target_region, make_demo_cohort
from genoflow.simulate.files import _reference_sequence, _write_patients, _write_vcf
from genoflow.simulate.reads import _write_reads
from genoflow.simulate.spec import DEMO, CohortSpec
from genoflow.simulate.traits import (
    _AGE_MEAN,
    _DISEASE_AGE_EFFECT,
    _DISEASE_MALE_EFFECT,
    _RESPONSE_AGE_EFFECT,
    _RESPONSE_MALE_EFFECT,
    _clinical,
    _phenotypes,
    _Trait,
)
from genoflow.simulate.variants import _POPULATION_SIZE, _RECOMBINATION_RATE, _simulate_variants, _Variants

__all__ = ["make_cohort_batches", "expected_drift_f"]

_BATCH_STREAMS = ("haplotypes", "missing", "clinical", "disease", "response", "reads")
_BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Keeps the batch's random streams apart from the reference cohort's (SeedSequence(seed).spawn()).
_BATCH_SPAWN_KEY = 0xBA7C


def expected_drift_f(diverged_size: int, split_generations: int) -> float:
    """Expected drift F of a population of ``diverged_size`` diploids after ``split_generations``.

    F is the variance of the drifted frequency around the founding one, in units of ``p (1 - p)``
    (the Balding-Nichols parameter). Hudson's Fst between the reference and the drifted population
    is then about F / 2 (its denominator is the between-population diversity, ~``2 p (1 - p)``).
    """
    return float(1.0 - (1.0 - 1.0 / (2 * diverged_size)) ** split_generations)


def make_cohort_batches(
    out_dir: str | os.PathLike,
    *,
    n_reference: int = DEMO.n_patients,
    n_new: int = 200,
    shifted: bool = False,
    seed: int = DEMO.seed,
    batch: str | None = None,
    split_generations: int = 50,
    diverged_size: int = 500,
    sequence_length: int = DEMO.sequence_length,
    heritability: float = DEMO.heritability,
    prevalence: float = DEMO.prevalence,
    n_causal: int = DEMO.n_causal,
    reads_per_patient: int = DEMO.reads_per_patient,
    read_length: int = DEMO.read_length,
    target_length: int = DEMO.target_length,
    missing_rate: float = DEMO.missing_rate,
    contig: str = DEMO.contig,
    write_reference: bool = False,
    progress: bool = False,
) -> dict:
    """Write one incoming batch (``incoming/<batch>/``) comparable with a demo cohort.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The local storage root. ``incoming/<batch>/`` is replaced once complete (built in
        ``out_dir/.batch-tmp-*`` first); ``raw/`` is only written when ``write_reference``.
    n_reference, seed, sequence_length, heritability, prevalence, n_causal, target_length, contig :
        Exactly the :func:`make_demo_cohort` arguments of the training cohort: together they fix
        the simulation (sites, reference haplotypes, liability model) the batch is drawn from.
        When ``out_dir/raw/cohort.vcf.gz`` exists its positions are checked against it.
    n_new : int
        Patients in the batch (VCF samples ``B<BATCH>00001``...).
    shifted : bool
        False: the same population as the reference. True: a population that split
        ``split_generations`` ago and drifted at ``diverged_size`` diploids.
    batch : str, optional
        Folder name under ``incoming/`` (letters, digits, ``-``, ``_``); default ``shifted`` or
        ``unshifted``. It also seeds the batch, so two batch names give two independent batches.
    split_generations, diverged_size : int
        Divergence of the shifted population (expected drift: :func:`expected_drift_f`).
    reads_per_patient, read_length : int
        Targeted reads per patient (the reference's target region); 0 writes no FASTQ.
    missing_rate : float
        Probability that a VCF genotype is written as missing.
    write_reference : bool
        Also write the reference cohort (``raw/``, ``truth/``) with :func:`make_demo_cohort`.
    progress : bool
        Print stage names to stderr.

    Returns
    -------
    dict
        ``batch``, ``shifted``, ``n_new``, ``n_variants``, ``paths`` (``vcf``, ``patient_data``,
        ``truth`` relative to ``out_dir``, ``root``), ``expected_drift_f`` (0 when unshifted),
        ``observed_fst`` and ``mean_abs_af_shift`` (batch vs reference, all sites),
        ``observed_prevalence`` and ``wall_seconds``.
    """
    batch = batch or ("shifted" if shifted else "unshifted")
    if not _BATCH_NAME.match(batch):
        raise ValueError(f"batch must be letters, digits, '-' or '_' (at most 64), got {batch!r}")
    if n_new < 1:
        raise ValueError("n_new must be >= 1")
    if shifted and (split_generations < 1 or diverged_size < 2):
        raise ValueError("a shifted batch needs split_generations >= 1 and diverged_size >= 2")
    spec = CohortSpec(
        n_patients=n_reference, sequence_length=sequence_length, seed=seed, heritability=heritability,
        prevalence=prevalence, n_causal=n_causal, reads_per_patient=reads_per_patient, read_length=read_length,
        target_length=target_length, missing_rate=missing_rate, contig=contig,
    )
    params = spec.as_params()
    spec.check()
    out = Path(out_dir)
    if write_reference:
        make_demo_cohort(out, **params, progress=progress)
    say = _Progress(progress)

    say("re-simulating the reference cohort (msprime, same seed)")
    var = _simulate_variants(n_reference, sequence_length, seed)
    _check_reference_vcf(out / "raw" / "cohort.vcf.gz", var)
    rngs = _rngs(seed)
    age, male = _clinical(n_reference, rngs["clinical"])
    disease, response = _phenotypes(var, age, male, params, rngs)

    streams = _batch_rngs(seed, batch)
    say(f"drawing {n_new} {'shifted' if shifted else 'unshifted'} patients")
    if shifted:
        founders = _copy_haplotypes(var.haps, var.pos0, 2 * diverged_size, sequence_length, streams["haplotypes"])
        population = _drift(founders, var.pos0, split_generations, sequence_length, streams["haplotypes"])
        haps = _meiosis(population, var.pos0, 2 * n_new, sequence_length, streams["haplotypes"])
    else:
        haps = _copy_haplotypes(var.haps, var.pos0, 2 * n_new, sequence_length, streams["haplotypes"])
    new = _Variants(var.pos0, var.ref, var.alt, haps, var.n_dropped)

    new_age, new_male = _clinical(n_new, streams["clinical"])
    new_disease = _apply_trait(disease, var, new, new_age, new_male, age, male,
                               _DISEASE_AGE_EFFECT, _DISEASE_MALE_EFFECT, streams["disease"])
    new_response = _apply_trait(response, var, new, new_age, new_male, age, male,
                                _RESPONSE_AGE_EFFECT, _RESPONSE_MALE_EFFECT, streams["response"])

    ids = _batch_ids(batch, n_new)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".batch-tmp-", dir=out))
    try:
        folder = tmp / "batch"
        (folder / "patient_data").mkdir(parents=True)
        say("writing VCF")
        _write_vcf(folder / "cohort.vcf.gz", contig, sequence_length, ids, new, missing_rate, streams["missing"],
                   source="make_cohort_batches")
        say("writing clinical CSVs and FASTQ reads")
        _write_patients(folder / "patient_data", ids, new_age, new_male, new_disease, new_response)
        if reads_per_patient > 0:
            genome = _reference_sequence(sequence_length, var, rngs["fasta"])
            region = _target_region(var, sequence_length, target_length)
            _write_reads(folder / "patient_data", ids, genome, new, region, params, streams["reads"])
        ref_af, new_af = var.haps.mean(axis=1), haps.mean(axis=1)
        truth = {
            "generator": "genoflow.simulate.make_cohort_batches",
            "reference": params,
            "batch": batch,
            "shifted": shifted,
            "n_new": n_new,
            "model": ({"kind": "diverged population: founders by copying, then Wright-Fisher drift",
                       "split_generations": split_generations, "diverged_size": diverged_size,
                       "recombination_rate": _RECOMBINATION_RATE}
                      if shifted else
                      {"kind": "same population: Li & Stephens copying from the reference (PAC)",
                       "population_size": _POPULATION_SIZE, "recombination_rate": _RECOMBINATION_RATE}),
            "expected_drift_f": expected_drift_f(diverged_size, split_generations) if shifted else 0.0,
            "observed_fst": hudson_fst(ref_af, var.haps.shape[1], new_af, haps.shape[1]),
            "mean_abs_af_shift": float(np.mean(np.abs(new_af - ref_af))),
            "observed_prevalence": float(new_disease.mean()),
            "observed_response_rate": float(new_response.mean()),
        }
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        say("committing")
        target = out / "incoming" / batch
        target.parent.mkdir(parents=True, exist_ok=True)
        (out / "truth" / "incoming").mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.replace(target, tmp / "old")
        os.replace(folder, target)
        os.replace(tmp / "truth.json", out / "truth" / "incoming" / f"{batch}.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say("done")
    return {
        "batch": batch, "shifted": shifted, "n_new": n_new, "n_variants": int(len(var.pos0)),
        "paths": {"root": str(out), "vcf": f"incoming/{batch}/cohort.vcf.gz",
                  "patient_data": f"incoming/{batch}/patient_data", "truth": f"truth/incoming/{batch}.json"},
        **{k: truth[k] for k in ("expected_drift_f", "observed_fst", "mean_abs_af_shift", "observed_prevalence")},
        "wall_seconds": round(time.perf_counter() - say.t0, 3),
    }


def _batch_rngs(seed: int, batch: str) -> dict[str, np.random.Generator]:
    """Streams of one batch: independent of the reference's and of other batch names."""
    root = np.random.SeedSequence(seed, spawn_key=(_BATCH_SPAWN_KEY, zlib.crc32(batch.encode())))
    children = root.spawn(len(_BATCH_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_BATCH_STREAMS, children, strict=True)}


def _batch_ids(batch: str, n: int) -> list[str]:
    tag = re.sub(r"[^A-Z0-9]", "", batch.upper())[:12]
    width = max(5, len(str(n)))
    return [f"B{tag}{i:0{width}d}" for i in range(1, n + 1)]


def _check_reference_vcf(path: Path, var: _Variants) -> None:
    """When the reference cohort exists, its sites must be the re-simulated ones."""
    if not path.exists():
        return
    positions = []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if not line.startswith("#"):
                positions.append(int(line.split("\t", 2)[1]))
    if positions != (var.pos0 + 1).tolist():
        raise ValueError(f"{path}: its sites are not those of this simulation; pass the make_demo_cohort "
                         "arguments (n_reference=n_patients, seed, sequence_length) it was made with")


# --------------------------------------------------------------------------- haplotypes


def _segments(pos0: np.ndarray, n_breaks: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Site-index bounds of the segments between ``n_breaks`` uniform breakpoints on the contig."""
    breaks = np.sort(rng.integers(0, length, size=n_breaks))
    return np.r_[0, np.searchsorted(pos0, breaks), len(pos0)]


def _copy_haplotypes(panel: np.ndarray, pos0: np.ndarray, n_haps: int, length: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n_haps`` new haplotypes, each a Li & Stephens mosaic of the panel grown so far.

    The switch rate per bp is ``4 Ne r / k`` for a panel of ``k`` haplotypes (Li & Stephens 2003);
    each segment copies a uniformly chosen panel haplotype, so at every site the new allele is
    drawn with the panel's current frequency and the panel then grows by it (a Polya urn).
    """
    n_sites, n_panel = panel.shape
    grown = np.empty((n_sites, n_panel + n_haps), dtype=np.int8, order="F")
    grown[:, :n_panel] = panel
    for j in range(n_haps):
        k = n_panel + j
        rate = 4.0 * _POPULATION_SIZE * _RECOMBINATION_RATE * length / k
        bounds = _segments(pos0, int(rng.poisson(rate)), length, rng)
        sources = rng.integers(0, k, size=len(bounds) - 1)
        for lo, hi, src in zip(bounds[:-1], bounds[1:], sources, strict=True):
            grown[lo:hi, k] = grown[lo:hi, src]
    return np.ascontiguousarray(grown[:, n_panel:])


def _meiosis(population: np.ndarray, pos0: np.ndarray, n_haps: int, length: int,
             rng: np.random.Generator) -> np.ndarray:
    """``n_haps`` gametes of random parents of ``population`` (haplotypes 2i, 2i+1 = parent i).

    Each gamete starts on one of its parent's two haplotypes and switches at Poisson(r L)
    crossovers placed uniformly on the contig.
    """
    n_parents = population.shape[1] // 2
    parent = rng.integers(0, n_parents, size=n_haps)
    start = rng.integers(0, 2, size=n_haps)
    gametes = np.asfortranarray(population[:, 2 * parent + start])
    crossovers = rng.poisson(_RECOMBINATION_RATE * length, size=n_haps)
    for j in np.flatnonzero(crossovers):
        bounds = _segments(pos0, int(crossovers[j]), length, rng)
        for s, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            strand = (start[j] + s) % 2
            gametes[lo:hi, j] = population[lo:hi, 2 * parent[j] + strand]
    return np.ascontiguousarray(gametes)


def _drift(population: np.ndarray, pos0: np.ndarray, generations: int, length: int,
           rng: np.random.Generator) -> np.ndarray:
    """Wright-Fisher generations of a constant-size diploid population, with recombination."""
    for _ in range(generations):
        population = _meiosis(population, pos0, population.shape[1], length, rng)
    return population


# --------------------------------------------------------------------------- phenotypes and files


def _apply_trait(trait: _Trait, ref: _Variants, new: _Variants, age: np.ndarray, male: np.ndarray,
                 ref_age: np.ndarray, ref_male: np.ndarray, age_effect: float, male_effect: float,
                 rng: np.random.Generator) -> np.ndarray:
    """0/1 status of new patients under the reference cohort's liability model (same scale and threshold)."""
    p = ref.dosage[trait.causal].mean(axis=1, dtype=np.float64) / 2.0
    genetic = trait.per_allele @ (new.dosage[trait.causal] - 2.0 * p[:, None])
    reference_clinical = age_effect * (ref_age - _AGE_MEAN) + male_effect * ref_male
    clinical = age_effect * (age - _AGE_MEAN) + male_effect * male - reference_clinical.mean()
    liability = genetic + clinical + rng.normal(scale=trait.noise_sd, size=len(age))
    return (liability > trait.threshold).astype(np.int8)


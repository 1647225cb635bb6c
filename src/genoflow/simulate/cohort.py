"""Demo cohort generator: a coalescent-simulated cohort laid out as ``<root>/raw`` + ``<root>/truth``.

The cohort follows docs/decisions/0001-data-layout-and-encodings.md:

- ``raw/cohort.vcf.gz``: BGZF VCF 4.2, phased biallelic SNVs from msprime (REF = ancestral allele);
- ``raw/reference_genome/genome_sequence.fasta`` (with its samtools ``.fai``) and ``genome_annotations.gff`` (GFF3);
- ``raw/patient_data/<patient>/clinical_data.csv`` and ``genome_sequence.fastq.gz`` (targeted reads), or
  ``genome_sequence_R1.fastq.gz`` and ``_R2`` for paired reads (:mod:`genoflow.simulate.reads`);
- ``truth/truth.json``: the simulation truth (causal variants, liabilities, oracle AUCs);
- ``truth/target_genotypes.vcf.gz``: every variant of the targeted region with its true genotypes
  (no missing calls), the truth that genotypes called from the reads are scored against.

The genotypes are :mod:`genoflow.simulate.variants`' (msprime), the phenotypes and truth
:mod:`genoflow.simulate.traits`' (liability-threshold model), the files :mod:`genoflow.simulate.files`'
and :mod:`genoflow.simulate.reads`'; this module puts them together and commits the folders.

Every random stream is derived from ``seed`` (one child stream per purpose), so the same seed gives
byte-identical files, and changing e.g. the read count does not change the genotypes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genoflow.simulate.files import (
    _reference_sequence,
    _write_fasta,
    _write_gff,
    _write_patients,
    _write_truth_vcf,
    _write_vcf,
)
from genoflow.simulate.reads import _check_read_params, _write_reads
from genoflow.simulate.spec import DEMO, CohortSpec
from genoflow.simulate.traits import _COMMON_MAF, _clinical, _phenotypes, _truth
from genoflow.simulate.variants import _simulate_variants, _Variants, variants_from_tree_sequence

__all__ = ["make_demo_cohort", "Ancestry", "variants_from_tree_sequence"]

_STREAMS = ("fasta", "missing", "clinical", "disease", "response", "gff", "reads")


@dataclass
class Ancestry:
    """Genotypes simulated outside this module, for :func:`_build`.

    ``disease_shift``: (n_patients,) float64 liability shift of each patient (e.g. by population);
    ``truth``: extra entries for truth.json (the model, each patient's population; they replace the
    demo's entries of the same name);
    ``disease_status``: (n_patients,) int8 0/1 written instead of the liability-threshold disease, for a
    phenotype model of the caller's own (e.g. :mod:`genoflow.simulate.weak`);
    ``clinical``: extra clinical CSV columns, name -> (n_patients,) values (NaN or None written empty).
    """

    variants: _Variants
    disease_shift: np.ndarray
    truth: dict
    disease_status: np.ndarray | None = None
    clinical: dict[str, np.ndarray] = field(default_factory=dict)


class _Progress:
    """Stage lines on stderr with elapsed seconds, when enabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.enabled:
            print(
                f"[genoflow.simulate] {time.perf_counter() - self.t0:6.1f}s {stage}",
                file=sys.stderr,
                flush=True,
            )


def make_demo_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = DEMO.n_patients,
    sequence_length: int = DEMO.sequence_length,
    seed: int = DEMO.seed,
    heritability: float = DEMO.heritability,
    prevalence: float = DEMO.prevalence,
    n_causal: int = DEMO.n_causal,
    reads_per_patient: int = DEMO.reads_per_patient,
    read_length: int = DEMO.read_length,
    target_length: int = DEMO.target_length,
    missing_rate: float = DEMO.missing_rate,
    contig: str = DEMO.contig,
    progress: bool = False,
    ancestry: Ancestry | None = None,
    coverage: float | None = None,
    paired: bool = False,
    fragment_mean: int = 350,
    fragment_sd: int = 50,
) -> dict:
    """Simulate a demo cohort and write ``raw/`` and ``truth/`` under ``out_dir``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Local folder (created if needed). ``raw/`` and ``truth/`` inside it are replaced, only
        once the whole cohort has been written (built in ``out_dir/.demo-tmp-*`` first).
    n_patients, sequence_length, seed, heritability, prevalence, n_causal, reads_per_patient, read_length,
    target_length, missing_rate, contig
        The fields of :class:`genoflow.simulate.spec.CohortSpec`, defaults :data:`~genoflow.simulate.spec.DEMO`'s
        (``reads_per_patient`` is ignored when ``coverage`` is given).
    progress : bool
        Print stage names to stderr.
    ancestry : Ancestry, optional
        Genotypes simulated elsewhere (``n_patients`` individuals) and a per-patient disease
        liability shift, used instead of the single-population msprime simulation
        (see :func:`genoflow.simulate.ooa.make_ooa_cohort`).
    coverage : float, optional
        Mean read depth over the targeted region; sets the reads per patient to
        ``coverage * span / read_length`` (half as many pairs when ``paired``), where the span is the
        region and a flank of a read or fragment on each side (:func:`genoflow.simulate.reads.sequenced_span`).
    paired : bool
        Paired-end reads (``genome_sequence_R1/_R2.fastq.gz``, FR) instead of single-end.
    fragment_mean, fragment_sd : int
        Fragment length distribution of paired reads (normal, clipped to ``read_length`` at least).

    Returns
    -------
    dict
        ``n_patients``, ``n_variants``, ``n_dropped_multiallelic``, ``paths`` (str paths),
        ``target_region``, ``observed_prevalence``, ``oracle_auc_disease``,
        ``oracle_auc_response``, ``expected_auc_genetic_plus_clinical`` and ``wall_seconds``;
        ``paths["truth_vcf"]`` is the targeted region's true genotypes.

    Raises
    ------
    ValueError
        On out-of-range parameters, or when too few common variants exist for ``n_causal``.
    """
    spec = CohortSpec(
        n_patients=n_patients, sequence_length=sequence_length, seed=seed, heritability=heritability,
        prevalence=prevalence, n_causal=n_causal, reads_per_patient=reads_per_patient, read_length=read_length,
        target_length=target_length, missing_rate=missing_rate, contig=contig,
    )
    spec.check()
    params = spec.as_params()
    if coverage is not None or paired:
        # Only then, so the demo's truth.json (which records the parameters) keeps its bytes.
        params.update(coverage=coverage, paired=paired, fragment_mean=fragment_mean, fragment_sd=fragment_sd)
    _check_read_params(params)
    if ancestry is not None and ancestry.variants.haps.shape[1] != 2 * n_patients:
        raise ValueError(f"ancestry has {ancestry.variants.haps.shape[1] // 2} individuals, n_patients={n_patients}")
    say = _Progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-tmp-", dir=out))
    try:
        summary = _build(tmp, params, say, ancestry)
        say("committing")
        _commit(tmp, out, ("raw", "truth"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary["paths"] = {key: str(out / rel) for key, rel in summary["paths"].items()}
    summary["wall_seconds"] = round(time.perf_counter() - say.t0, 3)
    say("done")
    return summary


def _build(tmp: Path, params: dict, say: _Progress, ancestry: Ancestry | None = None) -> dict:
    """Write the whole cohort under ``tmp`` and return the summary (paths relative to the root).

    ``ancestry`` brings genotypes simulated elsewhere (e.g. a stdpopsim multi-population model) with
    a per-patient disease liability shift; by default msprime simulates one population here.
    """
    n, length, contig = params["n_patients"], params["sequence_length"], params["contig"]
    rngs = _rngs(params["seed"])
    ids = _patient_ids(n)
    raw = tmp / "raw"
    ref_dir = raw / "reference_genome"
    ref_dir.mkdir(parents=True)

    if ancestry is None:
        say("simulating ancestry and mutations (msprime)")
        var = _simulate_variants(n, length, params["seed"])
    else:
        var = ancestry.variants
    say(f"{len(var.pos0)} biallelic SNVs ({var.n_dropped} multi-mutation sites dropped)")

    say("writing reference FASTA")
    genome = _reference_sequence(length, var, rngs["fasta"])
    _write_fasta(ref_dir / "genome_sequence.fasta", contig, genome)
    say("writing GFF3 annotations")
    _write_gff(ref_dir / "genome_annotations.gff", contig, length, rngs["gff"])
    say("writing VCF")
    _write_vcf(raw / "cohort.vcf.gz", contig, length, ids, var, params["missing_rate"], rngs["missing"])

    say("simulating phenotypes")
    age, male = _clinical(n, rngs["clinical"])
    shift = None if ancestry is None else ancestry.disease_shift
    disease, response = _phenotypes(var, age, male, params, rngs, disease_shift=shift)

    say("writing clinical CSVs and FASTQ reads")
    region = _target_region(var, length, params["target_length"])
    # A caller's own disease model replaces the liability-threshold one in the files (the demo: none).
    status = disease.status if ancestry is None or ancestry.disease_status is None else ancestry.disease_status
    extra = {} if ancestry is None else ancestry.clinical
    _write_patients(raw / "patient_data", ids, age, male, status, response.status, extra)
    _write_reads(raw / "patient_data", ids, genome, var, region, params, rngs["reads"])

    say("writing truth")
    truth = _truth(params, contig, ids, var, region, disease, response)
    if ancestry is not None:
        truth.update(ancestry.truth)
    (tmp / "truth").mkdir()
    _write_truth_vcf(tmp / "truth" / "target_genotypes.vcf.gz", contig, length, ids, var, region)
    (tmp / "truth" / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return {
        "n_patients": n,
        "n_variants": int(len(var.pos0)),
        "n_dropped_multiallelic": var.n_dropped,
        "target_region": truth["target_region"],
        "observed_prevalence": float(np.mean(status)),
        "oracle_auc_disease": truth["oracle_auc_disease"],
        "oracle_auc_response": truth["oracle_auc_response"],
        "expected_auc_genetic_plus_clinical": truth["expected_auc_genetic_plus_clinical"],
        "paths": {
            "root": "",
            "raw": "raw",
            "vcf": "raw/cohort.vcf.gz",
            "fasta": "raw/reference_genome/genome_sequence.fasta",
            "gff": "raw/reference_genome/genome_annotations.gff",
            "patient_data": "raw/patient_data",
            "truth": "truth/truth.json",
            "truth_vcf": "truth/target_genotypes.vcf.gz",
        },
    }


def _rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per purpose, so each stream is stable on its own."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)}


def _patient_ids(n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"PT{i:0{width}d}" for i in range(1, n + 1)]


def _target_region(var: _Variants, length: int, target_length: int) -> tuple[int, int]:
    """0-based half-open window holding the most common variants (else the most variants)."""
    common = var.pos0[var.maf >= _COMMON_MAF]
    pos = common if len(common) else var.pos0
    if len(pos) == 0:
        return 0, target_length
    starts = np.clip(pos, 0, length - target_length)
    first = np.searchsorted(pos, starts)
    last = np.searchsorted(pos, starts + target_length) - 1
    best = int(np.argmax(last - first))
    # Centre the window on its variants so the outer ones are not covered only by read ends.
    centre = (int(pos[first[best]]) + int(pos[last[best]])) // 2
    start = min(max(0, centre - target_length // 2), length - target_length)
    return start, start + target_length


# --------------------------------------------------------------------------- commit


def _commit(tmp: Path, out: Path, names: tuple[str, ...]) -> None:
    """Swap ``tmp/<name>`` into ``out/<name>``; old folders move into ``tmp`` and die with it."""
    old = tmp / ".old"
    old.mkdir()
    saved: list[str] = []
    placed: list[str] = []
    try:
        for name in names:
            if (out / name).exists():
                os.replace(out / name, old / name)
                saved.append(name)
        for name in names:
            os.replace(tmp / name, out / name)
            placed.append(name)
    except OSError:
        # Put the previous cohort back so a failed commit leaves it as it was.
        for name in placed:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in saved:
            os.replace(old / name, out / name)
        raise

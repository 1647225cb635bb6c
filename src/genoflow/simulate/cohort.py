"""Demo cohort generator: a coalescent-simulated cohort laid out as ``<root>/raw`` + ``<root>/truth``.

The cohort follows docs/decisions/0001-data-layout-and-encodings.md:

- ``raw/cohort.vcf.gz``: BGZF VCF 4.2, phased biallelic SNVs from msprime (REF = ancestral allele);
- ``raw/reference_genome/genome_sequence.fasta`` (with its samtools ``.fai``) and ``genome_annotations.gff`` (GFF3);
- ``raw/patient_data/<patient>/clinical_data.csv`` and ``genome_sequence.fastq.gz`` (targeted reads), or
  ``genome_sequence_R1.fastq.gz`` and ``_R2`` for paired reads (:mod:`genoflow.simulate.reads`);
- ``truth/truth.json``: the simulation truth (causal variants, liabilities, oracle AUCs);
- ``truth/target_genotypes.vcf.gz``: every variant of the targeted region with its true genotypes
  (no missing calls), the truth that genotypes called from the reads are scored against.

Phenotypes follow a liability-threshold model: liability = genetic value (variance = heritability,
on standardised genotypes) + clinical effects (age, sex) + environmental noise, with total variance
about 1; a patient is a case when the liability exceeds the (1 - prevalence) quantile.

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

import msprime
import numpy as np
from Bio import bgzf
from scipy import special, stats

from genoflow.simulate.reads import _BASES, _check_read_params, _write_reads

__all__ = ["make_demo_cohort", "Ancestry", "variants_from_tree_sequence"]

# Coalescent model (a human-like single population).
_RECOMBINATION_RATE = 1e-8
_POPULATION_SIZE = 10_000
_MUTATION_RATE = 1.5e-8

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

# Reference composition (human-like GC ~ 41 %); the order matches _BASES.
_BASE_PROBS = np.array([0.295, 0.205, 0.205, 0.295])
_FASTA_WIDTH = 60

# Genes: about one per 100 kb.
_GENE_SPACING = 100_000
_GENE_MIN_LEN, _GENE_MAX_LEN = 10_000, 60_000

_CHUNK_SITES = 512  # VCF lines built and compressed per chunk (bounds memory)

_STREAMS = ("fasta", "missing", "clinical", "disease", "response", "gff", "reads")


@dataclass
class _Variants:
    """Biallelic SNVs of the simulation, sorted by position."""

    pos0: np.ndarray  # 0-based positions, int64
    ref: np.ndarray  # ancestral base, uint8 ASCII
    alt: np.ndarray  # derived base, uint8 ASCII
    haps: np.ndarray  # (n_sites, 2 * n_patients) int8 alt-allele indicator; patient i = cols 2i, 2i+1
    n_dropped: int  # sites hit by more than one mutation

    @property
    def dosage(self) -> np.ndarray:
        """Alternate-allele count per (site, patient), int8."""
        return self.haps[:, 0::2] + self.haps[:, 1::2]

    @property
    def maf(self) -> np.ndarray:
        """Minor-allele frequency per site."""
        af = self.haps.mean(axis=1, dtype=np.float64)
        return np.minimum(af, 1.0 - af)


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
    n_patients: int = 1000,
    sequence_length: int = 2_000_000,
    seed: int = 1,
    heritability: float = 0.5,
    prevalence: float = 0.3,
    n_causal: int = 20,
    reads_per_patient: int = 200,
    read_length: int = 100,
    target_length: int = 2_000,
    missing_rate: float = 0.005,
    contig: str = "chr22",
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
    n_patients : int
        Number of diploid patients (VCF samples ``PT00001``...).
    sequence_length : int
        Length of the simulated contig in bp.
    seed : int
        Seed of every random stream; the same seed gives byte-identical files.
    heritability : float
        Variance of the disease genetic value on the liability scale (0 <= h2 < ~0.95).
    prevalence : float
        Fraction of cases (disease_status = 1).
    n_causal : int
        Number of disease causal variants, drawn among common ones (MAF >= 5 %).
    reads_per_patient, read_length, target_length : int
        Reads per patient (ignored when ``coverage`` is given), their length, and the length of the
        targeted region.
    missing_rate : float
        Probability that a VCF genotype is written as missing (``./.``).
    contig : str
        Contig name in the VCF, FASTA and GFF.
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
    params = {
        "n_patients": n_patients,
        "sequence_length": sequence_length,
        "seed": seed,
        "heritability": heritability,
        "prevalence": prevalence,
        "n_causal": n_causal,
        "reads_per_patient": reads_per_patient,
        "read_length": read_length,
        "target_length": target_length,
        "missing_rate": missing_rate,
        "contig": contig,
    }
    if coverage is not None or paired:
        # Only then, so the demo's truth.json (which records the parameters) keeps its bytes.
        params.update(coverage=coverage, paired=paired, fragment_mean=fragment_mean, fragment_sd=fragment_sd)
    _check_params(params)
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


def _check_params(p: dict) -> None:
    """Reject parameters that cannot give a valid cohort, naming the parameter."""
    checks = [
        (0 < p["seed"] < 2**32, "seed must be in [1, 2**32) (msprime's range)"),
        (p["n_patients"] >= 2, "n_patients must be >= 2"),
        (p["sequence_length"] >= 1000, "sequence_length must be >= 1000"),
        (0.0 <= p["heritability"] < 1.0, "heritability must be in [0, 1)"),
        (0.0 < p["prevalence"] < 1.0, "prevalence must be in (0, 1)"),
        (p["n_causal"] >= 0, "n_causal must be >= 0"),
        (p["reads_per_patient"] >= 0, "reads_per_patient must be >= 0"),
        (1 <= p["read_length"] <= p["target_length"], "need 1 <= read_length <= target_length"),
        (p["target_length"] <= p["sequence_length"], "target_length must be <= sequence_length"),
        (0.0 <= p["missing_rate"] < 1.0, "missing_rate must be in [0, 1)"),
        (bool(p["contig"]) and not any(c.isspace() for c in p["contig"]), "contig must be a non-empty word"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


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


# --------------------------------------------------------------------------- genotypes


def _simulate_variants(n: int, length: int, seed: int) -> _Variants:
    """Coalescent genotypes; keeps sites carrying exactly one mutation (biallelic SNVs)."""
    ts = msprime.sim_ancestry(
        samples=n,
        ploidy=2,
        sequence_length=length,
        recombination_rate=_RECOMBINATION_RATE,
        population_size=_POPULATION_SIZE,
        random_seed=seed,
    )
    ts = msprime.sim_mutations(ts, rate=_MUTATION_RATE, random_seed=seed)
    return variants_from_tree_sequence(ts)


def variants_from_tree_sequence(ts) -> _Variants:
    """Biallelic SNVs of a tree sequence with JC69 mutations (sites with >1 mutation dropped)."""
    tables = ts.tables
    if np.any(np.diff(tables.sites.ancestral_state_offset) != 1):
        raise RuntimeError("expected single-nucleotide ancestral states from msprime's JC69 model")
    n_mut = np.bincount(tables.mutations.site, minlength=ts.num_sites)
    # Sites with recurrent or back mutations may be multi-allelic; dropping them all is simplest
    # and costs ~0.3 % of sites.
    keep = np.flatnonzero(n_mut == 1)
    ts = ts.delete_sites(np.flatnonzero(n_mut != 1))
    # JC69 alleles are single nucleotides, so the ragged state columns are one byte per row.
    ref = tables.sites.ancestral_state[keep].view(np.uint8)
    mut_order = np.argsort(tables.mutations.site, kind="stable")
    first_mut = mut_order[np.searchsorted(tables.mutations.site[mut_order], keep)]
    alt = tables.mutations.derived_state[first_mut].view(np.uint8)
    pos0 = tables.sites.position[keep].astype(np.int64)
    haps = ts.genotype_matrix().astype(np.int8)
    # Guard against monomorphic columns (e.g. a mutation over every sample).
    ac = haps.sum(axis=1, dtype=np.int64)
    poly = (ac > 0) & (ac < haps.shape[1])
    return _Variants(pos0[poly], ref[poly], alt[poly], haps[poly], int(len(n_mut) - len(keep)))


def _write_vcf(
    path: Path,
    contig: str,
    length: int,
    ids: list[str],
    var: _Variants,
    missing_rate: float,
    rng: np.random.Generator,
) -> None:
    """BGZF VCF 4.2, phased GT; genotype text built as byte arrays, one chunk of sites at a time."""
    header = (
        "##fileformat=VCFv4.2\n"
        f"##source=genoflow.simulate.make_demo_cohort (msprime {msprime.__version__})\n"
        "##reference=reference_genome/genome_sequence.fasta\n"
        f"##contig=<ID={contig},length={length}>\n"
        '##FILTER=<ID=PASS,Description="All filters passed">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(ids) + "\n"
    )
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(header.encode("ascii"))
        for lo in range(0, len(var.pos0), _CHUNK_SITES):
            hi = min(lo + _CHUNK_SITES, len(var.pos0))
            out.write(_vcf_chunk(contig, var, lo, hi, missing_rate, rng))


def _vcf_chunk(
    contig: str, var: _Variants, lo: int, hi: int, missing_rate: float, rng: np.random.Generator
) -> bytes:
    """VCF lines for sites ``lo:hi``; each genotype is 4 bytes: allele, '|', allele, tab."""
    haps = var.haps[lo:hi]
    n_sites, n = haps.shape[0], haps.shape[1] // 2
    cells = np.empty((n_sites, n, 4), dtype=np.uint8)
    cells[:, :, 0] = haps[:, 0::2] + ord("0")
    cells[:, :, 1] = ord("|")
    cells[:, :, 2] = haps[:, 1::2] + ord("0")
    cells[:, :, 3] = ord("\t")
    missing = rng.random((n_sites, n)) < missing_rate
    cells[missing] = np.frombuffer(b"./.\t", dtype=np.uint8)
    cells[:, -1, 3] = ord("\n")
    body = cells.reshape(n_sites, n * 4)
    ref, alt = var.ref[lo:hi].tobytes().decode(), var.alt[lo:hi].tobytes().decode()
    prefixes = [
        f"{contig}\t{p + 1}\t.\t{r}\t{a}\t.\tPASS\t.\tGT\t".encode()
        for p, r, a in zip(var.pos0[lo:hi], ref, alt, strict=True)
    ]
    return b"".join(part for i in range(n_sites) for part in (prefixes[i], body[i].tobytes()))


def _write_truth_vcf(
    path: Path, contig: str, length: int, ids: list[str], var: _Variants, region: tuple[int, int]
) -> None:
    """Every variant inside the targeted region (0-based half-open) with its true phased genotypes."""
    inside = (var.pos0 >= region[0]) & (var.pos0 < region[1])
    sites = _Variants(var.pos0[inside], var.ref[inside], var.alt[inside], var.haps[inside], 0)
    # With missing_rate 0 the stream's draws decide nothing: a throwaway one leaves the cohort's streams as they are.
    _write_vcf(path, contig, length, ids, sites, 0.0, np.random.default_rng(0))


# --------------------------------------------------------------------------- reference


def _reference_sequence(length: int, var: _Variants, rng: np.random.Generator) -> np.ndarray:
    """Random ACGT with the ancestral (REF) base at every variant position."""
    genome = _BASES[rng.choice(4, size=length, p=_BASE_PROBS)]
    genome[var.pos0] = var.ref
    return genome


def _write_fasta(path: Path, contig: str, genome: np.ndarray) -> None:
    full = len(genome) // _FASTA_WIDTH * _FASTA_WIDTH
    lines = np.empty((full // _FASTA_WIDTH, _FASTA_WIDTH + 1), dtype=np.uint8)
    lines[:, :-1] = genome[:full].reshape(-1, _FASTA_WIDTH)
    lines[:, -1] = ord("\n")
    tail = genome[full:].tobytes() + b"\n" if full < len(genome) else b""
    path.write_bytes(f">{contig}\n".encode() + lines.tobytes() + tail)
    _write_fai(path)


def _write_fai(fasta: Path) -> None:
    """``<fasta>.fai``, as ``samtools faidx`` writes it: references ship with their index (decision 0013)."""
    from genoflow.io.reference import build_fai

    with open(fasta, "rb") as stream:
        index = build_fai(stream, source=str(fasta))
    Path(f"{fasta}.fai").write_text(index.to_text())


def _write_gff(path: Path, contig: str, length: int, rng: np.random.Generator) -> None:
    """GFF3 with ~1 gene per 100 kb: gene -> mRNA -> exons, non-overlapping, gaps between genes."""
    n_genes = max(1, length // _GENE_SPACING)
    slot = length // n_genes
    width = max(2, len(str(n_genes)))
    rows = [f"##gff-version 3\n##sequence-region {contig} 1 {length}\n"]
    for k in range(n_genes):
        gene_len = int(rng.integers(min(_GENE_MIN_LEN, slot // 2), min(_GENE_MAX_LEN, slot // 2) + 1))
        start = k * slot + int(rng.integers(0, slot - gene_len)) + 1  # 1-based, inside its slot
        end = start + gene_len - 1
        strand = "+" if rng.random() < 0.5 else "-"
        name = f"{k + 1:0{width}d}"
        gid, tid = f"gene:GENE{name}", f"transcript:GENE{name}.1"
        col = f"{contig}\tgenoflow\t{{}}\t{{}}\t{{}}\t.\t{strand}\t.\t{{}}\n"
        rows.append(col.format("gene", start, end, f"ID={gid};Name=GF{name};biotype=protein_coding"))
        rows.append(col.format("mRNA", start, end, f"ID={tid};Parent={gid};Name=GF{name}-201"))
        for j, (es, ee) in enumerate(_exons(start, end, rng), start=1):
            rows.append(col.format("exon", es, ee, f"ID=exon:GENE{name}.1.{j};Parent={tid}"))
    path.write_text("".join(rows))


def _exons(start: int, end: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """3-10 exons: the first starts at the gene start, the last ends at its end, one per segment."""
    k = int(rng.integers(3, 11))
    bounds = np.linspace(start, end + 1, k + 1).astype(int)
    lengths = rng.integers(80, 401, size=k)
    exons = []
    for i in range(k):
        seg_lo, seg_hi = bounds[i], bounds[i + 1] - 1
        ln = int(min(lengths[i], (seg_hi - seg_lo + 1) // 2))
        if i == 0:
            es = seg_lo
        elif i == k - 1:
            es = seg_hi - ln + 1
        else:
            es = seg_lo + int(rng.integers(0, seg_hi - seg_lo + 2 - ln))
        exons.append((es, es + ln - 1))
    return exons


# --------------------------------------------------------------------------- phenotypes


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


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """AUC-ROC by the Mann-Whitney rank formula (average ranks for ties)."""
    label = np.asarray(label).astype(bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


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


# --------------------------------------------------------------------------- patients


def _write_patients(
    root: Path,
    ids: list[str],
    age: np.ndarray,
    male: np.ndarray,
    disease: np.ndarray,
    response: np.ndarray,
    extra: dict[str, np.ndarray] | None = None,
) -> None:
    extra = extra or {}
    header = ",".join(["patient_id", "age", "sex", "disease_status", "treatment_response", *extra]) + "\n"
    for i, pid in enumerate(ids):
        folder = root / pid
        folder.mkdir(parents=True)
        sex = "M" if male[i] else "F"
        values = "".join(f",{_csv_value(column[i])}" for column in extra.values())
        (folder / "clinical_data.csv").write_text(
            f"{header}{pid},{age[i]},{sex},{disease[i]},{response[i]}{values}\n"
        )


def _csv_value(value) -> str:
    """A clinical CSV cell: empty for missing (None/NaN), floats to 4 decimals, anything else as text."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.4f}"
    return str(value)


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


# --------------------------------------------------------------------------- truth and commit


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
        "oracle_auc_disease": _round(_auc(disease.genetic + disease.clinical, disease.status)),
        "oracle_auc_response": _round(_auc(response.genetic + response.clinical, response.status)),
        "auc_genetic_only_disease": _round(_auc(disease.genetic, disease.status)),
        "auc_clinical_only_disease": _round(_auc(disease.clinical, disease.status)),
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

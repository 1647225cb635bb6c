"""A biobank-sized cohort (10^5 patients) and a GRCh38-sized reference, both written streaming.

The genotypes are :mod:`genoflow.simulate.ooa`'s (stdpopsim OutOfAfrica_3G09 with msprime), but at
this size the haplotype matrix cannot be held (200,000 haplotypes x 60,000 sites is 12 GB), so the
tree sequence's variants are decoded one block at a time (:func:`genoflow.genotypes.rows_per_block`)
and piped through ``bgzip`` as VCF text. The study is one phenotype table (decision 0011: id,
disease_status, age, sex), with no per-patient folders, reads or annotations.

The simulated region sits at ``region_start`` on a real-length contig (chr20 by default), so the
reference written by :func:`write_reference` is GRCh38-sized: 24 contigs of GRCh38's lengths, random
ACGT except the REF base at every variant position, bgzip-compressed with ``samtools faidx``'s
``.fai`` and ``.gzi``. The cohort keeps its sites (``truth/ref_sites.npz``) so that reference can be
built later, by :func:`reference_for_cohort`, and cached apart from the cohort.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from genoflow.evaluation.metrics import auc_roc
from genoflow.genotypes import rows_per_block
from genoflow.simulate.cohort import _commit, _patient_ids, _Progress, _rngs
from genoflow.simulate.files import _BASE_PROBS, _FASTA_WIDTH, _vcf_chunk
from genoflow.simulate.ooa import DEFAULT_POPULATION_SHIFT, POPULATIONS, _population_sizes, _simulate
from genoflow.simulate.reads import _BASES
from genoflow.simulate.spec import OOA
from genoflow.simulate.traits import (
    _AGE_MEAN,
    _COMMON_MAF,
    _DISEASE_AGE_EFFECT,
    _DISEASE_MALE_EFFECT,
    _clinical,
    _trait,
)
from genoflow.simulate.variants import _Variants

__all__ = ["make_biobank_cohort", "write_reference", "reference_for_cohort", "GRCH38_LENGTHS"]

# GRCh38 primary assembly contig lengths (bp), as in its .fai: 3,088,269,832 in all.
GRCH38_LENGTHS = {
    "chr1": 248_956_422, "chr2": 242_193_529, "chr3": 198_295_559, "chr4": 190_214_555, "chr5": 181_538_259,
    "chr6": 170_805_979, "chr7": 159_345_973, "chr8": 145_138_636, "chr9": 138_394_717, "chr10": 133_797_422,
    "chr11": 135_086_622, "chr12": 133_275_309, "chr13": 114_364_328, "chr14": 107_043_718,
    "chr15": 101_991_189, "chr16": 90_338_345, "chr17": 83_257_441, "chr18": 80_373_285, "chr19": 58_617_616,
    "chr20": 64_444_167, "chr21": 46_709_983, "chr22": 50_818_468, "chrX": 156_040_895, "chrY": 57_227_415,
}
# Past chr20's centromere (~26-30 Mb): a region a real study could genotype.
DEFAULT_REGION_START = 31_000_000
# The widest per-patient array of a VCF block: _vcf_chunk's float64 draw deciding missing calls.
_VCF_BYTES_PER_PATIENT = 8
# Reference chunk: whole FASTA lines, ~16 MB of bases held at a time.
_REF_CHUNK = _FASTA_WIDTH * (1 << 18)
# Bases drawn as one byte in [0, 200) mapped through this table: the demo's GC-41 % composition, exactly.
_BASE_TABLE = np.repeat(_BASES, (_BASE_PROBS * 200).round().astype(int))


def make_biobank_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = 100_000,
    sequence_length: int = 1_000_000,
    seed: int = OOA.seed,
    contig: str = OOA.contig,
    region_start: int = DEFAULT_REGION_START,
    heritability: float = OOA.heritability,
    prevalence: float = OOA.prevalence,
    n_causal: int = OOA.n_causal,
    missing_rate: float = OOA.missing_rate,
    threads: int = 2,
    progress: bool = False,
) -> dict:
    """Simulate an OutOfAfrica_3G09 cohort of ``n_patients`` and write ``raw/`` and ``truth/`` under ``out_dir``.

    Writes ``raw/cohort.vcf.gz`` (BGZF VCF 4.2, phased GT, POS on the full-length contig),
    ``raw/phenotypes.csv`` (patient_id, disease_status, age, sex), ``truth/truth.json`` (model,
    causal variants, prevalence, oracle AUC), ``truth/patients.csv`` (population, genetic value,
    liability per patient) and ``truth/ref_sites.npz`` (every variant's 0-based position and REF
    base, for :func:`reference_for_cohort`). Patients are listed YRI, CEU, CHB as in
    :func:`genoflow.simulate.ooa.make_ooa_cohort`, whose disease model (liability threshold plus a
    population shift) this shares.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Local folder; ``raw/`` and ``truth/`` inside it are replaced once complete.
    n_patients : int
        Diploid individuals (>= 3).
    sequence_length : int
        Length of the simulated region in bp.
    seed : int
        Seed of the coalescent, the mutations and every random stream of the cohort.
    contig : str
        A key of :data:`GRCH38_LENGTHS`; the VCF's contig and length.
    region_start : int
        0-based position on ``contig`` of the region's first base.
    heritability, prevalence, n_causal, missing_rate
        As in :func:`genoflow.simulate.cohort.make_demo_cohort`.
    threads : int
        ``bgzip -@`` compression threads.
    progress : bool
        Print stage names to stderr.

    Returns
    -------
    dict
        ``n_patients``, ``n_variants``, ``n_dropped``, ``populations``, ``observed_prevalence``,
        ``oracle_auc_disease``, ``vcf_bytes``, ``seconds`` (per stage) and ``paths``.

    Raises
    ------
    ValueError
        On fewer than 3 patients, an unknown contig, a region past the contig's end, or too few
        common variants for ``n_causal``.
    """
    if n_patients < 3:
        raise ValueError("n_patients must be >= 3 (one per population)")
    if contig not in GRCH38_LENGTHS:
        raise ValueError(f"contig {contig!r} is not a GRCh38 contig; expected one of {list(GRCH38_LENGTHS)}")
    if region_start < 0 or region_start + sequence_length > GRCH38_LENGTHS[contig]:
        raise ValueError(f"region {region_start}+{sequence_length} is outside {contig} "
                         f"(length {GRCH38_LENGTHS[contig]:,})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".biobank-tmp-", dir=out))
    try:
        summary = _build(tmp, _params(locals()), _Progress(progress))
        _commit(tmp, out, ("raw", "truth"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _params(scope: dict) -> dict:
    """The parameters of :func:`make_biobank_cohort` (for truth.json), from its locals."""
    names = ("n_patients", "sequence_length", "seed", "contig", "region_start", "heritability", "prevalence",
             "n_causal", "missing_rate", "threads")
    return {name: scope[name] for name in names}


def _build(tmp: Path, params: dict, say: _Progress) -> dict:
    n, seed = params["n_patients"], params["seed"]
    seconds, started = {}, time.perf_counter()
    rngs = _rngs(seed)
    sizes = _population_sizes(n)
    say(f"simulating {n} patients x {params['sequence_length']:,} bp (stdpopsim OutOfAfrica_3G09)")
    ts, model_truth = _simulate(sizes, params["sequence_length"], seed)
    ts, n_dropped, counts = _biallelic_sites(ts)
    seconds["simulate"], started = round(time.perf_counter() - started, 1), time.perf_counter()
    say(f"{ts.num_sites} biallelic SNVs ({n_dropped} sites dropped)")

    tables = ts.tables
    pos0 = tables.sites.position.astype(np.int64) + params["region_start"]
    # Exactly one mutation per kept site, sorted by site: row i of each table is site i's.
    ref = tables.sites.ancestral_state.view(np.uint8)
    alt = tables.mutations.derived_state.view(np.uint8)
    maf = np.minimum(counts, 2 * n - counts) / (2 * n)
    causal = np.sort(rngs["disease"].choice(np.flatnonzero(maf >= _COMMON_MAF), size=params["n_causal"],
                                            replace=False)) if params["n_causal"] else np.zeros(0, np.int64)
    (tmp / "raw").mkdir()
    ids = _patient_ids(n)
    causal_haps = _write_vcf(tmp / "raw" / "cohort.vcf.gz", ts, params, ids, (pos0, ref, alt), causal,
                             rngs["missing"], say)
    seconds["vcf"], started = round(time.perf_counter() - started, 1), time.perf_counter()

    say("simulating phenotypes")
    labels = np.repeat(POPULATIONS, [sizes[p] for p in POPULATIONS])
    shift = np.array([DEFAULT_POPULATION_SHIFT[p] for p in labels])
    age, male = _clinical(n, rngs["clinical"])
    var = _Variants(pos0[causal], ref[causal], alt[causal], causal_haps, 0)
    disease = _trait(var, np.arange(len(causal)), len(causal), params["heritability"], params["prevalence"],
                     _DISEASE_AGE_EFFECT * (age - _AGE_MEAN) + _DISEASE_MALE_EFFECT * male + shift, rngs["disease"])
    pd.DataFrame({"patient_id": ids, "disease_status": disease.status, "age": age,
                  "sex": np.where(male == 1, "M", "F")}).to_csv(tmp / "raw" / "phenotypes.csv", index=False)
    oracle = auc_roc(disease.status, disease.genetic + disease.clinical)
    _write_truth(tmp / "truth", params, model_truth, ids, labels, var, causal, disease, oracle, (pos0, ref))
    seconds["phenotypes"] = round(time.perf_counter() - started, 1)
    return {
        "n_patients": n, "n_variants": int(ts.num_sites), "n_dropped": n_dropped, "populations": sizes,
        "observed_prevalence": float(disease.status.mean()), "oracle_auc_disease": round(oracle, 4),
        "vcf_bytes": (tmp / "raw" / "cohort.vcf.gz").stat().st_size, "seconds": seconds,
        "paths": {"vcf": "raw/cohort.vcf.gz", "phenotypes": "raw/phenotypes.csv", "truth": "truth/truth.json",
                  "ref_sites": "truth/ref_sites.npz"},
    }


def _biallelic_sites(ts):
    """The tree sequence without multi-mutation or monomorphic sites, the number dropped, alt-allele counts.

    Counts come from the trees (samples under each site's one mutation), so no genotype is decoded.
    """
    n_mut = np.bincount(ts.tables.mutations.site, minlength=ts.num_sites)
    if np.any(np.diff(ts.tables.sites.ancestral_state_offset) != 1):
        raise RuntimeError("expected single-nucleotide ancestral states from msprime's JC69 model")
    ts = ts.delete_sites(np.flatnonzero(n_mut != 1))
    counts = np.empty(ts.num_sites, dtype=np.int64)
    for tree in ts.trees():
        for site in tree.sites():
            counts[site.id] = tree.num_samples(site.mutations[0].node)
    # A mutation above every sample (or none) leaves a monomorphic site.
    mono = (counts == 0) | (counts == ts.num_samples)
    dropped = int(np.sum(n_mut != 1) + mono.sum())
    return ts.delete_sites(np.flatnonzero(mono)), dropped, counts[~mono]


def _write_vcf(path: Path, ts, params: dict, ids: list[str], sites, causal: np.ndarray, rng, say) -> np.ndarray:
    """Stream the VCF through ``bgzip``, a block of sites at a time; return the causal sites' haplotypes."""
    pos0, ref, alt = sites
    contig, n = params["contig"], len(ids)
    header = (
        "##fileformat=VCFv4.2\n"
        "##source=genoflow.simulate.biobank (stdpopsim OutOfAfrica_3G09, msprime)\n"
        f"##contig=<ID={contig},length={GRCH38_LENGTHS[contig]},assembly=GRCh38-like>\n"
        '##FILTER=<ID=PASS,Description="All filters passed">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(ids) + "\n"
    )
    rows = rows_per_block(n, _VCF_BYTES_PER_PATIENT)
    block = np.empty((rows, 2 * n), dtype=np.int8)
    causal_haps = np.empty((len(causal), 2 * n), dtype=np.int8)
    is_causal = np.zeros(ts.num_sites, dtype=bool)
    is_causal[causal] = True
    with path.open("wb") as sink:
        bgzip = subprocess.Popen(["bgzip", "-@", str(params["threads"]), "-c"], stdin=subprocess.PIPE, stdout=sink)
        try:
            bgzip.stdin.write(header.encode("ascii"))
            lo, k, found = 0, 0, 0
            for variant in ts.variants(copy=False):
                block[k] = variant.genotypes
                if is_causal[variant.site.id]:
                    causal_haps[found] = variant.genotypes
                    found += 1
                k += 1
                if k == rows or lo + k == ts.num_sites:
                    chunk = _Variants(pos0[lo:lo + k], ref[lo:lo + k], alt[lo:lo + k], block[:k], 0)
                    bgzip.stdin.write(_vcf_chunk(contig, chunk, 0, k, params["missing_rate"], rng))
                    lo, k = lo + k, 0
                    if lo % (rows * 100) == 0:
                        say(f"VCF: {lo:,} / {ts.num_sites:,} sites")
        finally:
            bgzip.stdin.close()
            code = bgzip.wait()
    if code != 0:
        raise RuntimeError(f"bgzip exited {code} writing {path}")
    return causal_haps


def _write_truth(folder: Path, params, model_truth, ids, labels, var, causal, disease, oracle, sites) -> None:
    folder.mkdir()
    pos0, ref = sites
    np.savez(folder / "ref_sites.npz", contig=np.array(params["contig"]), pos0=pos0, ref=ref)
    pd.DataFrame({"patient_id": ids, "population": labels, "genetic_value_disease": disease.genetic.round(6),
                  "liability_disease": disease.liability.round(6)}).to_csv(folder / "patients.csv", index=False)
    truth = {
        "params": params, "model": model_truth,
        "population_shift": {p: DEFAULT_POPULATION_SHIFT[p] for p in POPULATIONS},
        "disease": {
            "causal_variants": [{"site": int(s), "chrom": params["contig"], "pos": int(p) + 1, "ref": chr(r),
                                 "alt": chr(a), "effect_per_allele": round(float(e), 6)}
                                for s, p, r, a, e in zip(causal, var.pos0, var.ref, var.alt, disease.per_allele,
                                                         strict=True)],
            "threshold": disease.threshold, "noise_sd": disease.noise_sd,
        },
        "oracle_auc_disease": round(oracle, 4),
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


# --------------------------------------------------------------------------- reference


def reference_for_cohort(cohort_root: str | os.PathLike, path: str | os.PathLike, *, seed: int = 1,
                         threads: int = 2) -> Path:
    """The GRCh38-sized reference whose contig carries the cohort's REF bases; built once, then reused.

    A stamp beside ``path`` (``<path>.json``) records the cohort's site count and seed: a reference
    built for other sites is rebuilt.
    """
    sites = np.load(Path(cohort_root) / "truth" / "ref_sites.npz")
    contig = str(sites["contig"])
    stamp = {"contig": contig, "n_sites": int(len(sites["pos0"])), "seed": seed,
             "first_last": [int(sites["pos0"][0]), int(sites["pos0"][-1])] if len(sites["pos0"]) else []}
    path = Path(path)
    stamp_path = path.with_name(path.name + ".json")
    done = all(Path(f"{path}{ext}").exists() for ext in ("", ".fai", ".gzi"))
    if done and stamp_path.exists() and json.loads(stamp_path.read_text()).get("sites") == stamp:
        return path
    seconds = write_reference(path, {contig: (sites["pos0"], sites["ref"])}, seed=seed, threads=threads)
    stamp_path.write_text(json.dumps({"sites": stamp, "build_s": seconds}, indent=1) + "\n")
    return path


def write_reference(path: str | os.PathLike, sites: dict[str, tuple[np.ndarray, np.ndarray]], *, seed: int = 1,
                    lengths: dict[str, int] | None = None, threads: int = 2) -> float:
    """Write a bgzipped FASTA of ``lengths`` (default GRCh38's) with ``.fai`` and ``.gzi``; return seconds.

    Every base is random ACGT (GC 41 %) except ``sites[contig] = (pos0, ref)``: those 0-based
    positions carry those bases (uint8 ASCII). Written ``_REF_CHUNK`` bases at a time through
    ``bgzip -@threads``, indexed by ``samtools faidx``, and moved into place only once indexed.
    """
    started = time.perf_counter()
    lengths = GRCH38_LENGTHS if lengths is None else lengths
    unknown = sorted(set(sites) - set(lengths))
    if unknown:
        raise ValueError(f"sites on contig(s) {unknown} that the reference does not have")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".reference-tmp-", dir=path.parent))
    try:
        fasta = tmp / path.name
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        with fasta.open("wb") as sink:
            # Level 1: random bases leave deflate no matches to find, so higher levels cost ~50x the CPU
            # for ~15 % smaller output.
            bgzip = subprocess.Popen(["bgzip", "-@", str(threads), "-l", "1", "-c"], stdin=subprocess.PIPE,
                                     stdout=sink)
            try:
                for contig, length in lengths.items():
                    bgzip.stdin.write(f">{contig}\n".encode())
                    for lo in range(0, length, _REF_CHUNK):
                        bgzip.stdin.write(_reference_chunk(lo, min(lo + _REF_CHUNK, length), sites.get(contig), rng))
            finally:
                bgzip.stdin.close()
                code = bgzip.wait()
        if code != 0:
            raise RuntimeError(f"bgzip exited {code} writing {path}")
        subprocess.run(["samtools", "faidx", str(fasta)], check=True)
        for ext in (".fai", ".gzi", ""):  # the FASTA last: where it exists, its indexes do
            os.replace(f"{fasta}{ext}", f"{path}{ext}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return round(time.perf_counter() - started, 1)


def _reference_chunk(lo: int, hi: int, sites, rng: np.random.Generator) -> bytes:
    """FASTA lines of bases ``lo:hi`` of a contig (``lo`` a multiple of the line width)."""
    bases = _BASE_TABLE[rng.integers(0, len(_BASE_TABLE), size=hi - lo, dtype=np.uint8)]
    if sites is not None:
        pos0, ref = sites
        first, last = np.searchsorted(pos0, [lo, hi])
        bases[pos0[first:last] - lo] = ref[first:last]
    full = len(bases) // _FASTA_WIDTH * _FASTA_WIDTH
    lines = np.empty((full // _FASTA_WIDTH, _FASTA_WIDTH + 1), dtype=np.uint8)
    lines[:, :-1] = bases[:full].reshape(-1, _FASTA_WIDTH)
    lines[:, -1] = ord("\n")
    tail = bases[full:].tobytes() + b"\n" if full < len(bases) else b""
    return lines.tobytes() + tail

"""Simulated sequencing reads of a cohort: targeted Illumina-like FASTQ, single-end or paired-end.

Reads are drawn from each patient's two haplotypes (the reference with the patient's alleles,
:func:`_region_haplotypes`): a haplotype uniformly per read (or fragment), a start uniform over the
positions that keep the read (or fragment) inside the sequenced span. At a given ``coverage`` that span is
the target region and a flank on each side (one read length, or for pairs the mean fragment length plus
3 SD), as capture baits pull in fragments that reach past the target: the depth is then uniform over the
whole target, up to its ends, and every variant of the truth is callable. The demo's few
``reads_per_patient`` reads stay inside the target region.

- Single-end: each read is the forward strand or its reverse complement with probability 1/2.
- Paired-end: fragment lengths are ``round(N(fragment_mean, fragment_sd))`` clipped to
  ``[read_length, region length]``; a fragment comes from either strand with probability 1/2; R1 reads
  the fragment's 5' end and R2 the reverse complement of its 3' end, so mates face each other (FR, as
  Illumina). Mates of a pair share their name: ``@<pid>:1:FCX:1:<n> 1:N:0:1`` in
  ``genome_sequence_R1.fastq.gz``, ``... 2:N:0:1`` in ``genome_sequence_R2.fastq.gz`` (Casava 1.8).
  Single-end reads go to ``genome_sequence.fastq.gz``.

Error profile (each mate the same way):

- Phred qualities: mean Q37 at the first cycle decaying quadratically to Q27 at the last, Gaussian
  noise (SD 2.5) per base, 3 % of reads 12 lower throughout, rounded and clipped to [2, 41].
- Each base is miscalled with the probability its own quality states, ``10 ** (-Q / 10)`` (the Phred
  definition), into one of the three other bases uniformly; so the written qualities are calibrated.
- 0.1 % of bases are no-calls: ``N`` with quality 2.
- Substitutions only: no indels, no PCR duplicates, no adapters.

Read count per patient: ``reads_per_patient``, or, when ``coverage`` is given,
``coverage * span_length / read_length`` reads (half that many pairs), so the mean depth over the
target region is ``coverage``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from genoflow.simulate.variants import _Variants

__all__ = ["make_reads_cohort", "reads_per_patient", "sequenced_span", "FASTQ_SINGLE", "FASTQ_PAIRED"]

FASTQ_SINGLE = "genome_sequence.fastq.gz"
FASTQ_PAIRED = ("genome_sequence_R1.fastq.gz", "genome_sequence_R2.fastq.gz")

# The nucleotide alphabet; the order is that of the reference's base probabilities and of substitutions.
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)

# Illumina-like read model (Phred+33).
_Q_START, _Q_END = 37.0, 27.0  # mean quality at the first and last cycle
_Q_NOISE_SD = 2.5
_Q_MIN, _Q_MAX = 2, 41
_LOW_QUALITY_READ_RATE = 0.03
_LOW_QUALITY_OFFSET = 12.0
_N_CALL_RATE = 0.001
_N_QUALITY = 2  # '#'

_CHUNK_PATIENTS = 128  # patients whose reads_per_patient reads are simulated together
# Reads (or pairs) simulated together at a given coverage: ~40 bytes per base at the peak, so ~50 MB for
# 150 bp reads. A fixed count, not a memory setting, keeps the random stream and the bytes per seed fixed.
_READ_BLOCK = 8192
_GZIP_LEVEL = 6

_COMPLEMENT = np.arange(256, dtype=np.uint8)
_COMPLEMENT[np.frombuffer(b"ACGTN", np.uint8)] = np.frombuffer(b"TGCAN", np.uint8)
_BASE_INDEX = np.zeros(256, dtype=np.int64)
_BASE_INDEX[_BASES] = np.arange(4)


def make_reads_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: int = 20,
    panel_length: int = 200_000,
    coverage: float = 30.0,
    read_length: int = 150,
    paired: bool = True,
    sequence_length: int = 1_000_000,
    seed: int = 1,
    **kwargs,
) -> dict:
    """A demo cohort sequenced as a targeted panel: by default 30x paired 2 x 150 bp over 200 kb of 1 Mb.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Local folder, as :func:`genoflow.simulate.make_demo_cohort`.
    n_patients, sequence_length, seed : int
        As :func:`genoflow.simulate.make_demo_cohort`.
    panel_length : int
        Length of the targeted region (``target_length``), placed where the common variants are densest.
    coverage : float
        Mean read depth over the panel.
    read_length : int
        Length of each read (each mate).
    paired : bool
        Paired-end reads (R1/R2 files) instead of single-end.
    **kwargs
        Any other :func:`genoflow.simulate.make_demo_cohort` parameter (``fragment_mean``, ``progress``...).

    Returns
    -------
    dict
        :func:`genoflow.simulate.make_demo_cohort`'s summary; ``paths["truth_vcf"]`` holds the panel's
        true genotypes.
    """
    # Imported here: cohort.py imports this module's read writer at its top.
    from genoflow.simulate.cohort import make_demo_cohort

    return make_demo_cohort(
        out_dir,
        n_patients=n_patients,
        sequence_length=sequence_length,
        seed=seed,
        target_length=panel_length,
        coverage=coverage,
        read_length=read_length,
        paired=paired,
        **kwargs,
    )


def reads_per_patient(params: dict, span_length: int) -> int:
    """Reads per patient (pairs when ``params["paired"]``) sequenced over ``span_length`` bp.

    From ``coverage`` when given (``coverage * span_length / read_length`` bases, half as many pairs),
    else ``reads_per_patient``.
    """
    coverage = params.get("coverage")
    if coverage is None:
        return int(params["reads_per_patient"])
    mates = 2 if params.get("paired") else 1
    return max(1, round(coverage * span_length / (mates * params["read_length"])))


def sequenced_span(region: tuple[int, int], genome_length: int, params: dict) -> tuple[int, int]:
    """0-based half-open span the reads are drawn from: the target region and its flanks, within the genome."""
    if params.get("coverage") is None and not params.get("paired"):
        return region  # the demo's few reads: inside the target, as they always were
    flank = params["read_length"]
    if params.get("paired"):
        flank = int(np.ceil(params["fragment_mean"] + 3 * params["fragment_sd"]))
    return max(0, region[0] - flank), min(genome_length, region[1] + flank)


def _check_read_params(p: dict) -> None:
    """Reject sequencing parameters that cannot give reads, naming the parameter."""
    coverage, read_len = p.get("coverage"), p["read_length"]
    checks = [
        (coverage is None or coverage > 0, "coverage must be > 0"),
        (p.get("fragment_sd", 0) >= 0, "fragment_sd must be >= 0"),
        (
            not p.get("paired") or read_len <= p["fragment_mean"] <= p["target_length"],
            "need read_length <= fragment_mean <= target_length for paired reads",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _write_reads(
    root: Path,
    ids: list[str],
    genome: np.ndarray,
    var: _Variants,
    region: tuple[int, int],
    params: dict,
    rng: np.random.Generator,
) -> None:
    """Targeted reads from each patient's two haplotypes, gzip FASTQ per patient (see the module notes)."""
    haplotypes = _region_haplotypes(genome, var, sequenced_span(region, len(genome), params), len(ids))
    if params.get("coverage") is None and not params.get("paired"):
        _write_few_reads(root, ids, haplotypes, params, rng)
        return
    for i, pid in enumerate(ids):
        _write_patient_reads(root / pid, pid, haplotypes[i], params, rng)


def _write_few_reads(
    root: Path, ids: list[str], haplotypes: np.ndarray, params: dict, rng: np.random.Generator
) -> None:
    """``reads_per_patient`` single-end reads, many patients at a time (the demo's QC sample)."""
    n_reads, read_len = params["reads_per_patient"], params["read_length"]
    # Patients in fixed-size chunks bound memory; the fixed size keeps the random stream stable.
    for lo in range(0, len(ids), _CHUNK_PATIENTS):
        seqs, quals = _simulate_reads(haplotypes[lo : lo + _CHUNK_PATIENTS], n_reads, read_len, rng)
        for i, pid in enumerate(ids[lo : lo + _CHUNK_PATIENTS]):
            fastq = _fastq_bytes(pid, seqs[i], quals[i])
            # mtime=0 keeps the gzip bytes identical across runs with the same seed.
            (root / pid / FASTQ_SINGLE).write_bytes(gzip.compress(fastq, compresslevel=_GZIP_LEVEL, mtime=0))


def _write_patient_reads(
    folder: Path, pid: str, haplotypes: np.ndarray, params: dict, rng: np.random.Generator
) -> None:
    """One patient's reads at the asked coverage, streamed to its FASTQ file(s) a block of reads at a time."""
    n_reads = reads_per_patient(params, haplotypes.shape[1])
    read_len, paired = params["read_length"], bool(params.get("paired"))
    names = FASTQ_PAIRED if paired else (FASTQ_SINGLE,)
    raw = [open(folder / name, "wb") for name in names]  # noqa: SIM115 - closed below, with their gzip layers
    # filename="" and mtime=0: no name or time in the gzip header, so the bytes depend on the seed only.
    files = [gzip.GzipFile(filename="", mode="wb", compresslevel=_GZIP_LEVEL, fileobj=f, mtime=0) for f in raw]
    try:
        for lo in range(0, n_reads, _READ_BLOCK):
            k = min(_READ_BLOCK, n_reads - lo)
            if paired:
                mates = _simulate_pairs(haplotypes, k, read_len, params["fragment_mean"], params["fragment_sd"], rng)
            else:
                seqs, quals = _simulate_reads(haplotypes[None], k, read_len, rng)
                mates = [(seqs[0], quals[0])]
            for mate, (out, (seqs, quals)) in enumerate(zip(files, mates, strict=True), start=1):
                out.write(_fastq_bytes(pid, seqs, quals, first=lo + 1, mate=mate))
    finally:
        for out, f in zip(files, raw, strict=True):
            out.close()
            f.close()


def _fastq_bytes(pid: str, seqs: np.ndarray, quals: np.ndarray, first: int = 1, mate: int = 1) -> bytes:
    """FASTQ text of reads ``first``, ``first + 1``...; sequence and quality lines come straight from the arrays."""
    newline = np.full((len(seqs), 1), ord("\n"), np.uint8)
    s = np.concatenate([seqs, newline], axis=1)
    q = np.concatenate([quals, newline], axis=1)
    parts: list[bytes] = []
    for r in range(len(seqs)):
        name = f"@{pid}:1:FCX:1:{first + r} {mate}:N:0:1\n".encode()
        parts += (name, s[r].tobytes(), b"+\n", q[r].tobytes())
    return b"".join(parts)


def _region_haplotypes(genome: np.ndarray, var: _Variants, region: tuple[int, int], n: int) -> np.ndarray:
    """(n_patients, 2, region length) uint8 ASCII: the reference with each haplotype's alleles."""
    lo, hi = region
    sites = np.flatnonzero((var.pos0 >= lo) & (var.pos0 < hi))
    haps = np.broadcast_to(genome[lo:hi], (n, 2, hi - lo)).copy()
    alleles = var.haps[sites].T.reshape(n, 2, len(sites))  # (patient, haplotype, site)
    haps[:, :, var.pos0[sites] - lo] = np.where(alleles == 1, var.alt[sites], var.ref[sites])
    return haps


def _simulate_reads(
    haps: np.ndarray, n_reads: int, read_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Single-end reads of a block of patients: (patients, reads, read_len) ASCII bases and Phred+33 qualities."""
    n, _, region_len = haps.shape
    hap = rng.integers(0, 2, size=(n, n_reads))
    start = rng.integers(0, region_len - read_len + 1, size=(n, n_reads))
    cols = start[:, :, None] + np.arange(read_len)
    seqs = haps[np.arange(n)[:, None, None], hap[:, :, None], cols]
    reverse = rng.random((n, n_reads)) < 0.5
    seqs[reverse] = _COMPLEMENT[seqs[reverse][:, ::-1]]
    return _sequence(seqs, rng)


def _simulate_pairs(
    haps: np.ndarray, n_pairs: int, read_len: int, fragment_mean: float, fragment_sd: float, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read pairs of one patient (``haps``: (2, span length)): [(R1 bases, R1 quals), (R2 bases, R2 quals)]."""
    region_len = haps.shape[1]
    hap = rng.integers(0, 2, size=n_pairs)
    frag = np.clip(np.rint(rng.normal(fragment_mean, fragment_sd, size=n_pairs)), read_len, region_len)
    frag = frag.astype(np.int64)
    start = rng.integers(0, region_len - frag + 1)
    cols = np.arange(read_len)
    left = haps[hap[:, None], start[:, None] + cols]  # the fragment's first read_len bases, forward
    right = _COMPLEMENT[haps[hap[:, None], (start + frag - read_len)[:, None] + cols][:, ::-1]]  # its last, reversed
    # A fragment of the minus strand is sequenced from its other end: R1 on the reverse strand.
    minus = (rng.random(n_pairs) < 0.5)[:, None]
    r1 = np.where(minus, right, left)
    r2 = np.where(minus, left, right)
    return [_sequence(r1, rng), _sequence(r2, rng)]


def _sequence(seqs: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sequencer's view of true bases ``seqs`` (modified in place): miscalls and N drawn from the qualities."""
    qual = _qualities(seqs.shape, rng)
    # A base is miscalled with the probability its quality states (Phred definition).
    error = rng.random(qual.shape) < 10.0 ** (-qual / 10.0)
    shift = rng.integers(1, 4, size=int(error.sum()))
    seqs[error] = _BASES[(_BASE_INDEX[seqs[error]] + shift) % 4]
    n_call = rng.random(qual.shape) < _N_CALL_RATE
    seqs[n_call] = ord("N")
    qual[n_call] = _N_QUALITY
    return seqs, (qual + 33).astype(np.uint8)


def _qualities(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Illumina-like Phred scores of reads (..., read_len): high early, decaying along the read, a few low reads."""
    read_len = shape[-1]
    cycle = np.arange(read_len) / max(read_len - 1, 1)
    mean = _Q_START - (_Q_START - _Q_END) * cycle**2  # quadratic decay: the tail drops fastest
    offset = np.where(rng.random(shape[:-1]) < _LOW_QUALITY_READ_RATE, _LOW_QUALITY_OFFSET, 0.0)
    q = mean - offset[..., None] + rng.normal(scale=_Q_NOISE_SD, size=shape)
    return np.clip(np.rint(q), _Q_MIN, _Q_MAX).astype(np.int64)

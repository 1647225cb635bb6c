"""The cohort's files: BGZF VCF, reference FASTA (+ .fai), GFF3 genes and the clinical CSVs.

Layout and encodings: docs/decisions/0001-data-layout-and-encodings.md; the FASTQ reads are
:mod:`genoflow.simulate.reads`'. Every writer takes its own random stream, so the same seed gives
byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import msprime
import numpy as np
from Bio import bgzf

from genoflow.simulate.reads import _BASES
from genoflow.simulate.variants import _Variants

# Reference composition (human-like GC ~ 41 %); the order matches _BASES.
_BASE_PROBS = np.array([0.295, 0.205, 0.205, 0.295])
_FASTA_WIDTH = 60

# Genes: about one per 100 kb.
_GENE_SPACING = 100_000
_GENE_MIN_LEN, _GENE_MAX_LEN = 10_000, 60_000

_CHUNK_SITES = 512  # VCF lines built and compressed per chunk (bounds memory)


def _write_vcf(
    path: Path,
    contig: str,
    length: int,
    ids: list[str],
    var: _Variants,
    missing_rate: float,
    rng: np.random.Generator,
    source: str = "make_demo_cohort",
) -> None:
    """BGZF VCF 4.2, phased GT; genotype text built as byte arrays, one chunk of sites at a time.

    ``source``: the generator named in ``##source`` (``genoflow.simulate.<source>``).
    """
    header = (
        "##fileformat=VCFv4.2\n"
        f"##source=genoflow.simulate.{source} (msprime {msprime.__version__})\n"
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


"""The pileup of one window of the genome: per sample, position and base, the depth and the log-likelihood sums.

A kernel of the ``call`` step (:mod:`genoflow.reads.call`), vectorised over every base of every read of the
window (no Python loop over bases). Reads arrive as rows of the aligned-read table
(:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`): their bases already projected on the reference, so
base ``j`` of a read starting at ``start`` lies on reference position ``start + j``.

Model (SNVs only: short indels are out in this release). A base called ``b`` with Phred quality ``Q`` has
error probability ``e = 10^(-Q/10)``; an error gives each of the three other bases with probability
``e/3`` (independent errors, no error correlation as bcftools' ``errmod`` has). For a diploid genotype
``xy``, ``P(b | xy) = (P(b | x) + P(b | y)) / 2`` with ``P(b | x) = 1 - e`` when ``b == x`` else ``e/3``.
So for the bases of allele ``a`` the pileup keeps three sums of log terms:

``hom``    ``log(1 - e)``               the genotype ``aa``
``het``    ``log((1 - e)/2 + e/6)``     a genotype with one copy of ``a``
``other``  ``log(e/3)``                 a genotype without ``a``

from which :mod:`genoflow.reads.genotyping` writes any biallelic genotype's log-likelihood.

Which bases count (and toward the depth): A, C, G, T with ``Q >= min_baseq`` (bcftools mpileup ``-Q``).
N and bases below ``min_baseq`` are dropped; deletions (``*``) are dropped too: they carry no SNV
evidence, so the depth here (FORMAT/DP of the called table) is the number of bases that inform the
SNV call, not the read depth ``samtools depth`` reports. Given the reads' MAPQ, a base's quality counts
as at most its read's MAPQ, as in bcftools (it also caps at 63 and floors at 4; here Q < 2 says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoflow.reads.schema import DELETION

__all__ = ["ALLELES", "PILEUP_CELL_BYTES", "BASE_WORK_BYTES", "Pileup", "log_terms", "pileup_window"]

ALLELES = b"ACGT"
# Bytes per (sample, position) of a Pileup: int32 depth and three float64 sums for each of the 4 alleles.
PILEUP_CELL_BYTES = 4 * (4 + 3 * 8)
# Bytes of working arrays per piled-up base (positions, flat index, gathered weights and masks).
BASE_WORK_BYTES = 48
# Above this error rate a base says nothing (1 - e <= e/3 at e = 3/4): Q < 2 would otherwise make it
# evidence against its own allele (and Q 0 a log(0)).
_MAX_ERROR = 0.75

_ALLELE_OF = np.full(256, -1, dtype=np.int8)  # byte -> 0..3 for A, C, G, T; -1 for N, '*', anything else
for _i, _b in enumerate(ALLELES):
    _ALLELE_OF[_b] = _i
assert _ALLELE_OF[DELETION] == -1


def log_terms(quals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (hom, het, other) log terms of bases of Phred quality ``quals`` (any shape, natural log).

    >>> hom, het, other = log_terms(np.array([20]))
    >>> round(float(np.exp(hom[0])), 4), round(float(np.exp(het[0])), 4), round(float(np.exp(other[0])), 5)
    (0.99, 0.4967, 0.00333)
    """
    e = np.minimum(10.0 ** (-np.asarray(quals, dtype=np.float64) / 10.0), _MAX_ERROR)
    return np.log1p(-e), np.log((1.0 - e) / 2.0 + e / 6.0), np.log(e / 3.0)


# One lookup per Phred value 0..255 (the byte range of ref_quals).
_HOM, _HET, _OTHER = log_terms(np.arange(256))


@dataclass(frozen=True)
class Pileup:
    """The evidence of one window: arrays of shape (n_samples, win_len, 4), the last axis A, C, G, T.

    Attributes
    ----------
    win_start : int
        0-based reference position of the window's first column.
    depth : numpy.ndarray of int32
        Counted bases of each allele (see the module docstring for which count).
    hom, het, other : numpy.ndarray of float64
        Sums over those bases of ``log(1-e)``, ``log((1-e)/2 + e/6)`` and ``log(e/3)``.
    """

    win_start: int
    depth: np.ndarray
    hom: np.ndarray
    het: np.ndarray
    other: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.depth.shape[0]

    @property
    def win_len(self) -> int:
        return self.depth.shape[1]


def pileup_window(ref_bases_column, ref_quals_column, starts, sample_idx, n_samples: int, win_start: int,
                  win_len: int, min_baseq: int, mapq=None, skip_start=None, skip_end=None, ref_codes=None,
                  min_alt_reads: int = 0) -> Pileup:
    """Pile up the reads of one window.

    Parameters
    ----------
    ref_bases_column, ref_quals_column : pyarrow binary Array (or ChunkedArray), or sequence of bytes
        Each read's bases on the reference and their Phred qualities (the aligned-read table's columns);
        the two must have the same length in every row.
    starts : array-like of int, shape (n_reads,)
        0-based reference position of each read's first base.
    sample_idx : array-like of int, shape (n_reads,)
        Each read's sample, 0 <= index < ``n_samples``.
    n_samples : int
    win_start, win_len : int
        The window's reference positions ``win_start .. win_start + win_len - 1``: bases outside it are
        not counted, so a read fed to every window it overlaps counts once per position.
    min_baseq : int
        Bases of lower quality are dropped (bcftools mpileup ``-Q``).
    mapq : array-like of int, shape (n_reads,), optional
        Each read's mapping quality: a kept base's quality counts as at most its read's MAPQ, as in
        bcftools (``bam2bcf.c``): a base is no surer than the read's place. Without it, base qualities as they are.
    skip_start, skip_end : array-like of int, shape (n_reads,), optional
        Reference positions ``[skip_start, skip_end)`` of each read not to count (empty where equal): the part
        of mate 2 that overlaps mate 1, so that a fragment's base counts once.
    ref_codes : numpy.ndarray of uint8, shape (win_len,), optional
        The window's reference bases (ASCII). With them, ``hom``, ``het`` and ``other`` are summed only at
        the positions where some sample has ``min_alt_reads`` bases of one non-reference allele (A, C, G, T
        reference) and are 0 elsewhere: the only positions :func:`~genoflow.reads.genotyping.candidate_sites`
        can pick, so its calls are the same, and the float sums (most of the kernel's time) skip the rest.
    min_alt_reads : int
        With ``ref_codes``: the ``reads.min_alt_reads`` of the calls.

    Returns
    -------
    Pileup

    Raises
    ------
    ValueError
        A read whose bases and qualities differ in length, or a sample index out of range.

    Examples
    --------
    >>> p = pileup_window([b"AC", b"CG"], [bytes([30, 30]), bytes([30, 5])], [10, 11], [0, 1], 2, 10, 3, 13)
    >>> p.depth[:, :, 1].tolist()  # C: sample 0 at 11, sample 1 at 11; the G at 12 has Q 5
    [[0, 1, 0], [0, 1, 0]]
    """
    from genoflow._kernels.pileup import pile_depth, pile_sums

    bases, base_offsets = _flat_binary(ref_bases_column)
    quals, qual_offsets = _flat_binary(ref_quals_column)
    if not np.array_equal(np.diff(base_offsets), np.diff(qual_offsets)):
        raise ValueError("pileup_window: ref_bases and ref_quals differ in length in some read")
    sample_idx = np.asarray(sample_idx, dtype=np.int64)
    if sample_idx.size and (sample_idx.min() < 0 or sample_idx.max() >= n_samples):
        raise ValueError(f"pileup_window: sample_idx must lie in [0, {n_samples}), found "
                         f"[{sample_idx.min()}, {sample_idx.max()}]")
    n_reads = len(base_offsets) - 1
    offsets = base_offsets - base_offsets[0]
    starts = np.asarray(starts, dtype=np.int64)
    no_skip = np.zeros(n_reads, dtype=np.int64)
    skip_start = no_skip if skip_start is None else np.asarray(skip_start, dtype=np.int64)
    skip_end = no_skip if skip_end is None else np.asarray(skip_end, dtype=np.int64)
    shape = (n_samples, win_len, 4)
    depth = np.zeros(shape, dtype=np.int32)
    pile_depth(bases, quals, offsets, starts, sample_idx, skip_start, skip_end, win_start, min_baseq, _ALLELE_OF,
               depth)
    # Without ref_codes every column is summed; with them only the columns candidate_sites can pick.
    columns = (np.ones(win_len, dtype=bool) if ref_codes is None
               else _evidence_columns(depth, ref_codes, min_alt_reads))
    cap = np.full(n_reads, 255, dtype=np.uint8) if mapq is None else np.clip(np.asarray(mapq), 0, 255).astype(np.uint8)
    hom, het, other = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    pile_sums(bases, quals, offsets, starts, sample_idx, skip_start, skip_end, cap, win_start, min_baseq,
              _ALLELE_OF, columns, _HOM, _HET, _OTHER, hom, het, other)
    return Pileup(int(win_start), depth, hom, het, other)


def _evidence_columns(depth: np.ndarray, ref_codes, min_alt_reads: int) -> np.ndarray:
    """Window columns (bool, win_len) with an A, C, G, T reference base and ``min_alt_reads`` bases of one
    non-reference allele in some sample."""
    ref = _ALLELE_OF[np.asarray(ref_codes, dtype=np.uint8) & 0xDF]  # & 0xDF: a, c, g, t as A, C, G, T
    if len(ref) != depth.shape[1]:
        raise ValueError(f"pileup_window: {len(ref)} reference bases for a window of {depth.shape[1]}")
    alt_reads = depth.max(axis=0)  # (win_len, 4): enough when one sample has enough
    alt_reads[np.arange(len(ref)), np.maximum(ref, 0)] = 0
    return (ref >= 0) & (alt_reads.max(axis=1) >= min_alt_reads)


def _flat_binary(column) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of a binary column as one uint8 array and its (n + 1) offsets, read in place for Arrow."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not isinstance(column, pa.Array):
        values = list(column)
        offsets = np.concatenate([[0], np.cumsum([len(v) for v in values], dtype=np.int64)]).astype(np.int64)
        return np.frombuffer(b"".join(values), dtype=np.uint8), offsets
    if column.null_count:
        raise ValueError("pileup_window: a read has null ref_bases or ref_quals")
    offset_type = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    n = len(column)
    offsets = np.frombuffer(column.buffers()[1], dtype=offset_type)[column.offset:column.offset + n + 1]
    offsets = offsets.astype(np.int64)
    data = column.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return data[offsets[0]:offsets[-1]], offsets

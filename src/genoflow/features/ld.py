"""Linkage disequilibrium: pairwise r² of unphased dosages and window pruning like ``plink2 --indep-pairwise``.

r² here is the squared Pearson correlation of two variants' allele counts over the samples called
at both (pairwise-complete, as plink2 computes it for pruning), computed for a whole window at once
with five matrix products. Pruning walks a window along each contig; inside a window, every pair
with r² above the threshold loses its lower-MAF variant (the later one on a tie), pairs taken in
order, as plink does; then the window moves ``step`` variants on.

Clumping (:mod:`genoflow.features.prs`) uses plink 1.9's r² instead: from two-locus haplotype
frequencies estimated by EM (:func:`haplotype_r2_with`), which is what ``plink --clump`` compares.

Streaming: :func:`indep_pairwise_stream` runs the same windows (and :func:`_prune_window`, the one
implementation of the rule) over a contig's rows as they arrive, holding only the rows of the open window
and deciding each row once the windows have moved past it; :func:`indep_pairwise` is the whole-contig
reference the tests compare it with. Spark: :func:`prune_contigs` partitions the genotype table by contig,
sorts each partition and streams it through ``mapInArrow``, so no worker holds a whole contig
(decision 0012); only the kept variant keys come back.

Subset: r² (of pruning and of clumping) may be measured on a fixed random subset of the patients
(:func:`ld_subset`, ``features.ld_max_samples``), so its cost stops growing with the cohort: r² from 20,000
patients is within ~0.01 of the whole cohort's (sampling error ~1/sqrt(n)). Allele frequencies, and so the
MAF that decides which variant of a pair goes, still use every patient.
"""

from __future__ import annotations

import numpy as np

from genoflow.genotypes import MISSING, dosage_matrix, rows_per_block

__all__ = ["ld_subset", "ld_samples", "pairwise_r2", "r2_with", "haplotype_r2_with", "prune_window_indices",
           "indep_pairwise", "indep_pairwise_stream", "prune_contigs", "PRUNE_SCHEMA_DDL"]

PRUNE_SCHEMA_DDL = "contig string, pos long, ref string, alt string, alt_af double"
# _alt_af's two float64 copies (values and called mask), per (variant, sample).
_AF_BYTES_PER_VALUE = 16
# haplotype_r2_with's one-hot genotypes: (m, 3, n) bools and their float64 copy, per (variant, sample).
_HAPLOTYPE_BYTES_PER_VALUE = 32


def ld_subset(sample_index: np.ndarray, max_samples: int, seed: int) -> np.ndarray:
    """The samples LD (r²) is measured on: at most ``max_samples`` of ``sample_index``, a seeded random choice.

    Parameters
    ----------
    sample_index : (n,) int
        The samples the step would otherwise use (dosage columns).
    max_samples : int
        The cap; 0 (or at least n) means every sample, ``sample_index`` itself, unchanged.
    seed : int
        Seed of the choice: the same inputs always give the same subset.

    Returns
    -------
    (min(n, max_samples),) int64
        The chosen entries of ``sample_index``, sorted, so taking them keeps a block's columns in table order.
    """
    index = np.asarray(sample_index, dtype=np.int64)
    if max_samples < 0:
        raise ValueError(f"ld_subset: max_samples must be >= 0 (0: every sample), got {max_samples}")
    if max_samples == 0 or index.size <= max_samples:
        return index
    chosen = np.random.default_rng(seed).choice(index.size, size=max_samples, replace=False)
    return np.sort(index[chosen])


def ld_samples(sample_index: np.ndarray, f: dict) -> np.ndarray:
    """:func:`ld_subset` with the features params: cap ``ld_max_samples``, seed ``split_seed``.

    A dict without ``ld_max_samples`` (a test's partial params) means every sample."""
    return ld_subset(sample_index, int(f.get("ld_max_samples") or 0), int(f.get("split_seed") or 0))


def _called(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values with missing as 0, float64; called mask, float64) of an (m, n) int8 block."""
    called = dosages != MISSING
    return np.where(called, dosages, 0).astype(np.float64), called.astype(np.float64)


def pairwise_r2(dosages: np.ndarray) -> np.ndarray:
    """r² between every pair of variants of a block, pairwise-complete over called samples.

    Parameters
    ----------
    dosages : numpy.ndarray, shape (m, n), int8
        0/1/2 ALT counts, ``-1`` missing.

    Returns
    -------
    numpy.ndarray, shape (m, m), float64
        r² (0 where a variant has no variation among the samples called at both).
    """
    x, c = _called(dosages)
    return _r2(x, c, x, c)


def r2_with(one: np.ndarray, block: np.ndarray) -> np.ndarray:
    """r² of one variant, shape (n,), with each variant of ``block``, shape (m, n); shape (m,)."""
    x1, c1 = _called(np.asarray(one)[None, :])
    x2, c2 = _called(block)
    return _r2(x1, c1, x2, c2)[0]


def haplotype_r2_with(one: np.ndarray, block: np.ndarray, *, iterations: int = 100) -> np.ndarray:
    """r² from two-locus haplotype frequencies estimated by EM (plink 1.9's ``--ld``/``--clump`` r²).

    One variant, shape (n,), against each variant of ``block``, shape (m, n), over the samples
    called at both. Only double heterozygotes have an unknown phase; EM starts from linkage
    equilibrium. Returns shape (m,) float64 (0 where a variant has no variation).
    """
    one, block = np.asarray(one), np.asarray(block)
    rows = rows_per_block(block.shape[-1], _HAPLOTYPE_BYTES_PER_VALUE)
    if block.ndim == 2 and block.shape[0] > rows:  # each variant's r² is its own: a block at a time
        return np.concatenate([haplotype_r2_with(one, block[i : i + rows], iterations=iterations)
                               for i in range(0, block.shape[0], rows)])
    a = np.stack([one == k for k in (0, 1, 2)]).astype(np.float64)  # (3, n)
    b = np.stack([block == k for k in (0, 1, 2)], axis=1).astype(np.float64)  # (m, 3, n)
    t = np.einsum("an,mbn->mab", a, b)  # genotype table: t[m, alt count at one, alt count at the other]
    n2 = 2.0 * t.sum(axis=(1, 2))
    # Haplotype counts known without phase (11 = ALT-ALT, 10, 01, 00), double heterozygotes aside.
    k11 = 2 * t[:, 2, 2] + t[:, 2, 1] + t[:, 1, 2]
    k10 = 2 * t[:, 2, 0] + t[:, 2, 1] + t[:, 1, 0]
    k01 = 2 * t[:, 0, 2] + t[:, 1, 2] + t[:, 0, 1]
    k00 = 2 * t[:, 0, 0] + t[:, 1, 0] + t[:, 0, 1]
    het = t[:, 1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = (k11 + k10 + het) / n2
        pb = (k11 + k01 + het) / n2
        f11, f10, f01, f00 = pa * pb, pa * (1 - pb), (1 - pa) * pb, (1 - pa) * (1 - pb)
        for _ in range(iterations):
            cis = f11 * f00
            x = np.where(cis + f10 * f01 > 0, cis / (cis + f10 * f01), 0.5)
            f11, f00 = (k11 + het * x) / n2, (k00 + het * x) / n2
            f10, f01 = (k10 + het * (1 - x)) / n2, (k01 + het * (1 - x)) / n2
        d = f11 - pa * pb
        r2 = d * d / (pa * (1 - pa) * pb * (1 - pb))
    return np.where(np.isfinite(r2), np.clip(r2, 0.0, 1.0), 0.0)


def _r2(x1, c1, x2, c2) -> np.ndarray:
    """Pairwise-complete r² between the rows of two blocks (values with missing as 0, called masks)."""
    n = c1 @ c2.T
    s1 = x1 @ c2.T  # sum of variant i over samples called at j too
    s2 = c1 @ x2.T
    q1 = (x1 * x1) @ c2.T
    q2 = c1 @ (x2 * x2).T
    s12 = x1 @ x2.T
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = s12 - s1 * s2 / n
        v1 = q1 - s1 * s1 / n
        v2 = q2 - s2 * s2 / n
        r2 = cov * cov / (v1 * v2)
    # Rounding can leave a tiny positive variance for a constant variant: treat as no variation.
    bad = (v1 <= 1e-9 * np.maximum(q1, 1.0)) | (v2 <= 1e-9 * np.maximum(q2, 1.0)) | (n < 2)
    return np.where(bad, 0.0, np.clip(r2, 0.0, 1.0))


def prune_window_indices(positions: np.ndarray, *, window: int, step: int, window_kb: bool) -> list[tuple[int, int]]:
    """The ``[start, end)`` variant ranges of the pruning windows of one contig (sorted positions).

    A window of ``window`` variants moves ``step`` variants at a time; a kb window holds the
    variants within ``window`` kb of its first one (plink counts the end inclusive: pos - first <= kb * 1000)
    and moves one variant at a time (plink2 requires step 1 with kb).
    """
    m = len(positions)
    if window_kb:
        ends = np.searchsorted(positions, np.asarray(positions) + window * 1000, side="right")
        return [(i, int(ends[i])) for i in range(0, m)]
    return [(i, min(i + window, m)) for i in range(0, max(m - window, 0) + step, step) if i < m]


def indep_pairwise(dosages: np.ndarray, positions: np.ndarray, *, window: int, step: int, r2: float,
                   window_kb: bool = False, ld_columns: np.ndarray | None = None) -> np.ndarray:
    """Variants of one contig kept by pairwise LD pruning; boolean mask, shape (m,).

    Parameters
    ----------
    dosages : numpy.ndarray, shape (m, n), int8
        The contig's variants in position order, ``-1`` missing.
    positions : numpy.ndarray, shape (m,), int
        Their positions, ascending.
    window, step : int
        Window size (variants, or kb with ``window_kb``) and step (variants).
    r2 : float
        Pairs with r² strictly above this lose one variant.
    ld_columns : (k,) int, optional
        The columns (samples) r² is measured on (:func:`ld_subset`); every one by default. MAF uses every column.

    Notes
    -----
    plink's order: in each window, every variant still in (in order) is compared with the later
    ones it has not yet been compared with; at the first pair above the threshold the variant with
    the lower MAF goes (the later one on a tie) and the scan moves on to the next variant; passes
    repeat until one removes nothing. Monomorphic variants are removed up front.
    """
    dosages = np.asarray(dosages)
    positions = np.asarray(positions)
    m = dosages.shape[0]
    _check_windows(window, step, window_kb)
    maf = _maf(dosages)
    ld = dosages if ld_columns is None else np.take(dosages, ld_columns, axis=1)
    keep = maf > 0
    threshold = r2 * (1 + 1e-12)
    first_unchecked = np.arange(1, m + 1)  # each variant has been compared with every kept one before this
    for start, end in prune_window_indices(positions, window=window, step=step, window_kb=window_kb):
        high = pairwise_r2(ld[start:end]) > threshold
        _prune_window(high, start, end, keep, maf, first_unchecked)
    return keep


def _prune_window(high: np.ndarray, start: int, end: int, keep: np.ndarray, maf: np.ndarray,
                  first_unchecked: np.ndarray) -> None:
    """One window of :func:`indep_pairwise` (updates ``keep`` and ``first_unchecked`` in place)."""
    offsets = np.arange(end - start)
    removed_any = True
    while removed_any:
        removed_any = False
        for a in range(end - start):
            i = start + a
            if not keep[i] or first_unchecked[i] >= end:
                continue
            open_ = keep[start:end] & (offsets > a) & (offsets >= first_unchecked[i] - start)
            hits = np.flatnonzero(open_ & high[a])
            if hits.size == 0:
                first_unchecked[i] = end
                continue
            b = hits[0]
            j = start + b
            removed_any = True
            if maf[i] < maf[j] * (1 - 1e-12):
                keep[i] = False
                continue
            keep[j] = False
            later = np.flatnonzero(open_ & (offsets > b))
            first_unchecked[i] = start + later[0] if later.size else end


def _alt_af(dosages: np.ndarray) -> np.ndarray:
    """ALT frequency of each row over its called samples (NaN when none), a block of rows at a time:
    :func:`_called`'s two float64 copies of a whole contig would be 16 bytes per genotype."""
    rows = rows_per_block(dosages.shape[1], _AF_BYTES_PER_VALUE)
    af = np.empty(dosages.shape[0])
    for start in range(0, dosages.shape[0], rows):
        x, c = _called(dosages[start : start + rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            af[start : start + rows] = x.sum(axis=1) / (2.0 * c.sum(axis=1))
    return af


def _maf(dosages: np.ndarray) -> np.ndarray:
    return _minor(_alt_af(dosages))


def _minor(alt_af: np.ndarray) -> np.ndarray:
    """MAF from ALT frequencies (0 where no sample is called)."""
    af = np.nan_to_num(alt_af, nan=0.0)
    return np.minimum(af, 1.0 - af)


def _check_windows(window: int, step: int, window_kb: bool) -> None:
    if window < 1 or step < 1 or (window_kb and step != 1):
        raise ValueError(f"indep_pairwise: need window >= 1, step >= 1 (1 with kb), got {window}, {step}")


def indep_pairwise_stream(blocks, *, window: int, step: int, r2: float, window_kb: bool = False):
    """:func:`indep_pairwise` over a stream of one contig's rows, holding only the open window's rows.

    Parameters
    ----------
    blocks : iterable of (keys, positions, dosages) or (keys, positions, dosages, ld_dosages)
        Consecutive rows in position order: ``keys`` a sequence of anything (given back), ``positions``
        shape (k,), ``dosages`` shape (k, n) int8 (allele frequencies, MAF); ``ld_dosages`` shape (k, n'),
        the same rows on the samples r² is measured on (``dosages`` when absent or None).
    window, step, r2, window_kb
        As :func:`indep_pairwise`.

    Yields
    ------
    (keys, keep, alt_af)
        Rows in order, once no later window can change their decision: their keys (a list), keep mask
        and ALT frequency over the called samples (as :func:`_alt_af`), a block at a time.
    """
    pruner = _ContigPruner(window=window, step=step, r2=r2, window_kb=window_kb)
    for keys, positions, dosages, *ld in blocks:
        done = pruner.add(keys, positions, dosages, ld[0] if ld else None)
        if done[0]:
            yield done
    done = pruner.finish()
    if done[0]:
        yield done


class _ContigPruner:
    """The state of :func:`indep_pairwise` on one contig, kept for the rows not yet decided.

    Row ``i`` of the contig is decided once a window starting after it has been reached: windows only
    touch rows in ``[start, end)`` and start in increasing order. The buffer holds rows from ``base``
    (the first undecided one) to the last row added; ``first_unchecked`` is kept relative to ``base``.
    """

    def __init__(self, *, window: int, step: int, r2: float, window_kb: bool):
        _check_windows(window, step, window_kb)
        self.window, self.step, self.window_kb = window, step, window_kb
        self.threshold = r2 * (1 + 1e-12)
        self.keys: list = []
        self.dosages: np.ndarray | None = None
        self.size = 0  # rows in the buffer
        self.pos = np.empty(0, dtype=np.int64)
        self.af, self.maf = np.empty(0), np.empty(0)
        self.keep, self.first_unchecked = np.empty(0, dtype=bool), np.empty(0, dtype=np.int64)
        self.base = 0  # contig index of buffer row 0
        self.next_start = 0  # contig index where the next window starts
        self.last_end: int | None = None  # end of the last window run (variant-count windows)

    def add(self, keys, positions, dosages, ld_dosages=None):
        """Append consecutive rows (``ld_dosages``: on the r² samples, if not all); run the windows they
        complete; the rows now decided."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return [], np.empty(0, dtype=bool), np.empty(0)
        if np.any(np.diff(np.concatenate([self.pos[-1:], positions])) < 0):  # windows assume position order
            raise ValueError(f"indep_pairwise_stream: rows out of position order near {positions[0]}")
        self._append(list(keys), positions, np.asarray(dosages),
                     np.asarray(dosages if ld_dosages is None else ld_dosages))
        total = self.base + self.size
        if self.window_kb:  # window i is complete once a row lies beyond its reach
            while self.next_start < total and self.pos[-1] > self.pos[self.next_start - self.base] + self.window * 1000:
                self._run_next(total)
        else:
            while self.next_start + self.window <= total:
                self._run_next(total)
        return self._pop(self.next_start - self.base)

    def finish(self):
        """The contig has no more rows: run the remaining windows; every row still undecided."""
        total = self.base + self.size
        while self.next_start < total and (self.window_kb or self.last_end is None or self.last_end < total):
            self._run_next(total)
        return self._pop(self.size)

    def _run_next(self, total: int) -> None:
        """Run the window starting at ``next_start`` over the rows buffered so far (``total``: their end)."""
        start = self.next_start - self.base
        if self.window_kb:
            end = int(np.searchsorted(self.pos[: self.size], self.pos[start] + self.window * 1000, side="right"))
        else:
            end = min(start + self.window, total - self.base)
            self.last_end = self.base + end
        high = pairwise_r2(self.dosages[start:end]) > self.threshold
        _prune_window(high, start, end, self.keep, self.maf, self.first_unchecked)
        self.next_start += self.step

    def _append(self, keys: list, positions: np.ndarray, dosages: np.ndarray, ld_dosages: np.ndarray) -> None:
        """Buffer the rows' r² samples (``ld_dosages``) and their frequencies over every sample (``dosages``)."""
        k = positions.size
        if self.dosages is None:
            self.dosages = np.empty((max(k, 2 * self.window), ld_dosages.shape[1]), dtype=ld_dosages.dtype)
        elif self.size + k > self.dosages.shape[0]:  # room for a window more: row-by-row appends rarely regrow
            grown = np.empty((self.size + k + self.window, self.dosages.shape[1]), self.dosages.dtype)
            grown[: self.size] = self.dosages[: self.size]
            self.dosages = grown
        self.dosages[self.size : self.size + k] = ld_dosages
        af = _alt_af(dosages)
        maf = _minor(af)
        local = np.arange(self.size, self.size + k) + 1  # first_unchecked of a new row: the next one
        self.keys.extend(keys)
        self.pos = np.concatenate([self.pos, positions])
        self.af, self.maf = np.concatenate([self.af, af]), np.concatenate([self.maf, maf])
        self.keep = np.concatenate([self.keep, maf > 0])
        self.first_unchecked = np.concatenate([self.first_unchecked, local])
        self.size += k

    def _pop(self, k: int):
        """Drop the first ``k`` buffered rows (decided); their keys, keep mask and ALT frequencies."""
        k = min(k, self.size)  # a step longer than the window starts past the rows seen so far
        out = self.keys[:k], self.keep[:k].copy(), self.af[:k].copy()
        rest = self.size - k
        if k:  # numpy copies through a temporary when the ranges overlap
            self.dosages[:rest] = self.dosages[k : self.size]
        del self.keys[:k]
        self.pos, self.af, self.maf, self.keep = self.pos[k:], self.af[k:], self.maf[k:], self.keep[k:]
        self.first_unchecked = self.first_unchecked[k:] - k
        self.base += k
        self.size = rest
        return out


def prune_contigs(genotypes, *, sample_index: np.ndarray, window: int, step: int, r2: float, window_kb: bool = False,
                  ld_sample_index: np.ndarray | None = None):
    """Spark: LD-prune each contig of ``genotypes`` as a stream of its sorted rows; the kept variants' keys.

    The rows are hashed by contig into partitions and sorted within them (Spark's sort spills to disk);
    each partition's Arrow batches go through :func:`indep_pairwise_stream`, one contig after the other,
    so a worker holds one Arrow batch plus the open window's rows, never a whole contig.

    Parameters
    ----------
    genotypes : DataFrame
        Genotype table rows (contig, pos, ref, alt, dosages).
    sample_index : (n,) int
        Dosage columns (samples) to use.
    ld_sample_index : (k,) int, optional
        Dosage columns r² is measured on (:func:`ld_subset` of ``sample_index``); ``sample_index`` by default.
        Allele frequencies and MAF use ``sample_index``.

    Returns
    -------
    DataFrame with ``PRUNE_SCHEMA_DDL`` columns (``alt_af`` over the called samples given). Lazy: run its
    action (or that of a query built on it) under ``genoflow.spark.session_conf(spark,
    genoflow.genotypes.arrow_batch_conf(n_samples, 1, budget))``, or Arrow batches are Spark's 10,000 rows.
    """
    index = np.asarray(sample_index, dtype=np.int64)
    ld_index = None if ld_sample_index is None else np.asarray(ld_sample_index, dtype=np.int64)
    if ld_index is not None and np.array_equal(ld_index, index):
        ld_index = None  # the same columns: one copy, and the arithmetic of the uncapped prune exactly

    def prune(batches):
        yield from _prune_batches(batches, index, window=window, step=step, r2=r2, window_kb=window_kb,
                                  ld_index=ld_index)

    keys = ["contig", "pos", "ref", "alt"]
    return (genotypes.select(*keys, "dosages").repartition("contig").sortWithinPartitions(*keys)
            .mapInArrow(prune, PRUNE_SCHEMA_DDL))


def _prune_batches(batches, sample_index: np.ndarray, ld_index: np.ndarray | None = None, **rule):
    """The ``mapInArrow`` function of :func:`prune_contigs`: Arrow batches of rows sorted by (contig, pos,
    ref, alt), several contigs possibly in one partition -> batches of the kept rows with their alt_af."""
    import pyarrow as pa

    schema = pa.schema([("contig", pa.string()), ("pos", pa.int64()), ("ref", pa.string()), ("alt", pa.string()),
                        ("alt_af", pa.float64())])

    def kept(decided):
        keys, keep, af = decided
        rows = [key for key, k in zip(keys, keep, strict=True) if k]
        contig, pos, ref, alt = zip(*rows, strict=True) if rows else ((), (), (), ())
        return pa.RecordBatch.from_arrays([pa.array(contig, pa.string()), pa.array(pos, pa.int64()),
                                           pa.array(ref, pa.string()), pa.array(alt, pa.string()),
                                           pa.array(af[keep], pa.float64())], schema=schema)

    for _contig, blocks in _contig_runs(batches, sample_index, ld_index):
        for decided in indep_pairwise_stream(blocks, **rule):
            batch = kept(decided)
            if batch.num_rows:
                yield batch


def _contig_runs(batches, sample_index: np.ndarray, ld_index: np.ndarray | None = None):
    """(contig, its blocks of (keys, positions, dosages, ld_dosages)) for each run of one contig in sorted Arrow
    batches; ``ld_dosages`` (the ``ld_index`` columns) is None without ``ld_index``.

    Each contig's blocks must be consumed before the next contig is asked for (one pass over the batches)."""
    import itertools

    # The pruner's copies (sample subset, _alt_af's float64 temporaries) are made a chunk at a time: the
    # Arrow batch is read in place and the buffer holds the open window plus one chunk, not a second batch.
    chunk = rows_per_block(len(sample_index), _AF_BYTES_PER_VALUE)

    def rows(batch):
        contigs = batch.column("contig").to_pylist()
        pos = batch.column("pos").to_numpy()
        column = batch.column("dosages")
        dosages = dosage_matrix(column, len(column[0].as_py()))  # a view of the batch's buffer
        runs = [0, *(i for i in range(1, len(contigs)) if contigs[i] != contigs[i - 1]), len(contigs)]
        keys = list(zip(contigs, pos.tolist(), batch.column("ref").to_pylist(), batch.column("alt").to_pylist(),
                        strict=True))
        for start, end in itertools.pairwise(runs):
            for a in range(start, end, chunk):
                b = min(a + chunk, end)
                ld = None if ld_index is None else np.take(dosages[a:b], ld_index, axis=1)
                yield contigs[a], (keys[a:b], pos[a:b], np.take(dosages[a:b], sample_index, axis=1), ld)

    pieces = (piece for batch in batches if batch.num_rows for piece in rows(batch))
    for contig, run in itertools.groupby(pieces, key=lambda piece: piece[0]):
        yield contig, (block for _, block in run)

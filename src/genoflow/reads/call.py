"""The ``call`` step's Spark part: aligned reads -> windows -> pileup -> joint SNV genotypes of the cohort.

The genome is cut into windows of equal length (:func:`window_length`, sized by the block budget); each
read goes to every window it overlaps. Reads are partitioned by (contig in reference order,
window) and sorted within partitions, so a ``mapInArrow`` task sees each window's reads together and
in order: it buffers one window at a time (bounded memory), piles it up (:mod:`genoflow.reads.pileup`),
calls and genotypes its sites in every sample (:mod:`genoflow.reads.genotyping`) and yields them. The
partitions are in genome order and each yields its sites in order, so the written table is sorted by
contig (reference order) and position without a sort of the output.

SNVs only: short indels are out in this release.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from genoflow.genotypes import (
    GENOTYPE_COLUMNS,
    GENOTYPE_SCHEMA_DDL,
    MISSING,
    arrow_schema,
    block_budget,
    dosage_matrix,
    pack_dosages,
)
from genoflow.reads.pileup import ALLELES, BASE_WORK_BYTES, PILEUP_CELL_BYTES, pileup_window
from genoflow.reads.schema import CALLED_EXTRA, CALLED_EXTRA_COLUMNS

__all__ = ["CALLED_DDL", "MAX_WINDOW", "run_call", "sample_concordance", "window_length"]

MAX_WINDOW = 100_000  # longer windows buy nothing: the per-window cost is already dwarfed by the bases
_DEPTH_BIN = 256  # bp: reads are binned by start to estimate the covered length (a panel's targets are short)
_COARSE_BIN = 1 << 16  # bp: the bases per bin of this size place the partitions' boundaries
_READ_OVERHEAD = 96  # bytes of an Arrow read row besides its bases and qualities
CALLED_DDL = f"{GENOTYPE_SCHEMA_DDL}, {CALLED_EXTRA_COLUMNS}"  # the call step's table (Spark DDL)
_CALL_DEFAULTS = {"min_mapq": 20, "min_baseq": 13, "min_alt_reads": 2, "min_qual": 20.0, "min_dp": 2,
                  "prior": 1.1e-3}


def window_length(n_samples: int, cohort_depth: float, read_length: int, budget: int) -> int:
    """Window length (bp) whose pileup and reads fit ``budget`` bytes, clamped to [read length, MAX_WINDOW].

    One window holds ``n_samples * win_len`` pileup cells (:data:`PILEUP_CELL_BYTES` each) and about
    ``cohort_depth * win_len`` bases (their working arrays and their two bytes in the Arrow batch).

    >>> window_length(5, 5 * 30.0, 150, 64 << 20)  # 5 samples at 30x
    8326
    >>> window_length(1_000, 30_000.0, 150, 64 << 20)  # 1,000 samples at 30x: never below a read
    150
    """
    per_position = n_samples * PILEUP_CELL_BYTES + cohort_depth * (BASE_WORK_BYTES + 2)
    fits = int(budget // max(per_position, 1.0))
    return int(min(MAX_WINDOW, max(int(read_length), 1, fits)))


def run_call(spark, reads_df, reference, samples, output_uri: str, params: dict, *, duplicates=None) -> dict:
    """Call and jointly genotype the cohort's SNVs from its aligned reads; write the called table.

    Parameters
    ----------
    spark : SparkSession
    reads_df : DataFrame
        The aligned-read table (:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`). Filtered here: reads
        with ``mapq < reads.min_mapq`` and the pairs in ``duplicates`` are left out (filtering before too is
        harmless).
    reference : genoflow.io.reference.IndexedReference
        Broadcast to the executors (only its index travels); each window reads its own bases.
    samples : list of str
        The cohort's patients, sorted: the dosage column order. A patient without reads is ``./.``
        everywhere; a read of a patient not in the list is an error.
    output_uri : str
        Where the Parquet table goes (the step commits it).
    params : dict
        The params: ``reads`` (min_mapq, min_baseq, min_alt_reads, min_qual, min_dp, prior) and
        ``compute.block_mb`` (the byte budget of one window).
    duplicates : DataFrame, optional
        ``patient``, ``read_name`` of the duplicate pairs (the align step's ``duplicates/``,
        :data:`genoflow.reads.schema.DUPLICATE_SCHEMA`); small, so Spark broadcasts it to the anti-join.

    Returns
    -------
    dict
        ``sites`` (rows written; all SNVs, so also ``snvs``), ``candidates`` (positions tested),
        ``windows`` (windows with reads), ``window_length``, ``mean_depth`` (counted reads' bases per
        sample over the covered length, estimated), ``site_depth`` (mean DP over the written genotypes),
        ``missing_fraction`` (share of ``./.`` genotypes in the written sites), ``reads`` (reads used).

    The table has the genotype table's columns (:data:`genoflow.genotypes.GENOTYPE_COLUMNS`:
    id ".", gene "" until preprocess annotates, line and the QC columns null, mean_dp over samples with
    DP > 0, mean_gq over called samples) and ``qual``, ``gq``, ``dp``
    (:data:`genoflow.reads.schema.CALLED_EXTRA_COLUMNS`), sorted by contig (reference order) and pos.
    """
    from pyspark.sql import functions as F

    from genoflow.spark import session_conf

    p = {**_CALL_DEFAULTS, **{k: v for k, v in ((params or {}).get("reads") or {}).items() if v is not None}}
    budget = block_budget(params)
    samples = list(samples)
    reads = reads_df.where(F.col("mapq") >= int(p["min_mapq"]))
    if duplicates is not None:
        reads = reads.join(duplicates, ["patient", "read_name"], "left_anti")
    stats = _read_stats(reads, reference.names)
    covered = max(stats["bins"], 1) * _DEPTH_BIN
    cohort_depth = stats["bases"] / covered
    win = window_length(len(samples), cohort_depth, stats["read_length"], budget)
    sc = spark.sparkContext
    # Accumulators: statistics only (a retried task adds its window twice).
    counters = {k: sc.accumulator(0) for k in ("windows", "candidates", "sites", "missing", "depth")}
    caller = _WindowCaller(reference=sc.broadcast(reference), samples=samples, win_len=win,
                           thresholds={k: p[k] for k in ("min_baseq", "min_alt_reads", "min_qual", "min_dp", "prior")},
                           counters=counters)
    n_parts = max(1, min(math.ceil(covered / win) + len(reference), sc.defaultParallelism * 4))
    # Each window goes whole to one partition and the partitions are in genome order, so the sites come out
    # sorted: a sort of the output would sample it, running the pileup twice. The boundaries come from the
    # stats' histogram: repartitionByRange would read the reads once more to sample them.
    bounds = _boundaries(stats["histogram"], [0, *_offsets(reference)], n_parts)
    table = (_partitioned(_windowed(reads, reference.names, win), reference, win, bounds)
             .sortWithinPartitions("rank", "window", "start").mapInArrow(caller, CALLED_DDL))
    # A quarter of the budget per Arrow batch of reads: the window's pileup takes the rest.
    rows_per_batch = max(1, budget // (4 * (2 * max(stats["read_length"], 1) + _READ_OVERHEAD)))
    with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": str(rows_per_batch)}):
        table.write.parquet(output_uri)
    return _summary(counters, stats, win, cohort_depth, len(samples))


def _windowed(reads, names, win: int):
    """One row per (read, window it overlaps), with the contig's rank in the reference (0: not in it)."""
    from pyspark.sql import functions as F

    windows = F.sequence(F.expr(f"start div {win}"), F.expr(f"(`end` - 1) div {win}"))
    return reads.select("patient", "contig", "start", "mapq", "read_name", "mate", "ref_bases", "ref_quals",
                        _rank(names).alias("rank"),
                        F.explode(windows).alias("window"))


def _partitioned(windowed, reference, win: int, bounds: list[int]):
    """``windowed`` with each window in the partition its genome position falls in (no sampling pass).

    A read on a contig the reference lacks (rank 0) goes to partition 0, whose task names it.
    """
    from pyspark.sql import functions as F

    offsets = _offsets(reference)
    rank = F.col("rank")
    position = F.when(rank > 0, F.element_at(F.array(*[F.lit(o) for o in offsets]).cast("array<long>"),
                                              F.greatest(rank, F.lit(1)).cast("int")) + F.col("window") * F.lit(win))
    part = F.coalesce(_partition_of(position, bounds), F.lit(0)).cast("int")
    return windowed.repartitionById(len(bounds) + 1, part)


def _offsets(reference) -> list[int]:
    """Each contig's genome position (the bases of the contigs before it, in reference order)."""
    return [0, *np.cumsum([reference.length(n) for n in reference.names]).tolist()][:-1]


def _summary(counters: dict, stats: dict, win: int, cohort_depth: float, n_samples: int) -> dict:
    sites = int(counters["sites"].value)
    genotypes = max(sites * n_samples, 1)
    return {"sites": sites, "snvs": sites, "candidates": int(counters["candidates"].value),
            "windows": int(counters["windows"].value), "window_length": win, "reads": stats["reads"],
            "mean_depth": cohort_depth / max(n_samples, 1), "site_depth": counters["depth"].value / genotypes,
            "missing_fraction": counters["missing"].value / genotypes}


def _read_stats(reads, names) -> dict:
    """One aggregate over the reads: count, bases, longest read, start bins touched (the covered length), and
    the bases starting in each coarse bin (rank, coarse bin, bases) for :func:`_boundaries`.

    Two levels: reads into ``_DEPTH_BIN`` bins (partial aggregates, map side), those into ``_COARSE_BIN`` bins,
    of which the driver collects a few (one per 64 kb with reads: 46,000 for a whole human genome).
    """
    from pyspark.sql import functions as F

    length = F.col("end") - F.col("start")
    fine = (reads.groupBy(_rank(names).alias("rank"), F.expr(f"start div {_DEPTH_BIN}").alias("bin"))
            .agg(F.count(F.lit(1)).alias("reads"), F.sum(length).alias("bases"), F.max(length).alias("longest")))
    coarse = (fine.groupBy("rank", F.expr(f"bin div {_COARSE_BIN // _DEPTH_BIN}").alias("coarse"))
              .agg(F.sum("reads").alias("reads"), F.sum("bases").alias("bases"), F.max("longest").alias("longest"),
                   F.count(F.lit(1)).alias("bins")).collect())
    return {"reads": sum(int(r["reads"]) for r in coarse), "bases": float(sum(int(r["bases"]) for r in coarse)),
            "read_length": max((int(r["longest"]) for r in coarse), default=1),
            "bins": sum(int(r["bins"]) for r in coarse),
            "histogram": [(int(r["rank"]), int(r["coarse"]), int(r["bases"])) for r in coarse]}


def _rank(names):
    """The contig's rank in the reference (1-based; 0: not in it)."""
    from pyspark.sql import functions as F

    return F.array_position(F.array(*[F.lit(n) for n in names]), F.col("contig"))


def _boundaries(histogram, offsets: list[int], n_parts: int) -> list[int]:
    """Genome positions (contig offset + position) where partitions 1..n_parts-1 begin, each holding about
    as many bases: the reads' bases by coarse bin (``_read_stats``) stand in for Spark's range sampling.

    >>> _boundaries([(1, 0, 100), (1, 1, 100), (2, 0, 200)], [0, 0, 200_000], 2)
    [200000]
    """
    keyed = sorted((offsets[rank] + coarse * _COARSE_BIN, bases) for rank, coarse, bases in histogram if rank > 0)
    total = sum(bases for _, bases in keyed)
    bounds, seen = [], 0
    for at, bases in keyed:
        while len(bounds) < n_parts - 1 and seen >= total * (len(bounds) + 1) / n_parts and seen > 0:
            bounds.append(at)
        seen += bases
    return bounds


def _partition_of(position, bounds: list[int], first: int = 0):
    """Column: how many of the sorted ``bounds`` are <= ``position`` (a CASE tree, log2(len(bounds)) deep)."""
    from pyspark.sql import functions as F

    if not bounds:
        return F.lit(first)
    mid = len(bounds) // 2
    return F.when(position < F.lit(bounds[mid]), _partition_of(position, bounds[:mid], first)).otherwise(
        _partition_of(position, bounds[mid + 1:], first + mid + 1))


def _called_schema():
    return arrow_schema(GENOTYPE_COLUMNS + CALLED_EXTRA)


@dataclass
class _WindowCaller:
    """``mapInArrow``: reads sorted by (rank, window, start) -> the called sites of each window, in order."""

    reference: object  # Broadcast of IndexedReference
    samples: list
    win_len: int
    thresholds: dict
    counters: dict

    def __call__(self, batches):
        import pyarrow as pa

        pieces, key = [], None
        for batch in batches:
            rank = batch.column("rank").to_numpy(zero_copy_only=False)
            window = batch.column("window").to_numpy(zero_copy_only=False)
            cuts = np.flatnonzero((np.diff(rank) != 0) | (np.diff(window) != 0)) + 1
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), batch.num_rows], strict=True):
                if b == a:
                    continue
                here = (int(rank[a]), int(window[a]))
                if key is not None and here != key:
                    yield self._call(pa.Table.from_batches(pieces), key)
                    pieces = []
                key = here
                pieces.append(batch.slice(a, b - a))
        if pieces:
            yield self._call(pa.Table.from_batches(pieces), key)

    def _call(self, reads, key):
        import pyarrow as pa
        import pyarrow.compute as pc

        from genoflow.reads.genotyping import call_window

        reference = self.reference.value
        contig = reads.column("contig")[0].as_py()
        if key[0] == 0 or contig not in reference:
            raise ValueError(f"call: reads on contig {contig!r}, which the reference {reference.source} lacks")
        index = pc.index_in(reads.column("patient"), value_set=pa.array(self.samples, pa.string()))
        if index.null_count:
            unknown = pc.filter(reads.column("patient"), pc.is_null(index))[0].as_py()
            raise ValueError(f"call: reads of patient {unknown!r}, who is not among the {len(self.samples)} samples")
        win_start = key[1] * self.win_len
        length = reference.length(contig)
        win_len = min(self.win_len, length - win_start)
        ends = pc.add(reads.column("start"), pc.binary_length(reads.column("ref_bases")))
        end = pc.max(ends).as_py()
        if end > length:
            raise ValueError(f"call: a read ends at {end} on {contig!r}, which has {length} bases in "
                             f"{reference.source}: aligned to another reference?")
        t = self.thresholds
        ref_codes = np.frombuffer(reference.fetch(contig, win_start, win_start + win_len).encode("latin-1"),
                                  dtype=np.uint8)
        pileup = pileup_window(reads.column("ref_bases"), reads.column("ref_quals"),
                               reads.column("start").to_numpy(), index.to_numpy(), len(self.samples),
                               win_start, win_len, int(t["min_baseq"]), mapq=reads.column("mapq").to_numpy(),
                               ref_codes=ref_codes, min_alt_reads=int(t["min_alt_reads"]),
                               **_mate_overlaps(reads, ends))
        calls = call_window(pileup, ref_codes, min_alt_reads=int(t["min_alt_reads"]), min_qual=float(t["min_qual"]),
                            min_dp=int(t["min_dp"]), prior=float(t["prior"]))
        self._count(calls)
        return _site_batch(contig, calls)

    def _count(self, calls) -> None:
        self.counters["windows"].add(1)
        self.counters["candidates"].add(int(calls.n_candidates))
        self.counters["sites"].add(len(calls))
        self.counters["missing"].add(int((calls.dosage == MISSING).sum()))
        self.counters["depth"].add(int(calls.dp.sum()))


def _mate_overlaps(reads, ends) -> dict:
    """``skip_start``/``skip_end`` for :func:`~genoflow.reads.pileup.pileup_window`: where mate 2 overlaps its
    mate 1 (both among ``reads``), the overlap, so that the fragment's bases count once (mate 1's).

    bcftools (htslib's overlap detection) keeps one base too, with the two qualities combined where the
    mates agree; here the second mate's base is simply not counted.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = reads.num_rows
    skip_start = np.zeros(n, dtype=np.int64)
    skip_end = np.zeros(n, dtype=np.int64)
    ends = ends.combine_chunks() if isinstance(ends, pa.ChunkedArray) else ends
    pairs = pa.table({"patient": reads.column("patient"), "read_name": reads.column("read_name"),
                      "mate": reads.column("mate"), "start": reads.column("start"), "end": ends,
                      "row": pa.array(np.arange(n, dtype=np.int64))})
    second = pairs.filter(pc.equal(pairs.column("mate"), 2))
    if second.num_rows:
        first = pairs.filter(pc.equal(pairs.column("mate"), 1)).select(["patient", "read_name", "start", "end"])
        joined = second.join(first, keys=["patient", "read_name"], right_suffix="_1", join_type="inner")
        row = joined.column("row").to_numpy()
        skip_start[row] = np.maximum(joined.column("start").to_numpy(), joined.column("start_1").to_numpy())
        skip_end[row] = np.maximum(skip_start[row], np.minimum(joined.column("end").to_numpy(),
                                                               joined.column("end_1").to_numpy()))
    return {"skip_start": skip_start, "skip_end": skip_end}


def _site_batch(contig: str, calls):
    """The called-table rows of a window's sites (an Arrow RecordBatch)."""
    import pyarrow as pa

    n = len(calls)
    letters = np.array([chr(a) for a in ALLELES], dtype=object)
    called = calls.dosage != MISSING
    with np.errstate(invalid="ignore"):
        mean_dp = np.where(calls.dp > 0, calls.dp, np.nan)
        mean_dp = np.nanmean(mean_dp, axis=1) if n else np.zeros(0)
        mean_gq = np.where(called, calls.gq, np.nan)
        mean_gq = np.nanmean(mean_gq, axis=1) if n else np.zeros(0)
    null_f = pa.nulls(n, pa.float64())
    columns = [
        pa.array([contig] * n, pa.string()), pa.array(calls.pos + 1, pa.int64()), pa.array(["."] * n, pa.string()),
        pa.array(letters[calls.ref], pa.string()), pa.array(letters[calls.alt], pa.string()),
        pa.array([""] * n, pa.string()), pa.nulls(n, pa.int64()), null_f, null_f, null_f, null_f,
        pa.nulls(n, pa.bool_()), pa.array([pack_dosages(d) for d in calls.dosage], pa.binary()),
        pa.array(mean_dp, pa.float64(), from_pandas=True), pa.array(mean_gq, pa.float64(), from_pandas=True),
        pa.array(calls.qual, pa.float64()), pa.array([g.tobytes() for g in calls.gq], pa.binary()),
        pa.array([np.minimum(d, 65535).astype("<u2").tobytes() for d in calls.dp], pa.binary()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=_called_schema())


def sample_concordance(called_dosages_df, vcf_dosages_df, *, called_samples, vcf_samples) -> dict:
    """Per sample, genotype concordance of the called table with a VCF's genotype table at shared sites.

    Sites are shared when (contig, pos, ref, alt) match; a sample's genotype pair is compared when both
    are non-missing. The lead names a probable sample swap where concordance falls below
    ``reads.min_concordance``.

    Parameters
    ----------
    called_dosages_df, vcf_dosages_df : DataFrame
        Genotype tables (at least contig, pos, ref, alt, dosages).
    called_samples, vcf_samples : list of str
        Their dosage column orders; samples in both are compared.

    Returns
    -------
    dict
        sample -> (n_compared, concordance); concordance is NaN where nothing was compared.
    """
    from pyspark.sql import functions as F

    shared = [s for s in called_samples if s in set(vcf_samples)]
    if not shared:
        return {}
    a_cols = [list(called_samples).index(s) for s in shared]
    b_cols = [list(vcf_samples).index(s) for s in shared]
    key = ["contig", "pos", "ref", "alt"]
    joined = (called_dosages_df.select(*key, F.col("dosages").alias("a"))
              .join(vcf_dosages_df.select(*key, F.col("dosages").alias("b")), key).select("a", "b"))
    counter = _ConcordanceCounter(len(called_samples), len(vcf_samples), a_cols, b_cols)
    compared = np.zeros(len(shared), dtype=np.int64)
    agree = np.zeros(len(shared), dtype=np.int64)
    for row in joined.mapInArrow(counter, "compared binary, agree binary").collect():
        compared += np.frombuffer(row["compared"], dtype="<i8")
        agree += np.frombuffer(row["agree"], dtype="<i8")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = agree / compared
    return {s: (int(n), float(r)) for s, n, r in zip(shared, compared, rate, strict=True)}


@dataclass
class _ConcordanceCounter:
    """``mapInArrow``: joined (a, b) packed dosages -> one row of per-sample compared and agreeing counts."""

    n_a: int
    n_b: int
    a_cols: list
    b_cols: list

    def __call__(self, batches):
        import pyarrow as pa

        compared = np.zeros(len(self.a_cols), dtype="<i8")
        agree = np.zeros(len(self.a_cols), dtype="<i8")
        for batch in batches:
            a = dosage_matrix(batch.column("a"), self.n_a)[:, self.a_cols]
            b = dosage_matrix(batch.column("b"), self.n_b)[:, self.b_cols]
            both = (a != MISSING) & (b != MISSING)
            compared += both.sum(axis=0)
            agree += (both & (a == b)).sum(axis=0)
        yield pa.RecordBatch.from_arrays([pa.array([compared.tobytes()], pa.binary()),
                                          pa.array([agree.tobytes()], pa.binary())], names=["compared", "agree"])

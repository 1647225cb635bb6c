"""The ``call`` step's Spark part: aligned reads -> windows -> pileup -> joint SNV genotypes of the cohort.

The genome is cut into windows of equal length (:func:`window_length`, sized by the block budget), and the
windows into regions of about equal bases, in genome order. The align step writes each chunk of reads
sorted by position, in small row groups that each hold one contig, so a region's task reads, from every
file, only the row groups whose position statistics overlap the region (:func:`row_group_spans`, the
files' footers, read once by a Spark job): no shuffle, and no Spark rows in between, of the reads. It
sorts them, piles each window up (:mod:`genoflow.reads.pileup`), calls and genotypes its sites in every
sample (:mod:`genoflow.reads.genotyping`) and yields them, in order, so the written table is sorted by
contig (reference order) and position without a sort of the output. Any reads table is read correctly
(an unsorted one just costs each region more of its row groups).

SNVs only: short indels are out in this release.
"""

from __future__ import annotations

import json
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
from genoflow.storage.parts import parquet_files

__all__ = ["CALLED_DDL", "MAX_WINDOW", "row_group_spans", "run_call", "sample_concordance", "window_length"]

MAX_WINDOW = 100_000  # longer windows buy nothing: the per-window cost is already dwarfed by the bases
_READ_BYTES = 96  # bytes of a read in a region's table besides its bases and qualities
CALLED_DDL = f"{GENOTYPE_SCHEMA_DDL}, {CALLED_EXTRA_COLUMNS}"  # the call step's table (Spark DDL)
_CALL_DEFAULTS = {"min_mapq": 20, "min_baseq": 13, "min_alt_reads": 2, "min_qual": 20.0, "min_dp": 2,
                  "prior": 1.1e-3}
_READ_COLUMNS = ["patient", "contig", "start", "end", "mapq", "read_name", "mate", "ref_bases", "ref_quals"]


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


def run_call(spark, storage, reads_uri: str, reference, samples, output_uri: str, params: dict, *,
             duplicates_uri: str | None = None) -> dict:
    """Call and jointly genotype the cohort's SNVs from its aligned reads; write the called table.

    Parameters
    ----------
    spark : SparkSession
    storage : HadoopStorage
        Lists the folders; its ranged files let the tasks read the Parquet files from plain Python.
    reads_uri : str
        The aligned-read table's folder (:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`, the align step's
        ``reads/``). Reads with ``mapq < reads.min_mapq`` and the pairs in ``duplicates_uri`` are left out.
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
    duplicates_uri : str, optional
        The align step's ``duplicates/`` folder (``patient``, ``read_name`` of the duplicate pairs,
        :data:`genoflow.reads.schema.DUPLICATE_SCHEMA`): small, read whole by each task.

    Returns
    -------
    dict
        ``sites`` (rows written; all SNVs, so also ``snvs``), ``candidates`` (positions tested),
        ``windows`` (windows with reads), ``window_length``, ``mean_depth`` (reads' bases per sample over
        the covered length, estimated from the row groups), ``site_depth`` (mean DP over the written
        genotypes), ``missing_fraction`` (share of ``./.`` genotypes in the written sites), ``reads`` (reads
        used: MAPQ and duplicates filtered).

    The table has the genotype table's columns (:data:`genoflow.genotypes.GENOTYPE_COLUMNS`:
    id ".", gene "" until preprocess annotates, line and the QC columns null, mean_dp over samples with
    DP > 0, mean_gq over called samples) and ``qual``, ``gq``, ``dp``
    (:data:`genoflow.reads.schema.CALLED_EXTRA_COLUMNS`), sorted by contig (reference order) and pos.
    """
    from genoflow.spark import session_conf

    p = {**_CALL_DEFAULTS, **{k: v for k, v in ((params or {}).get("reads") or {}).items() if v is not None}}
    budget = block_budget(params)
    samples = list(samples)
    files = [storage.ranged(u) for u in parquet_files(storage, reads_uri)]
    spans = row_group_spans(spark, files)
    stats = _span_stats(spans, reference)
    cohort_depth = stats["bases"] / max(stats["covered"], 1)
    win = window_length(len(samples), cohort_depth, stats["read_length"], budget)
    sc = spark.sparkContext
    # Enough regions to keep the cores busy, and to hold each one's reads within twice the block budget.
    n_regions = max(1, min(math.ceil(stats["covered"] / win) + len(reference), sc.defaultParallelism * 4),
                    math.ceil(stats["bytes"] / (2 * budget)))
    regions = _regions(spans, reference, win, _boundaries(_window_weights(spans, reference, win), n_regions))
    # Accumulators: statistics only (a retried task adds its region twice).
    counters = {k: sc.accumulator(0) for k in ("windows", "candidates", "sites", "missing", "depth", "reads")}
    duplicates = [storage.ranged(u) for u in parquet_files(storage, duplicates_uri)] if duplicates_uri else []
    caller = _RegionCaller(reference=sc.broadcast(reference), samples=samples, win_len=win,
                           thresholds={k: p[k] for k in ("min_mapq", "min_baseq", "min_alt_reads", "min_qual",
                                                         "min_dp", "prior")},
                           counters=counters, files=files, duplicates=duplicates)
    # One region per partition, in genome order: the part files are the table in order.
    specs = sc.parallelize([(i, json.dumps(r)) for i, r in enumerate(regions)], max(len(regions), 1)).toDF(
        "region long, spec string")
    with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "1"}):
        specs.mapInArrow(caller, CALLED_DDL).write.parquet(output_uri)
    return _summary(counters, stats, win, cohort_depth, len(samples))


def row_group_spans(spark, files) -> list[dict]:
    """Where each row group of the reads lies, from the files' footers (a Spark job reads them).

    Returns
    -------
    list of dict
        ``file`` (index into ``files``), ``group``, ``contig`` (None when the group holds several contigs
        or has no statistics: then it may hold any read), ``start`` (least), ``end`` (greatest), ``rows``,
        ``bases`` (the uncompressed size of its ``ref_bases``, less the 4-byte lengths).
    """
    if not files:
        return []
    tasks = min(len(files), spark.sparkContext.defaultParallelism * 4)
    found = spark.sparkContext.parallelize(list(enumerate(files)), tasks).flatMap(_file_spans).collect()
    return sorted(found, key=lambda g: (g["file"], g["group"]))


def _file_spans(item) -> list[dict]:
    import pyarrow.parquet as pq

    index, ranged = item
    with ranged.open_seekable() as handle:
        meta = pq.ParquetFile(handle).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    spans = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        stats = {n: group.column(names.index(n)).statistics for n in ("contig", "start", "end", "ref_bases")}
        known = all(stats[n] is not None and stats[n].has_min_max for n in ("contig", "start", "end"))
        single = known and stats["contig"].min == stats["contig"].max
        spans.append({"file": index, "group": g, "rows": group.num_rows,
                      "contig": stats["contig"].min if single else None,
                      "start": int(stats["start"].min) if known else None,
                      "end": int(stats["end"].max) if known else None,
                      "bases": max(group.column(names.index("ref_bases")).total_uncompressed_size
                                   - 4 * group.num_rows, 0)})
    return spans


def _span_stats(spans: list[dict], reference) -> dict:
    """Bases, bytes in memory, read length and covered length (the row groups' spans merged) of the reads."""
    bases = sum(g["bases"] for g in spans)
    rows = sum(g["rows"] for g in spans)
    covered = 0
    for contig in reference.names:
        reach = -1
        for g in sorted((g for g in spans if g["contig"] == contig), key=lambda g: g["start"]):
            covered += max(0, g["end"] - max(g["start"], reach))
            reach = max(reach, g["end"])
    return {"bases": float(bases), "reads": rows, "covered": covered, "bytes": 2 * bases + _READ_BYTES * rows,
            "read_length": max(1, round(bases / rows)) if rows else 1}


def _window_weights(spans: list[dict], reference, win: int) -> list[tuple[int, float]]:
    """(genome position of a window, bases there): each row group's bases spread evenly over its windows."""
    offsets = dict(zip(reference.names, _offsets(reference), strict=True))
    weights = []
    for g in spans:
        if g["contig"] in offsets:
            first, last = g["start"] // win, (g["end"] - 1) // win
            share = g["bases"] / (last - first + 1)
            weights.extend((offsets[g["contig"]] + w * win, share) for w in range(first, last + 1))
    return weights


def _regions(spans: list[dict], reference, win: int, bounds: list[int]) -> list[dict]:
    """Per region: its genome positions ``[lo, hi)`` (window starts in it) and the row groups to read."""
    offsets = _offsets(reference)
    edges = [0, *bounds, int(sum(reference.length(n) for n in reference.names))]
    regions = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        reach = _region_reach(reference, offsets, win, lo, hi)  # contig -> (first base, last base + 1) needed
        groups: dict[int, list[int]] = {}
        for g in spans:
            span = reach.get(g["contig"]) if g["contig"] is not None else None
            if g["contig"] is None or (span is not None and g["start"] < span[1] and g["end"] > span[0]):
                groups.setdefault(g["file"], []).append(g["group"])
        if groups:
            regions.append({"lo": lo, "hi": hi, "groups": sorted(groups.items())})
    return regions


def _region_reach(reference, offsets: list[int], win: int, lo: int, hi: int) -> dict:
    """The bases each contig's windows starting in genome positions ``[lo, hi)`` cover."""
    reach = {}
    for name, offset in zip(reference.names, offsets, strict=True):
        length = reference.length(name)
        first = max(0, -(-(lo - offset) // win)) * win  # the first window start >= lo on this contig
        if first >= length or offset + first >= hi:
            continue
        last_start = min(hi - 1 - offset, length - 1) // win * win
        reach[name] = (first, min(length, last_start + win))
    return reach


def _offsets(reference) -> list[int]:
    """Each contig's genome position (the bases of the contigs before it, in reference order)."""
    return [0, *np.cumsum([reference.length(n) for n in reference.names]).tolist()][:-1]


def _summary(counters: dict, stats: dict, win: int, cohort_depth: float, n_samples: int) -> dict:
    sites = int(counters["sites"].value)
    genotypes = max(sites * n_samples, 1)
    return {"sites": sites, "snvs": sites, "candidates": int(counters["candidates"].value),
            "windows": int(counters["windows"].value), "window_length": win, "reads": int(counters["reads"].value),
            "mean_depth": cohort_depth / max(n_samples, 1), "site_depth": counters["depth"].value / genotypes,
            "missing_fraction": counters["missing"].value / genotypes}


def _boundaries(weights: list[tuple[int, float]], n_parts: int) -> list[int]:
    """Genome positions (window starts) where regions 1..n_parts-1 begin, each holding about as many bases.

    >>> _boundaries([(0, 100), (2000, 100), (200_000, 200)], 2)
    [200000]
    """
    keyed = sorted(weights)
    total = sum(w for _, w in keyed)
    bounds, seen = [], 0.0
    for at, w in keyed:
        if len(bounds) < n_parts - 1 and seen >= total * (len(bounds) + 1) / n_parts and seen > 0 and \
                (not bounds or at > bounds[-1]):
            bounds.append(at)
        seen += w
    return bounds


def _called_schema():
    return arrow_schema(GENOTYPE_COLUMNS + CALLED_EXTRA)


_DUPLICATE_KEYS: dict = {}  # per Python worker: the duplicates' keys, read once


@dataclass
class _RegionCaller:
    """``mapInArrow``: region specs -> the called sites of each window of the region, in order."""

    reference: object  # Broadcast of IndexedReference
    samples: list
    win_len: int
    thresholds: dict
    counters: dict
    files: list  # RangedFile of each reads/ file, as numbered in the specs
    duplicates: list  # RangedFile of each duplicates/ part file

    def __call__(self, batches):
        for batch in batches:
            for spec in batch.column("spec").to_pylist():
                yield from self._region(json.loads(spec))

    def _region(self, spec: dict):
        reference = self.reference.value
        reach = _region_reach(reference, _offsets(reference), self.win_len, spec["lo"], spec["hi"])
        reads, rank, starts, ends = self._reads(spec, reach)
        runs = np.flatnonzero(np.diff(rank)) + 1
        counted = 0
        for lo, hi in zip([0, *runs.tolist()], [*runs.tolist(), len(rank)], strict=True):
            if hi == lo:
                continue
            contig = reference.names[int(rank[lo])]
            first, last = reach[contig]
            here_starts, here_ends = starts[lo:hi], ends[lo:hi]
            longest = int((here_ends - here_starts).max())
            counted += int(np.count_nonzero(here_starts >= first))  # a read counts in the region of its start
            for win_start in range(first, last, self.win_len):
                a = int(np.searchsorted(here_starts, win_start - longest))
                b = int(np.searchsorted(here_starts, win_start + self.win_len))
                rows = lo + a + np.flatnonzero(here_ends[a:b] > win_start)
                if len(rows):
                    yield self._call(reads.take(rows), (int(rank[lo]) + 1, win_start // self.win_len))
        self.counters["reads"].add(counted)

    def _reads(self, spec: dict, reach: dict):
        """The region's reads (its row groups, MAPQ and duplicates filtered) in one table, and numpy arrays of
        each read's contig (index in the reference), start and end, sorted by contig and start.

        The row groups are joined into one table, the kept reads taken from it in order, and each window's
        reads from those: no filter copies the bases on the way.
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        tables, kept, at = [], [], 0
        for file_index, groups in spec["groups"]:
            with self.files[file_index].open_seekable() as handle:
                table = pq.ParquetFile(handle).read_row_groups(groups, columns=_READ_COLUMNS)
            keep = self._wanted(table, reach)
            if self.duplicates:
                keys = pc.binary_join_element_wise(table.column("patient"), table.column("read_name"), "\t")
                keep = pc.and_(keep, pc.invert(pc.is_in(keys, value_set=self._duplicate_keys())))
            kept.append(at + np.flatnonzero(keep.to_numpy(zero_copy_only=False)))
            tables.append(table)
            at += table.num_rows
        reads = pa.concat_tables(tables).combine_chunks()
        rows = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        names = pa.array(self.reference.value.names, pa.string())
        rank = pc.index_in(reads.column("contig"), value_set=names).to_numpy(zero_copy_only=False)[rows]
        starts = reads.column("start").to_numpy()[rows]
        order = np.lexsort((starts, rank))
        rows = rows[order]
        return (reads.take(rows), rank[order].astype(np.int64), starts[order],
                reads.column("end").to_numpy()[rows])

    def _wanted(self, table, reach: dict):
        """Rows of this region's windows' contigs that overlap them, with MAPQ high enough; an error for a read
        on a contig the reference lacks, or past its contig's end."""
        import pyarrow as pa
        import pyarrow.compute as pc

        reference = self.reference.value
        contig = table.column("contig")
        unknown = pc.invert(pc.is_in(contig, value_set=pa.array(reference.names, pa.string())))
        if pc.any(unknown).as_py():
            name = pc.filter(contig, unknown)[0].as_py()
            raise ValueError(f"call: reads on contig {name!r}, which the reference {reference.source} lacks")
        names = pa.array(reference.names, pa.string())
        lengths = pc.take(pa.array([reference.length(n) for n in reference.names], pa.int64()),
                          pc.index_in(contig, value_set=names))
        beyond = pc.greater(table.column("end"), lengths)
        if pc.any(beyond).as_py():
            row = pc.filter(table.select(["contig", "end"]), beyond).slice(0, 1).to_pylist()[0]
            raise ValueError(f"call: a read ends at {row['end']} on {row['contig']!r}, which has "
                             f"{reference.length(row['contig'])} bases in {reference.source}: aligned to another "
                             "reference?")
        keep = pc.greater_equal(table.column("mapq"), int(self.thresholds["min_mapq"]))
        overlap = pa.array(np.zeros(table.num_rows, dtype=bool))
        for name, (first, reach_end) in reach.items():
            here = pc.and_(pc.equal(contig, name), pc.and_(pc.less(table.column("start"), reach_end),
                                                          pc.greater(table.column("end"), first)))
            overlap = pc.or_(overlap, here)
        return pc.and_(keep, overlap)

    def _duplicate_keys(self):
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        key = tuple(f.uri for f in self.duplicates)
        if key not in _DUPLICATE_KEYS:
            tables = []
            for file in self.duplicates:
                with file.open_seekable() as handle:
                    tables.append(pq.read_table(handle, columns=["patient", "read_name"]))
            table = pa.concat_tables(tables)
            _DUPLICATE_KEYS.clear()
            _DUPLICATE_KEYS[key] = pc.binary_join_element_wise(table.column("patient"), table.column("read_name"),
                                                               "\t")
        return _DUPLICATE_KEYS[key]

    def _call(self, reads, key):
        import pyarrow as pa
        import pyarrow.compute as pc

        from genoflow.reads.genotyping import call_window

        reference = self.reference.value
        contig = reads.column("contig")[0].as_py()
        index = pc.index_in(reads.column("patient"), value_set=pa.array(self.samples, pa.string()))
        if index.null_count:
            unknown = pc.filter(reads.column("patient"), pc.is_null(index))[0].as_py()
            raise ValueError(f"call: reads of patient {unknown!r}, who is not among the {len(self.samples)} samples")
        win_start = key[1] * self.win_len
        win_len = min(self.win_len, reference.length(contig) - win_start)
        t = self.thresholds
        ref_codes = np.frombuffer(reference.fetch(contig, win_start, win_start + win_len).encode("latin-1"),
                                  dtype=np.uint8)
        pileup = pileup_window(reads.column("ref_bases"), reads.column("ref_quals"),
                               reads.column("start").to_numpy(), index.to_numpy(), len(self.samples),
                               win_start, win_len, int(t["min_baseq"]), mapq=reads.column("mapq").to_numpy(),
                               ref_codes=ref_codes, min_alt_reads=int(t["min_alt_reads"]),
                               **_mate_overlaps(reads, reads.column("end")))
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

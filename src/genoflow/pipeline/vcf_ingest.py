"""VCF ingest on Spark: a cohort (bgzip) VCF -> the variant-major Parquet genotype table.

A bgzip (BGZF) file is cut into the byte ranges Spark's file sources would make, and each task reads,
inflates and splits its own range into lines (:mod:`genoflow.io.vcf.bgzf`, through
:class:`~genoflow.storage.ranged.RangedFile`: ``file://`` or WebHDFS), so every core decodes its own
part (decisions 0006, 0029) and no line crosses from the JVM. Plain gzip and plain text go through
Spark's text source (plain gzip is read whole by one task); with genoflow's BGZF codec on the
classpath (``hadoop/bgzf-codec``, wired in by :func:`genoflow.spark_submit.spark_conf`) that source
splits a BGZF file at the same ranges, which is how a line number of a later split is counted on
error. Each task decodes blocks of lines (``mapInArrow``) with the vectorised parser of
:mod:`genoflow.io.vcf`; rows go back to Spark as Arrow batches, never one Python object per
genotype. What this path shares with the per-patient merge (:mod:`genoflow.pipeline.vcf_merge`):
header reading, error re-wrapping and line numbers across splits, the decode prelude, lives in
:mod:`genoflow.pipeline.vcf_read`; this module re-exports their public names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import GENOTYPE_PARQUET_OPTIONS, GENOTYPE_SCHEMA, GENOTYPE_SCHEMA_DDL
from genoflow.pipeline.vcf_merge import ingest_patient_vcfs, merged_header, patient_vcf_uris
from genoflow.pipeline.vcf_read import (
    BGZF_EOF,
    VCF_BYTES_PER_SAMPLE,
    IngestResult,
    _lines_before,
    check_bgzf_end,
    checked_contigs,
    decode_lines,
    gene_names,
    genotype_batch,
    keyed_runs,
    lines_within_split,
    qc_columns,
    read_vcf_header,
    record_blocks,
    translate_error,
)
from genoflow.storage.parts import WRITTEN_PART_DDL, collect_written, writable_folder

__all__ = [
    "GENOTYPE_SCHEMA_DDL",
    "BGZF_EOF",
    "VCF_BYTES_PER_SAMPLE",
    "IngestResult",
    "check_bgzf_end",
    "gene_names",
    "ingest_patient_vcfs",
    "ingest_vcf",
    "merged_header",
    "patient_vcf_uris",
    "read_vcf_header",
    "translate_error",
]

log = logging.getLogger(__name__)

# Splits per core when a VCF is read (see _ingest_conf).
_SPLITS_PER_CORE = 3


def ingest_vcf(spark, vcf_uri: str, header, out_uri: str, *, reference, genes, p: dict,
               budget: int | None = None) -> IngestResult:
    """Decode ``vcf_uri`` into the genotype table at ``out_uri`` (Parquet; see :mod:`genoflow.genotypes`).

    Parameters
    ----------
    spark : SparkSession
    vcf_uri : str
        The VCF (plain, gzip or bgzip) under any Hadoop file system.
    header : genoflow.io.vcf.VcfHeader
        From `read_vcf_header`.
    out_uri : str
        Where to write; the caller commits it (nothing is left usable on error).
    reference : genoflow.io.reference.IndexedReference or None
        The reference FASTA by its index (broadcast: only the index travels; each task reads the
        bases its records need): REF alleles are checked against it and contig names are given its
        spelling (``1`` becomes ``chr1`` when the FASTA says ``chr1``); None: no check.
    genes : genoflow.io.gff.GeneIndex or None
        Annotates each variant with its gene; None: every gene is "".
    p : dict
        The ``preprocess`` params: ``min_call_rate``, ``min_maf``, ``min_hwe_p`` and optionally
        ``vcf_min_gq``, ``vcf_min_dp`` (0 = off).
    budget : int, optional
        Bytes of VCF text per block of lines (and per Arrow batch), default
        :data:`genoflow.genotypes.BLOCK_BYTES`; the params' ``compute.block_mb`` via
        :func:`genoflow.genotypes.block_budget`. It changes memory and speed, never the table.

    Returns
    -------
    IngestResult

    Raises
    ------
    InputError
        The first bad record (file, line, CHROM:POS, problem), a truncated or corrupt gzip/BGZF
        block (file, byte offset), or records out of order.
    """
    from pyspark.sql import functions as F

    from genoflow.genotypes import BLOCK_BYTES, rows_per_block

    sc = spark.sparkContext
    skipped = sc.accumulator(0)
    runs = sc.accumulator([], _ListParam())
    chunk_lines = rows_per_block(header.n_samples, VCF_BYTES_PER_SAMPLE, budget or BLOCK_BYTES)
    decode = _BlockDecoder(
        source=vcf_uri, n_samples=header.n_samples, chunk_lines=chunk_lines,
        thresholds=(float(p["min_call_rate"]), float(p["min_maf"]), float(p["min_hwe_p"])),
        min_gq=float(p.get("vcf_min_gq", 0) or 0), min_dp=float(p.get("vcf_min_dp", 0) or 0),
        reference=sc.broadcast(reference), genes=sc.broadcast(genes), skipped=skipped, runs=runs,
    )
    from genoflow.spark import session_conf

    with session_conf(spark, _ingest_conf(spark, chunk_lines)):
        bgzf = _bgzf_file(spark, vcf_uri)
        parts = writable_folder(spark, out_uri) if bgzf is not None else None
        if bgzf is not None:  # the tasks read and inflate their own byte ranges (decision 0029)
            decode.bgzf, decode.splits = bgzf, _file_splits(spark, bgzf)
            decode.n_header_lines = header.n_header_lines
            ids = spark.range(len(decode.splits), numPartitions=len(decode.splits))
            n_splits = len(decode.splits)
            # ... and write their own Parquet files where they can (decision 0032)
            rows = ids.mapInArrow(decode.from_ranges, GENOTYPE_SCHEMA_DDL) if parts is None else None
        else:  # plain gzip or text: Spark's text source, lines as Arrow strings
            lines = spark.read.text(vcf_uri).select("value", F.input_file_block_start().alias("split"))
            rows = lines.mapInArrow(decode, GENOTYPE_SCHEMA_DDL)
            n_splits = lines.rdd.getNumPartitions()
        log.info("reading %s in %d split(s)", vcf_uri, n_splits)
        try:
            if rows is not None:
                rows.write.parquet(out_uri)
            else:  # each task writes one Parquet file per block of records (`_BlockDecoder.write_ranges`)
                decode.parts = parts
                written = ids.mapInArrow(decode.write_ranges, WRITTEN_PART_DDL)
                collect_written(written, parts, schema=GENOTYPE_SCHEMA)
        except Exception as err:  # noqa: BLE001 - executor errors arrive wrapped; keep the user's line
            raise translate_error(spark, vcf_uri, err) or err from None
        # Inside the same settings: a line number is counted over the same splits the tasks saw.
        _check_order(spark, vcf_uri, runs.value)
    return IngestResult(n_splits=n_splits, n_skipped_alts=int(skipped.value))


def _ingest_conf(spark, chunk_lines: int) -> dict[str, str]:
    """Session settings while a VCF is read: Arrow batches of ``chunk_lines`` lines (one block's worth,
    so a batch of wide lines is no bigger than a block) and a few splits per core, so that no core
    waits on one slow split (BGZF splits are equal in compressed bytes, not in records)."""
    return {"spark.sql.execution.arrow.maxRecordsPerBatch": str(max(int(chunk_lines), 1)),
            "spark.sql.files.minPartitionNum": str(_SPLITS_PER_CORE * spark.sparkContext.defaultParallelism)}


def _bgzf_file(spark, vcf_uri: str):
    """The VCF as a :class:`~genoflow.storage.ranged.RangedFile` when it is BGZF, for the tasks to read
    in byte ranges; None for other files (and where the file cannot be read outside the JVM)."""
    from genoflow.io.vcf.bgzf import is_bgzf
    from genoflow.pipeline.vcf_read import _file_ends
    from genoflow.storage.hadoop import HadoopStorage

    head, _ = _file_ends(spark, vcf_uri, 512, 0)
    if not is_bgzf(head):
        return None
    return HadoopStorage(spark, vcf_uri).ranged_or_none(vcf_uri, "reading %s through Spark's text source: %s")


def _file_splits(spark, ranged) -> list[tuple[int, int]]:
    """The byte ranges Spark's file sources would split the file into under this session's settings
    (``FilePartition.maxSplitBytes``): the same splits, so the same lines per split, as the text
    source's, and `_lines_before` counts lines before a split with that source."""
    size, _ = ranged.stat()
    conf = spark._jsparkSession.sessionState().conf()
    max_bytes, open_cost = int(conf.filesMaxPartitionBytes()), int(conf.filesOpenCostInBytes())
    min_splits = int(spark.conf.get("spark.sql.files.minPartitionNum"))
    split = min(max_bytes, max(open_cost, (size + open_cost) // min_splits))
    return [(lo, min(lo + split, size)) for lo in range(0, size, split)] or [(0, 0)]


def _check_order(spark, vcf_uri: str, runs: list) -> None:
    """Records must be sorted: each contig in one stretch, positions non-decreasing within it.

    ``runs`` are ``(split, first line in split, contig, first pos, last pos)`` stretches of one
    contig, reported by the tasks (which already checked the order inside each split).
    """
    seen: set[str] = set()
    previous = None
    for split, line, contig, first, last in sorted(runs):
        if previous is not None and previous[2] == contig:
            if first < previous[4]:
                _raise_unsorted(spark, vcf_uri, split, line, contig, first, f"{contig}:{previous[4]}")
        elif contig in seen:
            _raise_unsorted(spark, vcf_uri, split, line, contig, first, f"other contigs after {contig}")
        seen.add(contig)
        previous = (split, line, contig, first, last)


def _raise_unsorted(spark, vcf_uri, split, line, contig, pos, after):
    absolute = line if split == 0 else _lines_before(spark, vcf_uri, split) + line
    raise InputError(vcf_uri, f"records are not sorted: {contig}:{pos} comes after {after} (sort with "
                     "`bcftools sort`)", line=absolute, record=f"{contig}:{pos}")


# --------------------------------------------------------------------------------------------
# Executor side
# --------------------------------------------------------------------------------------------


try:  # executors import this module too; pyspark is there, but keep the import cheap and safe
    from pyspark.accumulators import AccumulatorParam
except ImportError:  # pragma: no cover - pyspark is a dependency
    AccumulatorParam = object


class _ListParam(AccumulatorParam):
    """An accumulator of lists, concatenated."""

    def zero(self, value):
        return []

    def addInPlace(self, value1, value2):  # noqa: N802 - pyspark's name
        value1.extend(value2)
        return value1


@dataclass
class _BlockDecoder:
    """The ``mapInArrow`` function: Arrow batches of (line, split start) -> genotype-table batches."""

    source: str
    n_samples: int
    chunk_lines: int
    thresholds: tuple[float, float, float]
    min_gq: float
    min_dp: float
    reference: object  # Broadcast of IndexedReference (or None)
    genes: object  # Broadcast of GeneIndex
    skipped: object  # Accumulator of int
    runs: object  # Accumulator of list
    bgzf: object = None  # RangedFile of a BGZF VCF, read by `from_ranges`
    splits: list | None = None  # its byte ranges, by the ids `from_ranges` is given
    n_header_lines: int | None = None  # the VCF's header lines: the first split's first batch
    parts: object = None  # RangedFile of the output folder, written by `write_ranges`

    def from_ranges(self, batches):
        """The ``mapInArrow`` function over split ids: each split's lines inflated here, in batches of
        ``chunk_lines`` (no line crosses from the JVM), then decoded as `__call__` does."""
        yield from self(self._range_lines(batches))

    def write_ranges(self, batches):
        """The ``mapInArrow`` function over split ids that writes the table itself: each block of a split's
        records goes to the Parquet file ``part-<split>-<block>.parquet`` of ``parts`` (a retried task
        rewrites the same files); one row (file, rows) per file goes back to Spark. Spark's writer
        cost more than decoding (Arrow to Spark rows to Parquet in the JVM; decision 0032)."""
        import pyarrow as pa

        from genoflow.storage.parts import write_parquet_part

        for split_id in _split_ids(batches):
            for block, rows in enumerate(self(self._split_lines(split_id))):
                name = f"part-{split_id:05d}-{block:06d}.parquet"
                write_parquet_part(self.parts, name, [rows], GENOTYPE_SCHEMA, **GENOTYPE_PARQUET_OPTIONS)
                yield pa.RecordBatch.from_pydict({"file": [name], "rows": [rows.num_rows]})

    def _range_lines(self, batches):
        for split_id in _split_ids(batches):
            yield from self._split_lines(split_id)

    def _split_lines(self, split_id: int):
        import pyarrow as pa

        from genoflow.io.vcf.bgzf import line_batches, owned_text

        start, end = self.splits[split_id]
        text = owned_text(self.bgzf, start, end, source=self.source)
        header = self.n_header_lines if start == 0 else None
        for lines in line_batches(text, self.chunk_lines, first_lines=header):
            key = pa.array(np.full(len(lines), start, dtype=np.int64))
            yield pa.RecordBatch.from_arrays([lines, key], names=["value", "split"])

    def __call__(self, batches):
        runs: list = []
        for split, first, block in record_blocks(keyed_runs(batches), self.chunk_lines):
            with lines_within_split(split):
                batch = self._decode_block(block, first, split, runs)
            yield batch
        self.runs.add(runs)

    def _decode_block(self, lines, first, split, runs):
        import pyarrow as pa

        from genoflow.genotypes import dosage_matrix

        decoded = decode_lines(lines, n_samples=self.n_samples, source=self.source, first=first,
                               min_gq=self.min_gq, min_dp=self.min_dp, skipped=self.skipped)
        table, line = decoded.table, decoded.line
        _track_order(runs, split, decoded.contig, decoded.pos, line, self.source)
        names = checked_contigs(self.reference.value, decoded, source=self.source)
        contig = np.asarray([names[c] for c in decoded.contig.tolist()], dtype=object)
        dosages = _one_array(table.column("dosages"))
        return genotype_batch({
            "contig": pa.array(contig.tolist(), type=pa.string()),
            "pos": _one_array(table.column("pos")),
            "id": _one_array(table.column("id")),
            "ref": _one_array(table.column("ref")),
            "alt": _one_array(table.column("alt")),
            "gene": pa.array(gene_names(self.genes.value, contig, decoded.pos), type=pa.string()),
            "line": pa.array(line if split == 0 else np.zeros(len(line)), type=pa.int64(),
                             mask=None if split == 0 else np.ones(len(line), dtype=bool)),
            **qc_columns(dosage_matrix(dosages, self.n_samples), self.thresholds),
            "dosages": dosages,
            "mean_dp": _one_array(table.column("mean_dp")),
            "mean_gq": _one_array(table.column("mean_gq")),
        })


def _split_ids(batches):
    for batch in batches:
        yield from batch.column(0).to_pylist()


def _one_array(column):
    """A table column as one Arrow array: its only chunk as it is (``combine_chunks`` copies even that)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _track_order(runs: list, split: int, contig: np.ndarray, pos: np.ndarray, line: np.ndarray, source: str):
    """Check the order of a block's records and extend this task's runs of one contig.

    A run is ``[split, first line, contig, first pos, last pos]``; runs continue across blocks.
    """
    if not len(pos):
        return
    starts = np.flatnonzero(np.r_[True, contig[1:] != contig[:-1]])
    ends = np.r_[starts[1:], len(pos)]
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        name = contig[lo]
        if runs and runs[-1][0] == split and runs[-1][2] == name:
            run = runs[-1]
        else:
            if any(r[0] == split and r[2] == name for r in runs):
                raise InputError(source, f"records are not sorted: {name}:{pos[lo]} comes after records of other "
                                 f"contigs that follow {name} (sort with `bcftools sort`)", line=int(line[lo]),
                                 record=f"{name}:{pos[lo]}")
            run = [split, int(line[lo]), name, int(pos[lo]), int(pos[lo])]
            runs.append(run)
        back = np.flatnonzero(np.diff(np.r_[run[4], pos[lo:hi]]) < 0)
        if len(back):
            i = lo + int(back[0])
            before = run[4] if i == lo else int(pos[i - 1])
            raise InputError(source, f"records are not sorted: {name}:{pos[i]} comes after {name}:{before} "
                             "(sort with `bcftools sort`)", line=int(line[i]), record=f"{name}:{pos[i]}")
        run[4] = int(pos[hi - 1])

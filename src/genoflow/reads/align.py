"""Aligning each patient's reads to the reference with minimap2 (through ``mappy``), on Spark.

The driver builds the minimap2 index once per reference (a step output, reused while the reference is
the same) and lists the read files. One task per patient streams its FASTQ file(s) into chunks of
reads; the chunks are spread over every core, and each task maps them with its executor's aligner
(loaded once per Python worker: mappy's Aligner cannot be pickled, so it is never broadcast). mappy
releases the GIL while mapping, so a task may map with several threads, each with its own
``ThreadBuffer``. Each primary alignment becomes a row of the aligned-read table
(:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`) with its bases and qualities projected on the
reference, so the caller never walks a CIGAR.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from genoflow.errors import InputError
from genoflow.reads.fastq_input import ReadBlock, ReadChunk, iter_read_chunks, patient_read_sets
from genoflow.reads.index import load_aligner
from genoflow.reads.schema import ALIGNED_READ_SCHEMA, DELETION
from genoflow.storage.parts import collect_written

__all__ = ["AlignCounts", "align_chunk", "find_duplicates", "project", "query_span", "run_align"]

_PHRED_OFFSET = 33
_COMPLEMENT = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")
# mappy's CIGAR operations (BAM codes): M I D N S H P = X
_CIGAR_CODES = "MIDNSHP=X"
_COPY_OPS = {0, 7, 8}  # M, =, X: one read base per reference base
_GAP_OPS = {2, 3}  # D, N: reference bases the read lacks
_PICARD_MIN_QUAL = 15  # Picard's duplicate score sums base qualities >= 15

@dataclass
class AlignCounts:
    """Reads of a chunk: all of them, those with a primary alignment, those kept (MAPQ >= min_mapq)."""

    reads: int = 0
    mapped: int = 0
    kept: int = 0

    def add(self, other: AlignCounts) -> None:
        self.reads += other.reads
        self.mapped += other.mapped
        self.kept += other.kept


# --------------------------------------------------------------------------------------------
# Aligning a chunk
# --------------------------------------------------------------------------------------------


def align_chunk(aligner, patient: str, chunk: ReadChunk, *, min_mapq: int,
                threads: int = 1) -> tuple[pa.RecordBatch, AlignCounts]:
    """Map a chunk of reads and project each primary alignment's bases and qualities on the reference.

    Parameters
    ----------
    aligner : mappy.Aligner
        From :func:`load_aligner`.
    patient : str
        Written in every row.
    chunk : ReadChunk
        Single-end reads, or pairs (mapped together: mappy pairs the mates).
    min_mapq : int
        Alignments below this MAPQ are counted as mapped but not returned.
    threads : int
        Mapping threads, each with its own ``mappy.ThreadBuffer``.
    Returns
    -------
    pyarrow.RecordBatch
        Rows in :data:`~genoflow.reads.schema.ALIGNED_READ_SCHEMA`, in the order of the reads (mate 1 before
        mate 2).
    AlignCounts
        Reads (each mate counts), reads with a primary alignment, rows returned.
    """
    paired = chunk.mate2 is not None
    blocks = _Reads(chunk.mate1, scores=paired), (_Reads(chunk.mate2, scores=True) if paired else None)
    n = len(chunk)
    bounds = np.linspace(0, n, max(1, min(threads, n)) + 1).astype(int)
    jobs = [(aligner, blocks, min_mapq, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:],
                                                                                   strict=True)]
    if len(jobs) == 1:
        parts = [_align_range(*jobs[0])]
    else:
        with ThreadPoolExecutor(len(jobs)) as pool:
            parts = list(pool.map(lambda job: _align_range(*job), jobs))
    counts, rows = AlignCounts(), []
    for part_rows, part_counts in parts:
        rows.extend(part_rows)
        counts.add(part_counts)
    return _batch(patient, rows), counts


class _Reads:
    """A ReadBlock's reads as mappy wants them (str) and as the projection wants them (bytes, raw Phred)."""

    def __init__(self, block: ReadBlock, *, scores: bool):
        self.block = block
        offsets = block.offsets()
        self.text = block.sequences.decode("latin-1")
        raw = np.frombuffer(block.qualities, dtype=np.uint8) - np.uint8(_PHRED_OFFSET)
        self.quals = raw.tobytes()
        # Python ints: indexing numpy arrays read by read costs more than the slicing itself.
        self.bounds = offsets.tolist()
        self.scores = _quality_sums(raw, offsets).tolist() if scores else None

    def text_of(self, i: int) -> str:
        return self.text[self.bounds[i]:self.bounds[i + 1]]

    def bytes_of(self, i: int) -> tuple[bytes, bytes]:
        lo, hi = self.bounds[i], self.bounds[i + 1]
        return self.block.sequences[lo:hi], self.quals[lo:hi]


def _quality_sums(quals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Picard's duplicate score of each read: the sum of its base qualities >= 15 (``quals`` raw Phred, joined)."""
    if not len(quals):
        return np.zeros(len(offsets) - 1, np.int64)
    good = np.where(quals >= _PICARD_MIN_QUAL, quals, np.uint8(0))
    sums = np.add.reduceat(good, np.minimum(offsets[:-1], len(quals) - 1), dtype=np.int64)  # indices must be < len
    sums[offsets[1:] == offsets[:-1]] = 0  # reduceat gives an empty read the next read's first value
    return sums


# The columns _align_range fills, as row tuples (patient is constant per chunk).
_ROW_FIELDS = ("contig", "start", "end", "strand", "mapq", "cigar", "read_name", "mate", "mate_start", "ref_bases",
               "ref_quals", "pair_key", "pair_score")


def _batch(patient: str, rows: list[tuple]) -> pa.RecordBatch:
    """The aligned-read table of one chunk's rows (tuples in ``_ROW_FIELDS`` order)."""
    columns = dict(zip(_ROW_FIELDS, zip(*rows, strict=True), strict=True)) if rows else \
        {name: () for name in _ROW_FIELDS}
    columns["patient"] = [patient] * len(rows)
    return pa.RecordBatch.from_arrays([pa.array(columns[f.name], f.type) for f in ALIGNED_READ_SCHEMA],
                                      schema=ALIGNED_READ_SCHEMA)


def _align_range(aligner, blocks, min_mapq: int, lo: int, hi: int) -> tuple[list[tuple], AlignCounts]:
    """Map reads (pairs) lo..hi-1 of a chunk in this thread; returns their rows and counts."""
    import mappy

    buffer = mappy.ThreadBuffer()
    mate1, mate2 = blocks
    rows, counts = [], AlignCounts()
    # Locals: this loop runs once per read, and attribute look-ups are most of its Python time.
    map_, names, bounds1, text1 = aligner.map, mate1.block.names, mate1.bounds, mate1.text
    bounds2, text2 = (mate2.bounds, mate2.text) if mate2 is not None else (None, None)
    append, n_seq = rows.append, 1 if mate2 is None else 2
    for i in range(lo, hi):
        one = text1[bounds1[i]:bounds1[i + 1]]
        hits = map_(one, buf=buffer) if mate2 is None else map_(one, text2[bounds2[i]:bounds2[i + 1]], buf=buffer)
        primary = {}
        for hit in hits:
            if hit.is_primary:
                primary.setdefault(hit.read_num if mate2 is not None else 0, hit)
        counts.mapped += len(primary)
        if not primary:
            continue
        pair_key, pair_score = None, None
        if len(primary) == 2:
            lengths = {1: bounds1[i + 1] - bounds1[i], 2: bounds2[i + 1] - bounds2[i]}
            pair_key = _pair_key(primary, min_mapq, lengths)
            if pair_key is not None:
                pair_score = mate1.scores[i] + mate2.scores[i]
        for mate, hit in primary.items():
            if hit.mapq < min_mapq:
                continue
            mate_hit = primary.get(3 - mate) if mate else None
            bases, quals = (mate2 if mate == 2 else mate1).bytes_of(i)
            ref_bases, ref_quals, cigar = project(bases, quals, hit, query_span(hit, len(bases), mate))
            mate_start = mate_hit.r_st if mate_hit is not None and mate_hit.ctg == hit.ctg else None
            append((hit.ctg, hit.r_st, hit.r_en, hit.strand, hit.mapq, cigar, names[i], mate, mate_start, ref_bases,
                    ref_quals, pair_key, pair_score))
    counts.reads = n_seq * (hi - lo)
    counts.kept = len(rows)
    return rows, counts


def _pair_key(primary: dict, min_mapq: int, lengths: dict) -> str | None:
    """Where a pair's two ends start: contig, then each read's unclipped 5' end and strand, ordered by position.

    None unless both mates are kept on one contig: a pair missing an end has nothing to compare with.
    """
    one, two = primary.get(1), primary.get(2)
    if one is None or two is None or one.ctg != two.ctg or min(one.mapq, two.mapq) < min_mapq:
        return None
    # The 5' end: a forward read's start minus its left clip, a reverse read's end plus its right clip (q_st
    # counts the clipped bases of the read as sequenced, whose start is the reverse read's right end).
    ends = []
    for mate, hit in ((1, one), (2, two)):
        q_st = query_span(hit, lengths[mate], mate)[0]
        ends.append((hit.r_st - q_st, "+") if hit.strand > 0 else (hit.r_en + q_st, "-"))
    ends.sort()
    return f"{one.ctg}:{ends[0][0]}{ends[0][1]}{ends[1][0]}{ends[1][1]}"


def query_span(hit, length: int, mate: int) -> tuple[int, int]:
    """``(q_st, q_en)`` of a hit on the read as sequenced.

    mappy maps a pair's second read as the reverse complement (minimap2 pairs FR fragments that way) and
    reports its ``q_st``/``q_en`` on that: flip them back, or a clipped R2 projects shifted bases (checked
    against the minimap2 CLI's CIGARs).
    """
    if mate == 2:
        return length - hit.q_en, length - hit.q_st
    return hit.q_st, hit.q_en


def project(bases: bytes, quals: bytes, hit, span: tuple[int, int] | None = None) -> tuple[bytes, bytes, str]:
    """A read's bases and qualities on the reference positions ``hit.r_st..hit.r_en-1``, and its SAM CIGAR.

    Parameters
    ----------
    bases : bytes
        The read as sequenced (upper-case).
    quals : bytes
        Raw Phred qualities (not +33), one per base.
    hit : mappy.Alignment
        ``q_st``/``q_en`` are on the read as sequenced; the CIGAR (without clips) walks the reference
        left to right, i.e. the reverse complement of the read for a reverse-strand hit.

    Returns
    -------
    tuple of (bytes, bytes, str)
        Bases (``*`` at deletions), qualities (0 at deletions), and the CIGAR with soft clips.
    """
    length = len(bases)
    q_st, q_en = span or (hit.q_st, hit.q_en)
    if hit.strand < 0:
        bases, quals = bases.translate(_COMPLEMENT)[::-1], quals[::-1]
        left, right = length - q_en, q_st
    else:
        left, right = q_st, length - q_en
    operations = hit.cigar  # (mappy's cigar_str costs twice as much as this list: the string is built here)
    clip_left, clip_right = f"{left}S" if left else "", f"{right}S" if right else ""
    if len(operations) == 1 and operations[0][1] in _COPY_OPS:  # most reads: one M, no slicing into pieces
        size, op = operations[0]
        return bases[left:left + size], quals[left:left + size], f"{clip_left}{size}{_CIGAR_CODES[op]}{clip_right}"
    cigar = clip_left + "".join(f"{size}{_CIGAR_CODES[op]}" for size, op in operations) + clip_right
    at, out_bases, out_quals = left, [], []
    for size, op in operations:
        if op in _COPY_OPS:
            out_bases.append(bases[at:at + size])
            out_quals.append(quals[at:at + size])
            at += size
        elif op in _GAP_OPS:
            out_bases.append(bytes([DELETION]) * size)
            out_quals.append(bytes(size))
        else:  # I (S and H do not occur inside mappy's CIGAR)
            at += size
    return b"".join(out_bases), b"".join(out_quals), cigar


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------


def find_duplicates(reads):
    """The pairs whose two ends start where a better pair's do (samtools markdup's rule, by position).

    A pair's ``pair_key`` (:func:`align_chunk`) is its contig and the unclipped 5' end and strand of each
    mate, the two ends ordered by position; among a patient's pairs sharing a key, the one with the highest
    ``pair_score`` (the sum of both mates' base qualities >= 15, Picard's) is kept (ties: the smallest read
    name) and the others are duplicates. Reads without a key are never duplicates: single-end reads at 30x
    over a panel share start positions by chance, so marking them by position would flag true reads, and a
    pair missing an end (unmapped, under ``min_mapq`` or on another contig) has no second end to compare.

    Only mate 1's key, score and name are shuffled, not the reads.

    Parameters
    ----------
    reads : pyspark.sql.DataFrame
        The aligned-read table (:data:`~genoflow.reads.schema.ALIGNED_READ_SCHEMA`).

    Returns
    -------
    pyspark.sql.DataFrame
        ``patient``, ``read_name`` (:data:`~genoflow.reads.schema.DUPLICATE_SCHEMA`): one row per duplicate pair.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    same_key = Window.partitionBy("patient", "pair_key").orderBy(F.desc("pair_score"), "read_name")
    return (reads.where("mate = 1 AND pair_key IS NOT NULL").select("patient", "pair_key", "pair_score", "read_name")
            .withColumn("rank", F.row_number().over(same_key)).where("rank > 1").select("patient", "read_name"))


# --------------------------------------------------------------------------------------------
# The Spark step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    preset: str
    min_mapq: int
    chunk_reads: int
    threads: int
    min_mapping_rate: float


def _settings(spark, params: dict, n_patients: int) -> _Settings:
    """The step's params (``reads:``, ``compute:``), with the defaults params.yaml ships."""
    reads, compute = params.get("reads") or {}, params.get("compute") or {}
    threads = int(compute.get("align_threads", reads.get("threads", 0)) or 0)
    if threads <= 0:  # auto: a task per patient, so fewer patients than cores map with more threads each
        task_cpus = int(spark.conf.get("spark.task.cpus", "1"))
        threads = max(task_cpus, spark.sparkContext.defaultParallelism // max(n_patients, 1))
    return _Settings(preset=reads.get("preset", "sr"), min_mapq=int(reads.get("min_mapq", 20)),
                     chunk_reads=int(compute.get("chunk_reads", reads.get("chunk_reads", 20000))),
                     threads=threads, min_mapping_rate=float(reads.get("min_mapping_rate", 0.5)))


def run_align(spark, storage, output, params: dict, *, index_uri: str) -> dict:
    """Align every patient's reads into ``output.path("reads")``; write ``duplicates/`` and ``mapping.json``.

    One task per patient streams its FASTQ file(s) in chunks, maps each chunk (with several threads when
    there are fewer patients than cores) and writes its rows as a Parquet file: the reads are written once,
    in the order they were sequenced, and never shuffled or cached. Only the duplicate keys are shuffled.

    Parameters
    ----------
    spark : SparkSession
    storage : HadoopStorage
    output : StepOutput
        The step's temporary folder.
    params : dict
        ``preprocess.patient_dir`` (under the storage root), ``preprocess.reference_fasta`` (named in
        errors) and the ``reads:`` / ``compute:`` keys read by ``_settings``.
    index_uri : str
        The minimap2 index (:func:`build_index`).

    Returns
    -------
    dict
        Per patient: ``reads``, ``mapped``, ``mapping_rate``, ``kept``, ``duplicates`` (reads of duplicate
        pairs), ``fastq``.

    Raises
    ------
    InputError
        No read files; a malformed FASTQ (file and line); a patient whose mapping rate is under
        ``reads.min_mapping_rate`` (nothing is committed then).
    """
    from genoflow.pipeline.vcf_ingest import translate_error
    from genoflow.spark import session_conf

    patient_uri = storage.uri(params["preprocess"]["patient_dir"])
    read_sets = patient_read_sets(storage, patient_uri)
    if not read_sets:
        raise InputError(patient_uri, "no patient folder holds reads (genome_sequence.fastq.gz, or _R1/_R2)")
    settings = _settings(spark, params, len(read_sets))
    rows = [(number, s.patient, s.r1, s.r2) for number, s in enumerate(read_sets)]
    patients = spark.sparkContext.parallelize(rows, len(rows)).toDF(
        "number long, patient string, r1 string, r2 string")
    reads_uri = output.path("reads")
    storage.mkdirs(reads_uri)
    reads = storage.ranged(reads_uri)
    aligning = _aligning(storage.ranged(patient_uri), storage.ranged(index_uri), reads, settings)
    # One Arrow batch per patient into Python (a batch of the default 10,000 rows would be several patients).
    with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "1"}):
        try:
            chunks = collect_written(patients.mapInArrow(aligning, _CHUNK_DDL), reads)
        except Exception as err:
            # A bad FASTQ raises in an executor: Spark hands back its text; give the caller the InputError.
            found = None if isinstance(err, InputError) else translate_error(spark, patient_uri, err)
            if found is None:
                raise
            raise found from None
    counts = _mapping_counts(chunks, read_sets)
    _check_mapping(counts, settings.min_mapping_rate, storage.uri(params["preprocess"]["reference_fasta"]))
    find_duplicates(spark.read.parquet(reads_uri)).write.parquet(output.path("duplicates"))
    _add_duplicates(spark, output.path("duplicates"), counts)
    output.write_json("mapping.json", counts)
    return counts


# What each aligning task hands back per chunk: the Parquet file it wrote and the chunk's read counts.
_CHUNK_DDL = "patient string, chunk long, file string, reads long, mapped long, kept long"
_CHUNK_SCHEMA = pa.schema([("patient", pa.string()), ("chunk", pa.int64()), ("file", pa.string()),
                           ("reads", pa.int64()), ("mapped", pa.int64()), ("kept", pa.int64())])


def _aligning(patients, index, reads_folder, settings: _Settings):
    """The mapInArrow function: each patient's read chunks aligned with this Python worker's cached aligner.

    Each chunk's rows go straight to a Parquet file of ``reads_folder`` (named by patient and chunk
    number, so a retried task rewrites the same files); only a row of counts per chunk goes back to Spark.
    Handing the reads to Spark's writer instead cost more than mapping them (Arrow to Spark rows to Parquet).
    """

    def align(batches):
        aligner = load_aligner(index, settings.preset)
        for batch in batches:
            for number, patient, r1, r2 in zip(*batch.to_pydict().values(), strict=True):
                for chunk in _patient_chunks(patients, r1, r2, settings.chunk_reads):
                    with _no_cyclic_gc():
                        rows, counts = align_chunk(aligner, patient, chunk, min_mapq=settings.min_mapq,
                                                   threads=settings.threads)
                        data = _parquet_bytes(rows, aligner.seq_names)
                    name = f"part-{number:06d}-{chunk.index:06d}.parquet"
                    reads_folder.at(f"{reads_folder.uri}/{name}").write_atomic(data, into_existing_folder=True)
                    yield pa.RecordBatch.from_pylist([{"patient": patient, "chunk": chunk.index, "file": name,
                                                       "reads": counts.reads, "mapped": counts.mapped,
                                                       "kept": counts.kept}], schema=_CHUNK_SCHEMA)

    return align


@contextmanager
def _no_cyclic_gc():
    """Python's cycle collector off while reads are aligned: each chunk makes ~10^5 small tuples and strings
    (no cycles: reference counting frees them), and the collector's passes over them cost ~7 % of the task."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Rows per Parquet row group of the reads: the call step reads, per genome region, only the row groups whose
# positions overlap it (from their statistics), so groups are small; every group holds one contig.
READS_ROW_GROUP = 2048
# Read names, pair keys and CIGARs are nearly all distinct, and the bases are not repetitive strings:
# dictionary encoding them costs time and saves nothing.
_PLAIN_COLUMNS = ("cigar", "read_name", "pair_key", "ref_bases", "ref_quals")


def _parquet_bytes(rows: pa.RecordBatch, contigs: list[str]) -> bytes:
    """A chunk's rows as a Parquet file, sorted by reference position (``contigs`` in reference order)."""
    import pyarrow.parquet as pq

    table = pa.Table.from_batches([rows], schema=ALIGNED_READ_SCHEMA)
    rank = pc.index_in(table.column("contig"), value_set=pa.array(contigs, pa.string())).to_numpy(
        zero_copy_only=False)
    order = np.lexsort((table.column("start").to_numpy(), rank))
    table = table.take(order)
    cuts = np.flatnonzero(np.diff(rank[order])) + 1
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, ALIGNED_READ_SCHEMA, compression="zstd", compression_level=1,
                          use_dictionary=[f.name for f in ALIGNED_READ_SCHEMA if f.name not in _PLAIN_COLUMNS],
                          write_statistics=["contig", "start", "end"]) as writer:
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), table.num_rows], strict=True):
            writer.write_table(table.slice(lo, hi - lo), row_group_size=READS_ROW_GROUP)  # a contig's own groups
    return sink.getvalue().to_pybytes()


def _patient_chunks(ranged, r1: str, r2: str | None, chunk_reads: int):
    """A patient's reads in chunks, streamed from storage (R1 and R2 in step)."""
    with ranged.at(r1).open_stream() as stream1:
        if r2 is None:
            yield from iter_read_chunks(stream1, None, source_r1=r1, chunk_reads=chunk_reads)
            return
        with ranged.at(r2).open_stream() as stream2:
            yield from iter_read_chunks(stream1, stream2, source_r1=r1, source_r2=r2, chunk_reads=chunk_reads)


def _mapping_counts(chunks, read_sets) -> dict:
    """Reads, mapped and kept reads per patient, summed over its chunks' rows."""
    sums = {s.patient: [0, 0, 0] for s in read_sets}
    for chunk in chunks:
        sums[chunk.patient] = [a + b for a, b in zip(sums[chunk.patient], (chunk.reads, chunk.mapped, chunk.kept),
                                                     strict=True)]
    files = {s.patient: [u for u in (s.r1, s.r2) if u] for s in read_sets}
    return {patient: {"reads": reads, "mapped": mapped, "mapping_rate": mapped / reads if reads else 0.0,
                      "kept": kept, "fastq": files[patient]} for patient, (reads, mapped, kept) in sorted(sums.items())}


def _check_mapping(counts: dict, min_rate: float, reference_uri: str) -> None:
    """An InputError for the first patient whose reads map less than ``min_rate``."""
    for patient, c in counts.items():
        if c["mapping_rate"] < min_rate:
            raise InputError(c["fastq"][0], f"only {100 * c['mapping_rate']:.1f} % of patient {patient}'s "
                                            f"{c['reads']} reads map to {reference_uri} (at least "
                                            f"{100 * min_rate:.0f} % expected, reads.min_mapping_rate): wrong "
                                            "reference or species?", record=patient)


def _add_duplicates(spark, duplicates_uri: str, counts: dict) -> None:
    """Reads of duplicate pairs per patient (two per pair: a pair has a key only when both mates are kept)."""
    found = {row.patient: 2 * int(row["count"]) for row in spark.read.parquet(duplicates_uri).groupBy("patient")
             .count().collect()}
    for patient, c in counts.items():
        c["duplicates"] = found.get(patient, 0)

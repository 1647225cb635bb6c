"""VCF ingest on Spark: a (bgzip) VCF -> the variant-major Parquet genotype table.

The file is read through Spark's text source, so ``file://`` and ``hdfs://`` behave alike. With
genoflow's BGZF codec on the classpath (``hadoop/bgzf-codec``, wired in by
:func:`genoflow.config.spark_conf`), a bgzip file is split at BGZF block boundaries and every
core decodes its own part (decision 0006); plain gzip is read whole by one task. Each task gets
Arrow batches of lines (``mapInArrow``) and decodes them in blocks with the vectorised parser of
:mod:`genoflow.io.vcf`; rows go back to Spark as Arrow batches, never one Python object per
genotype.

Line numbers: a task knows the byte offset where its split starts, not how many lines came
before it. Rows of the first split carry their 1-based VCF line in ``line``; later splits leave
it null. An error in a later split is raised with its line within the split, and the driver
turns it into the file's line by counting the lines of the splits before it (only then).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from genoflow.errors import InputError

__all__ = [
    "GENOTYPE_SCHEMA_DDL",
    "BGZF_EOF",
    "IngestResult",
    "check_bgzf_end",
    "gene_names",
    "ingest_patient_vcfs",
    "ingest_vcf",
    "merged_header",
    "patient_vcf_uris",
    "read_vcf_header",
]

log = logging.getLogger(__name__)

GENOTYPE_SCHEMA_DDL = (
    "contig string, pos long, id string, ref string, alt string, gene string, line long, "
    "call_rate double, alt_af double, maf double, hwe_p double, qc_pass boolean, dosages binary, "
    "mean_dp double, mean_gq double"
)

# The empty block bgzip writes last (SAM/BAM spec 4.1.2): a file without it was cut short.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_GZIP_MAGIC = b"\x1f\x8b"

# An InputError as str() prints it, possibly raised in an executor with a line relative to its
# split (see the module docstring).
_INPUT_ERROR = re.compile(
    r"InputError: (?P<source>.+?)(?:, line (?P<line>\d+))?(?:, record '(?P<record>[^']*)')?: (?P<problem>[^\n]*?)"
    r"(?: \[\[split (?P<split>\d+) line (?P<split_line>\d+)\]\])?$",
    re.MULTILINE,
)
# Splits per core when a VCF is read (see _ingest_conf).
_SPLITS_PER_CORE = 3
# Bytes of VCF text per sample in a record line ("0|1" and a tab): what sizes a block of lines by
# genoflow.genotypes.rows_per_block (decision 0012).
VCF_BYTES_PER_SAMPLE = 4
# Per merged site and patient while single-sample VCFs are merged (_CallPacker): a (sample int32,
# dosage int8) call in the Arrow list, its (sample, called) presence, the int8 matrix and numpy temporaries.
_MERGE_BYTES_PER_SAMPLE = 16

_CODEC_ERROR = re.compile(r"genoflow-bgzf: ([^\n]*)")
_FAILED_FILE = re.compile(r"(?:reading file|file) (\S+?)\.?(?:\s|$)")


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest_vcf` reports besides the table it wrote.

    Attributes
    ----------
    n_splits : int
        Spark partitions the VCF was read in (1 for plain gzip or without the BGZF codec).
    n_skipped_alts : int
        Symbolic (``<DEL>``...), breakend and ``*`` ALT alleles left out.
    """

    n_splits: int
    n_skipped_alts: int


# --------------------------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------------------------


def read_vcf_header(spark, vcf_uri: str):
    """Parse the VCF header from the start of the file (reads no further than the ``#CHROM`` line).

    Also checks that a BGZF file ends with its end-of-file block (`check_bgzf_end`). The driver
    reads the bytes through Hadoop's file system and codecs: no Spark job for a few kilobytes.
    """
    from py4j.protocol import Py4JJavaError

    from genoflow.io.vcf import parse_vcf_header

    check_bgzf_end(spark, vcf_uri)
    n_bytes = 1 << 16
    while True:
        try:
            head = _decompressed_head(spark, vcf_uri, n_bytes)
        except Py4JJavaError as err:  # a damaged file becomes one clear line
            raise translate_error(spark, vcf_uri, err) or err from None
        lines = head.decode("utf-8", errors="replace").splitlines(keepends=True)
        ends_at = next((i for i, line in enumerate(lines) if line.startswith("#CHROM")), None)
        whole_file = len(head) < n_bytes
        if whole_file or (ends_at is not None and lines[ends_at].endswith("\n")):
            return parse_vcf_header(lines if ends_at is None else lines[: ends_at + 1], vcf_uri)
        n_bytes *= 4


def _decompressed_head(spark, uri: str, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of ``uri`` after decompression (fewer: the whole file)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(uri)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(path)
    raw = path.getFileSystem(conf).open(path)
    stream = codec.createInputStream(raw) if codec is not None else raw
    try:
        return bytes(stream.readNBytes(n_bytes))
    finally:
        stream.close()


def check_bgzf_end(spark, uri: str) -> None:
    """Raise InputError when a BGZF file lacks the end-of-file block (it was truncated).

    htslib only warns; a genotype table silently missing its last records is worse than a stop.
    Files that are not BGZF (plain text, plain gzip) are left alone.
    """
    head, tail = _file_ends(spark, uri, 18, len(BGZF_EOF))
    is_bgzf = head[:2] == _GZIP_MAGIC and len(head) >= 18 and head[3] & 4 and head[12:14] == b"BC"
    if is_bgzf and tail != BGZF_EOF:
        raise InputError(uri, "the BGZF file lacks its end-of-file block: it is truncated (re-create it with bgzip)")


def _file_ends(spark, uri: str, n_head: int, n_tail: int) -> tuple[bytes, bytes]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    length = fs.getFileStatus(path).getLen()
    stream = fs.open(path)
    try:
        head = bytes(stream.readNBytes(min(n_head, length)))
        stream.seek(max(length - n_tail, 0))
        tail = bytes(stream.readNBytes(min(n_tail, length)))
    finally:
        stream.close()
    return head, tail


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
        lines = spark.read.text(vcf_uri).select("value", F.input_file_block_start().alias("split"))
        n_splits = lines.rdd.getNumPartitions()
        log.info("reading %s in %d split(s)", vcf_uri, n_splits)
        try:
            lines.mapInArrow(decode, GENOTYPE_SCHEMA_DDL).write.parquet(out_uri)
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


def translate_error(spark, vcf_uri: str, err: BaseException) -> InputError | None:
    """The InputError behind a failed Spark job reading ``vcf_uri``, with file-level line numbers."""
    if isinstance(err, InputError):
        return err
    text = str(err)
    found = _INPUT_ERROR.search(text)
    if found:
        line = int(found["line"]) if found["line"] else None
        if found["split"]:
            line = _lines_before(spark, found["source"], int(found["split"])) + int(found["split_line"])
        return InputError(found["source"], found["problem"], line=line, record=found["record"])
    codec = _CODEC_ERROR.search(text)
    if codec:
        failed = _FAILED_FILE.search(text[: codec.start()]) or _FAILED_FILE.search(text)
        return InputError(failed.group(1) if failed else vcf_uri, codec.group(1).strip())
    return None


def _lines_before(spark, uri: str, split: int) -> int:
    """Lines of ``uri`` in the splits that start before byte ``split`` (a JVM-only count)."""
    from pyspark.sql import functions as F

    lines = spark.read.text(uri).select(F.input_file_block_start().alias("split"))
    return lines.where(F.col("split") < split).count()


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


def _keyed_runs(batches):
    """Runs of consecutive lines with one key, from Arrow batches of (line, key column, ...).

    Yields ``(key, lines, is_header)``: ``lines`` a slice of the batch's Arrow string array (no
    Python string per line); a key of several columns is a tuple; ``is_header`` is None when no line
    of the run starts with ``#`` (the usual case), else a list of bools per line.
    """
    import pyarrow.compute as pc

    for batch in batches:
        if not batch.num_rows:
            continue
        lines = batch.column(0)
        keys = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(1, batch.num_columns)]
        changes = np.zeros(batch.num_rows - 1, dtype=bool)
        for column in keys:
            changes |= column[1:] != column[:-1]
        header = pc.starts_with(lines, "#").to_numpy(zero_copy_only=False)
        bounds = [0, *(np.flatnonzero(changes) + 1).tolist(), batch.num_rows]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            values = [column[lo].item() if isinstance(column[lo], np.generic) else column[lo] for column in keys]
            key = values[0] if len(values) == 1 else tuple(values)
            is_header = header[lo:hi].tolist() if header[lo:hi].any() else None
            yield key, lines.slice(lo, hi - lo), is_header


class _Block:
    """Lines gathered for one decode: Arrow slices kept as they are, single lines as Python strings."""

    def __init__(self):
        self.pieces: list = []
        self.loose: list[str] = []
        self.size = 0
        self.first = 0

    def add_slice(self, lines) -> None:
        self._close_loose()
        self.pieces.append(lines)
        self.size += len(lines)

    def add_line(self, line: str) -> None:
        self.loose.append(line)
        self.size += 1

    def _close_loose(self) -> None:
        if self.loose:
            import pyarrow as pa

            self.pieces.append(pa.array(self.loose, type=pa.large_string()))
            self.loose = []

    def lines(self):
        """One Arrow string array (a copy only when the lines came in several pieces)."""
        import pyarrow as pa

        self._close_loose()
        if len(self.pieces) == 1:
            return self.pieces[0]
        return pa.concat_arrays([piece.cast(pa.large_string()) for piece in self.pieces])


def _record_blocks(keyed_runs, chunk_lines: int, header_line=None):
    """Blocks of at most ``chunk_lines`` record lines, never across a change of key (a split of a file).

    Yields ``(key, first, lines)`` with ``first`` the 1-based number, within the key's lines, of the
    block's first line and ``lines`` an Arrow string array. Header lines before a block are dropped;
    ``header_line(line, key, n)`` sees each first and returns True when it dealt with it. One among
    records stays in its block, so the parser reports it as a bad record.
    """
    key, seen, block = None, 0, _Block()
    for at, lines, is_header in keyed_runs:
        if at != key:
            if block.size:
                yield key, block.first, block.lines()
            key, seen, block = at, 0, _Block()
        if is_header is None:  # records only: whole slices, no look at each line
            done = 0
            while done < len(lines):
                if not block.size:
                    block.first = seen + done + 1
                take = min(chunk_lines - block.size, len(lines) - done)
                block.add_slice(lines.slice(done, take))
                done += take
                if block.size >= chunk_lines:
                    yield key, block.first, block.lines()
                    block = _Block()
            seen += len(lines)
            continue
        for line, is_hash in zip(lines.to_pylist(), is_header, strict=True):
            seen += 1
            if is_hash:
                handled = header_line is not None and header_line(line, key, seen)
                if block.size and not handled:
                    block.add_line(line)
                continue
            if not block.size:
                block.first = seen
            block.add_line(line)
            if block.size >= chunk_lines:
                yield key, block.first, block.lines()
                block = _Block()
    if block.size:
        yield key, block.first, block.lines()


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

    def __call__(self, batches):
        runs: list = []
        for split, first, block in _record_blocks(_keyed_runs(batches), self.chunk_lines):
            yield self._decode(block, first, split, runs)
        self.runs.add(runs)

    def _decode(self, lines, first, split, runs):
        try:
            return self._decode_block(lines, first, split, runs)
        except InputError as err:
            if split == 0 or err.line is None:
                raise
            # Only the driver can count the lines before this split: mark the error for it.
            raise InputError(err.source, f"{err.problem} [[split {split} line {err.line}]]",
                             record=err.record) from None

    def _decode_block(self, lines, first, split, runs):
        import pyarrow as pa

        from genoflow.genotypes import dosage_matrix
        from genoflow.io.vcf import decode_vcf_block
        from genoflow.qc.variant_qc import variant_qc

        reference = self.reference.value
        block = decode_vcf_block(lines, n_samples=self.n_samples, source=self.source, first_line_number=first,
                                 with_line_numbers=True, with_call_stats=True, min_gq=self.min_gq,
                                 min_dp=self.min_dp)
        self.skipped.add(block.n_skipped_alts)
        table = block.table
        contig = np.asarray(table.column("contig").to_pylist(), dtype=object)
        pos = table.column("pos").to_numpy()
        line = table.column("line").to_numpy()
        _track_order(runs, split, contig, pos, line, self.source)
        names = _checked_contigs(reference, contig, pos, table, source=self.source, line_numbers=line)
        contig = np.asarray([names[c] for c in contig.tolist()], dtype=object)
        dosages = dosage_matrix(table.column("dosages"), self.n_samples)
        qc = variant_qc(dosages)
        min_call_rate, min_maf, min_hwe_p = self.thresholds
        qc_pass = (qc["call_rate"] >= min_call_rate) & (qc["maf"] >= min_maf) & (qc["hwe_p"] >= min_hwe_p)

        def floats(values):
            values = np.asarray(values, dtype=np.float64)
            return pa.array(values, type=pa.float64(), mask=np.isnan(values))

        columns = {
            "contig": pa.array(contig.tolist(), type=pa.string()),
            "pos": table.column("pos").combine_chunks(),
            "id": table.column("id").combine_chunks(),
            "ref": table.column("ref").combine_chunks(),
            "alt": table.column("alt").combine_chunks(),
            "gene": pa.array(gene_names(self.genes.value, contig, pos), type=pa.string()),
            "line": pa.array(line if split == 0 else np.zeros(len(line)), type=pa.int64(),
                             mask=None if split == 0 else np.ones(len(line), dtype=bool)),
            "call_rate": floats(qc["call_rate"]),
            "alt_af": floats(qc["alt_af"]),
            "maf": floats(qc["maf"]),
            "hwe_p": floats(qc["hwe_p"]),
            "qc_pass": pa.array(np.asarray(qc_pass, dtype=bool), type=pa.bool_()),
            "dosages": table.column("dosages").combine_chunks(),
            "mean_dp": table.column("mean_dp").combine_chunks(),
            "mean_gq": table.column("mean_gq").combine_chunks(),
        }
        return pa.RecordBatch.from_pydict(columns)


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


# --------------------------------------------------------------------------------------------
# Per-patient VCFs merged into the cohort table (as `bcftools merge`)
# --------------------------------------------------------------------------------------------

PATIENT_CALLS_DDL = (
    "contig string, pos long, id string, ref string, alt string, sample int, dosage tinyint, dp double, gq double"
)


def patient_vcf_uris(spark, patient_uri: str, file_name: str) -> dict[str, str]:
    """``{patient id: VCF URI}`` for every ``<patient_uri>/<patient>/<file_name>``, sorted by patient."""
    from genoflow.spark import glob_uris

    uris = glob_uris(spark, f"{patient_uri.rstrip('/')}/*/{file_name}")
    if not uris:
        raise InputError(patient_uri, f"no patient folders with {file_name} (preprocess.patient_vcf)")
    return {_folder_of(uri): uri for uri in uris}


def _folder_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 2)[-2]


def merged_header(spark, files: dict[str, str]):
    """The cohort's header for per-patient VCFs: one sample per file, named by its patient folder.

    Contigs come from the first file's header; each file's own ``#CHROM`` line is checked while it
    is decoded (one sample, named as its folder).
    """
    from genoflow.io.vcf import VcfHeader

    first = read_vcf_header(spark, next(iter(files.values())))
    return VcfHeader(samples=list(files), contigs=first.contigs, n_header_lines=0, meta=first.meta)


def ingest_patient_vcfs(spark, files: dict[str, str], header, out_uri: str, *, reference, genes,
                        p: dict, budget: int | None = None) -> IngestResult:
    """Merge single-sample VCFs (one per patient) into the genotype table at ``out_uri``.

    Like ``bcftools merge`` followed by ``bcftools norm -m-``: records are split per ALT allele,
    then joined on (CHROM, POS, REF, ALT); a patient without a record at a site gets a missing
    call (-1), as ``bcftools merge`` writes ``./.`` by default. Rows are sorted by the reference's
    contig order and position. ``line`` is null (a row comes from many files).

    Raises
    ------
    InputError
        A file whose ``#CHROM`` line has other than one sample or a sample other than its folder's
        name, a bad record (file, line, CHROM:POS), a damaged gzip/BGZF block, a patient with the
        same variant twice.
    """
    from pyspark.sql import functions as F

    from genoflow.genotypes import BLOCK_BYTES, arrow_batch_conf, rows_per_block
    from genoflow.spark import session_conf

    budget = budget or BLOCK_BYTES
    sc = spark.sparkContext
    skipped = sc.accumulator(0)
    index = {uri: i for i, uri in enumerate(files.values())}
    decode = _PatientDecoder(
        index=index, names=list(files), chunk_lines=rows_per_block(1, VCF_BYTES_PER_SAMPLE, budget),
        min_gq=float(p.get("vcf_min_gq", 0) or 0), min_dp=float(p.get("vcf_min_dp", 0) or 0),
        reference=sc.broadcast(reference), skipped=skipped,
    )
    lines = spark.read.text(list(files.values())).select(
        "value", F.input_file_name().alias("file"), F.input_file_block_start().alias("split"))
    n_splits = lines.rdd.getNumPartitions()
    # bcftools merges SNP records with SNP records and indels with indels at one position (-m both);
    # after splitting, a patient with a record there but not this ALT has 0 copies of it (or a
    # missing call when its call is missing); a patient with no record there is missing.
    is_snp = (F.length("ref") == 1) & (F.length("alt") == 1)
    calls = lines.mapInArrow(decode, PATIENT_CALLS_DDL).withColumn("snp", is_snp)
    site = ["contig", "pos", "ref", "snp"]
    present = (calls.groupBy(*site, "sample").agg(F.max(F.col("dosage") >= 0).alias("called"))
               .groupBy(*site).agg(F.collect_list(F.struct("sample", "called")).alias("present")))
    grouped = calls.groupBy(*site, "alt").agg(
        F.min("id").alias("id"), F.collect_list(F.struct("sample", "dosage")).alias("calls"),
        F.avg("dp").alias("mean_dp"), F.avg("gq").alias("mean_gq"),
    ).join(present, site)
    order = reference.names if reference is not None else header.contigs  # no FASTA: the VCF header's order
    contig_rank = F.array_position(F.array(*[F.lit(name) for name in order]), F.col("contig"))
    pack = _CallPacker(names=list(files), sources=list(files.values()), genes=sc.broadcast(genes),
                       thresholds=(float(p["min_call_rate"]), float(p["min_maf"]), float(p["min_hwe_p"])))
    table = grouped.orderBy(contig_rank, "pos", "ref", "alt").mapInArrow(pack, GENOTYPE_SCHEMA_DDL)
    try:
        # One Arrow batch of merged sites carries every patient's call: sized like a block of n_samples.
        with session_conf(spark, arrow_batch_conf(len(files), _MERGE_BYTES_PER_SAMPLE, budget)):
            table.write.parquet(out_uri)
    except Exception as err:  # noqa: BLE001 - executor errors arrive wrapped; keep the user's line
        raise translate_error(spark, next(iter(files.values())), err) or err from None
    return IngestResult(n_splits=n_splits, n_skipped_alts=int(skipped.value))


@dataclass
class _PatientDecoder:
    """``mapInArrow``: lines of single-sample VCFs -> one row per (record, kept ALT) of each patient."""

    index: dict  # file URI -> sample index
    names: list  # sample index -> patient id (the folder)
    chunk_lines: int
    min_gq: float
    min_dp: float
    reference: object
    skipped: object

    def __call__(self, batches):
        for current, first, block in _record_blocks(_keyed_runs(batches), self.chunk_lines, self._header_line):
            yield self._decode(block, first, current)

    def _header_line(self, line: str, current: tuple, n: int) -> bool:
        if not line.startswith("#CHROM"):
            return False
        self._check_sample(line, current[0], n)
        return True

    def _sample_of(self, file: str) -> int:
        # input_file_name() gives the URI as Spark resolved it; match on the path's end.
        if file in self.index:
            return self.index[file]
        return next(i for uri, i in self.index.items() if file.endswith(uri.split("://", 1)[-1]))

    def _check_sample(self, line: str, file: str, n: int) -> None:
        from genoflow.io.vcf import parse_vcf_header

        header = parse_vcf_header([line], file)
        expected = self.names[self._sample_of(file)]
        if header.samples != [expected]:
            raise InputError(file, f"expected one sample named {expected!r} (its patient folder) in the #CHROM "
                             f"line, found {', '.join(header.samples)}", line=n)

    def _decode(self, lines, first, current):
        file, split = current
        try:
            return self._decode_block(lines, first, file)
        except InputError as err:
            if split == 0 or err.line is None:
                raise
            raise InputError(err.source, f"{err.problem} [[split {split} line {err.line}]]",
                             record=err.record) from None

    def _decode_block(self, lines, first, file):
        import pyarrow as pa

        from genoflow.genotypes import dosage_matrix
        from genoflow.io.vcf import decode_vcf_block

        reference = self.reference.value
        block = decode_vcf_block(lines, n_samples=1, source=file, first_line_number=first, with_line_numbers=True,
                                 with_call_stats=True, min_gq=self.min_gq, min_dp=self.min_dp)
        self.skipped.add(block.n_skipped_alts)
        table = block.table
        contig = np.asarray(table.column("contig").to_pylist(), dtype=object)
        pos = table.column("pos").to_numpy()
        names = _checked_contigs(reference, contig, pos, table, source=file,
                                 line_numbers=table.column("line").to_numpy())
        dosage = dosage_matrix(table.column("dosages"), 1)[:, 0]
        return pa.RecordBatch.from_pydict({
            "contig": pa.array([names[c] for c in contig.tolist()], type=pa.string()),
            "pos": table.column("pos").combine_chunks(),
            "id": table.column("id").combine_chunks(),
            "ref": table.column("ref").combine_chunks(),
            "alt": table.column("alt").combine_chunks(),
            "sample": pa.array(np.full(table.num_rows, self._sample_of(file), dtype=np.int32), type=pa.int32()),
            "dosage": pa.array(dosage, type=pa.int8()),
            "dp": table.column("mean_dp").combine_chunks(),
            "gq": table.column("mean_gq").combine_chunks(),
        })


@dataclass
class _CallPacker:
    """``mapInArrow``: merged sites with their (sample, dosage) calls -> genotype-table batches."""

    names: list
    sources: list
    genes: object
    thresholds: tuple[float, float, float]

    def __call__(self, batches):
        import pyarrow as pa
        import pyarrow.compute as pc

        from genoflow.qc.variant_qc import variant_qc

        n_samples = len(self.names)
        for batch in batches:
            n = batch.num_rows
            calls = batch.column(batch.schema.get_field_index("calls"))
            lengths = pc.list_value_length(calls).to_numpy(zero_copy_only=False)
            flat = pc.list_flatten(calls)
            sample = flat.field("sample").to_numpy(zero_copy_only=False)
            dosage = flat.field("dosage").to_numpy(zero_copy_only=False)
            row = np.repeat(np.arange(n), lengths)
            self._check_duplicates(batch, row, sample)
            matrix = np.full((n, n_samples), -1, dtype=np.int8)
            present = batch.column(batch.schema.get_field_index("present"))
            at_site = pc.list_flatten(present)
            site_row = np.repeat(np.arange(n), pc.list_value_length(present).to_numpy(zero_copy_only=False))
            called = at_site.field("called").to_numpy(zero_copy_only=False).astype(bool)
            matrix[site_row[called], at_site.field("sample").to_numpy(zero_copy_only=False)[called]] = 0
            matrix[row, sample] = dosage
            qc = variant_qc(matrix)
            min_call_rate, min_maf, min_hwe_p = self.thresholds
            qc_pass = (qc["call_rate"] >= min_call_rate) & (qc["maf"] >= min_maf) & (qc["hwe_p"] >= min_hwe_p)
            contig = np.asarray(batch.column(batch.schema.get_field_index("contig")).to_pylist(), dtype=object)
            pos = batch.column(batch.schema.get_field_index("pos")).to_numpy(zero_copy_only=False)

            def floats(values):
                values = np.asarray(values, dtype=np.float64)
                return pa.array(values, type=pa.float64(), mask=np.isnan(values))

            offsets = np.arange(0, (n + 1) * n_samples, n_samples, dtype=np.int32)
            yield pa.RecordBatch.from_pydict({
                "contig": batch.column(batch.schema.get_field_index("contig")),
                "pos": batch.column(batch.schema.get_field_index("pos")),
                "id": batch.column(batch.schema.get_field_index("id")),
                "ref": batch.column(batch.schema.get_field_index("ref")),
                "alt": batch.column(batch.schema.get_field_index("alt")),
                "gene": pa.array(gene_names(self.genes.value, contig, pos), type=pa.string()),
                "line": pa.nulls(n, type=pa.int64()),
                "call_rate": floats(qc["call_rate"]), "alt_af": floats(qc["alt_af"]), "maf": floats(qc["maf"]),
                "hwe_p": floats(qc["hwe_p"]), "qc_pass": pa.array(np.asarray(qc_pass, dtype=bool)),
                "dosages": pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                                  pa.py_buffer(np.ascontiguousarray(matrix))]),
                "mean_dp": batch.column(batch.schema.get_field_index("mean_dp")),
                "mean_gq": batch.column(batch.schema.get_field_index("mean_gq")),
            })

    def _check_duplicates(self, batch, row, sample):
        if not len(row):
            return
        n_samples = len(self.names)
        keys = row.astype(np.int64) * n_samples + sample
        unique, counts = np.unique(keys, return_counts=True)
        if (counts > 1).any():
            k = int(unique[np.argmax(counts > 1)])
            r, s = divmod(k, n_samples)
            site = ":".join(str(batch.column(batch.schema.get_field_index(c))[r].as_py())
                            for c in ("contig", "pos", "ref", "alt"))
            raise InputError(self.sources[s], f"patient {self.names[s]} has variant {site} more than once",
                             record=site)


def _checked_contigs(reference, contig, pos, table, *, source, line_numbers) -> dict:
    """Each VCF contig name -> the reference's spelling, REF alleles checked; no reference (None, decision
    0011: the FASTA is optional): the names as they are, nothing checked."""
    from genoflow.io.fasta import check_ref_alleles, resolve_contig

    if reference is None:
        return {name: name for name in set(contig.tolist())}
    check_ref_alleles(reference, contig, pos, np.asarray(table.column("ref").to_pylist(), dtype=object),
                      source=source, line_numbers=line_numbers)
    return {name: resolve_contig(name, reference) for name in set(contig.tolist())}


def gene_names(genes, contig, pos) -> list[str]:
    """Gene of each variant; "" everywhere without annotations (genes None)."""
    if genes is None:
        return [""] * len(pos)
    return [g or "" for g in genes.annotate(contig, pos)]

"""Reading VCFs on Spark, shared by the cohort path (:mod:`genoflow.pipeline.vcf_ingest`) and the
per-patient merge (:mod:`genoflow.pipeline.vcf_merge`): the header and BGZF checks on the driver, the
error re-wrapping of failed jobs (`translate_error`), the blocks of lines a task decodes and the
decode prelude every block goes through (`decode_lines`, `checked_contigs`, `qc_columns`).

Line numbers: a task knows the byte offset where its split starts, not how many lines came
before it. Rows of the first split carry their 1-based VCF line in ``line``; later splits leave
it null. An error in a later split is raised with its line within the split (`lines_within_split`),
and the driver turns it into the file's line by counting the lines of the splits before it (only then).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import GENOTYPE_COLUMN_NAMES

__all__ = [
    "BGZF_EOF",
    "VCF_BYTES_PER_SAMPLE",
    "DecodedLines",
    "IngestResult",
    "check_bgzf_end",
    "checked_contigs",
    "decode_lines",
    "gene_names",
    "genotype_batch",
    "keyed_runs",
    "lines_within_split",
    "qc_columns",
    "read_vcf_header",
    "record_blocks",
    "translate_error",
]

# The empty block bgzip writes last (SAM/BAM spec 4.1.2): a file without it was cut short.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

# An InputError as str() prints it, possibly raised in an executor with a line relative to its
# split (see the module docstring).
_INPUT_ERROR = re.compile(
    r"InputError: (?P<source>.+?)(?:, line (?P<line>\d+))?(?:, record '(?P<record>[^']*)')?: (?P<problem>[^\n]*?)"
    r"(?: \[\[split (?P<split>\d+) line (?P<split_line>\d+)\]\])?$",
    re.MULTILINE,
)
# Bytes of VCF text per sample in a record line ("0|1" and a tab): what sizes a block of lines by
# genoflow.genotypes.rows_per_block (decision 0012).
VCF_BYTES_PER_SAMPLE = 4

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
    from genoflow.io.vcf.bgzf import is_bgzf

    if is_bgzf(head) and tail != BGZF_EOF:
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


# --------------------------------------------------------------------------------------------
# Executor side
# --------------------------------------------------------------------------------------------


def keyed_runs(batches):
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


def record_blocks(runs, chunk_lines: int, header_line=None):
    """Blocks of at most ``chunk_lines`` record lines, never across a change of key (a split of a file).

    ``runs``: from `keyed_runs`. Yields ``(key, first, lines)`` with ``first`` the 1-based number, within
    the key's lines, of the block's first line and ``lines`` an Arrow string array. Header lines before a
    block are dropped; ``header_line(line, key, n)`` sees each first and returns True when it dealt with
    it. One among records stays in its block, so the parser reports it as a bad record.
    """
    key, seen, block = None, 0, _Block()
    for at, lines, is_header in runs:
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
@contextmanager
def lines_within_split(split: int):
    """Around an executor's decode: an InputError of a later split (``split`` > 0) carries its line
    within the split; mark it so that `translate_error` on the driver can make it the file's line."""
    try:
        yield
    except InputError as err:
        if split == 0 or err.line is None:
            raise
        raise InputError(err.source, f"{err.problem} [[split {split} line {err.line}]]",
                         record=err.record) from None


@dataclass(frozen=True)
class DecodedLines:
    """A block of record lines decoded by :func:`genoflow.io.vcf.decode_vcf_block`.

    ``table`` has the variant columns, ``dosages``, ``line``, ``mean_dp`` and ``mean_gq``; ``contig``
    (object array, as the VCF spells them), ``pos`` and ``line`` are its columns as numpy arrays.
    """

    table: object  # pyarrow.Table
    contig: np.ndarray
    pos: np.ndarray
    line: np.ndarray


def decode_lines(lines, *, n_samples: int, source: str, first: int, min_gq: float, min_dp: float,
                 skipped) -> DecodedLines:
    """Decode a block of ``source``'s lines (``first``: the 1-based line of the first); symbolic ALTs
    left out are added to the ``skipped`` accumulator."""
    from genoflow.io.vcf import decode_vcf_block

    block = decode_vcf_block(lines, n_samples=n_samples, source=source, first_line_number=first,
                             with_line_numbers=True, with_call_stats=True, min_gq=min_gq, min_dp=min_dp)
    skipped.add(block.n_skipped_alts)
    table = block.table
    return DecodedLines(table=table, contig=np.asarray(table.column("contig").to_pylist(), dtype=object),
                        pos=table.column("pos").to_numpy(), line=table.column("line").to_numpy())


def checked_contigs(reference, decoded: DecodedLines, *, source: str) -> dict:
    """Each VCF contig name -> the reference's spelling, REF alleles checked; no reference (None, decision
    0011: the FASTA is optional): the names as they are, nothing checked."""
    from genoflow.io.fasta import check_ref_alleles, resolve_contig

    names = set(decoded.contig.tolist())
    if reference is None:
        return {name: name for name in names}
    check_ref_alleles(reference, decoded.contig, decoded.pos,
                      np.asarray(decoded.table.column("ref").to_pylist(), dtype=object),
                      source=source, line_numbers=decoded.line)
    return {name: resolve_contig(name, reference) for name in names}


def qc_columns(dosages: np.ndarray, thresholds: tuple[float, float, float]) -> dict:
    """The genotype table's variant QC columns of a block of dosages; ``thresholds``: the preprocess
    ``min_call_rate``, ``min_maf`` and ``min_hwe_p`` that ``qc_pass`` applies."""
    import pyarrow as pa

    from genoflow.qc.variant_qc import variant_qc

    qc = variant_qc(dosages)
    min_call_rate, min_maf, min_hwe_p = thresholds
    qc_pass = (qc["call_rate"] >= min_call_rate) & (qc["maf"] >= min_maf) & (qc["hwe_p"] >= min_hwe_p)

    def floats(values):
        values = np.asarray(values, dtype=np.float64)
        return pa.array(values, type=pa.float64(), mask=np.isnan(values))

    return {"call_rate": floats(qc["call_rate"]), "alt_af": floats(qc["alt_af"]), "maf": floats(qc["maf"]),
            "hwe_p": floats(qc["hwe_p"]), "qc_pass": pa.array(np.asarray(qc_pass, dtype=bool), type=pa.bool_())}


def genotype_batch(columns: dict):
    """An Arrow batch of the genotype table from its columns by name, in the registry's order."""
    import pyarrow as pa

    return pa.RecordBatch.from_pydict({name: columns[name] for name in GENOTYPE_COLUMN_NAMES})


def gene_names(genes, contig, pos) -> list[str]:
    """Gene of each variant; "" everywhere without annotations (genes None)."""
    if genes is None:
        return [""] * len(pos)
    return [g or "" for g in genes.annotate(contig, pos)]

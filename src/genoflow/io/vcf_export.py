"""A genotype (or called) table on Spark -> one bgzipped multi-sample VCF 4.3 and its tabix index.

For other tools (bcftools, IGV, plink2): the table is range-partitioned by (contig in reference order, pos)
and every task renders its records and compresses them into BGZF blocks itself, so the text is never
gathered in one place. Each task writes its part and the records' relative virtual offsets next to it;
the driver streams header + parts + the BGZF end-of-file block into the final file through Hadoop's
FileSystem (bytes go JVM to JVM, on ``file://`` and ``hdfs://`` alike) and builds the .tbi from the
offsets, shifted by where each part starts: the VCF is never read back.

Rendering is vectorised: genotypes, GQ and DP become text through lookup tables over the whole
(variants, samples) block, and only the fixed columns are formatted per record.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genoflow.genotypes import BLOCK_BYTES, dosage_matrix, rows_per_block
from genoflow.io.tabix import BGZF_BLOCK_SIZE, TabixIndexer, bgzf_compress, virtual_offsets

__all__ = ["COMPRESS_LEVEL", "ExportResult", "export_vcf", "vcf_header", "render_records"]

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("contig", "pos", "id", "ref", "alt", "dosages")
CALL_COLUMNS = ("qual", "gq", "dp")
# Text bytes per sample of a GT:GQ:DP cell with its separator ("0/1:99:65535\t"), the widest the lookup
# tables write: what sizes a block of records by rows_per_block.
CELL_BYTES = 13
_BLOCKS_PER_PART = 4  # each task holds its part compressed (~1/4 of the text) until it writes it
# zlib level of the VCF's BGZF blocks. zlib (not libdeflate, as in htslib) is slow at its default 6: on GT:GQ:DP
# text of 200 samples, level 2 compressed 47 MB/s to a ratio of 3.0, level 6 8 MB/s to 3.9 (rendering runs
# at ~45 MB/s), so 2 keeps compression from dominating the export for ~25% more bytes.
COMPRESS_LEVEL = 2
_GT = np.frombuffer(b"./.0/00/11/1", dtype=np.uint8).reshape(4, 3)  # dosage + 1 -> GT
_INDEX_DTYPE = np.dtype([("contig", "<i4"), ("beg", "<i8"), ("end", "<i8"), ("vstart", "<i8"), ("vend", "<i8")])


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_vcf` wrote: the VCF and index URIs, records, parts and compressed bytes."""

    vcf_uri: str
    tbi_uri: str
    n_records: int
    n_parts: int
    n_bytes: int


def vcf_header(samples, contigs, *, with_calls: bool, source: str = "genoflow") -> str:
    """The VCF 4.3 header, ending with the ``#CHROM`` line.

    ``contigs`` is a sequence of (name, length) in reference order. FORMAT GQ and DP are declared only
    when the records carry them (``with_calls``).

    >>> print(vcf_header(["p1"], [("chr1", 1000)], with_calls=False).splitlines()[1])
    ##source=genoflow
    """
    lines = ["##fileformat=VCFv4.3", f"##source={source}"]
    lines += [f"##contig=<ID={name},length={int(length)}>" for name, length in contigs]
    lines += ['##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes">',
              '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called genotypes">']
    if with_calls:
        lines.append('##INFO=<ID=DP,Number=1,Type=Integer,Description="Filtered read depth summed over samples">')
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    if with_calls:
        lines += ['##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality (phred, capped at 99)">',
                  '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Filtered read depth">']
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]))
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=2)
def _number_table(n: int, width: int) -> np.ndarray:
    """Rows ``":<value>"`` for values 0..n-1, then ``":."`` for missing; NUL-padded to ``width`` bytes."""
    texts = [f":{v}".encode() for v in range(n)] + [b":."]
    return np.frombuffer(b"".join(t.ljust(width, b"\0") for t in texts), dtype=np.uint8).reshape(n + 1, width)


def _sample_text(dosages: np.ndarray, gq: np.ndarray | None, dp: np.ndarray | None) -> tuple[bytes, np.ndarray]:
    """The sample columns of a block of records, tab-separated and newline-ended, and each record's end in it.

    ``dosages`` int8 (n, s); ``gq`` uint8 and ``dp`` uint16 (n, s) or None (GT only).
    """
    n, s = dosages.shape
    if np.any((dosages < -1) | (dosages > 2)):
        raise ValueError("export_vcf: a dosage outside -1..2 (haploid or multiallelic genotypes are not exported)")
    gt = _GT[dosages.astype(np.int64) + 1]
    if gq is None:
        cells = np.empty((n, s, 4), dtype=np.uint8)
        cells[:, :, :3] = gt
    else:
        missing = dosages < 0  # no genotype, no genotype quality; the depth stays (it says why it is missing)
        cells = np.empty((n, s, 3 + 4 + 6 + 1), dtype=np.uint8)
        cells[:, :, :3] = gt
        cells[:, :, 3:7] = _number_table(256, 4)[np.where(missing, 256, gq.astype(np.intp))]
        cells[:, :, 7:13] = _number_table(65536, 6)[dp]
    cells[:, :, -1] = ord("\t")
    cells[:, -1, -1] = ord("\n")
    flat = cells.reshape(n, -1)
    keep = flat != 0
    return flat[keep].tobytes(), np.cumsum(keep.sum(axis=1))


def render_records(batch, n_samples: int) -> tuple[bytes, np.ndarray]:
    """VCF text of an Arrow record batch of the table, and each record's end offset in it (int64, (n,)).

    INFO has AC and AN from the genotypes, and DP summed over samples when the batch has ``dp``.
    """
    dosages = dosage_matrix(batch.column("dosages"), n_samples)
    names = batch.schema.names
    with_calls = "gq" in names
    gq = dosage_matrix(batch.column("gq"), n_samples).view(np.uint8) if with_calls else None
    dp = dosage_matrix(batch.column("dp"), 2 * n_samples).view("<u2") if with_calls else None
    samples, ends = _sample_text(dosages, gq, dp)
    called = dosages >= 0
    ac, an = np.where(called, dosages, 0).sum(axis=1).tolist(), (2 * called.sum(axis=1)).tolist()
    depth = dp.sum(axis=1, dtype=np.int64).tolist() if with_calls else None
    qual = batch.column("qual").to_pylist() if "qual" in names else [None] * len(ac)
    fmt = "GT:GQ:DP" if with_calls else "GT"
    columns = zip(*(batch.column(c).to_pylist() for c in ("contig", "pos", "id", "ref", "alt")), qual, strict=True)
    lines, at = [], 0
    for i, (contig, pos, id_, ref, alt, q) in enumerate(columns):
        info = f"AC={ac[i]};AN={an[i]}" + (f";DP={depth[i]}" if with_calls else "")
        q_text = "." if q is None or math.isnan(q) else f"{q:.6g}"
        lines.append(f"{contig}\t{pos}\t{id_ or '.'}\t{ref}\t{alt}\t{q_text}\t.\t{info}\t{fmt}\t".encode())
        lines.append(samples[at : ends[i]])
        at = ends[i]
    lengths = np.fromiter((len(x) for x in lines), dtype=np.int64, count=len(lines))
    return b"".join(lines), np.cumsum(lengths.reshape(-1, 2).sum(axis=1))


class _PartWriter:
    """One task's part: renders batches of records, compresses full BGZF blocks as they fill, and keeps
    each record's uncompressed start and end (turned into virtual offsets once every block is known)."""

    def __init__(self, n_samples: int, contig_rank: dict[str, int], level: int = COMPRESS_LEVEL):
        self.n_samples, self.contig_rank, self.level = n_samples, contig_rank, level
        self.blocks, self.block_starts = [], [0]
        self.pending = b""
        self.size = 0  # uncompressed bytes so far
        self.index = []

    def write(self, batch) -> None:
        contigs = batch.column("contig").to_pylist()
        unknown = set(contigs) - self.contig_rank.keys()
        if unknown:
            raise ValueError(f"export_vcf: contig(s) {sorted(unknown)[:5]} are not in the reference")
        text, ends = render_records(batch, self.n_samples)
        ends = ends + self.size
        starts = np.r_[self.size, ends[:-1]]
        ranks = np.fromiter((self.contig_rank[c] for c in contigs), dtype=np.int32, count=len(contigs))
        beg = batch.column("pos").to_numpy().astype(np.int64) - 1
        ref_len = np.fromiter((len(r) for r in batch.column("ref").to_pylist()), dtype=np.int64, count=len(contigs))
        self.index.append((ranks, beg, beg + ref_len, starts, ends))
        self.size += len(text)
        data = self.pending + text
        full = len(data) // BGZF_BLOCK_SIZE * BGZF_BLOCK_SIZE
        self._compress(data[:full])
        self.pending = data[full:]

    def _compress(self, data: bytes) -> None:
        if data:
            compressed, starts = bgzf_compress(data, self.level)
            self.blocks.append(compressed)
            self.block_starts.extend((starts[1:] + self.block_starts[-1]).tolist())

    def finish(self) -> tuple[bytes, bytes]:
        """(the part's BGZF blocks, its index rows with offsets relative to the part's start)."""
        self._compress(self.pending)
        ranks, beg, end, starts, ends = (np.concatenate(a) for a in zip(*self.index, strict=True))
        block_starts = np.asarray(self.block_starts, dtype=np.int64)
        rows = np.empty(len(ranks), dtype=_INDEX_DTYPE)
        rows["contig"], rows["beg"], rows["end"] = ranks, beg, end
        rows["vstart"] = virtual_offsets(starts, block_starts, self.size)
        rows["vend"] = virtual_offsets(ends, block_starts, self.size)
        return b"".join(self.blocks), rows.tobytes()


class _RenderParts:
    """mapInArrow function: each task writes ``part-<i>.bgz`` and ``part-<i>.idx`` under the parts folder."""

    def __init__(self, parts, n_samples: int, contig_rank: dict[str, int], level: int):
        self.parts, self.n_samples, self.contig_rank, self.level = parts, n_samples, contig_rank, level

    def __call__(self, batches):
        import pyarrow as pa
        from pyspark import TaskContext

        writer = _PartWriter(self.n_samples, self.contig_rank, self.level)
        for batch in batches:
            if batch.num_rows:
                writer.write(batch)
        if not writer.index:
            return
        part = TaskContext.get().partitionId()
        data, index = writer.finish()
        # write_atomic: a retried task replaces its part whole
        self.parts.at(f"{self.parts.uri}/part-{part:05d}.bgz").write_atomic(data)
        self.parts.at(f"{self.parts.uri}/part-{part:05d}.idx").write_atomic(index)
        counts = {"part": [part], "n_bytes": [len(data)], "n_records": [len(index) // _INDEX_DTYPE.itemsize]}
        yield pa.RecordBatch.from_pydict(counts, schema=pa.schema([("part", pa.int32()), ("n_bytes", pa.int64()),
                                                                   ("n_records", pa.int64())]))


def export_vcf(spark, table_df, samples, reference_contigs, out_uri: str, storage, *, source: str = "genoflow",
               budget: int | None = None, compress_level: int = COMPRESS_LEVEL) -> ExportResult:
    """Write a genotype or called table as one bgzipped VCF 4.3 at ``out_uri`` and its index at ``out_uri.tbi``.

    Parameters
    ----------
    spark : SparkSession
    table_df : DataFrame
        Columns ``contig, pos, id, ref, alt, dosages`` (:mod:`genoflow.genotypes`: int8 per sample, -1
        missing, 0/1/2 copies of ALT) and, for a called table, ``qual, gq, dp``
        (:data:`genoflow.reads.schema.CALLED_EXTRA_COLUMNS`); other columns are ignored.
    samples : sequence of str
        The VCF sample names, in the dosages' order.
    reference_contigs : IndexedReference or sequence of (name, length)
        The ``##contig`` lines and the record order; every contig of the table must be there.
    out_uri : str
        The VCF's URI (``file://`` or ``hdfs://``); the .tbi goes next to it. Both are written under
        temporary names and renamed on success (the index first: a reader that sees the VCF sees its index).
    storage : genoflow.storage.HadoopStorage
    source : str
        The ``##source`` line.
    budget : int, optional
        Bytes of VCF text per block of records; each task writes about four blocks. Default
        :data:`genoflow.genotypes.BLOCK_BYTES`. It changes the number of parts, never the file's records.
    compress_level : int
        zlib level (1-9) of the BGZF blocks; default :data:`COMPRESS_LEVEL` (speed over size, see there).

    Returns
    -------
    ExportResult

    Raises
    ------
    ValueError
        If a column is missing, ``samples`` is empty or has duplicates, a contig of the table is not in
        the reference, or a dosage is outside -1..2.
    FileExistsError
        If ``out_uri`` or its index already exists.
    """
    from pyspark.sql import functions as F

    from genoflow.genotypes import arrow_batch_conf
    from genoflow.spark import session_conf

    samples, contigs = _check_args(table_df, samples, reference_contigs, out_uri, storage)
    with_calls = set(CALL_COLUMNS) <= set(table_df.columns)
    columns = [*TABLE_COLUMNS, *(CALL_COLUMNS if with_calls else ())]
    budget = budget or BLOCK_BYTES
    n_records = table_df.count()
    rows_per_part = rows_per_block(len(samples), CELL_BYTES, budget) * _BLOCKS_PER_PART
    n_parts = max(1, math.ceil(n_records / rows_per_part))
    rank = F.array_position(F.array(*[F.lit(name) for name, _ in contigs]), F.col("contig"))
    ordered = (table_df.select(*columns).repartitionByRange(n_parts, rank, "pos")
               .sortWithinPartitions(rank, "pos", "ref", "alt"))

    tag = f"tmp-{uuid.uuid4().hex[:8]}"
    parts_uri, vcf_tmp, tbi_tmp = f"{out_uri}.parts.{tag}", f"{out_uri}.{tag}", f"{out_uri}.tbi.{tag}"
    storage.mkdirs(parts_uri)
    try:
        ranks = {name: i for i, (name, _) in enumerate(contigs)}
        render = _RenderParts(storage.ranged(parts_uri), len(samples), ranks, compress_level)
        with session_conf(spark, arrow_batch_conf(len(samples), CELL_BYTES, budget)):
            written = sorted(ordered.mapInArrow(render, "part int, n_bytes long, n_records long").collect())
        header = vcf_header(samples, contigs, with_calls=with_calls, source=source).encode()
        header = bgzf_compress(header, compress_level)[0]
        n_bytes = _concatenate(storage, header, [f"{parts_uri}/part-{p.part:05d}.bgz" for p in written], vcf_tmp)
        storage.write_bytes(tbi_tmp, _index(storage, header, written, parts_uri, contigs))
        _commit(storage, [(tbi_tmp, f"{out_uri}.tbi"), (vcf_tmp, out_uri)])
    except BaseException:
        for uri in (vcf_tmp, tbi_tmp):
            if storage.exists(uri):
                storage.delete(uri)
        raise
    finally:
        storage.delete(parts_uri)
    log.info("exported %d records of %d samples in %d parts to %s", n_records, len(samples), len(written), out_uri)
    return ExportResult(out_uri, f"{out_uri}.tbi", sum(p.n_records for p in written), len(written), n_bytes)


def _check_args(table_df, samples, reference_contigs, out_uri, storage):
    missing = [c for c in TABLE_COLUMNS if c not in table_df.columns]
    if missing:
        raise ValueError(f"export_vcf: table_df lacks the column(s) {missing}; expected at least {list(TABLE_COLUMNS)}")
    samples = [str(s) for s in samples]
    if not samples or len(set(samples)) != len(samples):
        raise ValueError(f"export_vcf: samples must be non-empty and unique, found {len(samples)} names "
                         f"({len(samples) - len(set(samples))} duplicated)")
    if hasattr(reference_contigs, "names") and hasattr(reference_contigs, "length"):
        contigs = [(name, reference_contigs.length(name)) for name in reference_contigs.names]
    else:
        contigs = [(str(name), int(length)) for name, length in reference_contigs]
    for uri in (out_uri, f"{out_uri}.tbi"):
        if storage.exists(uri):
            raise FileExistsError(f"export_vcf: {uri} already exists")
    return samples, contigs


def _concatenate(storage, header: bytes, part_uris: list[str], out_uri: str) -> int:
    """Stream header + parts + the BGZF end-of-file block into ``out_uri``; its size in bytes."""
    from genoflow.pipeline.vcf_ingest import BGZF_EOF

    jvm = storage.spark.sparkContext._jvm
    conf = storage.spark.sparkContext._jsc.hadoopConfiguration()
    out_path = jvm.org.apache.hadoop.fs.Path(out_uri)
    out = out_path.getFileSystem(conf).create(out_path, False)
    try:
        out.write(bytearray(header))
        for uri in part_uris:  # JVM to JVM in 1 MiB buffers: no part passes through Python
            path = jvm.org.apache.hadoop.fs.Path(uri)
            part = path.getFileSystem(conf).open(path)
            try:
                jvm.org.apache.hadoop.io.IOUtils.copyBytes(part, out, 1 << 20, False)
            finally:
                part.close()
        out.write(bytearray(BGZF_EOF))
        size = int(out.getPos())
    finally:
        out.close()
    return size


def _index(storage, header: bytes, written, parts_uri: str, contigs) -> bytes:
    """The .tbi from the parts' index rows, each part's offsets shifted by where the part starts."""
    indexer = TabixIndexer()
    names = np.array([name for name, _ in contigs], dtype=object)
    start = len(header)
    for p in written:
        rows = np.frombuffer(storage.read_bytes(f"{parts_uri}/part-{p.part:05d}.idx"), dtype=_INDEX_DTYPE)
        shift = start << 16  # a part starts at a block boundary: only the block address moves
        indexer.push(names[rows["contig"]], rows["beg"], rows["end"], rows["vstart"] + shift, rows["vend"] + shift)
        start += p.n_bytes
    return indexer.to_bytes()


def _commit(storage, renames: list[tuple[str, str]]) -> None:
    done = []
    for src, dst in renames:
        if not storage.rename(src, dst):
            for uri in done:
                storage.delete(uri)
            raise FileExistsError(f"export_vcf: {dst} appeared while the export ran")
        done.append(dst)


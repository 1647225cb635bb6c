"""Per-patient single-sample VCFs merged into the cohort's genotype table on Spark (as
``bcftools merge`` then ``bcftools norm -m-``). Header reading, error re-wrapping and the decode
prelude are shared with the cohort path (:mod:`genoflow.pipeline.vcf_read`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import GENOTYPE_SCHEMA_DDL, MISSING, dosage_column
from genoflow.pipeline.vcf_read import (
    VCF_BYTES_PER_SAMPLE,
    IngestResult,
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

__all__ = ["PATIENT_CALLS_DDL", "ingest_patient_vcfs", "merged_header", "patient_vcf_uris"]

# Per merged site and patient while single-sample VCFs are merged (_CallPacker): a (sample int32,
# dosage int8) call in the Arrow list, its (sample, called) presence, the int8 matrix and numpy temporaries.
_MERGE_BYTES_PER_SAMPLE = 16

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
        for (file, split), first, block in record_blocks(keyed_runs(batches), self.chunk_lines, self._header_line):
            with lines_within_split(split):
                batch = self._decode_block(block, first, file)
            yield batch

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

    def _decode_block(self, lines, first, file):
        import pyarrow as pa

        from genoflow.genotypes import dosage_matrix

        decoded = decode_lines(lines, n_samples=1, source=file, first=first, min_gq=self.min_gq,
                               min_dp=self.min_dp, skipped=self.skipped)
        table = decoded.table
        names = checked_contigs(self.reference.value, decoded, source=file)
        dosage = dosage_matrix(table.column("dosages"), 1)[:, 0]
        return pa.RecordBatch.from_pydict({
            "contig": pa.array([names[c] for c in decoded.contig.tolist()], type=pa.string()),
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
            matrix = np.full((n, n_samples), MISSING, dtype=np.int8)
            present = batch.column(batch.schema.get_field_index("present"))
            at_site = pc.list_flatten(present)
            site_row = np.repeat(np.arange(n), pc.list_value_length(present).to_numpy(zero_copy_only=False))
            called = at_site.field("called").to_numpy(zero_copy_only=False).astype(bool)
            matrix[site_row[called], at_site.field("sample").to_numpy(zero_copy_only=False)[called]] = 0
            matrix[row, sample] = dosage
            contig = np.asarray(batch.column(batch.schema.get_field_index("contig")).to_pylist(), dtype=object)
            pos = batch.column(batch.schema.get_field_index("pos")).to_numpy(zero_copy_only=False)
            passed = {name: batch.column(batch.schema.get_field_index(name))
                      for name in ("contig", "pos", "id", "ref", "alt", "mean_dp", "mean_gq")}
            yield genotype_batch({
                **passed,
                "gene": pa.array(gene_names(self.genes.value, contig, pos), type=pa.string()),
                "line": pa.nulls(n, type=pa.int64()),
                **qc_columns(matrix, self.thresholds),
                "dosages": dosage_column(matrix),
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

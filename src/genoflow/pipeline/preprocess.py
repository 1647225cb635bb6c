"""preprocess: raw cohort -> validated, QC'd, pseudonymised tables.

Reads, under the storage root: the cohort VCF, the study's phenotypes (``study.phenotypes`` and
``study.covariates_file``, or each patient's clinical CSV; decision 0011) and, when present, the
reference FASTA (REF check), the GFF3 annotations (genes) and each patient's FASTQ (read QC). The
study checks (:func:`genoflow.study.build_study`) run before any Spark job. Writes one committed folder:

``genotypes/``  variant-major Parquet genotype table (see :mod:`genoflow.genotypes`)
``samples/``    one row per sample, sorted by pseudonym like the genotypes' dosages (decision 0018):
                pseudonym, sample QC, read QC, the study's typed columns (age in 5-year bands)
``study.json``  each study column's role, type, levels and missing count
``qc_summary.json``  counts a person reads first, what was skipped, the study's counts

QC follows plink2's order (:mod:`genoflow.qc.plink_qc`, checked identical to plink2 and plink 1.9 in
``tests/concordance/test_qc.py``): sample missingness over all variants (``--mind``,
``max_sample_missingness``) first; then, on the remaining samples, each variant's call rate
(``--geno``, ``min_call_rate``), exact HWE test (``--hwe``, ``min_hwe_p``) and minor allele frequency
(``--maf``, ``min_maf``) give ``qc_pass``; last, on the passing variants, the heterozygosity F
(``--het``; outliers beyond ``max_het_sd`` SD) and the X-chromosome sex check (plink 1.9
``--check-sex`` against the study's sex, for the samples whose sex is known). ``sample_qc_pass`` = all
three sample checks passed.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
from dataclasses import dataclass

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import GENOTYPE_COLUMN_NAMES, block_budget, rows_per_block, size_parquet_reader, stack_dosages
from genoflow.pipeline.vcf_ingest import (
    GENOTYPE_SCHEMA_DDL,
    IngestResult,
    ingest_patient_vcfs,
    ingest_vcf,
    merged_header,
    patient_vcf_uris,
    read_vcf_header,
)
from genoflow.privacy import coarsen_study_columns
from genoflow.pseudonym import pseudonym_order, pseudonymise
from genoflow.storage.parts import ParquetFolder, write_driver_table

__all__ = ["run_preprocess", "GENOTYPE_SCHEMA_DDL", "check_sample_sets", "parse_patient_clinical", "load_study",
           "read_reference", "read_genes_file",
           "patient_files", "read_vcf_header", "ingest_vcf", "run_cohort_qc"]

log = logging.getLogger(__name__)

CLINICAL_FILE = "clinical_data.csv"
READ_QC_COLUMNS = ("n_reads", "mean_phred", "gc_fraction", "n_rate", "mean_length", "q30_fraction")
PATIENT_VCF_FILE = "genome_variants.vcf.gz"  # preprocess.patient_vcf: each patient's VCF (vcf_layout: per_patient)


def run_preprocess(spark, storage, output, params: dict, pseudonym_key: str, calls_uri: str | None = None) -> dict:
    """Run the preprocess step, writing into ``output`` (a :class:`~genoflow.storage.StepOutput`).

    ``calls_uri``: the committed call step of a cohort of reads (:mod:`genoflow.pipeline.reads`), whose called
    table takes the place of the parsed VCF.
    """
    p = params["preprocess"]
    per_patient = p.get("vcf_layout", "cohort") == "per_patient" and calls_uri is None
    patient_uri = storage.uri(p["patient_dir"]) if p.get("patient_dir") else None
    required = (("patient_dir",) if per_patient or not params["study"].get("phenotypes") else ()) + \
        (() if per_patient or calls_uri else ("vcf",))
    for key in required:
        if not p.get(key) or not storage.exists(storage.uri(p[key])):
            raise InputError(storage.uri(p[key] or ""), f"does not exist (preprocess.{key} in params)")

    if calls_uri:
        vcf_uri = f"{calls_uri}/genotypes"
        header = CalledCohort(json.loads(storage.read_text(f"{calls_uri}/calling.json"))["sample_names"])
    elif per_patient:
        vcf_files = patient_vcf_uris(spark, patient_uri, p.get("patient_vcf", PATIENT_VCF_FILE))
        vcf_uri = f"{patient_uri}/*/{p.get('patient_vcf', PATIENT_VCF_FILE)}"
        header = merged_header(spark, vcf_files)
    else:
        vcf_uri = storage.uri(p["vcf"])
        header = read_vcf_header(spark, vcf_uri)
    study = load_study(spark, storage, params, header.samples, vcf_uri)  # the study checks, before any Spark job
    log.info("cohort: %d samples in %s", len(header.samples), vcf_uri)

    reference = _optional(storage, p, "reference_fasta", read_reference)
    genes = _optional(storage, p, "annotations_gff", read_genes_file)
    budget = block_budget(params)
    genotypes_uri = output.path("genotypes")
    parsed_uri = output.path("parsed-before-qc")  # deleted once genotypes/ is written ("_x" is hidden to Spark)
    if calls_uri:
        ingest = annotate_calls(spark, vcf_uri, parsed_uri, genes=genes)
    elif per_patient:
        ingest = ingest_patient_vcfs(spark, vcf_files, header, parsed_uri, reference=reference, genes=genes, p=p,
                                     budget=budget)
    else:
        ingest = ingest_vcf(spark, vcf_uri, header, parsed_uri, reference=reference, genes=genes, p=p,
                            budget=budget)

    size_parquet_reader(spark, len(header.samples), budget)
    parsed = spark.read.parquet(parsed_uri)
    if parsed.limit(1).count() == 0:
        raise InputError(vcf_uri, "no variant records after the header")
    # Every table stores samples sorted by pseudonym, never in the VCF's (raw id) order (decision 0018).
    order = pseudonym_order(header.samples, pseudonym_key)
    # The tasks read the parsed files themselves (decision 0032); the DataFrame where they cannot.
    sample_qc, qc_counts = run_cohort_qc(ParquetFolder.of(spark, parsed_uri) or parsed, genotypes_uri,
                                         header.samples, study, p, budget=budget, order=order)
    storage.delete(parsed_uri)
    read_qc = load_read_qc(spark, patient_uri) if patient_uri and storage.exists(patient_uri) else {}
    samples = build_sample_table([header.samples[i] for i in order], study, sample_qc, read_qc, p, pseudonym_key)
    write_driver_table(spark, samples, output.path("samples"))
    output.write_json("study.json", study.summary())

    summary = {
        "n_samples": len(header.samples),
        "n_samples_pass_qc": int(samples["sample_qc_pass"].sum()),
        **qc_counts,
        "n_samples_with_reads": int(samples["n_reads"].notna().sum()),
        "n_vcf_splits": ingest.n_splits,
        "n_skipped_alt_alleles": ingest.n_skipped_alts,  # symbolic (<DEL>...), breakend and '*' ALTs
        "thresholds": {k: p[k] for k in ("min_call_rate", "min_maf", "min_hwe_p",
                                         "max_sample_missingness", "max_het_sd")},
        "skipped": {"ref_check": reference is None, "genes": genes is None, "read_qc": not read_qc,
                    "sex_check": study.sex is None or bool(study.sex.isna().all())},
        "study": _study_counts(study),
    }
    output.write_json("qc_summary.json", summary)
    return summary


@dataclass(frozen=True)
class CalledCohort:
    """The samples of a cohort called from reads, where a VCF cohort has its header."""

    samples: list[str]


def annotate_calls(spark, calls_uri: str, out_uri: str, *, genes) -> IngestResult:
    """The called table as the VCF path's parsed table: its columns, each variant's gene from the GFF."""
    import pyarrow as pa

    from genoflow.pipeline.vcf_ingest import gene_names

    columns = list(GENOTYPE_COLUMN_NAMES)
    calls = spark.read.parquet(calls_uri).select(*columns)
    if genes is not None:
        shared = spark.sparkContext.broadcast(genes)
        gene_at = columns.index("gene")

        def annotate(batches):
            for batch in batches:
                contig = batch.column("contig").to_numpy(zero_copy_only=False)
                names = gene_names(shared.value, contig, batch.column("pos").to_numpy())
                yield batch.set_column(gene_at, "gene", pa.array(names, type=pa.string()))

        calls = calls.mapInArrow(annotate, calls.schema)
    calls.write.parquet(out_uri)
    return IngestResult(n_splits=0, n_skipped_alts=0)  # no VCF was split, no ALT skipped


def _optional(storage, p: dict, key: str, read):
    """An optional input (decision 0011): None when params say null or the file is absent (logged)."""
    if not p.get(key) or not storage.exists(storage.uri(p[key])):
        log.warning("preprocess.%s: %s; what needs it is skipped", key, "null" if not p.get(key) else "absent")
        return None
    return read(storage, storage.uri(p[key]))


def _study_counts(study) -> dict:
    return {"n_samples_missing_covariates": study.n_missing_covariates, "missing_covariates": study.missing_covariates,
            "n_missing": {name: c["n_missing"] for name, c in study.columns.items()},
            "n_labelled": {name: len(study.frame) - c["n_missing"] for name, c in study.columns.items()
                           if c["role"] == "target"}}


# --- VCF: genoflow.pipeline.vcf_ingest (split BGZF reading, vectorised decoding) ---------------


# --- reference and annotations ----------------------------------------------------------------


REFERENCE_INDEX_DIR = ("steps", "reference_index")  # .fai files built from FASTAs that came without one


def read_reference(storage, uri: str):
    """The reference FASTA by its index (:func:`genoflow.io.reference.open_reference`), for broadcasting.

    Only the index is read here; a missing or stale ``.fai`` is built once into
    ``<storage root>/steps/reference_index/`` and found there by later runs (decision 0013).
    """
    from genoflow.io.reference import open_reference

    return open_reference(storage.ranged(uri), index_cache=storage.uri(*REFERENCE_INDEX_DIR))


def read_genes_file(storage, uri: str):
    from genoflow.io.gff import read_genes

    with storage.ranged(uri).open_stream() as stream:
        return read_genes(stream, source=uri)


# --- per-patient files --------------------------------------------------------------------------


def _patient_of(file_uri: str) -> str:
    return posixpath.basename(posixpath.dirname(file_uri))


def parse_patient_clinical(uri: str, content: bytes) -> dict:
    """The one validated row of a patient's clinical CSV (``<patient_dir>/<patient>/clinical_data.csv``)."""
    from genoflow.io.clinical import parse_clinical_csv

    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(uri, f"not UTF-8 text ({err})") from None
    rows = parse_clinical_csv(text, source=uri)
    if len(rows) != 1:
        raise InputError(uri, f"expected one patient row, found {len(rows)}")
    row = rows[0]
    folder = _patient_of(uri)
    if row["patient_id"] != folder:
        raise InputError(uri, f"patient_id {row['patient_id']!r} does not match its folder {folder!r}", line=2)
    return row


def patient_files(spark, patient_uri: str, file_name: str):
    """DataFrame (path, content) of every ``<patient_uri>/<patient>/<file_name>``, or None if there is none.

    The driver lists the files (one glob) and hands Spark the list: Spark's own listing of thousands
    of paths starts a job, and ``binaryFiles`` reads them all in one task (2,000 patients: ~19 s
    against ~1 s).
    """
    from genoflow.spark import glob_uris

    uris = glob_uris(spark, f"{patient_uri.rstrip('/')}/*/{file_name}")
    return binary_files(spark, uris) if uris else None


def binary_files(spark, uris: list[str]):
    """DataFrame (path, content) of the files ``uris``, listed by the driver (see :func:`patient_files`)."""
    from genoflow.spark import session_conf

    with session_conf(spark, {"spark.sql.sources.parallelPartitionDiscovery.threshold": str(len(uris) + 1)}):
        return spark.read.format("binaryFile").load(uris).select("path", "content")


def load_clinical(spark, patient_uri: str) -> dict[str, dict]:
    """Validated clinical rows keyed by patient id (one small CSV per patient folder, parsed by the driver)."""
    files = patient_files(spark, patient_uri, CLINICAL_FILE)
    if files is None:
        raise InputError(patient_uri, f"no patient folders with {CLINICAL_FILE}: the cohort is empty")
    rows = [parse_patient_clinical(row.path, bytes(row.content)) for row in files.collect()]
    return {row["patient_id"]: row for row in rows}


def load_study(spark, storage, params: dict, vcf_samples: list[str], vcf_uri: str, *, patient_uri: str | None = None):
    """The study's columns for the VCF's samples, checked (:func:`genoflow.study.build_study`): from
    ``study.phenotypes`` (+ ``study.covariates_file``) or, when that is null, the per-patient CSVs
    (under ``patient_uri``, default ``preprocess.patient_dir``)."""
    from genoflow.io.clinical import clinical_table
    from genoflow.study import StudySettings, build_study

    s = params["study"]
    if s.get("phenotypes"):
        tables = [_read_table(storage, storage.uri(s[key]), s.get("id_column", "patient_id"))
                  for key in ("phenotypes", "covariates_file") if s.get(key)]
        table_uri = tables[0].source
    else:
        table_uri = patient_uri or storage.uri(params["preprocess"]["patient_dir"])
        tables = [clinical_table(load_clinical(spark, table_uri), table_uri, file_name=CLINICAL_FILE)]
    check_sample_sets(vcf_samples, tables[0].frame.index, vcf_uri, table_uri, per_patient=not s.get("phenotypes"))
    return build_study(tables, StudySettings.from_params(params), list(vcf_samples))


def _read_table(storage, uri: str, id_column: str):
    from genoflow.io.phenotypes import read_phenotype_table

    if not storage.exists(uri):
        raise InputError(uri, "does not exist (study.phenotypes / study.covariates_file in params)")
    try:
        text = storage.read_bytes(uri).decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(uri, f"not UTF-8 text ({err})") from None
    return read_phenotype_table(text, source=uri, id_column=id_column)


def check_sample_sets(vcf_samples: list[str], ids, vcf_uri: str, table_uri: str, *, per_patient: bool = True):
    """Every VCF sample needs phenotypes and every phenotype row (patient) needs genotypes."""
    in_vcf, in_table = set(vcf_samples), set(ids)
    what = CLINICAL_FILE if per_patient else "row"
    missing = sorted(in_vcf - in_table)
    if missing:
        raise InputError(vcf_uri, f"{len(missing)} sample(s) have no {what} in {table_uri}: "
                         f"{', '.join(missing[:5])}", record=missing[0])
    missing_genotypes = sorted(in_table - in_vcf)
    if missing_genotypes:
        first = missing_genotypes[0]
        raise InputError(f"{table_uri}/{first}/{CLINICAL_FILE}" if per_patient else table_uri,
                         f"{len(missing_genotypes)} patient(s) are not samples of {vcf_uri}: "
                         f"{', '.join(missing_genotypes[:5])}", record=first)


def load_read_qc(spark, patient_uri: str) -> dict[str, dict]:
    """Per-patient FASTQ read QC (Biopython parsing in the executors), keyed by patient id.

    Of a paired patient, the QC of its first reads (R1): the mates are the same fragments, and read QC
    features stay comparable between single-end and paired cohorts.
    """
    from genoflow.io.fastq import fastq_read_qc
    from genoflow.reads.fastq_input import READ_FILES, patient_read_sets

    def qc(row):
        return _patient_of(row.path), fastq_read_qc(io.BytesIO(row.content), source=row.path)

    read_sets = patient_read_sets(spark, patient_uri)
    if not read_sets:
        log.warning("no FASTQ (%s) under %s: read QC features will be missing", READ_FILES[0], patient_uri)
        return {}
    return dict(binary_files(spark, [reads.r1 for reads in read_sets]).rdd.map(qc).collect())


# --- samples --------------------------------------------------------------------------------------


def run_cohort_qc(parsed, genotypes_uri: str, vcf_samples, study, p: dict, *,
                  budget: int | None = None, order=None) -> tuple[dict, dict]:
    """plink2-order QC of the parsed table (see the module docstring); writes ``genotypes_uri``.

    ``parsed``: a DataFrame, or the table's files (:class:`~genoflow.storage.parts.ParquetFolder`) for the
    tasks to read and the new table's to write themselves where they can (decision 0032).

    ``order``: the written table's dosages hold the parsed table's samples in this order (positions in
    ``vcf_samples``; :func:`genoflow.pseudonym.pseudonym_order`), default as parsed. Returns the per-sample
    QC arrays in the written order (for :func:`build_sample_table`) and the counts of
    ``qc_summary.json``: samples failing each check, variants failing each filter (a variant can
    fail several), and the order the filters ran in.
    """
    from genoflow.genotypes import BLOCK_BYTES, arrow_batch_conf
    from genoflow.qc.plink_qc import QcThresholds
    from genoflow.qc.spark_qc import (
        QC_BYTES_PER_VALUE,
        apply_variant_filters,
        sample_f_statistics,
        sample_missingness,
        write_variant_filters,
    )
    from genoflow.spark import session_conf
    from genoflow.storage.parts import writable_folder

    budget = budget or BLOCK_BYTES
    t = QcThresholds.from_params(p)
    male, sex_known = sex_arrays(study, vcf_samples)
    files = isinstance(parsed, ParquetFolder)
    spark = parsed.spark if files else parsed.sparkSession
    mind = sample_missingness(parsed, male, t, budget=budget)
    if order is not None:  # --mind is per sample: count in the parsed order, then reorder its arrays
        order = np.asarray(order, dtype=np.int64)
        male, sex_known = male[order], sex_known[order]
        mind = {k: v[order] if isinstance(v, np.ndarray) and v.shape == (len(order),) else v for k, v in mind.items()}
    if files:  # Python reaches this storage: the tasks read the parsed files and write the table (decision 0032)
        write_variant_filters(parsed, writable_folder(spark, genotypes_uri), male, mind, t, order=order, budget=budget)
    else:
        if order is not None:
            parsed = reorder_dosages(parsed, order)
        with session_conf(spark, arrow_batch_conf(len(vcf_samples), QC_BYTES_PER_VALUE, budget)):
            apply_variant_filters(parsed, male, mind, t).write.parquet(genotypes_uri)
    genotypes = spark.read.parquet(genotypes_uri)
    written = ParquetFolder.of(spark, genotypes_uri) if files else None
    f_stats = sample_f_statistics(written or genotypes, male, mind, t, sex_known=sex_known, budget=budget)
    row = genotypes.selectExpr(
        "count(*) AS n_variants", "coalesce(sum(int(qc_pass)), 0) AS n_variants_pass_qc",
        f"coalesce(sum(int(NOT (call_rate >= {t.min_call_rate - 1e-9}))), 0) AS n_variants_fail_call_rate",
        f"coalesce(sum(int(hwe_p < {t.min_hwe_p * (1 - 1e-9)})), 0) AS n_variants_fail_hwe",
        f"coalesce(sum(int(isnan(maf) OR maf < {t.min_maf * (1 - 1e-9)})), 0) AS n_variants_fail_maf",
    ).first()
    counts = {k: int(v) for k, v in row.asDict().items()}
    counts.update({
        "n_samples_fail_missingness": int((~mind["mind_pass"]).sum()),
        "n_samples_het_outlier": int(f_stats["het_outlier"].sum()),
        "n_samples_sex_problem": int(f_stats["sex_problem"].sum()),
        "n_samples_sex_unknown": int((~sex_known).sum()),  # left out of --check-sex
        "qc_order": ["--mind (max_sample_missingness), all variants",
                     "--geno/--hwe/--maf (min_call_rate, min_hwe_p, min_maf), samples passing --mind",
                     "--het outliers (max_het_sd) and --check-sex, variants passing"],
    })
    return {**mind, **f_stats}, counts


def reorder_dosages(genotypes, order: np.ndarray):
    """``genotypes`` (lazily) with each row's ``dosages`` holding the samples at positions ``order``, in that order."""
    import pyarrow as pa

    if np.array_equal(order, np.arange(len(order))):
        return genotypes

    from genoflow.genotypes import dosage_column, dosage_matrix

    def reorder(batches):
        for batch in batches:
            i = batch.schema.get_field_index("dosages")
            column = batch.column(i)
            arrays = list(batch.columns)
            if column.null_count or column.type != pa.binary():  # not a table genoflow wrote: row by row
                values = [None if row is None else np.frombuffer(row, dtype=np.int8)[order].tobytes()
                          for row in column.to_pylist()]
                arrays[i] = pa.array(values, type=column.type)
            else:  # the whole batch at once, rows kept row-major (np.take, see stack_dosages)
                arrays[i] = dosage_column(np.take(dosage_matrix(column, len(order)), order, axis=1))
            yield pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    return genotypes.mapInArrow(reorder, genotypes.schema)


def sex_arrays(study, vcf_samples) -> tuple[np.ndarray, np.ndarray]:
    """(male, sex known) per VCF sample from the study's ``sex`` column (all unknown without one)."""
    sex = study.sex.reindex(list(vcf_samples)) if study.sex is not None else None
    if sex is None:
        return np.zeros(len(vcf_samples), dtype=bool), np.zeros(len(vcf_samples), dtype=bool)
    return (sex == "M").to_numpy(dtype=bool), sex.notna().to_numpy(dtype=bool)


def compute_sample_qc(genotypes, n_samples: int) -> dict[str, np.ndarray]:
    """Per-sample missingness and heterozygosity over all variants, merged across partitions."""
    from genoflow.qc.sample_qc import SampleQcAccumulator

    rows_per = rows_per_block(n_samples, 8)

    def accumulate(rows):
        acc = SampleQcAccumulator(n_samples)
        block = []
        for row in rows:
            block.append(row.dosages)
            if len(block) >= rows_per:
                acc.update(stack_dosages(block))
                block = []
        if block:
            acc.update(stack_dosages(block))
        yield acc

    merged = genotypes.select("dosages").rdd.mapPartitions(accumulate).treeReduce(lambda a, b: a.merge(b))
    return merged.result()


def build_sample_table(vcf_samples, study, sample_qc, read_qc, p: dict, pseudonym_key: str):
    """One row per sample of ``vcf_samples`` (in the genotype table's column order), raw ids replaced by
    pseudonyms, quasi-identifiers coarsened (:func:`genoflow.privacy.coarsen_study_columns`); the only
    sample table downstream sees.

    Columns (decision 0011): ``sample_index, pid``, the sample-QC columns, the read-QC columns (null
    without FASTQ), then the study's columns (:class:`genoflow.study.Study`: targets and numeric
    covariates float64, NaN missing; categorical covariates and ``sex`` str, null missing).
    """
    import pandas as pd

    from genoflow.qc.sample_qc import flag_outliers

    missingness = np.asarray(sample_qc["missingness"], dtype=float)
    het_rate = np.asarray(sample_qc["het_rate"], dtype=float)
    n = len(vcf_samples)
    if "sample_qc_pass" in sample_qc:  # run_cohort_qc's plink2-order QC
        het_outlier = np.asarray(sample_qc["het_outlier"], dtype=bool)
        qc_pass = np.asarray(sample_qc["sample_qc_pass"], dtype=bool)
    else:  # compute_sample_qc's counts only: missingness and heterozygosity-rate outliers
        het_outlier = flag_outliers(het_rate, float(p["max_het_sd"]))
        qc_pass = (missingness <= float(p["max_sample_missingness"])) & ~het_outlier
    frame = pd.DataFrame({
        "sample_index": np.arange(n, dtype=np.int64),
        "pid": [pseudonymise(patient, pseudonym_key) for patient in vcf_samples],
        "missingness": missingness, "het_rate": het_rate, "het_outlier": het_outlier,
        "het_f": np.asarray(sample_qc.get("het_f", np.full(n, np.nan)), dtype=float),
        "sex_f": np.asarray(sample_qc.get("sex_f", np.full(n, np.nan)), dtype=float),
        "sex_problem": np.asarray(sample_qc.get("sex_problem", np.zeros(n, dtype=bool)), dtype=bool),
        "sample_qc_pass": qc_pass,
    })
    reads = pd.DataFrame([read_qc.get(patient, {}) for patient in vcf_samples], columns=list(READ_QC_COLUMNS))
    frame = pd.concat([frame, reads.astype("float64")], axis=1)
    frame["n_reads"] = reads["n_reads"].astype("Int64")
    # Quasi-identifiers coarsened where no model needs more (age in 5-year bands; decision 0018).
    study_columns = coarsen_study_columns(study.frame.reindex(list(vcf_samples)).reset_index(drop=True))
    return pd.concat([frame, study_columns], axis=1)

"""preprocess: raw cohort -> validated, QC'd, pseudonymised tables.

Reads, under the storage root: the cohort VCF, the reference FASTA, the GFF3 annotations and each
patient's clinical CSV and FASTQ. Writes one committed folder:

``genotypes/``  variant-major Parquet genotype table (see :mod:`genoflow.genotypes`)
``samples/``    one row per sample: pseudonym, clinical columns, sample QC, read QC
``qc_summary.json``  counts a person reads first
"""

from __future__ import annotations

import io
import logging
import posixpath

import numpy as np

from genoflow.errors import InputError
from genoflow.genotypes import pack_dosages, stack_dosages
from genoflow.pseudonym import pseudonymise

__all__ = ["run_preprocess", "GENOTYPE_SCHEMA_DDL", "check_sample_sets", "parse_patient_clinical"]

log = logging.getLogger(__name__)

GENOTYPE_SCHEMA_DDL = (
    "contig string, pos long, id string, ref string, alt string, gene string, line long, "
    "call_rate double, alt_af double, maf double, hwe_p double, qc_pass boolean, dosages binary"
)

CLINICAL_FILE = "clinical_data.csv"
FASTQ_FILE = "genome_sequence.fastq.gz"


def run_preprocess(spark, storage, output, params: dict, pseudonym_key: str) -> dict:
    """Run the preprocess step, writing into ``output`` (a :class:`~genoflow.storage.StepOutput`)."""
    p = params["preprocess"]
    vcf_uri = storage.uri(p["vcf"])
    patient_uri = storage.uri(p["patient_dir"])
    for key in ("vcf", "reference_fasta", "annotations_gff", "patient_dir"):
        if not storage.exists(storage.uri(p[key])):
            raise InputError(storage.uri(p[key]), f"does not exist (preprocess.{key} in params)")

    header = read_vcf_header(spark, vcf_uri)
    clinical = load_clinical(spark, patient_uri)
    check_sample_sets(header.samples, clinical, vcf_uri, patient_uri)
    log.info("cohort: %d samples in %s", len(header.samples), vcf_uri)

    reference = _read_reference(storage, storage.uri(p["reference_fasta"]))
    genes = _read_genes(storage, storage.uri(p["annotations_gff"]))
    genotypes_uri = output.path("genotypes")
    variants = parse_genotypes(spark, vcf_uri, header, reference, genes, p)
    variants.write.parquet(genotypes_uri)

    genotypes = spark.read.parquet(genotypes_uri)
    n_variants, n_pass = genotypes.selectExpr("count(*)", "coalesce(sum(int(qc_pass)), 0)").first()
    if n_variants == 0:
        raise InputError(vcf_uri, "no variant records after the header")

    sample_qc = compute_sample_qc(genotypes, len(header.samples))
    read_qc = load_read_qc(spark, patient_uri)
    samples = build_sample_table(header.samples, clinical, sample_qc, read_qc, p, pseudonym_key)
    spark.createDataFrame(samples).coalesce(1).write.parquet(output.path("samples"))

    summary = {
        "n_samples": len(header.samples),
        "n_samples_pass_qc": int(samples["sample_qc_pass"].sum()),
        "n_variants": int(n_variants),
        "n_variants_pass_qc": int(n_pass),
        "n_samples_with_reads": int(samples["n_reads"].notna().sum()),
        "thresholds": {k: p[k] for k in ("min_call_rate", "min_maf", "min_hwe_p",
                                         "max_sample_missingness", "max_het_sd")},
    }
    output.write_json("qc_summary.json", summary)
    return summary


# --- VCF -------------------------------------------------------------------------------------


def read_vcf_header(spark, vcf_uri: str):
    """Parse the VCF header from the first lines of the file (reads no further than ``#CHROM``)."""
    from genoflow.io.vcf import parse_vcf_header

    lines_rdd = spark.sparkContext.textFile(vcf_uri)
    n = 256
    while True:
        head = lines_rdd.take(n)
        if any(line.startswith("#CHROM") for line in head) or len(head) < n:
            return parse_vcf_header(head, vcf_uri)
        n *= 4


def parse_genotypes(spark, vcf_uri: str, header, reference: dict, genes, p: dict):
    """The VCF's records as a genotype DataFrame: decoded, REF-checked, annotated, variant-QC'd.

    Lines are decoded in vectorised blocks of ``vcf_chunk_lines`` inside the executors; each
    row keeps its 1-based VCF line number so later errors can point at it.
    """
    sc = spark.sparkContext
    n_samples = len(header.samples)
    ref_bc = sc.broadcast(reference)
    genes_bc = sc.broadcast(genes)
    chunk_lines = int(p["vcf_chunk_lines"])
    thresholds = (float(p["min_call_rate"]), float(p["min_maf"]), float(p["min_hwe_p"]))

    def decode_partition(indexed_lines):
        block, first = [], None
        for line, index in indexed_lines:
            if line.startswith("#") or not line:
                continue
            if first is None:
                first = index + 1
            block.append(line)
            if len(block) >= chunk_lines:
                yield from _decode_block(block, first, vcf_uri, n_samples, ref_bc.value,
                                         genes_bc.value, thresholds)
                block, first = [], None
        if block:
            yield from _decode_block(block, first, vcf_uri, n_samples, ref_bc.value,
                                     genes_bc.value, thresholds)

    rows = sc.textFile(vcf_uri).zipWithIndex().mapPartitions(decode_partition)
    return spark.createDataFrame(rows, GENOTYPE_SCHEMA_DDL)


def _decode_block(lines, first_line, source, n_samples, reference, genes, thresholds):
    from genoflow.io.fasta import check_ref_alleles
    from genoflow.io.vcf import parse_vcf_records
    from genoflow.qc.variant_qc import variant_qc

    table = parse_vcf_records(lines, n_samples=n_samples, source=source, first_line_number=first_line,
                              with_line_numbers=True)
    cols = table.to_pydict()
    contig = np.asarray(cols["contig"], dtype=object)
    pos = np.asarray(cols["pos"], dtype=np.int64)
    ref = np.asarray(cols["ref"], dtype=object)
    line_numbers = np.asarray(cols["line"], dtype=np.int64)
    check_ref_alleles(reference, contig, pos, ref, source=source, line_numbers=line_numbers)
    gene = genes.annotate(contig, pos)
    dosages = stack_dosages(cols["dosages"])
    qc = variant_qc(dosages)
    min_call_rate, min_maf, min_hwe_p = thresholds
    qc_pass = (qc["call_rate"] >= min_call_rate) & (qc["maf"] >= min_maf) & (qc["hwe_p"] >= min_hwe_p)
    for i in range(len(pos)):
        yield (
            contig[i], int(pos[i]), cols["id"][i], ref[i], cols["alt"][i], gene[i] or "",
            int(line_numbers[i]),
            _float(qc["call_rate"][i]), _float(qc["alt_af"][i]), _float(qc["maf"][i]),
            _float(qc["hwe_p"][i]), bool(qc_pass[i]), pack_dosages(dosages[i]),
        )


def _float(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


# --- reference and annotations ----------------------------------------------------------------


def _read_reference(storage, uri: str) -> dict[str, str]:
    from genoflow.io.fasta import read_reference

    return read_reference(io.BytesIO(storage.read_bytes(uri)), source=uri)


def _read_genes(storage, uri: str):
    from genoflow.io.gff import read_genes

    return read_genes(io.BytesIO(storage.read_bytes(uri)), source=uri)


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


def load_clinical(spark, patient_uri: str) -> dict[str, dict]:
    """Validated clinical rows keyed by patient id (one CSV per patient folder)."""
    files = spark.sparkContext.binaryFiles(f"{patient_uri}/*/{CLINICAL_FILE}")
    try:
        rows = files.map(lambda item: parse_patient_clinical(*item)).collect()
    except Exception as err:
        if "Input path does not exist" in str(err) or "matches 0 files" in str(err):
            raise InputError(patient_uri, f"no patient folders with {CLINICAL_FILE}: the cohort is empty") from None
        raise
    if not rows:
        raise InputError(patient_uri, f"no patient folders with {CLINICAL_FILE}: the cohort is empty")
    return {row["patient_id"]: row for row in rows}


def check_sample_sets(vcf_samples: list[str], clinical: dict[str, dict], vcf_uri: str, patient_uri: str):
    """Every VCF sample needs clinical data and every clinical patient needs genotypes."""
    in_vcf = set(vcf_samples)
    missing_clinical = sorted(in_vcf - clinical.keys())
    if missing_clinical:
        raise InputError(vcf_uri, f"{len(missing_clinical)} sample(s) have no {CLINICAL_FILE} under "
                         f"{patient_uri}: {', '.join(missing_clinical[:5])}", record=missing_clinical[0])
    missing_genotypes = sorted(clinical.keys() - in_vcf)
    if missing_genotypes:
        first = missing_genotypes[0]
        raise InputError(f"{patient_uri}/{first}/{CLINICAL_FILE}",
                         f"{len(missing_genotypes)} patient(s) are not samples of {vcf_uri}: "
                         f"{', '.join(missing_genotypes[:5])}", record=first)


def load_read_qc(spark, patient_uri: str) -> dict[str, dict]:
    """Per-patient FASTQ read QC (Biopython parsing in the executors), keyed by patient id."""
    from genoflow.io.fastq import fastq_read_qc

    def qc(item):
        uri, content = item
        return _patient_of(uri), fastq_read_qc(io.BytesIO(content), source=uri)

    files = spark.sparkContext.binaryFiles(f"{patient_uri}/*/{FASTQ_FILE}")
    try:
        return dict(files.map(qc).collect())
    except Exception as err:
        if "matches 0 files" in str(err) or "Input path does not exist" in str(err):
            log.warning("no %s files under %s: read QC features will be missing", FASTQ_FILE, patient_uri)
            return {}
        raise


# --- samples --------------------------------------------------------------------------------------


def compute_sample_qc(genotypes, n_samples: int) -> dict[str, np.ndarray]:
    """Per-sample missingness and heterozygosity over all variants, merged across partitions."""
    from genoflow.qc.sample_qc import SampleQcAccumulator

    def accumulate(rows):
        acc = SampleQcAccumulator(n_samples)
        block = []
        for row in rows:
            block.append(row.dosages)
            if len(block) >= 2000:
                acc.update(stack_dosages(block))
                block = []
        if block:
            acc.update(stack_dosages(block))
        yield acc

    merged = genotypes.select("dosages").rdd.mapPartitions(accumulate).treeReduce(lambda a, b: a.merge(b))
    return merged.result()


def build_sample_table(vcf_samples, clinical, sample_qc, read_qc, p: dict, pseudonym_key: str):
    """One row per VCF sample, raw ids replaced by pseudonyms; the only sample table downstream sees."""
    import pandas as pd

    from genoflow.qc.sample_qc import flag_outliers

    missingness = np.asarray(sample_qc["missingness"], dtype=float)
    het_rate = np.asarray(sample_qc["het_rate"], dtype=float)
    het_outlier = flag_outliers(het_rate, float(p["max_het_sd"]))
    qc_pass = (missingness <= float(p["max_sample_missingness"])) & ~het_outlier

    rows = []
    for index, patient in enumerate(vcf_samples):
        clin = clinical[patient]
        reads = read_qc.get(patient, {})
        rows.append({
            "sample_index": index,
            "pid": pseudonymise(patient, pseudonym_key),
            "age": int(clin["age"]),
            "sex": clin["sex"],
            "disease_status": int(clin["disease_status"]),
            "treatment_response": (None if clin.get("treatment_response") is None
                                   else int(clin["treatment_response"])),
            "missingness": float(missingness[index]),
            "het_rate": float(het_rate[index]),
            "het_outlier": bool(het_outlier[index]),
            "sample_qc_pass": bool(qc_pass[index]),
            "n_reads": reads.get("n_reads"),
            "mean_phred": reads.get("mean_phred"),
            "gc_fraction": reads.get("gc_fraction"),
            "n_rate": reads.get("n_rate"),
            "mean_length": reads.get("mean_length"),
            "q30_fraction": reads.get("q30_fraction"),
        })
    frame = pd.DataFrame(rows)
    frame["n_reads"] = frame["n_reads"].astype("Int64")
    frame["treatment_response"] = frame["treatment_response"].astype("Int64")
    return frame

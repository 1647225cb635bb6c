"""The reads-to-genotypes steps (decision 0016): ``align`` and ``call``, before preprocess.

align  each patient's FASTQ (single-end or R1/R2) -> ``reads/``, the aligned-read table
       (:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`), ``duplicates/`` (the duplicate pairs) and
       ``mapping.json`` (per-patient mapping rates).
call   ``reads/`` -> ``genotypes/``, the called table (the genotype table's columns plus QUAL, per-sample GQ
       and DP), ``cohort.vcf.gz`` + ``.tbi`` for other tools, and ``calling.json``. Preprocess reads
       ``genotypes/`` where it would parse the VCF, so QC, features, training and serving run unchanged.

The minimap2 index is built once per reference (its path, size and mtime) into
``<storage root>/steps/reads_index/`` and found there by later runs, whatever the dataset version.
"""

from __future__ import annotations

import hashlib
import json
import logging

from genoflow.errors import InputError

__all__ = ["run_align_step", "run_call_step", "reads_index_uri", "READS_INDEX_DIR"]

log = logging.getLogger(__name__)

READS_INDEX_DIR = ("steps", "reads_index")


def reads_index_uri(storage, reference_uri: str, preset: str) -> str:
    """Where the minimap2 index of this reference (as it is now) and preset lives."""
    identity = json.dumps({**storage.identity(reference_uri), "preset": preset}, sort_keys=True)
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return storage.uri(*READS_INDEX_DIR, key, "reference.mmi")


def _reference_uri(storage, params: dict) -> str:
    name = params["preprocess"].get("reference_fasta")
    if not name or not storage.exists(storage.uri(name)):
        raise InputError(storage.uri(name or ""), "the reads need a reference to align to (preprocess.reference_fasta)")
    return storage.uri(name)


def run_align_step(spark, storage, output, params: dict) -> dict:
    """Align every patient's reads; raises :class:`InputError` for a patient whose reads do not map."""
    from genoflow.reads.align import run_align
    from genoflow.reads.index import build_index

    patient_dir = params["preprocess"].get("patient_dir")
    if not patient_dir or not storage.exists(storage.uri(patient_dir)):
        raise InputError(storage.uri(patient_dir or ""), "the reads' folder does not exist (preprocess.patient_dir)")
    reference_uri = _reference_uri(storage, params)
    index_uri = reads_index_uri(storage, reference_uri, params["reads"]["preset"])
    build_index(storage, reference_uri, index_uri, preset=params["reads"]["preset"])
    return run_align(spark, storage, output, params, index_uri=index_uri)


def run_call_step(spark, storage, output, align_uri: str, params: dict) -> dict:
    """Jointly genotype the aligned reads; export the VCF; check patients who also have VCF genotypes."""
    from genoflow.genotypes import block_budget, size_parquet_reader
    from genoflow.io.vcf_export import export_vcf
    from genoflow.pipeline.preprocess import read_reference
    from genoflow.reads.call import run_call

    reference = read_reference(storage, _reference_uri(storage, params))
    mapping = json.loads(storage.read_text(f"{align_uri}/mapping.json"))
    samples = sorted(mapping)  # per patient: reads, mapped, mapping_rate, kept, duplicates, fastq
    calls_uri = output.path("genotypes")
    summary = run_call(spark, storage, f"{align_uri}/reads", reference, samples, calls_uri, params,
                       duplicates_uri=f"{align_uri}/duplicates")
    size_parquet_reader(spark, len(samples), block_budget(params))
    calls = spark.read.parquet(calls_uri)
    vcf_uri = output.path("cohort.vcf.gz")
    export_vcf(spark, calls, samples, reference, vcf_uri, storage, source="genoflow call")
    swaps = check_sample_swaps(spark, storage, output, calls, samples, params)
    summary = {**summary, "samples": len(samples), "vcf": "cohort.vcf.gz", "concordance_with_vcf": swaps,
               "sample_names": samples}
    output.write_json("calling.json", summary)
    return summary


def check_sample_swaps(spark, storage, output, calls, samples: list[str], params: dict) -> dict:
    """Per-patient concordance of the calls with the cohort VCF's genotypes, where the cohort has both.

    A patient below ``reads.min_concordance`` is an :class:`InputError` naming it as a probable sample swap
    (its reads and its VCF genotypes are not the same person). Returns ``{patient: [sites, concordance]}``.
    """
    from genoflow.reads.call import sample_concordance

    name = params["preprocess"].get("vcf")
    if not name or not storage.exists(storage.uri(name)):
        return {}
    vcf_uri = storage.uri(name)
    vcf_samples, vcf_table = _vcf_genotypes(spark, output, vcf_uri, params)
    if not set(samples) & set(vcf_samples):
        log.warning("%s shares no sample with the reads: no sample-swap check", vcf_uri)
        return {}
    try:
        concordance = sample_concordance(calls, spark.read.parquet(vcf_table), called_samples=samples,
                                         vcf_samples=vcf_samples)
    finally:
        storage.delete(vcf_table)
    floor = params["reads"]["min_concordance"]
    swapped = sorted((s for s, (n, c) in concordance.items() if n > 0 and c < floor), key=lambda s: concordance[s][1])
    log.info("calls vs %s: %d patients compared, lowest concordance %s", vcf_uri, len(concordance),
             min((round(c, 4) for n, c in concordance.values() if n > 0), default=None))
    if swapped:
        worst = swapped[0]
        n, c = concordance[worst]
        raise InputError(vcf_uri, f"genotypes called from {worst}'s reads agree with its VCF genotypes at only "
                         f"{c:.1%} of {n} shared sites (reads.min_concordance {floor:.0%}): probable sample swap"
                         + (f"; also below: {', '.join(swapped[1:6])}" if len(swapped) > 1 else ""),
                         record=worst)
    return {s: [int(n), None if n == 0 else round(float(c), 4)] for s, (n, c) in concordance.items()}


def _vcf_genotypes(spark, output, vcf_uri: str, params: dict) -> tuple[list[str], str]:
    """The cohort VCF parsed by the VCF path into a scratch table of the step's output (deleted after use)."""
    from genoflow.genotypes import block_budget
    from genoflow.pipeline.vcf_ingest import ingest_vcf, read_vcf_header

    header = read_vcf_header(spark, vcf_uri)
    table = output.path("_vcf-genotypes")  # "_": hidden from Spark's listing of the step's folder
    ingest_vcf(spark, vcf_uri, header, table, reference=None, genes=None, p=params["preprocess"],
               budget=block_budget(params))
    return list(header.samples), table

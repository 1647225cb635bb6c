"""spark-submit driver: genoflow's VCF -> Parquet genotype table alone (the preprocess step's ingest).

Times what `plink2 --make-pgen` and `bcftools view -Ob` do: decode every record into the
variant-major genotype table (REF check, gene annotation and variant QC included, as in the
preprocess step), written as Parquet. It calls the preprocess step's own functions; the full step
(also FASTQ read QC, sample QC, the sample table) is timed separately through jobs/preprocess.py.

    spark-submit --master local[2] bench/genoflow_ingest.py --storage-root file:///cohort \
        --out file:///tmp/genotypes --params-json "$(genoflow params-json)"
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage-root", required=True, help="URI of the cohort (raw/ lies under it)")
    parser.add_argument("--out", required=True, help="URI of the Parquet genotype table to write")
    parser.add_argument("--params-json", required=True, help="pipeline params as JSON (the preprocess section)")
    args = parser.parse_args()
    p = json.loads(args.params_json)["preprocess"]

    from genoflow.pipeline.preprocess import read_genes_file, read_reference
    from genoflow.pipeline.vcf_ingest import ingest_vcf, read_vcf_header
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage

    spark = get_spark("bench-genoflow-ingest")
    started = time.perf_counter()
    storage = HadoopStorage(spark, args.storage_root)
    if storage.exists(args.out):
        storage.delete(args.out)
    vcf_uri = storage.uri(p["vcf"])
    header = read_vcf_header(spark, vcf_uri)
    reference = read_reference(storage, storage.uri(p["reference_fasta"]))
    genes = read_genes_file(storage, storage.uri(p["annotations_gff"]))
    result = ingest_vcf(spark, vcf_uri, header, args.out, reference=reference, genes=genes, p=p)
    seconds = time.perf_counter() - started
    n_variants = spark.read.parquet(args.out).count()
    print("BENCH " + json.dumps({"n_variants": n_variants, "n_samples": len(header.samples),
                                 "in_session_s": round(seconds, 3), "n_splits": result.n_splits}), flush=True)
    # No spark.stop(), as the jobs (genoflow.pipeline.runner) have none: the JVM's shutdown hook
    # stops the context in 0.1 s, where pyspark's stop() waits ~0.8 s on its accumulator server.
    return 0


if __name__ == "__main__":
    sys.exit(main())

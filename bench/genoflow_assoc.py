"""spark-submit driver: genoflow's association scan over every QC-passing variant of a preprocess output.

Calls the scan the features step runs (:func:`genoflow.pipeline.features.association_scan`: IRLS
logistic regression with Firth fallback, like plink2 --glm, block-vectorised in the executors) on all
QC-passing samples and variants, with the trait and covariates given, and writes the statistics
as Parquet (so every variant is really computed).

    spark-submit --master local[2] bench/genoflow_assoc.py --preprocess file:///.../steps/preprocess/<key> \
        --out file:///tmp/assoc --target disease_status --covariates age,sex
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preprocess", help="URI of a committed preprocess output (genotypes/ + samples/)")
    parser.add_argument("--genotypes", help="URI of a genotype table (instead of the preprocess output's)")
    parser.add_argument("--samples", help="URI of a sample table (instead of the preprocess output's)")
    parser.add_argument("--out", required=True, help="URI of the Parquet statistics to write")
    parser.add_argument("--target", default="disease_status")
    parser.add_argument("--covariates", default="age,sex", help="comma-separated sample-table columns")
    args = parser.parse_args()

    from genoflow.features.spec import fit_covariates
    from genoflow.pipeline.features import association_scan, covariate_matrix
    from genoflow.spark import get_spark
    from genoflow.storage.parts import ParquetFolder

    spark = get_spark("bench-genoflow-assoc")
    started = time.perf_counter()
    samples = spark.read.parquet(args.samples or f"{args.preprocess}/samples").toPandas()
    samples = samples[samples["sample_qc_pass"] & samples[args.target].notna()].reset_index(drop=True)
    # As the features step's scans read it: the tasks read the table's files (decision 0032).
    table = args.genotypes or f"{args.preprocess}/genotypes"
    genotypes = ParquetFolder.of(spark, table, keep="qc_pass") or spark.read.parquet(table).filter("qc_pass")
    names = [c for c in args.covariates.split(",") if c]
    # Encoded as the features step does (sex one-hot against its most frequent level; no labels involved).
    encoding = fit_covariates(samples, names, ["sex"], np.ones(len(samples), dtype=bool))
    covariates = covariate_matrix(samples, encoding)
    scan = association_scan(genotypes, sample_index=samples["sample_index"].to_numpy(),
                            y=samples[args.target].to_numpy(dtype=float), covariates=covariates)
    scan.write.mode("overwrite").parquet(args.out)
    seconds = time.perf_counter() - started
    n_variants = spark.read.parquet(args.out).count()
    print("BENCH " + json.dumps({"n_variants": n_variants, "n_samples": len(samples),
                                 "in_session_s": round(seconds, 3)}), flush=True)
    # No spark.stop(), as the jobs (genoflow.pipeline.runner) have none: the JVM's shutdown hook
    # stops the context in 0.1 s, where pyspark's stop() waits ~0.8 s on its accumulator server.
    return 0


if __name__ == "__main__":
    sys.exit(main())

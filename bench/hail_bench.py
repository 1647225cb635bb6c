"""Hail side of the genomics benchmark; runs in Hail's own virtual environment (see `make bench`).

    python hail_bench.py ingest COHORT.vcf.gz OUT.mt --cores 2 --tmp DIR
    python hail_bench.py assoc IN.mt PHENO.tsv OUT.ht --cores 2 --tmp DIR

``ingest`` is ``hl.import_vcf(...).write(...)``; ``assoc`` filters variants like genoflow's QC
(``--qc`` JSON: min_call_rate, min_maf, min_hwe_p), then ``hl.logistic_regression_rows`` (Wald)
with the trait and covariates of PHENO.tsv (columns IID, disease, age, sex), written as a Table.
Prints one ``BENCH {json}`` line. No genoflow import: Hail's venv has its own pyspark.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _init(cores: int, tmp: str, memory: str) -> None:
    import hail as hl

    hl.init(master=f"local[{cores}]", quiet=True, tmp_dir=tmp, local_tmpdir=tmp, log=f"{tmp}/hail.log",
            spark_conf={"spark.driver.memory": memory, "spark.ui.enabled": "false"})


def ingest(args) -> dict:
    import hail as hl

    # The same block-splitting a Spark job gets: at least 4 partitions per core of the BGZF file.
    mt = hl.import_vcf(args.vcf, force_bgz=True, reference_genome=None, min_partitions=4 * args.cores)
    mt.write(args.out, overwrite=True)
    n_variants, n_samples = hl.read_matrix_table(args.out).count()
    return {"n_variants": n_variants, "n_samples": n_samples}


def assoc(args) -> dict:
    import hail as hl

    mt = hl.read_matrix_table(args.mt)
    pheno = hl.import_table(args.pheno, key="IID", types={"disease": hl.tfloat64, "age": hl.tfloat64,
                                                          "sex": hl.tfloat64})
    mt = mt.annotate_cols(pheno=pheno[mt.s])
    mt = hl.variant_qc(mt)
    qc = mt.variant_qc
    t = json.loads(args.qc)
    mt = mt.filter_rows((qc.call_rate >= t["min_call_rate"]) & (hl.min(qc.AF) >= t["min_maf"])
                        & (qc.p_value_hwe >= t["min_hwe_p"]))
    result = hl.logistic_regression_rows(test="wald", y=mt.pheno.disease, x=mt.GT.n_alt_alleles(),
                                         covariates=[1.0, mt.pheno.age, mt.pheno.sex])
    result.write(args.out, overwrite=True)
    return {"n_variants": hl.read_table(args.out).count()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ing = sub.add_parser("ingest")
    ing.add_argument("vcf")
    ing.add_argument("out")
    asc = sub.add_parser("assoc")
    asc.add_argument("mt")
    asc.add_argument("pheno")
    asc.add_argument("out")
    asc.add_argument("--qc", default='{"min_call_rate": 0.95, "min_maf": 0.01, "min_hwe_p": 1e-6}')
    for p in (ing, asc):
        p.add_argument("--cores", type=int, default=2)
        p.add_argument("--tmp", required=True)
        p.add_argument("--memory", default="4g", help="Spark driver memory")
    args = parser.parse_args()
    started = time.perf_counter()
    _init(args.cores, args.tmp, args.memory)
    result = {"ingest": ingest, "assoc": assoc}[args.command](args)
    result["in_session_s"] = round(time.perf_counter() - started, 3)
    print("BENCH " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

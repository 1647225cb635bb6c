"""A bgzip VCF on real HDFS is split at BGZF blocks and decodes to the same table as on file://."""

from __future__ import annotations

import numpy as np
import pytest
from Bio import bgzf

from genoflow.io.gff import read_genes
from genoflow.pipeline.vcf_ingest import VCF_BYTES_PER_SAMPLE, ingest_vcf, read_vcf_header
from tests.reference_fasta import indexed_reference

pytestmark = pytest.mark.integration

P = {"min_call_rate": 0.0, "min_maf": 0.0, "min_hwe_p": 0.0}


def bgzip_vcf(path, n_samples: int = 50, n_sites: int = 2000) -> None:
    rng = np.random.default_rng(8)
    calls = np.array(["0/0", "0/1", "1/1", "0|1", "./.", "1"])
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=22,length=30000>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(f"S{i}" for i in range(n_samples))]
    for k in range(n_sites):
        lines.append(f"22\t{10 + 13 * k}\t.\tC\tT\t.\tPASS\t.\tGT\t" + "\t".join(calls[rng.integers(0, 6, n_samples)]))
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(("\n".join(lines) + "\n").encode())


def test_ingest_vcf__hdfs_and_file_splits_give_the_same_table(hdfs, spark, tmp_path):
    local = tmp_path / "cohort.vcf.gz"
    bgzip_vcf(local)
    hdfs.dfs("-mkdir", "-p", "/tests/vcf_ingest")
    hdfs.dfs("-put", "-f", str(local), "/tests/vcf_ingest/cohort.vcf.gz")
    # The tasks read the VCF and write their Parquet files through WebHDFS: its address, as a cluster's
    # hdfs-site.xml gives it (this test must not depend on another having set it on the shared session).
    spark.sparkContext._jsc.hadoopConfiguration().set(f"dfs.namenode.http-address.{hdfs.namenode}",
                                                      f"127.0.0.1:{hdfs.http_port}")
    gff = tmp_path / "genes.gff"
    gff.write_text("##gff-version 3\nchr22\tsim\tgene\t10\t9000\t.\t+\t.\tID=g1;Name=G1\n")
    genes = read_genes(gff.open("rb"), source=str(gff))
    reference = indexed_reference(tmp_path, {"chr22": "C" * 30_000})  # the VCF says "22": rows come out as chr22

    keys = {"spark.sql.files.maxPartitionBytes": "16384", "spark.sql.files.openCostInBytes": "0"}
    saved = {key: spark.conf.get(key) for key in keys}
    for key, value in keys.items():
        spark.conf.set(key, value)
    try:
        tables, splits = [], []
        for vcf, out in ((local.as_uri(), (tmp_path / "out").as_uri()),
                         (f"{hdfs.uri}/tests/vcf_ingest/cohort.vcf.gz", f"{hdfs.uri}/tests/vcf_ingest/out")):
            header = read_vcf_header(spark, vcf)
            result = ingest_vcf(spark, vcf, header, out, reference=reference, genes=genes, p=P,
                                budget=200 * header.n_samples * VCF_BYTES_PER_SAMPLE)  # 200-line blocks
            splits.append(result.n_splits)
            tables.append(spark.read.parquet(out).drop("line").orderBy("pos").toPandas())
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value)
    assert splits[0] == splits[1] > 2
    assert len(tables[0]) == 2000 and set(tables[0]["contig"]) == {"chr22"}
    assert tables[0].equals(tables[1])

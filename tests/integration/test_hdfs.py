"""The real HDFS fixture: Spark reads and writes hdfs:// through its bundled Hadoop client."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_spark__writes_and_reads_parquet_on_hdfs(hdfs, spark):
    uri = f"{hdfs.uri}/tests/spark_parquet/genotypes.parquet"
    rows = [(f"chr22:{pos}:A:G", pos, [0, 1, 2, 1]) for pos in range(1000, 1100)]
    spark.createDataFrame(rows, "variant_id string, pos int, dosages array<int>") \
        .repartition(3).write.mode("overwrite").parquet(uri)

    back = spark.read.parquet(uri)
    assert sorted(tuple(r) for r in back.collect()) == sorted((v, p, d) for v, p, d in rows)
    # The files are really on the NameNode: WebHDFS (an independent client) lists them.
    names = {s["pathSuffix"] for s in hdfs.webhdfs("/tests/spark_parquet/genotypes.parquet", "LISTSTATUS")
             ["FileStatuses"]["FileStatus"]}
    assert "_SUCCESS" in names and sum(n.endswith(".parquet") for n in names) == 3


def test_hdfs__safe_mode_enter_and_leave(hdfs):
    with hdfs.safe_mode():
        assert hdfs.in_safe_mode()
        refused = hdfs.dfs("-mkdir", "-p", "/tests/in_safe_mode", check=False)
        assert refused.returncode != 0 and "safe mode" in refused.stderr
    assert not hdfs.in_safe_mode()
    hdfs.dfs("-mkdir", "-p", "/tests/after_safe_mode")
    assert hdfs.webhdfs("/tests/after_safe_mode")["FileStatus"]["type"] == "DIRECTORY"

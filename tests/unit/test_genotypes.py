"""Tests of the block-size rule in genoflow.genotypes (decision 0012)."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.genotypes import BLOCK_BYTES, pack_dosages, rows_per_block, size_parquet_reader


@pytest.mark.parametrize("n_samples", [1, 500, 8_000, 100_000, 500_000, 5_000_000])
@pytest.mark.parametrize("bytes_per_value", [1, 4, 8, 64])
def test_rows_per_block__fits_the_budget_and_never_drops_to_zero(n_samples, bytes_per_value):
    rows = rows_per_block(n_samples, bytes_per_value)
    assert rows >= 1
    assert rows == 1 or rows * n_samples * bytes_per_value <= BLOCK_BYTES


def test_rows_per_block__fewer_rows_as_the_cohort_grows():
    rows = [rows_per_block(n) for n in (1_000, 10_000, 100_000, 1_000_000)]
    assert rows == sorted(rows, reverse=True) and rows[0] > rows[-1]


def test_size_parquet_reader__wide_rows_read_in_small_batches(spark, tmp_path):
    # At 100,000 samples the reader's default 4,096-row batch is 391 MB of dosages.
    n = 100_000
    size_parquet_reader(spark, n)
    assert int(spark.conf.get("spark.sql.parquet.columnarReaderBatchSize")) == rows_per_block(n, 1) == 671
    size_parquet_reader(spark, 10)  # narrow rows: never above Spark's own default
    assert int(spark.conf.get("spark.sql.parquet.columnarReaderBatchSize")) == 4096
    # The setting is live for reads of the session: a table of 100 kB rows reads back whole.
    size_parquet_reader(spark, n, budget=2 * n)
    rows = [(i, pack_dosages(np.full(n, i % 3, dtype=np.int8))) for i in range(5)]
    spark.createDataFrame(rows, "i int, dosages binary").write.parquet(str(tmp_path / "g"))
    back = sorted(spark.read.parquet(str(tmp_path / "g")).collect())
    assert [len(r.dosages) for r in back] == [n] * 5 and back[4].dosages[:1] == b"\x01"

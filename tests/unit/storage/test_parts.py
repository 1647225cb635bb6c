"""Tests of genoflow.storage.parts: Parquet files written and read by the tasks themselves (decision 0032)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genoflow.storage.parts import (
    ParquetFolder,
    file_batches,
    parquet_files,
    remove_partial_files,
    write_driver_table,
    write_parquet_part,
)
from genoflow.storage.ranged import RangedFile


def _table(lo: int, hi: int) -> pa.Table:
    values = np.arange(lo, hi)
    return pa.table({"v": values, "name": [f"r{i}" for i in values], "keep": values % 3 == 0})


def test_write_parquet_part__one_row_group_per_table_and_no_temporary(tmp_path):
    folder = RangedFile(tmp_path.as_uri())
    write_parquet_part(folder, "part-0.parquet", [_table(0, 5), _table(5, 9)], _table(0, 1).schema)
    meta = pq.ParquetFile(tmp_path / "part-0.parquet").metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [5, 4]
    assert [p.name for p in tmp_path.iterdir()] == ["part-0.parquet"]


def test_file_batches__keeps_true_rows_in_batches_and_skips_groups_with_none(tmp_path):
    folder = RangedFile(tmp_path.as_uri())
    none_kept = _table(0, 6).set_column(2, "keep", pa.array([False] * 6))
    write_parquet_part(folder, "a.parquet", [_table(0, 10), none_kept, _table(10, 20)], _table(0, 1).schema)
    batches = list(file_batches(folder.at(f"{folder.uri}/a.parquet"), ["name", "v"], "keep", 2))
    assert all(b.num_rows <= 2 and b.schema.names == ["name", "v"] for b in batches)
    assert pa.Table.from_batches(batches)["v"].to_pylist() == [0, 3, 6, 9, 12, 15, 18]
    # The all-false group is skipped by its statistics: damage its data and it is still never read.
    reader = pq.ParquetFile(tmp_path / "a.parquet")
    chunks = [reader.metadata.row_group(1).column(c) for c in range(reader.metadata.num_columns)]
    start = min(c.dictionary_page_offset or c.data_page_offset for c in chunks)
    size = sum(c.total_compressed_size for c in chunks)
    data = bytearray((tmp_path / "a.parquet").read_bytes())
    data[start : start + size] = b"\xff" * size
    (tmp_path / "a.parquet").write_bytes(bytes(data))
    again = list(file_batches(folder.at(f"{folder.uri}/a.parquet"), ["v"], "keep", 100))
    assert pa.Table.from_batches(again)["v"].to_pylist() == [0, 3, 6, 9, 12, 15, 18]


def test_parquet_files_and_remove_partial_files__skip_markers_and_temporaries(tmp_path, spark):
    from genoflow.storage import HadoopStorage

    for name in ("part-1.parquet", "part-2.parquet", "_SUCCESS", ".part-1.parquet.crc",
                 "part-3.parquet.tmp-pid1-0123abcd"):
        (tmp_path / name).write_bytes(b"x")
    storage = HadoopStorage(spark, tmp_path.as_uri())
    uri = tmp_path.as_uri()
    assert sorted(parquet_files(storage, uri)) == [f"{uri}/part-1.parquet", f"{uri}/part-2.parquet"]
    remove_partial_files(storage, uri)
    assert not (tmp_path / "part-3.parquet.tmp-pid1-0123abcd").exists() and (tmp_path / "part-2.parquet").exists()


def test_parquet_folder__map_in_arrow_reads_every_file_once_with_keep(tmp_path, spark):
    for i in range(7):  # more files than tasks: each task reads a run of them
        pq.write_table(_table(100 * i, 100 * i + 50), tmp_path / f"part-{i}.parquet")
    folder = ParquetFolder.of(spark, tmp_path.as_uri(), keep="keep")

    def total(batches):
        batches = list(batches)
        yield pa.RecordBatch.from_pydict({"n": [sum(b.num_rows for b in batches)],
                                          "s": [sum(int(b.column(0).to_numpy().sum()) for b in batches)]})

    rows = folder.map_in_arrow(["v"], total, "n long, s long", batch_rows=8).collect()
    expected = [v for i in range(7) for v in range(100 * i, 100 * i + 50) if v % 3 == 0]
    assert sum(r.n for r in rows) == len(expected) and sum(r.s for r in rows) == sum(expected)


def _same_as_sparks_writer(spark, frame, tmp_path, name: str) -> list[str]:
    """Write ``frame`` with write_driver_table and with Spark's writer; assert both read back alike; the files."""
    ours, sparks = tmp_path / f"{name}-ours", tmp_path / f"{name}-spark"
    write_driver_table(spark, frame, ours.as_uri())
    spark.createDataFrame(frame).coalesce(1).write.parquet(sparks.as_uri())
    got, want = spark.read.parquet(ours.as_uri()), spark.read.parquet(sparks.as_uri())
    assert got.schema == want.schema
    assert got.exceptAll(want).count() == 0 and want.exceptAll(got).count() == 0 and got.count() == len(frame)
    return sorted(p.name for p in ours.iterdir())


def test_write_driver_table__what_spark_writes_without_a_spark_job(spark, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"pid": ["p1", None, "p3"], "split": ["train", "test", "train"], "y": [1.0, np.nan, 0.0],
                          "n": np.array([3, 4, 5], dtype=np.int64), "small": np.array([1, 2, 3], dtype=np.int32),
                          "ok": [True, False, True]}, index=[7, 8, 9])  # an index is not a column, as in Spark
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    write_driver_table(spark, frame, (tmp_path / "alone").as_uri())
    assert set(tracker.getJobIdsForGroup(None)) == before  # no Spark job
    assert _same_as_sparks_writer(spark, frame, tmp_path, "plain") == ["part-00000.parquet"]


def test_write_driver_table__timestamps_and_categories_go_through_sparks_writer(spark, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"pid": ["p1", "p2"], "seen": pd.to_datetime(["2026-01-02 03:04:05", "2026-02-03 00:00:00"]),
                          "group": pd.Categorical(["a", "b"])})
    files = _same_as_sparks_writer(spark, frame[["pid", "seen"]], tmp_path, "time")
    assert "_SUCCESS" in files  # Spark's writer wrote it: pyarrow would have stored a time-zone-less time
    write_driver_table(spark, frame, (tmp_path / "categories").as_uri())
    assert "_SUCCESS" in {p.name for p in (tmp_path / "categories").iterdir()}

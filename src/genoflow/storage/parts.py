"""Parquet part files that Python tasks write themselves, rather than handing their rows to Spark's writer.

Handing Arrow batches back to the JVM costs a conversion to Spark rows and the JVM's Parquet encoder;
for wide rows (a genotype table's dosages, aligned reads) that was more than the work that made them
(decisions 0031, 0032). A task writes each of its files by temp + rename
(:meth:`~genoflow.storage.RangedFile.write_atomic`) under a name fixed by its input (so a retried
task rewrites the same file), into a folder that must still exist (so a task still running after
its step failed cannot bring the step's temporary folder back). The driver then waits for cancelled
tasks to stop (:func:`wait_for_cancelled_tasks`) on failure, or removes what killed attempts left
half-written (:func:`remove_partial_files`) on success: Spark's readers skip only ``_`` and ``.``
names, so a temp file left in the folder would be read as a part.
"""

from __future__ import annotations

__all__ = ["write_parquet_part", "remove_partial_files", "wait_for_cancelled_tasks"]


def write_parquet_part(folder, name: str, tables, schema, **writer_options) -> None:
    """Write ``tables`` (Arrow tables or batches of ``schema``) as the Parquet file ``name`` of ``folder``
    (a :class:`~genoflow.storage.RangedFile` of the folder), atomically; ``writer_options`` go to
    :class:`pyarrow.parquet.ParquetWriter`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, **writer_options) as writer:
        for table in tables:
            if isinstance(table, pa.RecordBatch):
                writer.write_batch(table)
            else:
                writer.write_table(table)
    folder.at(f"{folder.uri.rstrip('/')}/{name}").write_atomic(sink.getvalue().to_pybytes(),
                                                              into_existing_folder=True)


def remove_partial_files(storage, folder_uri: str) -> None:
    """Delete what killed task attempts left half-written in ``folder_uri`` (their retries rewrote the files)."""
    from genoflow.storage.hadoop import TMP_INFIX

    for name in storage.list(folder_uri):
        if TMP_INFIX in name:
            storage.delete(f"{folder_uri}/{name}")


def wait_for_cancelled_tasks(spark, timeout_s: float = 30.0) -> None:
    """Wait until a failed job's other tasks have stopped (Spark cancels them, but not at once), before the
    step removes the folder they write into."""
    import time

    tracker, deadline = spark.sparkContext.statusTracker(), time.monotonic() + timeout_s
    while tracker.getActiveStageIds() and time.monotonic() < deadline:
        time.sleep(0.2)

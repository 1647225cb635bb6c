"""Parquet part files that Python tasks write themselves, rather than handing their rows to Spark's writer.

Handing Arrow batches back to the JVM costs a conversion to Spark rows and the JVM's Parquet encoder;
for wide rows (a genotype table's dosages, aligned reads) that was more than the work that made them
(decisions 0031, 0032). A task writes each of its files by temp + rename
(:meth:`~genoflow.storage.RangedFile.write_atomic`) under a name fixed by its input (so a retried
task rewrites the same file), into a folder that must still exist (so a task still running after
its step failed cannot bring the step's temporary folder back). The driver runs the tasks with
:func:`collect_written`: on failure it waits for the cancelled tasks to stop; on success it removes
what killed attempts left half-written (Spark's readers skip only ``_`` and ``.`` names, so a temp
file left in the folder would be read as a part).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

__all__ = ["WRITTEN_PART_DDL", "write_parquet_part", "writable_folder", "collect_written", "remove_partial_files",
           "wait_for_cancelled_tasks", "parquet_files", "ParquetFolder", "write_driver_table"]

# What a task hands back per Parquet file it wrote: its name and rows.
WRITTEN_PART_DDL = "file string, rows long"


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


def writable_folder(spark, folder_uri: str):
    """The folder, created, as a :class:`~genoflow.storage.RangedFile` for tasks to write their files into;
    None where Python cannot write there (an hdfs:// without WebHDFS: Spark's writer must write it)."""
    from genoflow.storage.hadoop import HadoopStorage

    storage = HadoopStorage(spark, folder_uri)
    folder = storage.ranged_or_none(folder_uri, "writing %s through Spark's Parquet writer: %s")
    if folder is not None:
        storage.mkdirs(folder_uri)
    return folder


def collect_written(written, folder, *, schema=None) -> list:
    """Run ``written`` (a DataFrame whose tasks write their files into ``folder``, a RangedFile of the folder)
    and return what the tasks handed back. On failure, wait for the job's cancelled tasks to stop before
    the caller removes the folder under their feet; on success, remove what killed attempts left
    half-written and, with ``schema``, give a folder no task wrote to an empty file of that schema."""
    from genoflow.storage.hadoop import HadoopStorage

    spark = written.sparkSession
    try:
        rows = written.collect()
    except Exception:
        wait_for_cancelled_tasks(spark)
        raise
    remove_partial_files(HadoopStorage(spark, folder.uri), folder.uri)
    if not rows and schema is not None:
        write_parquet_part(folder, "part-empty.parquet", [], schema)
    return rows


def write_driver_table(spark, frame, uri: str) -> None:
    """A pandas table the driver holds (samples, feature tables, scores) as a one-file Parquet folder at ``uri``.

    pyarrow writes it where Python reaches the storage: handing a small table to the JVM and back out
    through Spark's writer is a Spark job that costs more than the table (~0.5-0.8 s each, nine per
    demo run; decision 0034). Spark reads the file as it reads its own writer's. A column of another
    type than bool, signed integer, float or string (timestamps: pyarrow and Spark disagree on their
    time zone; categories) sends the table through Spark's writer, as where Python cannot write.
    """
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    except (pa.ArrowException, TypeError, ValueError):
        table = None
    folder = writable_folder(spark, uri) if table is not None and all(map(_spark_plain, table.schema.types)) else None
    if folder is None:
        spark.createDataFrame(frame).coalesce(1).write.parquet(uri)
        return
    write_parquet_part(folder, "part-00000.parquet", [table], table.schema, compression="snappy")


def _spark_plain(arrow_type) -> bool:
    import pyarrow as pa

    return (pa.types.is_boolean(arrow_type) or pa.types.is_signed_integer(arrow_type)
            or pa.types.is_floating(arrow_type) or pa.types.is_string(arrow_type))


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


def parquet_files(storage, folder_uri: str) -> list[str]:
    """The data files of a Parquet folder (Spark's and the tasks' part files; not _SUCCESS, .crc, temps)."""
    from genoflow.storage.hadoop import TMP_INFIX

    return [f"{folder_uri}/{name}" for name in storage.list(folder_uri)
            if name.endswith(".parquet") and not name.startswith((".", "_")) and TMP_INFIX not in name]


_TASKS_PER_CORE = 3


@dataclass(frozen=True)
class ParquetFolder:
    """A Parquet table the tasks read themselves: each task streams a run of its files with pyarrow.

    Spark's reader hands a Python task its rows through the JVM: Parquet to Spark rows to Arrow. For a
    wide table (a genotype table's dosages) that conversion cost the JVM as much CPU as the task's own
    work (decision 0032). ``keep``: a boolean column; only its true rows are read out (it is not one
    of the columns handed on), and a row group whose statistics say it has none is not read at all.
    Build one with :meth:`of`.
    """

    spark: object = field(repr=False, compare=False)
    files: tuple = ()  # RangedFile per data file
    keep: str | None = None

    @classmethod
    def of(cls, spark, folder_uri: str, *, keep: str | None = None) -> ParquetFolder | None:
        """The folder's data files; None where Python cannot read them (an hdfs:// without WebHDFS)."""
        from genoflow.storage.hadoop import HadoopStorage

        storage = HadoopStorage(spark, folder_uri)
        folder = storage.ranged_or_none(folder_uri, "reading %s through Spark's Parquet reader: %s")
        if folder is None:
            return None
        return cls(spark, tuple(folder.at(uri) for uri in parquet_files(storage, folder_uri)), keep)

    def map_in_arrow(self, columns, func, schema: str, *, batch_rows: int):
        """``func`` (a ``mapInArrow`` function) over the ``columns`` of the table's rows, in Arrow batches of at
        most ``batch_rows`` (``columns`` None: all of them); a lazy DataFrame of ``schema``. Each partition
        reads a run of consecutive files, always the same ones for the same folder and cores."""
        reader = _FolderReader(self.files, None if columns is None else tuple(columns), self.keep,
                               max(int(batch_rows), 1), func)
        # A few tasks per core, each a run of consecutive files: a Python task costs ~0.1 s before its first row.
        tasks = min(len(self.files), _TASKS_PER_CORE * self.spark.sparkContext.defaultParallelism)
        return self.spark.range(len(self.files), numPartitions=max(tasks, 1)).mapInArrow(reader, schema)


@dataclass(frozen=True)
class _FolderReader:
    files: tuple
    columns: tuple | None
    keep: str | None
    batch_rows: int
    func: object

    def __call__(self, batches):
        yield from self.func(self._rows(batches))

    def _rows(self, batches):
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield from file_batches(self.files[index], self.columns, self.keep, self.batch_rows)


def file_batches(ranged, columns, keep: str | None, batch_rows: int):
    """The ``columns`` (None: all) of one Parquet file's rows in Arrow batches of at most ``batch_rows``;
    with ``keep``, only the rows where that boolean column is true (row groups without any are skipped).

    A local file is read by Arrow's own (memory-mapped) file, not through Python's. (Reading a row group
    whole is no faster on genoflow's files and 20x slower on Spark's, whose groups are ~100,000 rows.)
    """
    import pyarrow.parquet as pq

    with (nullcontext(ranged.path) if ranged.is_local else ranged.open_seekable()) as source:
        parquet = pq.ParquetFile(source, memory_map=ranged.is_local)
        wanted = list(parquet.schema_arrow.names if columns is None else columns)
        at = parquet.metadata.schema.names.index(keep) if keep else None
        for group in range(parquet.num_row_groups):
            if keep and _none_true(parquet.metadata.row_group(group).column(at).statistics):
                continue
            for rows in parquet.iter_batches(batch_size=batch_rows, row_groups=[group], use_threads=False,
                                             columns=wanted + ([keep] if keep and keep not in wanted else [])):
                if keep:
                    rows = rows.filter(rows.column(keep))
                if rows.num_rows:
                    yield rows.select(wanted)


def _none_true(stats) -> bool:
    return stats is not None and stats.has_min_max and not stats.max

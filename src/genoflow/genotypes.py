"""The one registry of genotype-table and sample-table columns and their encodings.

Genotype table (variant-major Parquet, one row per biallelic variant): :data:`GENOTYPE_COLUMNS`
below names each column, its Arrow type and what it holds; :data:`GENOTYPE_SCHEMA` (pyarrow) and
:data:`GENOTYPE_SCHEMA_DDL` (Spark) are derived from it, and :func:`validate` checks a table's
columns and types against it. ``dosages`` is ``numpy.int8`` bytes, one per sample in sample-table
order: 0/1/2 copies of ALT, haploid 0/1, :data:`MISSING` = -1. ``mean_dp`` and ``mean_gq`` were
added after the first release: readers select columns by name, and older tables simply lack them.

Sample table (one row per VCF sample, in genotype column order)
    sample_index (int32), pid (string pseudonym), the clinical columns, the sample QC columns
    and the read QC columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from genoflow.errors import InputError

__all__ = ["MISSING", "DOSAGE_DTYPE", "Column", "GENOTYPE_COLUMNS", "GENOTYPE_COLUMN_NAMES", "GENOTYPE_SCHEMA",
           "GENOTYPE_SCHEMA_DDL", "arrow_schema", "spark_ddl", "validate", "pack_dosages", "unpack_dosages",
           "stack_dosages", "dosage_matrix", "dosage_column", "VARIANT_KEY_COLUMNS", "BLOCK_BYTES", "rows_per_block",
           "block_budget", "arrow_batch_conf", "size_parquet_reader", "GENOTYPE_PARQUET_OPTIONS"]

MISSING = -1
DOSAGE_DTYPE = np.int8
VARIANT_KEY_COLUMNS = ("contig", "pos", "ref", "alt")


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, Arrow type, meaning, and whether older tables may lack it."""

    name: str
    arrow: pa.DataType
    meaning: str
    optional: bool = False  # added after the first release: tables written before lack it

    @property
    def ddl(self) -> str:
        """The Spark DDL type (``long`` for int64...)."""
        return _SPARK_DDL[self.arrow]


# Arrow type -> Spark DDL type name, and the name Spark's schema prints for it (simpleString).
_SPARK_DDL = {pa.string(): "string", pa.int64(): "long", pa.int32(): "int", pa.int8(): "tinyint",
              pa.float64(): "double", pa.bool_(): "boolean", pa.binary(): "binary"}
_SPARK_SIMPLE = {"long": "bigint", "int": "int", "tinyint": "tinyint"}
# Arrow types that read back as another spelling of the same values (a large_string Parquet column).
_SAME_AS = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}

GENOTYPE_COLUMNS: tuple[Column, ...] = (
    Column("contig", pa.string(), "contig name, spelled as the reference FASTA spells it (the VCF's without one)"),
    Column("pos", pa.int64(), "1-based position"),
    Column("id", pa.string(), "the VCF's ID column"),
    Column("ref", pa.string(), "REF allele, upper case"),
    Column("alt", pa.string(), "one ALT allele, upper case (multi-allelic records give one row per ALT)"),
    Column("gene", pa.string(), 'gene overlapping the variant, "" when intergenic or without annotations'),
    Column("line", pa.int64(), "1-based VCF line where known; null for records of later BGZF splits and merges"),
    Column("call_rate", pa.float64(), "fraction of samples with a call"),
    Column("alt_af", pa.float64(), "ALT allele frequency over called samples"),
    Column("maf", pa.float64(), "minor allele frequency"),
    Column("hwe_p", pa.float64(), "Hardy-Weinberg exact test p-value"),
    Column("qc_pass", pa.bool_(), "call_rate, maf and hwe_p pass the preprocess thresholds"),
    Column("dosages", pa.binary(), "int8 per sample in sample-table order: 0/1/2 copies of ALT, haploid 0/1, "
           "MISSING = -1; from GT, or the rounded DS when a record has no GT"),
    Column("mean_dp", pa.float64(), "mean FORMAT DP over the samples that have one; null when none has",
           optional=True),
    Column("mean_gq", pa.float64(), "mean FORMAT GQ over the samples that have one; null when none has",
           optional=True),
)
GENOTYPE_COLUMN_NAMES = tuple(column.name for column in GENOTYPE_COLUMNS)


def arrow_schema(columns) -> pa.Schema:
    """The pyarrow schema of registry ``columns``, in their order."""
    return pa.schema([(column.name, column.arrow) for column in columns])


def spark_ddl(columns) -> str:
    """The Spark DDL string of registry ``columns``, e.g. ``"contig string, pos long"``."""
    return ", ".join(f"{column.name} {column.ddl}" for column in columns)


GENOTYPE_SCHEMA = arrow_schema(GENOTYPE_COLUMNS)
GENOTYPE_SCHEMA_DDL = spark_ddl(GENOTYPE_COLUMNS)

# How tasks that write a genotype table themselves encode it (pyarrow.parquet.ParquetWriter options,
# decision 0032): snappy, as Spark's writer, so every reader keeps its decompression cost; dictionaries
# only for the columns of few distinct values (dosages and ids are nearly all distinct); no min/max
# statistics of the dosages (pyarrow would keep two whole rows per row group in the footer).
GENOTYPE_PARQUET_OPTIONS = {"compression": "snappy", "use_dictionary": ["contig", "ref", "alt", "gene"],
                            "write_statistics": [name for name in GENOTYPE_SCHEMA.names if name != "dosages"]}


def validate(table_or_df, *, source: str = "genotype table", columns=GENOTYPE_COLUMNS) -> None:
    """Check that a table has the registry's columns with their types (the schema only, no data read).

    ``table_or_df``: a pyarrow Table, RecordBatch or Schema, or a Spark DataFrame. Extra columns are
    allowed; ``optional`` columns may be absent (tables written before they were added).

    Raises
    ------
    InputError
        Naming ``source``, each missing column and each column of another type.
    """
    found = _column_types(table_or_df)
    missing = [column.name for column in columns if column.name not in found and not column.optional]
    wrong = []
    for column in columns:
        if column.name in found:
            expected = column.arrow if isinstance(found[column.name], pa.DataType) else _spark_simple(column)
            if found[column.name] != expected:
                wrong.append(f"column {column.name!r} is {found[column.name]}, expected {expected}")
    problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + wrong
    if problems:
        raise InputError(source, "not a genoflow genotype table: " + "; ".join(problems))


def _spark_simple(column: Column) -> str:
    return _SPARK_SIMPLE.get(column.ddl, column.ddl)


def _column_types(table_or_df) -> dict:
    """Column name -> Arrow type (pyarrow input) or Spark's simpleString (Spark DataFrame)."""
    schema = table_or_df if isinstance(table_or_df, pa.Schema) else table_or_df.schema
    if isinstance(schema, pa.Schema):
        return {f.name: _SAME_AS.get(f.type, f.type) for f in schema}
    return {f.name: f.dataType.simpleString() for f in schema.fields}

# The working set of one block of variants, in bytes (decision 0012). Blocks and Arrow batches are sized
# by this, never by a count of lines: a genotype row carries one value per sample, so 2,000 rows are
# 16 MB of float64 at 1,000 patients and 1.6 GB at 100,000.
BLOCK_BYTES = 64 << 20
_MAX_BLOCK_ROWS = 8192  # past this, larger blocks buy nothing (BLAS is saturated) and delay progress


def rows_per_block(n_samples: int, bytes_per_value: int = 8, budget: int = BLOCK_BYTES) -> int:
    """Variants per block so that one block of ``n_samples`` values of ``bytes_per_value`` fits ``budget``.

    ``bytes_per_value`` is that of the widest per-sample array the block's code builds: 8 for float64
    (standardised genotypes, GLM working arrays), 1 for int8 dosages, ~4 for VCF text (``0|1\t``).

    >>> rows_per_block(1_000)
    8192
    >>> rows_per_block(100_000)
    83
    >>> rows_per_block(100_000, bytes_per_value=1)
    671
    """
    per_row = max(1, int(n_samples)) * max(1, int(bytes_per_value))
    return int(min(_MAX_BLOCK_ROWS, max(1, budget // per_row)))


def block_budget(params: dict | None) -> int:
    """The byte budget of one block from the params' ``compute.block_mb``; :data:`BLOCK_BYTES` when unset.

    >>> block_budget({"compute": {"block_mb": 16}})
    16777216
    """
    mb = ((params or {}).get("compute") or {}).get("block_mb")
    return BLOCK_BYTES if mb is None else max(1, int(float(mb) * (1 << 20)))


def arrow_batch_conf(n_samples: int, bytes_per_value: int = 1, budget: int = BLOCK_BYTES) -> dict[str, str]:
    """Session settings that size Arrow batches of genotype rows by :func:`rows_per_block`.

    For :func:`genoflow.spark.session_conf` around the *action* (write, collect, count) of a query with a
    ``mapInPandas``/``mapInArrow`` over genotype rows: Spark reads the setting when the query runs, not when
    the DataFrame is built. Its default (10,000 rows) is 1 GB of int8 dosages at 100,000 samples.
    """
    return {"spark.sql.execution.arrow.maxRecordsPerBatch": str(rows_per_block(n_samples, bytes_per_value, budget))}


def size_parquet_reader(spark, n_samples: int, budget: int = BLOCK_BYTES) -> None:
    """Size the JVM's vectorized Parquet reader batches of genotype rows by :func:`rows_per_block`.

    The reader fills batches of 4,096 rows whatever their width (``columnarReaderBatchSize``): at
    100,000 samples that is 391 MB of packed dosages per batch and task, which ran a 3 GB driver out of
    heap in preprocess (BENCHMARKS.md, Biobank scale). Set for the session once the sample count is
    known, before the first read of a genotype table: narrow tables read in smaller batches lose little.
    """
    rows = rows_per_block(n_samples, 1, budget)
    spark.conf.set("spark.sql.parquet.columnarReaderBatchSize", str(min(rows, 4096)))


def pack_dosages(dosages: np.ndarray) -> bytes:
    """Pack one variant's dosages, shape (n_samples,), into the table's binary encoding."""
    return np.ascontiguousarray(dosages, dtype=DOSAGE_DTYPE).tobytes()


def unpack_dosages(packed: bytes) -> np.ndarray:
    """Dosages of one variant, shape (n_samples,) int8, from the binary encoding (read-only view)."""
    return np.frombuffer(packed, dtype=DOSAGE_DTYPE)


def stack_dosages(packed_column, samples=None) -> np.ndarray:
    """A block of variants, shape (n_variants, n_samples) int8, from a sequence of packed rows.

    ``samples``: the sample columns to keep, in this order. The block stays row-major (``np.take``):
    ``block[:, samples]`` would be column-major, and every per-variant pass over it would stride
    across memory (the association kernel ran several times slower on it).
    """
    rows = list(packed_column)
    if not rows:
        return np.empty((0, 0 if samples is None else len(samples)), dtype=DOSAGE_DTYPE)
    block = np.frombuffer(b"".join(rows), dtype=DOSAGE_DTYPE).reshape(len(rows), -1)
    return block if samples is None else np.take(block, samples, axis=1)


def dosage_column(matrix: np.ndarray):
    """An Arrow ``binary`` array from a block of variants, shape (n_variants, n_samples): one packed value
    per row, the block's bytes used in place (no Python ``bytes`` per variant). The inverse of
    :func:`dosage_matrix`; a block over 2 GiB needs splitting first (int32 offsets)."""
    import pyarrow as pa

    block = np.ascontiguousarray(matrix, dtype=DOSAGE_DTYPE)
    n, width = block.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(block)])


def dosage_matrix(column, n_samples: int) -> np.ndarray:
    """A block of variants, shape (n_variants, n_samples) int8, from an Arrow binary column.

    Reads the Arrow data buffer in place of building one Python ``bytes`` per variant.

    Raises
    ------
    ValueError
        If a value is not ``n_samples`` bytes long.
    """
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if n == 0:
        return np.empty((0, n_samples), dtype=DOSAGE_DTYPE)
    offset_type = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offset_type)[array.offset : array.offset + n + 1]
    if np.any(np.diff(offsets) != n_samples):
        raise ValueError(f"dosage_matrix: every value must be {n_samples} bytes (one per sample)")
    data = np.frombuffer(array.buffers()[2], dtype=DOSAGE_DTYPE)
    return data[offsets[0] : offsets[-1]].reshape(n, n_samples)


def variant_label(contig: str, pos: int, ref: str, alt: str) -> str:
    """A column-safe feature name for a variant, e.g. ``v_chr22_10583_G_A``."""
    return f"v_{contig}_{pos}_{ref}_{alt}"

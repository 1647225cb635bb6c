"""Spark wrapper of :func:`genoflow.stats.glm.glm_block`: a whole genotype table, block by block.

The variant-major genotype table (``genoflow.genotypes``: one row per variant, ``dosages`` the
packed int8 dosages of every sample) is streamed through ``mapInArrow``: each Arrow batch of a
partition is cut into blocks of ``block_size`` variants (by default as many as fit the byte budget,
:func:`genoflow.genotypes.rows_per_block`), read in place from the Arrow buffer, reduced to the tested
samples and regressed in the executor; the statistics go back as Arrow columns (no pandas frame on
either side, decision 0029). The caller sizes the Arrow batches themselves: run the action under
``session_conf(spark, arrow_batch_conf(n_samples, 1, budget))`` (decision 0012). Only the null model
(samples x covariates) travels to the executors and only per-variant statistics come back: the cohort
is never collected to the driver.
"""

from __future__ import annotations

import numpy as np

from genoflow.genotypes import BLOCK_BYTES, rows_per_block
from genoflow.stats.glm import RESULT_COLUMNS, GlmNull, glm_block, prepare_glm

__all__ = ["glm_scan", "glm_scans", "GLM_RESULT_DDL", "GLM_BYTES_PER_VALUE"]

# Bytes per (variant, tested sample) cell while glm_block runs: about 8 float64 arrays of the block
# (design, weights, working residuals, Firth's hat values).
GLM_BYTES_PER_VALUE = 64

GLM_RESULT_DDL = (
    "n_obs long, alt_freq double, beta double, se double, stat double, p double, neglog10_p double, firth boolean"
)
"""Spark schema of the statistics :func:`glm_scan` adds to the key columns (see ``glm_block``)."""

_KEY_TYPES = {"contig": "string", "pos": "long", "id": "string", "ref": "string", "alt": "string", "gene": "string"}


def glm_scan(genotypes, y, covariates=None, *, family: str, sample_index=None, block_size: int | None = None,
             key_columns=("contig", "pos", "id", "ref", "alt"), firth_fallback: bool = True, max_vif: float = 50.0,
             budget: int = BLOCK_BYTES):
    """Per-variant regression of a trait on every variant of a genotype table (lazy Spark DataFrame).

    Parameters
    ----------
    genotypes : pyspark.sql.DataFrame or genoflow.storage.parts.ParquetFolder
        The genotype table (at least ``key_columns`` and ``dosages``), e.g. the QC-passing rows of
        preprocess' ``genotypes/``: as a DataFrame, or as its files for the tasks to read
        (``ParquetFolder.of(spark, uri, keep="qc_pass")``; cheaper: decision 0032).
    y : array-like, shape (n,)
        The trait of the tested samples (no NaN): 0/1 for ``family="logistic"``.
    covariates : array-like, shape (n, c), optional
        Covariates of the same samples (sex, age, principal components...), no intercept.
    family : {"linear", "logistic"}
    sample_index : array-like of int, shape (n,), optional
        Positions of the tested samples in the ``dosages`` arrays (the sample table's
        ``sample_index``), in the order of ``y``. Default: every sample, in order.
    block_size : int, optional
        Variants regressed together; default ``rows_per_block(n, GLM_BYTES_PER_VALUE, budget)``
        (executor memory: ~8 float64 arrays of block_size x n).
    key_columns : sequence of str
        Columns copied from ``genotypes`` to the result (from contig, pos, id, ref, alt, gene).
    firth_fallback, max_vif
        See :func:`genoflow.stats.glm.glm_block` and :func:`genoflow.stats.glm.prepare_glm`.
    budget : int
        Bytes of one block's working arrays (the params' ``compute.block_mb``).

    Returns
    -------
    pyspark.sql.DataFrame
        ``key_columns`` + :data:`GLM_RESULT_DDL`, one row per variant.

    Raises
    ------
    ValueError
        Bad trait/covariates (see ``prepare_glm``), ``sample_index`` of the wrong length, unknown
        key columns; inside the job, a row whose dosages do not match the sample count.
    """
    null = prepare_glm(y, covariates, family=family, max_vif=max_vif)
    index = np.arange(null.n) if sample_index is None else np.asarray(sample_index, dtype=np.int64)
    if index.shape != (null.n,):
        raise ValueError(f"glm_scan: sample_index must have shape ({null.n},) like y, got {index.shape}")
    unknown = [c for c in key_columns if c not in _KEY_TYPES]
    if unknown:
        raise ValueError(f"glm_scan: key_columns {unknown} are not among {list(_KEY_TYPES)}")
    block_size = rows_per_block(null.n, GLM_BYTES_PER_VALUE, budget) if block_size is None else block_size
    if block_size < 1:
        raise ValueError(f"glm_scan: block_size must be >= 1, got {block_size}")
    keys = list(key_columns)
    schema = ", ".join(f"{c} {_KEY_TYPES[c]}" for c in keys) + ", " + GLM_RESULT_DDL
    run = _block_runner([(null, index)], keys, block_size, firth_fallback, with_scan=False)
    return _map_genotypes(genotypes, keys, run, schema)


def glm_scans(genotypes, fits, *, family: str, block_size: int | None = None,
              key_columns=("contig", "pos", "ref", "alt"), firth_fallback: bool = True, max_vif: float = 50.0,
              budget: int = BLOCK_BYTES):
    """Several scans of one genotype table in a single pass: one per ``(y, covariates, sample_index)``.

    Nested cross-validation scans the same variants on many overlapping subsets of the training
    patients (one per fold, and per inner fold of the cross-fitted scores); reading and unpacking
    every block once for all of them leaves only the regression itself per scan.

    Returns the :func:`glm_scan` columns with a leading ``scan`` int column: the position of the
    fit in ``fits``. The block is sized for the largest fit (one fit's arrays live at a time).
    """
    keys = list(key_columns)
    runs = []
    for y, covariates, sample_index in fits:
        null = prepare_glm(y, covariates, family=family, max_vif=max_vif)
        index = np.asarray(sample_index, dtype=np.int64)
        if index.shape != (null.n,):
            raise ValueError(f"glm_scans: sample_index must have shape ({null.n},) like y, got {index.shape}")
        runs.append((null, index))
    widest = max((null.n for null, _ in runs), default=1)
    block_size = rows_per_block(widest, GLM_BYTES_PER_VALUE, budget) if block_size is None else block_size
    schema = "scan int, " + ", ".join(f"{c} {_KEY_TYPES[c]}" for c in keys) + ", " + GLM_RESULT_DDL
    run = _block_runner(runs, keys, block_size, firth_fallback, with_scan=True)
    return _map_genotypes(genotypes, keys, run, schema)


def _map_genotypes(genotypes, keys: list, run, schema: str):
    """``run`` over the key columns and dosages of a DataFrame, or of a
    :class:`~genoflow.storage.parts.ParquetFolder` the tasks read themselves (no JVM conversion of the
    dosages: decision 0032), in Arrow batches of the session's ``maxRecordsPerBatch`` either way."""
    from genoflow.storage.parts import ParquetFolder

    if isinstance(genotypes, ParquetFolder):
        rows = int(genotypes.spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
        return genotypes.map_in_arrow([*keys, "dosages"], run, schema, batch_rows=rows)
    return genotypes.select(*keys, "dosages").mapInArrow(run, schema)


def _block_runner(runs: list[tuple[GlmNull, np.ndarray]], keys: list, block_size: int, firth_fallback: bool,
                  with_scan: bool):
    """The mapInArrow function; a closure over small arrays only (shipped with each task)."""
    reach = max((int(index.max(initial=-1)) for _, index in runs), default=-1)
    names = (["scan"] if with_scan else []) + keys + list(RESULT_COLUMNS)

    def run(batches):
        import pyarrow as pa

        for batch in batches:
            for start in range(0, batch.num_rows, block_size):
                chunk = batch.slice(start, block_size)
                dosages = _packed_dosages(chunk.column(len(keys)))
                if dosages.shape[1] <= reach:
                    first = [chunk.column(i)[0].as_py() for i in range(len(keys))]
                    raise ValueError(f"glm_scan: variant {first}: {dosages.shape[1]} dosages, "
                                     f"but sample_index reaches {reach}")
                key_columns = [chunk.column(i) for i in range(len(keys))]
                for scan, (null, index) in enumerate(runs):
                    stats = glm_block(null, np.take(dosages, index, axis=1), firth_fallback=firth_fallback)
                    scans = [pa.array(np.full(chunk.num_rows, scan, dtype=np.int32))] if with_scan else []
                    yield pa.RecordBatch.from_arrays(scans + key_columns + [_arrow(stats[k]) for k in RESULT_COLUMNS],
                                                     names=names)

    return run


def _packed_dosages(column) -> np.ndarray:
    """(variants, samples) int8 read in place from the Arrow ``dosages`` column (as wide as its first row)."""
    from genoflow.genotypes import dosage_matrix

    if not len(column):
        return np.empty((0, 0), dtype=np.int8)
    return dosage_matrix(column, len(column[0].as_py()))


def _arrow(values: np.ndarray):
    """A statistics column as mapInPandas made it: NaN (an untestable variant) as null."""
    import pyarrow as pa

    return pa.array(values, mask=np.isnan(values)) if values.dtype.kind == "f" else pa.array(values)

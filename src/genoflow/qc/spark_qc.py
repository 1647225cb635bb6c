"""plink2-order cohort QC over a Spark genotype table (the numpy kernels of :mod:`genoflow.qc.plink_qc`).

Three passes over the variant-major table, none of which brings genotypes to the driver:

1. :func:`sample_missingness`: per-sample missing counts over every variant (``--mind``), and
   whether male X calls are haploid- or diploid-coded (a ``treeReduce`` of small arrays);
2. :func:`apply_variant_filters`: a lazy ``mapInPandas`` recomputing each variant's ``call_rate``,
   ``alt_af``, ``maf``, ``hwe_p`` and ``qc_pass`` on the samples that passed ``--mind`` (``--geno``,
   ``--hwe``, ``--maf``); the caller writes the result;
3. :func:`sample_f_statistics`: on the written table's ``qc_pass`` rows, the per-sample counts
   of plink2 ``--het`` (autosomes) and plink 1.9 ``--check-sex`` (X), then outliers and sex calls.
"""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pyarrow as pa

from genoflow.genotypes import BLOCK_BYTES, arrow_batch_conf, dosage_matrix, stack_dosages
from genoflow.qc.plink_qc import (
    QcThresholds,
    f_from_counts,
    het_f_counts,
    het_outliers,
    is_x_contig,
    sex_check,
    sex_check_counts,
    variant_filter_pass,
    variant_filter_stats,
)
from genoflow.qc.variant_qc import sample_counts
from genoflow.storage.parts import ParquetFolder

__all__ = ["sample_missingness", "apply_variant_filters", "write_variant_filters", "sample_f_statistics",
           "QC_BYTES_PER_VALUE"]

# Bytes per (variant, sample) cell of one Arrow batch while the QC kernels run on it: the int8 batch,
# its sample-subset copy and the float64 temporaries of the HWE/F-statistic counts.
QC_BYTES_PER_VALUE = 8

_PARTIAL = pa.schema([("partial", pa.binary())])  # one pickled partial result per partition


def _reduce_partitions(frame, n_samples: int, count, merge, budget: int = BLOCK_BYTES):
    """``count(blocks)`` of every partition of ``frame``, merged by ``treeReduce(merge)`` in the executors.

    ``blocks`` yields ``(contig names, dosages)`` per Arrow batch, the dosages an (n_variants,
    ``n_samples``) int8 view of the batch's buffer (:func:`~genoflow.genotypes.dosage_matrix`, which
    raises ValueError for a row of another length), a batch holding one block's worth of rows under
    ``budget``. Only the small per-partition partials are pickled.
    """
    from genoflow.spark import session_conf

    def run(batches):
        blocks = ((batch.column("contig").to_pylist(), dosage_matrix(batch.column("dosages"), n_samples))
                  for batch in batches)
        yield pa.RecordBatch.from_pydict({"partial": [pickle.dumps(count(blocks))]}, schema=_PARTIAL)

    conf = arrow_batch_conf(n_samples, QC_BYTES_PER_VALUE, budget)
    if isinstance(frame, ParquetFolder):  # the tasks read the files themselves (decision 0032)
        rows = int(conf["spark.sql.execution.arrow.maxRecordsPerBatch"])
        partials, spark = frame.map_in_arrow(["contig", "dosages"], run, "partial binary", batch_rows=rows), frame.spark
    else:
        partials, spark = frame.select("contig", "dosages").mapInArrow(run, "partial binary"), frame.sparkSession
    with session_conf(spark, conf):
        return partials.rdd.map(lambda row: pickle.loads(row.partial)).treeReduce(merge)


def sample_missingness(genotypes, male, t: QcThresholds, *, budget: int = BLOCK_BYTES) -> dict:
    """Pass 1: ``--mind`` over all variants.

    Returns ``missingness`` (float64, shape (n_samples,)), ``mind_pass`` (bool), ``het_rate``
    (heterozygous / called genotypes, all variants; informative only), ``n_variants`` and
    ``haploid_coded`` (male X calls coded 0/1 rather than 0/2; True when there is no X).
    """
    male = np.asarray(male, dtype=bool)
    n = male.size

    def count(blocks):
        missing, het, called, n_variants, male_two = (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                                                      np.zeros(n, dtype=np.int64), 0, False)
        for contig, d in blocks:
            block_missing, block_het = sample_counts(d)  # one compiled pass, not three numpy ones
            missing += block_missing
            het += block_het
            called += d.shape[0] - block_missing
            n_variants += d.shape[0]
            x = is_x_contig(contig)
            male_two |= bool((d[x][:, male] == 2).any())
        return missing, het, called, n_variants, male_two

    def merge(a, b):
        return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] or b[4]

    missing, het, called, n_variants, male_two = _reduce_partitions(genotypes, n, count, merge, budget)
    with np.errstate(invalid="ignore", divide="ignore"):
        missingness = missing / np.float64(n_variants)
        het_rate = het / called
    return {
        "missingness": missingness,
        "het_rate": het_rate,
        "mind_pass": missingness <= t.max_sample_missingness + 1e-9,
        "n_variants": int(n_variants),
        "haploid_coded": not male_two,
    }


def apply_variant_filters(genotypes, male, mind: dict, t: QcThresholds):
    """Pass 2 (lazy): the table with its QC columns recomputed the plink2 way on the ``--mind`` survivors.

    ``genotypes`` must have ``contig``, ``dosages`` and the double columns ``call_rate``, ``alt_af``,
    ``maf``, ``hwe_p`` and boolean ``qc_pass``, which are replaced; every other column is kept as is.
    Run its action under ``arrow_batch_conf(n_samples, QC_BYTES_PER_VALUE, budget)``
    (:func:`genoflow.genotypes.arrow_batch_conf`): each Arrow batch is one block.
    """
    keep = np.flatnonzero(mind["mind_pass"])
    kept_male = np.asarray(male, dtype=bool)[keep]
    coding = mind["haploid_coded"]

    def run(batches):
        for batch in batches:
            d = stack_dosages(batch["dosages"], keep)
            batch = batch.copy()
            for column, values in _filter_columns(d, batch["contig"].to_numpy(), kept_male, coding, t).items():
                batch[column] = values
            yield batch

    return genotypes.mapInPandas(run, genotypes.schema)


def _filter_columns(d: np.ndarray, contig, kept_male, coding: bool, t: QcThresholds) -> dict:
    """The recomputed QC columns of a block, ``d`` its dosages of the ``--mind`` survivors."""
    stats = variant_filter_stats(d, is_x=is_x_contig(contig), male=kept_male, hwe_midp=t.hwe_midp,
                                 haploid_coded=coding)
    return {**{column: stats[column] for column in ("call_rate", "alt_af", "maf", "hwe_p")},
            "qc_pass": variant_filter_pass(stats, t)}


def write_variant_filters(source, out, male, mind: dict, t: QcThresholds, *, order=None,
                          budget: int = BLOCK_BYTES) -> None:
    """Pass 2 written by the tasks (decision 0032): :func:`apply_variant_filters`' table, each task reading
    files of ``source`` (a :class:`~genoflow.storage.parts.ParquetFolder`) and writing Parquet files into
    ``out`` (a :class:`~genoflow.storage.RangedFile` of the folder, which exists). No row crosses the JVM.

    In each file the passing rows come first, as their own row group, then the failing ones: whoever reads
    ``qc_pass`` rows (Spark's filter pushdown, ``ParquetFolder(keep="qc_pass")``) skips the rest unread.
    ``order``: the written dosages hold the source's samples at these positions, in this order (``male`` and
    ``mind`` are already in that order).
    """
    import pyarrow.compute as pc

    from genoflow.genotypes import GENOTYPE_PARQUET_OPTIONS, GENOTYPE_SCHEMA, dosage_column, rows_per_block
    from genoflow.storage.parts import WRITTEN_PART_DDL, collect_written, write_parquet_part

    keep = np.flatnonzero(mind["mind_pass"])
    kept_male = np.asarray(male, dtype=bool)[keep]
    coding = mind["haploid_coded"]
    n = len(male)
    keep = None if len(keep) == n else keep  # everyone passed --mind: no copy of the block for the stats
    order = None if order is None or np.array_equal(order, np.arange(n)) else np.asarray(order, dtype=np.int64)

    def run(batches):
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()  # a retry reads the same files in the same batches: same names
        for k, batch in enumerate(batches):
            matrix = dosage_matrix(batch.column("dosages"), n)
            if order is not None:
                matrix = np.take(matrix, order, axis=1)
            contig = batch.column("contig").to_numpy(zero_copy_only=False)
            table = pa.Table.from_batches([batch])
            survivors = matrix if keep is None else np.take(matrix, keep, axis=1)
            for name, values in _filter_columns(survivors, contig, kept_male, coding, t).items():
                field = table.schema.field(name)  # NaN as null, as the pandas path (mapInPandas) writes it
                table = table.set_column(table.schema.get_field_index(name), field,
                                         pa.array(values, type=field.type, from_pandas=True))
            table = table.set_column(table.schema.get_field_index("dosages"), "dosages", dosage_column(matrix))
            passing = table.column("qc_pass")
            groups = [g for g in (table.filter(passing), table.filter(pc.invert(passing))) if g.num_rows]
            name = f"part-{part:05d}-{k:06d}.parquet"
            write_parquet_part(out, name, groups, table.schema, **GENOTYPE_PARQUET_OPTIONS)
            yield pa.RecordBatch.from_pydict({"file": [name], "rows": [table.num_rows]})

    rows = rows_per_block(n, QC_BYTES_PER_VALUE, budget)
    collect_written(source.map_in_arrow(None, run, WRITTEN_PART_DDL, batch_rows=rows), out, schema=GENOTYPE_SCHEMA)


def sample_f_statistics(genotypes, male, mind: dict, t: QcThresholds, *, sex_known=None,
                        budget: int = BLOCK_BYTES) -> dict:
    """Pass 3: ``--het`` F and its outliers, ``--check-sex`` F and problems, on the ``qc_pass`` rows.

    Returns per-sample arrays (NaN / False for samples failing ``--mind``): ``het_f``,
    ``het_outlier``, ``sex_f``, ``snp_sex`` (1 male, 2 female, 0 undetermined), ``sex_problem``,
    and ``sample_qc_pass`` (``--mind`` passed, not a heterozygosity outlier, no sex problem).
    ``sex_known`` (bool per sample, default all): samples of unknown sex are left out of the sex check.
    """
    keep = np.flatnonzero(mind["mind_pass"])
    male = np.asarray(male, dtype=bool)
    kept_male = male[keep]
    coding = mind["haploid_coded"]
    fields = ("o_hom", "n_obs", "e_hom")

    def count(blocks):
        het = {f: np.zeros(keep.size) for f in fields}
        sex = {f: np.zeros(keep.size) for f in fields}
        n_x = 0
        for contig, all_samples in blocks:
            d = np.take(all_samples, keep, axis=1)  # row-major, as stack_dosages(packed, samples)
            x = is_x_contig(contig)
            for f, v in het_f_counts(d[~x]).items():
                het[f] += v
            if x.any():
                n_x += int(x.sum())
                for f, v in sex_check_counts(d[x], kept_male, haploid_coded=coding).items():
                    sex[f] += v
        return het, sex, n_x

    def merge(a, b):
        return ({f: a[0][f] + b[0][f] for f in fields}, {f: a[1][f] + b[1][f] for f in fields}, a[2] + b[2])

    n = male.size
    files = isinstance(genotypes, ParquetFolder)
    passing = replace(genotypes, keep="qc_pass") if files else genotypes.filter("qc_pass")
    het, sex, n_x = _reduce_partitions(passing, n, count, merge, budget)
    out = {"het_f": np.full(n, np.nan), "het_outlier": np.zeros(n, dtype=bool), "sex_f": np.full(n, np.nan)}
    out["het_f"][keep] = f_from_counts(het)
    out["het_outlier"][keep] = het_outliers(out["het_f"][keep], t.max_het_sd)
    if n_x:
        out["sex_f"][keep] = f_from_counts(sex)
    calls = sex_check(out["sex_f"], male, t, known=sex_known)
    out["snp_sex"], out["sex_problem"] = calls["snp_sex"], calls["problem"]
    out["sample_qc_pass"] = mind["mind_pass"] & ~out["het_outlier"] & ~out["sex_problem"]
    return out

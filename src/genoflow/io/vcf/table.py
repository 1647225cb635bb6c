"""Table assembly: `decode_vcf_block` runs the record scan, the call decoding and the checks on a
block of lines and builds the Arrow table (one row per record and kept ALT; the columns are the
genotype registry's, `genoflow.genotypes.GENOTYPE_COLUMNS`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from genoflow.genotypes import GENOTYPE_COLUMNS, GENOTYPE_SCHEMA, arrow_schema, dosage_column
from genoflow.io.vcf.calls import (
    _apply_call_filters,
    _decode_genotypes,
    _dosages,
    _first_genotype_problem,
    _raise_first,
)
from genoflow.io.vcf.records import _Lines, _split_lines

__all__ = ["VCF_RECORD_SCHEMA", "VcfBlock", "decode_vcf_block", "parse_vcf_records"]

# The parsed records: the genotype table's variant and dosage columns (decode_vcf_block adds line, mean_dp, mean_gq).
_RECORD_COLUMNS = ("contig", "pos", "id", "ref", "alt", "dosages")
VCF_RECORD_SCHEMA = arrow_schema(c for c in GENOTYPE_COLUMNS if c.name in _RECORD_COLUMNS)


@dataclass(frozen=True)
class VcfBlock:
    """What `decode_vcf_block` makes of a block of data lines.

    Attributes
    ----------
    table : pyarrow.Table
        One row per (record, kept ALT allele); see `parse_vcf_records`.
    n_skipped_alts : int
        Symbolic, breakend and ``*`` ALT alleles that gave no row.
    """

    table: pa.Table
    n_skipped_alts: int


def parse_vcf_records(
    lines: Sequence[str],
    *,
    n_samples: int,
    source: str,
    first_line_number: int,
    with_line_numbers: bool = False,
) -> pa.Table:
    """Parse VCF data lines into one row per (record, ALT allele) with packed dosages.

    Parameters
    ----------
    lines : sequence of str
        Consecutive data lines (no header lines), with or without line ends. Empty lines
        (e.g. after the last newline of a chunk) are skipped.
    n_samples : int
        Number of sample columns, from the header (`VcfHeader.n_samples`).
    source : str
        Name of the file, for error messages.
    first_line_number : int
        1-based line number of ``lines[0]`` in ``source``.
    with_line_numbers : bool
        Add an ``int64`` column ``line`` (the 1-based line of each row's record), e.g. for
        `genoflow.io.fasta.check_ref_alleles`.

    Returns
    -------
    pyarrow.Table
        `VCF_RECORD_SCHEMA`: ``contig`` string, ``pos`` int64 (1-based), ``id`` string, ``ref``
        string and ``alt`` string (upper case, one ALT per row), ``dosages`` binary of
        ``n_samples`` bytes (``numpy.int8``: 0/1/2, haploid 0/1, missing -1). Records with ALT
        ``.`` (no alternate allele) give no row.

    Raises
    ------
    InputError
        For the first bad line, with its line number: wrong column count, POS not a positive
        integer, REF/ALT not in ``[ACGTN]+`` (symbolic ``<...>``, breakend and ``*`` ALTs are
        give no row and are counted by `decode_vcf_block`), FORMAT with neither GT nor DS, an
        unparseable GT, DS, GQ or DP, a GT allele index greater than the number of ALT alleles,
        ploidy above 2.
    """
    block = decode_vcf_block(lines, n_samples=n_samples, source=source, first_line_number=first_line_number,
                             with_line_numbers=with_line_numbers)
    return block.table


def decode_vcf_block(
    lines: Sequence[str] | pa.Array,
    *,
    n_samples: int,
    source: str,
    first_line_number: int,
    with_line_numbers: bool = False,
    with_call_stats: bool = False,
    min_gq: float = 0,
    min_dp: float = 0,
) -> VcfBlock:
    """`parse_vcf_records` with the genotype-field options of the ingest job.

    Parameters
    ----------
    lines : sequence of str, or pyarrow string array
        As for `parse_vcf_records`; an Arrow array (e.g. a batch of Spark's text source) is read in
        place, without a Python string per line.
    n_samples, source, first_line_number, with_line_numbers
        As for `parse_vcf_records`.
    with_call_stats : bool
        Add ``float64`` columns ``mean_dp`` and ``mean_gq``: the mean of the samples' DP and GQ
        over the samples that have one (null when none has).
    min_gq, min_dp : float
        Calls whose GQ (DP) is below this are set to missing, as plink2's ``--vcf-min-gq``
        (``--vcf-min-dp``); calls without a GQ (DP) value are kept. 0 turns a filter off.

    Returns
    -------
    VcfBlock
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    text = _Lines.scan(lines, n_samples)
    records, line_problem = _split_lines(text, n_samples)
    n_alt = np.fromiter((len(a) for a in records.alts), dtype=np.int64, count=len(records.alts))
    wanted = set()
    if with_call_stats or min_gq > 0:
        wanted.add("GQ")
    if with_call_stats or min_dp > 0:
        wanted.add("DP")
    alleles = _decode_genotypes(text, records, n_samples, n_alt, wanted)
    gt_problem = _first_genotype_problem(text, records, alleles, n_alt)
    _raise_first(line_problem, gt_problem, records, source, first_line_number)
    _apply_call_filters(alleles, min_gq, min_dp)
    table = _build_table(records, alleles, n_alt, n_samples, first_line_number, with_line_numbers, with_call_stats)
    n_kept = sum(sum(k) for k in records.kept)
    return VcfBlock(table=table, n_skipped_alts=int(n_alt.sum()) - n_kept)


def _mean_over_samples(values: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN where a row has no value (without numpy's empty-slice warning)."""
    present = ~np.isnan(values)
    count = present.sum(axis=1)
    total = np.where(present, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _binary_column(dosage: np.ndarray) -> pa.ChunkedArray:
    """Pack each row of an ``int8`` matrix as one ``binary`` value, without copying rows."""
    n_rows, width = dosage.shape
    dosage = np.ascontiguousarray(dosage)
    # int32 offsets: chunk so that no chunk holds more than 2**31 - 1 bytes.
    per_chunk = max(1, (2**31 - 1) // max(width, 1))
    chunks = [dosage_column(dosage[lo : lo + per_chunk]) for lo in range(0, n_rows, per_chunk)]
    return pa.chunked_array(chunks, type=pa.binary())


def _build_table(records, alleles, n_alt, n_samples, first_line_number, with_line_numbers,
                 with_call_stats=False) -> pa.Table:
    def per_row(values):
        return [v for v, k in zip(values, n_alt.tolist(), strict=True) for _ in range(k)]

    columns = {
        "contig": pa.array(per_row(records.contig), type=pa.string()),
        "pos": pa.array(per_row(records.pos), type=pa.int64()),
        "id": pa.array(per_row(records.vid), type=pa.string()),
        "ref": pa.array(per_row(records.ref), type=pa.string()),
        "alt": pa.array([a for alts in records.alts for a in alts], type=pa.string()),
        "dosages": _binary_column(_dosages(alleles, n_alt).reshape(-1, n_samples)),
    }
    schema = VCF_RECORD_SCHEMA
    if with_line_numbers:
        lines = np.repeat(np.asarray(records.index, dtype=np.int64) + first_line_number, n_alt)
        columns["line"] = pa.array(lines, type=pa.int64())
        schema = schema.append(GENOTYPE_SCHEMA.field("line"))
    if with_call_stats:
        for key in ("DP", "GQ"):
            name = f"mean_{key.lower()}"
            if key not in alleles.numbers:
                columns[name] = pa.nulls(int(n_alt.sum()), type=pa.float64())
                schema = schema.append(GENOTYPE_SCHEMA.field(name))
                continue
            mean = np.repeat(_mean_over_samples(alleles.numbers[key]), n_alt)
            columns[name] = pa.array(mean, type=pa.float64(), mask=np.isnan(mean))
            schema = schema.append(GENOTYPE_SCHEMA.field(name))
    table = pa.table(columns, schema=schema)
    kept = np.fromiter((k for row in records.kept for k in row), dtype=bool, count=int(n_alt.sum()))
    return table if kept.all() else table.filter(pa.array(kept))

"""VCF 4.x parsing into the variant-major dosage layout of decision 0001.

Pure Python/numpy/pyarrow (no Spark): the Spark jobs call `decode_vcf_block` from executors on
blocks of lines as Arrow string arrays (cut from a task's own BGZF range by `bgzf`, or Spark's text
source for other files), read in place.
One compiled pass (`genoflow._kernels.vcf.scan_lines`) finds where each line's fixed columns end,
counts its columns and decodes the calls of GT-only lines of one-digit diploid calls straight from
the bytes. The fixed columns are then validated line by line in Python (a handful of string
operations on the ~40 bytes before the samples); the calls of any other line (other FORMAT
layouts, haploid calls, multi-digit alleles, errors) are joined into one byte buffer and decoded
with whole-array numpy operations. No genotype is ever touched one by one in Python.

Dosage encoding (the registry is `genoflow.genotypes`): ``int8`` alternate-allele count, 0/1/2,
haploid 0/1, ``-1`` when any allele of the call is missing. Multi-allelic records are split into
one row per ALT allele (as ``bcftools norm -m-``): for ALT ``k`` the dosage counts alleles ``== k``.
Symbolic ALT alleles (``<DEL>``, ``<*>``), breakends and the spanning deletion ``*`` give no row:
they are counted (`VcfBlock.n_skipped_alts`) rather than rejected. Without GT, a ``DS`` (expected
ALT dosage) field gives the dosage rounded to the nearest integer. ``GQ`` and ``DP`` can set calls
below a threshold to missing (plink2's ``--vcf-min-gq`` / ``--vcf-min-dp``) and give per-variant
means (`decode_vcf_block`'s ``with_call_stats``).

The parser is split along its seams: `header` (meta lines, ``#CHROM``, line reading), `records`
(the line scan, fixed columns, ALT), `calls` (GT/DS/GQ/DP decoding) and `table` (`decode_vcf_block`
and the Arrow table). This package re-exports the public names.
"""

from genoflow.genotypes import MISSING as MISSING_DOSAGE
from genoflow.io.vcf.header import VCF_FIXED_COLUMNS, VcfHeader, iter_vcf_lines, parse_vcf_header
from genoflow.io.vcf.records import format_layout, is_skipped_alt
from genoflow.io.vcf.table import VCF_RECORD_SCHEMA, VcfBlock, decode_vcf_block, parse_vcf_records

__all__ = [
    "MISSING_DOSAGE",
    "VCF_FIXED_COLUMNS",
    "VCF_RECORD_SCHEMA",
    "VcfBlock",
    "VcfHeader",
    "decode_vcf_block",
    "format_layout",
    "is_skipped_alt",
    "iter_vcf_lines",
    "parse_vcf_header",
    "parse_vcf_records",
]

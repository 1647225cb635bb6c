"""Parsers and validators for the cohort's input formats (pure Python/numpy, no Spark).

Each parser raises `genoflow.errors.InputError` naming the file, the line (or record) and the
problem. The Spark jobs call these from executors on chunks of text or bytes.
"""

from genoflow.io.clinical import CLINICAL_COLUMNS, CLINICAL_SCHEMA, parse_clinical_csv
from genoflow.io.fasta import check_ref_alleles, resolve_contig
from genoflow.io.fastq import FASTQ_QC_KEYS, fastq_read_qc
from genoflow.io.gff import Gene, GeneIndex, read_genes
from genoflow.io.reference import IndexedReference, open_reference
from genoflow.io.vcf import (
    MISSING_DOSAGE,
    VCF_FIXED_COLUMNS,
    VCF_RECORD_SCHEMA,
    VcfHeader,
    iter_vcf_lines,
    parse_vcf_header,
    parse_vcf_records,
)

__all__ = [
    "CLINICAL_COLUMNS",
    "CLINICAL_SCHEMA",
    "FASTQ_QC_KEYS",
    "MISSING_DOSAGE",
    "VCF_FIXED_COLUMNS",
    "VCF_RECORD_SCHEMA",
    "Gene",
    "GeneIndex",
    "IndexedReference",
    "VcfHeader",
    "check_ref_alleles",
    "fastq_read_qc",
    "iter_vcf_lines",
    "parse_clinical_csv",
    "parse_vcf_header",
    "parse_vcf_records",
    "read_genes",
    "open_reference",
    "resolve_contig",
]

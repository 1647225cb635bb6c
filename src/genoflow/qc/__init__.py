"""Variant and sample quality control kernels (numpy only; called per block by the Spark jobs)."""

from genoflow.qc.sample_qc import SampleQcAccumulator, expected_homozygosity, flag_outliers, inbreeding_f
from genoflow.qc.variant_qc import genotype_counts, hwe_exact_p, variant_qc

__all__ = [
    "SampleQcAccumulator",
    "expected_homozygosity",
    "flag_outliers",
    "genotype_counts",
    "hwe_exact_p",
    "inbreeding_f",
    "variant_qc",
]

"""Compiled (numba) inner loops of the hot paths: VCF decoding, genotype counts, the exact HWE test
and the sums of logistic IRLS.

Each kernel replaces a block of whole-array numpy passes with one pass over the data. Only
:mod:`genoflow.io.vcf`, :mod:`genoflow.qc.variant_qc` and :mod:`genoflow.stats.glm` import them (so
numba, ~0.3 s to import, never loads at DAG parse time); ``cache=True`` keeps the machine code on
disk beside the source, or in numba's user-wide cache for a zip shipped with ``--py-files``, so a
process loads rather than compiles it. Kernels with a float division use numpy's error model:
Python's raises ZeroDivisionError, and the check stops LLVM from vectorising the loop. Decision 0009.
"""

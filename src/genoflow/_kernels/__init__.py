"""Compiled (numba) inner loops of the hot paths: VCF genotype decoding and the exact HWE test.

Each kernel replaces a block of whole-array numpy passes with one pass over the data. Only
:mod:`genoflow.io.vcf` and :mod:`genoflow.qc.variant_qc` import them (so numba, ~0.3 s to import,
never loads at DAG parse time); ``cache=True`` keeps the machine code on disk beside the source, or
in numba's user-wide cache for a zip shipped with ``--py-files``, so a process loads rather than
compiles it. Decision 0009.
"""

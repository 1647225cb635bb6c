"""Compiled (numba) inner loops of the hot paths: VCF genotype decoding and the exact HWE test.

Each kernel replaces a block of whole-array numpy passes with one pass over the data. They are
imported lazily by their callers (numba's import and a kernel's first compile cost about a second
in a fresh process; ``cache=True`` keeps the machine code on disk beside the source, or in numba's
user-wide cache for a zip shipped with ``--py-files``). Decision 0009.
"""

"""The pileup of one window in one pass over its reads' bases (see :func:`genoflow.reads.pileup.pileup_window`).

numpy needed about twenty whole-array passes per base (positions, masks, gathers, three weighted
bincounts); these loops visit each base once and add in the same order, so the sums are the same bits.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def pile_depth(bases, quals, offsets, starts, samples, skip_start, skip_end, win_start, min_baseq, allele_of,
               depth):
    """Add each counted base to ``depth[sample, column, allele]`` (int32, zeroed by the caller).

    A base counts when it falls in the window, outside its read's ``[skip_start, skip_end)``, is A/C/G/T
    (``allele_of``) and has quality >= ``min_baseq``. ``offsets`` start at 0.
    """
    win_len = depth.shape[1]
    for r in range(starts.shape[0]):
        lo, n, first = offsets[r], offsets[r + 1] - offsets[r], starts[r] - win_start
        skip_lo, skip_hi = skip_start[r] - win_start - first, skip_end[r] - win_start - first
        sample = samples[r]
        for k in range(max(0, -first), min(n, win_len - first)):
            if skip_lo <= k < skip_hi:
                continue
            allele = allele_of[bases[lo + k]]
            if allele < 0 or quals[lo + k] < min_baseq:
                continue
            depth[sample, first + k, allele] += 1


@njit(cache=True, nogil=True)
def pile_sums(bases, quals, offsets, starts, samples, skip_start, skip_end, mapq, win_start, min_baseq,
              allele_of, columns, hom_of, het_of, other_of, hom, het, other):
    """Add the log terms of each counted base (as `pile_depth` counts them) in the ``columns`` marked True.

    A base's quality counts as at most its read's ``mapq``; the terms come from the per-quality tables.
    """
    win_len = hom.shape[1]
    for r in range(starts.shape[0]):
        lo, n, first = offsets[r], offsets[r + 1] - offsets[r], starts[r] - win_start
        skip_lo, skip_hi = skip_start[r] - win_start - first, skip_end[r] - win_start - first
        sample, cap = samples[r], mapq[r]
        for k in range(max(0, -first), min(n, win_len - first)):
            column = first + k
            if not columns[column] or skip_lo <= k < skip_hi:
                continue
            allele, q = allele_of[bases[lo + k]], quals[lo + k]
            if allele < 0 or q < min_baseq:
                continue
            if q > cap:
                q = cap
            hom[sample, column, allele] += hom_of[q]
            het[sample, column, allele] += het_of[q]
            other[sample, column, allele] += other_of[q]

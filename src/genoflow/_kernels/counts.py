"""Per-variant genotype counts of a dosage block in one pass (see :func:`genoflow.qc.genotype_counts`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dosage_counts(dosages):
    """Counts of dosage -1 (missing), 0, 1 and 2 in each row: int64, shape (n_rows, 4).

    A row's counts fall short of its length by the number of any other values.
    """
    counts = np.empty((dosages.shape[0], 4), dtype=np.int64)
    for i in range(dosages.shape[0]):
        missing = hom_ref = het = hom_alt = 0
        for j in range(dosages.shape[1]):
            d = dosages[i, j]
            missing += d == -1
            hom_ref += d == 0
            het += d == 1
            hom_alt += d == 2
        counts[i, 0], counts[i, 1], counts[i, 2], counts[i, 3] = missing, hom_ref, het, hom_alt
    return counts

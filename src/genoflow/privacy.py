"""Coarsening of quasi-identifiers in step outputs, and at scoring the same way (decision 0018).

Age with sex and the phenotypes singles out patients: on the 1,000-patient demo cohort 147 patients
are unique on (age, sex, disease_status, treatment_response) with age in years. No model needs age
to the year (it is one linear covariate), so the sample table stores a 5-year band's midpoint
(40-44 -> 42.5): still a number the models use as a covariate, but shared by five times as many
patients. A model whose spec records the band (:func:`genoflow.features.spec.fit_covariates`) bands the
value a clinician sends to the API with the same function, so training and serving agree.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BANDED_COVARIATES", "band_midpoint", "coarsen_study_columns"]

# Numeric study columns stored as the midpoint of a band of this width (in the column's unit).
BANDED_COVARIATES: dict[str, float] = {"age": 5.0}


def band_midpoint(values, width: float):
    """The midpoint of each value's band ``[k*width, (k+1)*width)``; NaN stays NaN. Idempotent.

    >>> band_midpoint(np.array([40.0, 44.9, 45.0, np.nan]), 5.0).tolist()[:3]
    [42.5, 42.5, 47.5]
    >>> float(band_midpoint(42.5, 5.0))
    42.5
    """
    values = np.asarray(values, dtype=float)
    return np.floor(values / width) * width + width / 2


def coarsen_study_columns(frame):
    """``frame`` (the study's columns, a pandas DataFrame) with each :data:`BANDED_COVARIATES` column banded.

    Only numeric columns are banded; a study whose ``age`` is categorical (e.g. already "40-49") is kept.
    """
    import pandas as pd

    out = frame.copy()
    for name, width in BANDED_COVARIATES.items():
        if name in out and pd.api.types.is_numeric_dtype(out[name]):
            out[name] = band_midpoint(out[name].to_numpy(dtype=float), width)
    return out

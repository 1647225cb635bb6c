"""Simulated data for demos and tests: a coalescent cohort with known truth, and incoming batches.

The generators are imported on first use (PEP 562): they pull in msprime, scipy and Biopython, and
``genoflow.cli`` reads :mod:`genoflow.simulate.spec` for every command's parser.
"""

import importlib

__all__ = ["make_demo_cohort", "make_cohort_batches", "make_weak_effect_cohort", "CohortSpec"]

_HOMES = {
    "make_demo_cohort": "genoflow.simulate.cohort",
    "make_cohort_batches": "genoflow.simulate.batches",
    "make_weak_effect_cohort": "genoflow.simulate.weak",
    "CohortSpec": "genoflow.simulate.spec",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'genoflow.simulate' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

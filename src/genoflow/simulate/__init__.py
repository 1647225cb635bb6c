"""Simulated data for demos and tests: a coalescent cohort with known truth, and incoming batches."""

from genoflow.simulate.batches import make_cohort_batches
from genoflow.simulate.cohort import make_demo_cohort
from genoflow.simulate.weak import make_weak_effect_cohort

__all__ = ["make_demo_cohort", "make_cohort_batches", "make_weak_effect_cohort"]

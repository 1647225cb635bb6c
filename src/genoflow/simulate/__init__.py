"""Simulated data for demos and tests: a coalescent cohort with known truth, and incoming batches."""

from genoflow.simulate.batches import make_cohort_batches
from genoflow.simulate.cohort import make_demo_cohort

__all__ = ["make_demo_cohort", "make_cohort_batches"]

"""Simulated data for demos and tests: a coalescent cohort with known truth."""

from genoflow.simulate.cohort import make_demo_cohort

__all__ = ["make_demo_cohort"]

"""Drift monitoring: statistics between the training cohort and incoming batches, the Spark job
that computes them for the registry's champion, and the plot of a drift report.

Import-light: submodules import numpy/scipy (``drift``), Spark and MLflow (``job``) themselves.
"""

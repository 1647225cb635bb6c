"""Airflow operators and hooks for genoflow: DVC dataset versions and MLflow promotion.

Import-light: Airflow parses DAG files that import these often, so genoflow, DVC and MLflow
are imported inside hooks' methods only.
"""

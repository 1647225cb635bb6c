"""The Airflow Assets genoflow produces and consumes, declared once.

``RAW_COHORT`` is the DVC-versioned raw cohort (``data/raw``): ``cohort_ingest`` emits an event on
it for every ingested cohort, with the DVC hash (the dataset version) in the event's extra, and
``genomic_risk_training`` is scheduled on it.
"""

from __future__ import annotations

from airflow.sdk import Asset

__all__ = ["RAW_COHORT", "DATASET_VERSION_KEY"]

RAW_COHORT = Asset(name="genoflow_raw_cohort", uri="dvc://genoflow/data/raw", group="genoflow")
DATASET_VERSION_KEY = "dataset_version"  # the event extra's key holding the DVC hash

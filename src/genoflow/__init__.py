"""genoflow: an Airflow-orchestrated MLOps platform for genomic data on Spark, DVC and MLflow."""

__version__ = "0.1.0"

"""SparkSession for genoflow jobs: the master and resources come from spark-submit."""

from __future__ import annotations

__all__ = ["get_spark"]


def get_spark(app_name: str, conf: dict[str, str] | None = None):
    """Return the job's SparkSession (created by spark-submit's configuration, or local[2] in tests)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark

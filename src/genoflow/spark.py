"""SparkSession for genoflow jobs: the master and resources come from spark-submit."""

from __future__ import annotations

__all__ = ["get_spark"]


def get_spark(app_name: str, conf: dict[str, str] | None = None):
    """Return the job's SparkSession (created by spark-submit's configuration, or local[2] in tests).

    The Hadoop client gets :data:`~genoflow.storage.health.FAIL_FAST_HADOOP_CONF` for every key
    the Spark conf does not set as ``spark.hadoop.<key>``, so a dead NameNode fails the job fast.
    """
    from pyspark.sql import SparkSession

    from genoflow.config import Settings, bgzf_codec_conf
    from genoflow.storage.health import FAIL_FAST_HADOOP_CONF

    builder = SparkSession.builder.appName(app_name)
    # spark-submit already passed these (genoflow.config.spark_conf); a session started in-process needs them here.
    for key, value in {**bgzf_codec_conf(Settings()), **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    spark_conf = spark.sparkContext.getConf()
    for key, value in FAIL_FAST_HADOOP_CONF.items():
        if not spark_conf.contains(f"spark.hadoop.{key}"):
            hadoop_conf.set(key, value)
    return spark

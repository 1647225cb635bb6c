"""Storage by URI under one root, through Spark's Hadoop FileSystem (file://, hdfs://, ...)."""

from genoflow.storage.hadoop import HadoopStorage, StepOutput

__all__ = ["HadoopStorage", "StepOutput"]

"""Storage by URI under one root, through Spark's Hadoop FileSystem (file://, hdfs://, ...)."""

from genoflow.storage.hadoop import HadoopStorage, StepOutput, attempt_tag

__all__ = ["HadoopStorage", "StepOutput", "attempt_tag"]

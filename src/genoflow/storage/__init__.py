"""Storage by URI under one root, through Spark's Hadoop FileSystem (file://, hdfs://, ...)."""

from genoflow.storage.hadoop import HadoopStorage, StepOutput, attempt_tag
from genoflow.storage.ranged import RangedFile, webhdfs_address

__all__ = ["HadoopStorage", "RangedFile", "StepOutput", "attempt_tag", "webhdfs_address"]

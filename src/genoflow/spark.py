"""SparkSession for genoflow jobs: the master and resources come from spark-submit."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["get_spark", "glob_uris", "session_conf", "map_in_order", "prefer_installed_pyspark", "run_worker_daemon"]


def prefer_installed_pyspark() -> None:
    """Import pyspark and py4j from their installed packages rather than the zips spark-submit puts first on
    ``sys.path``, where both are the same install (a pip-installed pyspark is its own SPARK_HOME).

    Python keeps no bytecode for modules imported from a zip, so a driver importing pyspark from
    ``$SPARK_HOME/python/lib/pyspark.zip`` compiles some 400 modules on every job: 0.6 s of CPU
    instead of 0.15 s (BENCHMARKS.md, "Per-task fixed cost"). A zip that belongs to another Spark
    install (a cluster's SPARK_HOME) stays: its pyspark must match that JVM.
    """
    if "pyspark" in sys.modules:
        return
    for entry in list(sys.path):
        path = Path(entry)
        if path.suffix != ".zip" or path.parent.parts[-3:] != ("pyspark", "python", "lib"):
            continue
        installed = path.parents[3]  # .../site-packages: <here>/pyspark/python/lib/<zip>
        package = "py4j" if path.name.startswith("py4j") else "pyspark"
        if str(installed) in sys.path and (installed / package / "__init__.py").is_file():
            sys.path.remove(entry)


def run_worker_daemon() -> None:
    """Spark's Python worker daemon (``pyspark.daemon``), importing the installed pyspark.

    The JVM starts the daemon with ``$SPARK_HOME/python/lib/pyspark.zip`` first on its PYTHONPATH, so
    each job's daemon compiled pyspark's worker modules from source: 0.6 s of CPU where the installed
    package's bytecode takes 0.1 s (decision 0030). ``spark.python.daemon.module=genoflow.spark``
    (:func:`genoflow.spark_submit.spark_conf`, local masters only: a cluster's executors may not
    have genoflow installed) runs it through here. Its workers are forked from it and inherit its
    ``sys.path`` and modules.
    """
    import runpy

    prefer_installed_pyspark()
    # Forget the genoflow this daemon was started from: where a job ships py-files (a zip of genoflow put
    # first on the tasks' sys.path), its tasks import genoflow from there, as the stock daemon's do.
    for name in [name for name in sys.modules if name == "genoflow" or name.startswith("genoflow.")]:
        del sys.modules[name]
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)


def get_spark(app_name: str, conf: dict[str, str] | None = None):
    """Return the job's SparkSession (created by spark-submit's configuration, or local[2] in tests).

    The Hadoop client gets :data:`~genoflow.storage.health.FAIL_FAST_HADOOP_CONF` for every key
    the Spark conf does not set as ``spark.hadoop.<key>``, so a dead NameNode fails the job fast.
    """
    prefer_installed_pyspark()
    from pyspark.sql import SparkSession

    from genoflow.config import Settings
    from genoflow.spark_submit import bgzf_codec_conf
    from genoflow.storage.health import FAIL_FAST_HADOOP_CONF

    builder = SparkSession.builder.appName(app_name)
    # spark-submit already passed these (genoflow.spark_submit.spark_conf); an in-process session needs them here.
    codec_conf = bgzf_codec_conf(Settings())
    codecs = codec_conf.pop("spark.hadoop.io.compression.codecs", None)
    for key, value in {**codec_conf, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    _register_codecs(hadoop_conf, codecs)
    spark_conf = spark.sparkContext.getConf()
    for key, value in FAIL_FAST_HADOOP_CONF.items():
        if not spark_conf.contains(f"spark.hadoop.{key}"):
            hadoop_conf.set(key, value)
    return spark


def _register_codecs(hadoop_conf, codecs: str | None) -> None:
    """Use the BGZF codec only where the driver JVM can load it.

    A JVM that spark-submit started without genoflow's --conf (a bare ``spark-submit jobs/x.py``)
    cannot take the jar on its classpath any more; naming an unloadable codec would fail every read
    of a .gz, so such a run reads each bgzip file whole instead.
    """
    if not codecs:
        return
    if all(hadoop_conf.getClassByNameOrNull(name) is not None for name in codecs.split(",")):
        hadoop_conf.set("io.compression.codecs", codecs)
    else:
        import logging

        logging.getLogger(__name__).warning(
            "the BGZF codec is not on the driver's classpath (spark-submit without genoflow's --conf): "
            "bgzip files are read whole, one task each")


def glob_uris(spark, pattern: str) -> list[str]:
    """Sorted URIs of the files matching a Hadoop glob (``hdfs://.../*/x.csv``), listed by the driver."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    statuses = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).globStatus(path) or []
    return sorted(str(status.getPath().toUri()) for status in statuses)


@contextmanager
def session_conf(spark, conf: dict[str, str]):
    """Set SQL settings for the duration of a block, then restore what was there."""
    saved = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def map_in_order(func, items: list, *, workers: int) -> list:
    """``[func(item) for item in items]``, ``workers`` at a time; the first failure cancels what has not started.

    For work that is mostly py4j round trips and small Spark jobs (a step's models in train and evaluate,
    the features step's targets): threads on the one SparkSession overlap their latency."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = [pool.submit(func, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


if __name__ == "__main__":  # python -m genoflow.spark <worker module>: spark.python.daemon.module
    run_worker_daemon()

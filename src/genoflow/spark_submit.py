"""spark-submit settings for genoflow jobs: the driver JVM's options, the class archive, the BGZF codec.

Resolved where a job is submitted (an operator's ``execute()``, ``make archive``, a benchmark), never
at DAG parse time: they stat files (the codec jar, the class archive) on the submitting machine.
Depends on :mod:`genoflow.config` only, which stays a leaf (decision 0023).
"""

from __future__ import annotations

from pathlib import Path

from genoflow.config import Settings

__all__ = ["spark_conf", "is_local", "bgzf_codec_conf", "sharing_option", "archive_path", "ARCHIVE", "BGZF_CODEC_JAR",
           "BGZF_CODECS", "BATCH_DEFAULTS", "DRIVER_JVM_OPTIONS", "LOCAL_DAEMON_CONF"]

# The driver JVM (in local mode also the executor) compiles with C1 only: a genoflow job lasts seconds
# to minutes, and C2's compile threads cost more than its faster code repays there (ooa cohort,
# bench/: VCF->Parquet 18.7 -> 17.1 s, association 19.1 -> 16.6 s, about a third less CPU). Cluster
# executors, which run long, keep the JVM's default. C1-only code fills the default 48 MB code cache in a
# long train step ("CodeCache is full. Compiler has been disabled": new code then runs interpreted), so
# the cache is reserved larger (address space, not memory, until used).
DRIVER_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"

# A genoflow step is a batch job nobody watches while it runs: no Spark UI by default. Its Jetty server,
# listeners and status store cost every task ~0.25 s of CPU at SparkContext start (BENCHMARKS.md, "Per-task
# fixed cost"; decision 0030). params.yaml's or a run's `spark:` section switches it back on
# (`spark.ui.enabled: "true"`), e.g. to watch a long job on a cluster.
BATCH_DEFAULTS = {"spark.ui.enabled": "false"}

# A local run's Python worker daemon imports the installed pyspark's bytecode rather than compiling it
# from pyspark.zip on every job (genoflow.spark.run_worker_daemon; decision 0030). Local masters only:
# the daemon must import genoflow before any task, and a cluster's executors get it only as py-files.
LOCAL_DAEMON_CONF = {"spark.python.daemon.module": "genoflow.spark"}

# The driver's class-data-sharing archive (decision 0010), written by ``make archive`` (genoflow.jvm_archive).
ARCHIVE = ".genoflow/jvm/spark-driver.jsa"

BGZF_CODEC_JAR = "hadoop/bgzf-codec/target/genoflow-bgzf-codec.jar"
BGZF_CODECS = "org.genoflow.hadoop.BgzfCodec,org.genoflow.hadoop.BgzCodec"


def spark_conf(settings: Settings, params: dict, *, share_classes: bool = True,
               master: str | None = None) -> dict[str, str]:
    """spark-submit --conf values for genoflow jobs: quiet driver logging, C1-only compilation and (once
    built) the class archive in the driver JVM, the BGZF codec, :data:`BATCH_DEFAULTS` (no Spark UI),
    for a ``local`` ``master`` :data:`LOCAL_DAEMON_CONF`, then params' `spark:` section, which
    overrides any of them."""
    log4j = settings.home / "config" / "spark" / "log4j2.properties"
    options = [f"-Dlog4j2.configurationFile={log4j.as_uri()}" if log4j.exists() else "", DRIVER_JVM_OPTIONS,
               sharing_option(settings) if share_classes else ""]
    conf = {"spark.driver.extraJavaOptions": " ".join(option for option in options if option)}
    local = LOCAL_DAEMON_CONF if is_local(master) else {}
    return {**conf, **bgzf_codec_conf(settings), **BATCH_DEFAULTS, **local,
            **{k: _conf_value(v) for k, v in (params.get("spark") or {}).items()}}


def is_local(master: str | None) -> bool:
    """A ``local[...]`` master: the driver and its Python workers run on the submitting machine, beside the
    genoflow it imports, so they need no copy of the library (decision 0036)."""
    return (master or "").startswith("local")


def _conf_value(value) -> str:
    """A params value as Spark conf text: a YAML boolean becomes Spark's spelling ("true", not "True")."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def archive_path(settings: Settings) -> Path:
    return settings.home / ARCHIVE


def sharing_option(settings: Settings) -> str:
    """The driver JVM option that maps the class archive, or "" when it has not been built."""
    path = archive_path(settings)
    return f"-XX:SharedArchiveFile={path}" if path.exists() else ""


def bgzf_codec_conf(settings: Settings) -> dict[str, str]:
    """Spark conf that splits bgzip files at BGZF blocks (decision 0006); empty until the jar is built.

    ``make codec`` (part of ``make test``/``make demo``) builds the jar. It goes on the driver and
    executor classpath for local runs and in ``spark.jars`` for cluster executors; registering it
    for ``.gz`` replaces Hadoop's GzipCodec, which it falls back to behaving like for plain gzip.
    """
    jar = settings.home / BGZF_CODEC_JAR
    if not jar.exists():
        return {}
    return {
        "spark.jars": jar.as_uri(),
        "spark.driver.extraClassPath": str(jar),
        "spark.executor.extraClassPath": str(jar),
        "spark.hadoop.io.compression.codecs": BGZF_CODECS,
    }

"""A class-data-sharing archive for the driver JVM of genoflow's Spark jobs (decision 0010).

A Spark driver running a demo ingest loads some 20,000 classes, 13,000 of them from pyspark's 277
jars: about 4 s of every job on the development machine. Java's class-data sharing maps them from
an archive instead, written once by a JVM that ran the pipeline (``-XX:ArchiveClassesAtExit``): the
demo cohort's VCF->Parquet ingest falls from 11.1 to 7.2 s. ``make archive`` (part of ``make demo``
and ``make test``) writes it; :func:`genoflow.spark_submit.spark_conf` hands it to every job it finds.

The JVM checks the archive against its own build and class path and quietly loads classes the
usual way when they differ (another JDK, a reinstalled pyspark, a rebuilt codec jar, a cluster
node without the file), so a stale or absent archive costs its speed, never a job.

    python -m genoflow.jvm_archive     # build it (spark-submits jobs/jvm_warm_up.py once)

The warm-up workload itself lives in jobs/jvm_warm_up.py, its one caller: this module is imported by
no pipeline code and imports none (decision 0023).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from genoflow.spark_submit import archive_path, spark_conf

__all__ = ["archive_path", "build_archive"]

log = logging.getLogger(__name__)


def build_archive(settings=None, params: dict | None = None) -> Path:
    """Run the pipeline once on a small simulated cohort in one spark-submit and keep the classes
    its driver JVM loaded; the archive replaces the old one only once complete."""
    from genoflow.config import Settings, load_params
    from genoflow.pseudonym import ALLOW_DEMO_KEY_ENV

    settings = settings or Settings()
    params = params if params is not None else load_params(settings.params_file)
    target = archive_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genoflow-jvm-archive-") as work:
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        conf = spark_conf(settings, params, share_classes=False)
        conf["spark.driver.extraJavaOptions"] += f" -XX:ArchiveClassesAtExit={partial}"
        argv = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
                *(item for key, value in conf.items() for item in ("--conf", f"{key}={value}")),
                str(settings.home / "jobs" / "jvm_warm_up.py"), work]
        python = sys.executable  # the driver and workers run this venv's Python, as jobs do
        env = {**os.environ, "GENOFLOW_HOME": str(settings.home), "PYSPARK_PYTHON": python,
               "PYSPARK_DRIVER_PYTHON": python, "PATH": os.pathsep.join([str(Path(python).parent), os.environ["PATH"]]),
               "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db",
               "GENOFLOW_ARTIFACT_ROOT": Path(work, "mlartifacts").as_uri(),
               ALLOW_DEMO_KEY_ENV: "1"}  # a simulated cohort, thrown away: no real patient to protect
        try:
            run = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if run.returncode or not partial.exists():
                raise RuntimeError(f"the warm-up job failed (exit {run.returncode}), so no class archive was "
                                   f"written; its output ends:\n{run.stdout[-4000:]}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("wrote %s", build_archive())

"""A class-data-sharing archive for the driver JVM of genoflow's Spark jobs (decision 0010).

A Spark driver running a demo ingest loads some 20,000 classes, 13,000 of them from pyspark's 277
jars: about 4 s of every job on the development machine. Java's class-data sharing maps them from
an archive instead, written once by a JVM that ran the pipeline (``-XX:ArchiveClassesAtExit``): the
demo cohort's VCF->Parquet ingest falls from 11.1 to 7.2 s. ``make archive`` (part of ``make demo``
and ``make test``) writes it; :func:`genoflow.config.spark_conf` hands it to every job it finds.

The JVM checks the archive against its own build and class path and quietly loads classes the
usual way when they differ (another JDK, a reinstalled pyspark, a rebuilt codec jar, a cluster
node without the file), so a stale or absent archive costs its speed, never a job.

    python -m genoflow.jvm_archive     # build it (spark-submits jobs/jvm_warm_up.py once)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["ARCHIVE", "archive_path", "sharing_option", "build_archive", "warm_up"]

ARCHIVE = ".genoflow/jvm/spark-driver.jsa"

log = logging.getLogger(__name__)

# The warm-up cohort: large enough for every step to take its usual path (PCA, association,
# scores, all model families), small enough to simulate and run in about a minute.
_WARM_UP_COHORT = {"n_patients": 120, "sequence_length": 200_000, "seed": 11, "n_causal": 5,
                   "reads_per_patient": 10}
_WARM_UP_DATASET = "jvm-archive-warm-up"
# Every model family once, with the least fitting that still runs its code.
_WARM_UP_TRAINING = {"cv_folds": 2,
                     "grid": {"logistic_regression": {"regParam": [0.1], "elasticNetParam": [0.0]},
                              "random_forest": {"numTrees": [5], "maxDepth": [3]},
                              "gbt": {"maxIter": [3], "maxDepth": [2]}}}

_WARM_UP_TARGETS = {"disease_status": "binary"}  # replaces study.targets (a merge would keep the others)


def archive_path(settings) -> Path:
    return settings.home / ARCHIVE


def sharing_option(settings) -> str:
    """The driver JVM option that maps the archive, or "" when it has not been built."""
    path = archive_path(settings)
    return f"-XX:SharedArchiveFile={path}" if path.exists() else ""


def build_archive(settings=None, params: dict | None = None) -> Path:
    """Run the pipeline once on a small simulated cohort in one spark-submit and keep the classes
    its driver JVM loaded; the archive replaces the old one only once complete."""
    from genoflow.config import Settings, load_params, spark_conf

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
               "GENOFLOW_ARTIFACT_ROOT": Path(work, "mlartifacts").as_uri()}
        try:
            run = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if run.returncode or not partial.exists():
                raise RuntimeError(f"the warm-up job failed (exit {run.returncode}), so no class archive was "
                                   f"written; its output ends:\n{run.stdout[-4000:]}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def warm_up(work: Path) -> int:
    """Inside spark-submit (jobs/jvm_warm_up.py): every pipeline step on a small simulated cohort,
    in one driver JVM; returns the first failing step's exit code, or 0."""
    import json

    from genoflow.config import load_params
    from genoflow.pipeline.runner import main
    from genoflow.simulate.cohort import make_demo_cohort

    make_demo_cohort(work / "data", **_WARM_UP_COHORT)
    params = load_params(overrides={"train": _WARM_UP_TRAINING})
    params["study"]["targets"] = dict(_WARM_UP_TARGETS)
    params = json.dumps(params)
    for step in ("preprocess", "features", "train", "evaluate"):
        code = main(step, ["--storage-root", (work / "data").as_uri(), "--dataset-version", _WARM_UP_DATASET,
                           "--params-json", params])
        if code:
            return code
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("wrote %s", build_archive())

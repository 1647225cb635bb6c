"""The Python worker daemon of local runs (spark.python.daemon.module=genoflow.spark, decision 0030)."""

from __future__ import annotations


def _module_files(_) -> tuple[str, str]:
    import pyspark

    import genoflow.config

    return pyspark.__file__, genoflow.config.__file__


def test_worker_daemon__workers_import_the_installed_pyspark_not_sparks_zip(spark):
    import pyspark

    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == "genoflow.spark"
    (worker_pyspark, worker_genoflow), = set(spark.sparkContext.parallelize([0], 1).map(_module_files).collect())
    # The stock daemon imports pyspark from $SPARK_HOME/python/lib/pyspark.zip, first on its PYTHONPATH.
    assert ".zip" not in worker_pyspark and worker_pyspark == pyspark.__file__
    import genoflow.config

    assert worker_genoflow == genoflow.config.__file__  # re-imported by the task, not kept from the daemon

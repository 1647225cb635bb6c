"""The driver class archive `make archive` writes (genoflow.jvm_archive) is the one a genoflow job's
driver JVM maps: `-Xshare:on` makes a JVM that cannot use it exit at start instead of quietly
loading every class from the jars again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genoflow.config import Settings, load_params
from genoflow.jvm_archive import archive_path
from genoflow.spark_submit import spark_conf
from tests.conftest import REPO

pytestmark = pytest.mark.integration

PROBE = "from pyspark.sql import SparkSession\nprint('rows', SparkSession.builder.getOrCreate().range(7).count())\n"


def test_spark_submit__driver_maps_the_class_archive(tmp_path):
    settings = Settings({"GENOFLOW_HOME": str(REPO)})
    assert archive_path(settings).exists(), "no driver class archive: `make archive` (part of `make test`) writes it"
    conf = spark_conf(settings, load_params(REPO / "params.yaml"))
    class_log = tmp_path / "classes.log"
    conf["spark.driver.extraJavaOptions"] += f" -Xshare:on -Xlog:class+load=info:file={class_log}"
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
         *(item for key, value in conf.items() for item in ("--conf", f"{key}={value}")), str(probe)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "rows 7" in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]
    # "top" is the archive layered over the JDK's own: Spark's classes come from it, not from the jars.
    loaded = class_log.read_text()
    assert "org.apache.spark.SparkContext source: shared objects file (top)" in loaded
    assert "org.apache.spark.sql.SparkSession source: shared objects file (top)" in loaded

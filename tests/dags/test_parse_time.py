"""Parsing the DAG files resolves no spark-submit settings: the operator does, when the task runs (decision 0023)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_dag_files__parse_without_spark_submit_settings():
    """Parsing neither imports genoflow.spark_submit (which stats the codec jar and the class archive on the
    dag-processor's disk) nor gives a Spark task a conf."""
    code = ("import json, os, sys; sys.path.insert(0, 'plugins'); os.environ.setdefault('GENOFLOW_HOME', os.getcwd()); "
            "from airflow.dag_processing.dagbag import DagBag; "
            "from genoflow_plugins.operators import GenoflowSparkSubmitOperator as Op; "
            "bag = DagBag(dag_folder='dags'); "
            "confs = [t.conf for d in bag.dags.values() for t in d.tasks if isinstance(t, Op)]; "
            "print(json.dumps({'errors': list(bag.import_errors), 'spark_submit': 'genoflow.spark_submit' in "
            "sys.modules, 'spark_tasks': len(confs), 'confs': [c for c in confs if c]}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and result["spark_tasks"] >= 8  # the training DAG's jobs and detect_drift
    assert result["spark_submit"] is False and result["confs"] == []

"""
### drift_monitor

Checks an incoming patient batch against the training data of the current `champion` of
`genoflow_<monitor.target>` and asks for retraining when the batch has drifted.

1. **detect_drift** (Spark) — the batch (`monitor.cohort_vcf` + `monitor.patient_dir`, relative to
   the storage root) goes through the preprocess code paths; per-variant allele-frequency shift
   (2x2 allelic test, Hudson's Fst), PSI of every model input and of the champion's scores. The
   report (JSON + PNG) commits under `steps/drift/` and is logged as an MLflow run in experiment
   `monitor.experiment`, tagged with this DAG run's id, with metric `drift_detected` 0/1.
2. **check_drift** — reads that run's `drift_detected` from MLflow; stops here when it is 0.
3. **ingest_drifted_batch** — triggers `cohort_ingest` on the batch's folder in `append` mode, with
   conf `{"reason": "drift", ...}`: the batch's patients join the raw cohort as a new DVC dataset
   version, whose Asset event starts `genomic_risk_training` on it. Retraining on the data that
   drifted, rather than on the unchanged cohort; the batch must be laid out as a cohort folder
   (`<folder>/cohort.vcf.gz`, `<folder>/patient_data`) on a `file://` storage root.

Thresholds and paths come from the `monitor:` section of `params.yaml`; override them per run in
the trigger form or with run conf, e.g. `{"monitor": {"cohort_vcf": "incoming/b7/cohort.vcf.gz",
"patient_dir": "incoming/b7/patient_data"}}` (keys left out keep their params.yaml values).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag
from genoflow_plugins.drift import drift_detected
from genoflow_plugins.operators import GenoflowSparkSubmitOperator

from genoflow.config import Settings, load_params

SETTINGS = Settings()
MONITOR = load_params(SETTINGS.params_file).get("monitor", {})  # the trigger form's defaults
CHECK = "ti.xcom_pull(task_ids='check_drift')"


@dag(
    dag_id="drift_monitor",
    schedule=MONITOR.get("schedule", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["genoflow", "monitoring", "drift", "spark", "mlflow"],
    doc_md=__doc__,
    params={"monitor": dict(MONITOR)},
    default_args={"owner": "genoflow", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def drift_monitor():
    detect = GenoflowSparkSubmitOperator(
        task_id="detect_drift",
        application=str(SETTINGS.home / "jobs" / "drift.py"),
        name="genoflow-drift",
        conn_id="spark_default",
        application_args=["--monitor-json", "{{ params.monitor | tojson }}", "--run-id", "{{ run_id }}"],
    )
    check = ShortCircuitOperator(task_id="check_drift", python_callable=drift_detected)
    ingest = TriggerDagRunOperator(
        task_id="ingest_drifted_batch",
        trigger_dag_id="cohort_ingest",
        conf={
            "ingest": {"landing_dir": "{{ " + CHECK + "['landing_dir'] }}", "mode": "append"},
            "reason": "drift",
            "drift_run_id": "{{ " + CHECK + "['drift_run_id'] }}",
            "drift_report": "{{ " + CHECK + "['report'] }}",
            "drift_reasons": "{{ " + CHECK + "['reasons'] }}",
            "triggered_by": "{{ dag.dag_id }}/{{ run_id }}",
        },
        wait_for_completion=False,
    )
    detect >> check >> ingest


drift_monitor()

"""
### genomic_risk_training

Trains disease-risk (and treatment-response) models from the raw cohort under the storage root.

Runs when `cohort_ingest` ingests a new cohort (the Asset `genoflow_raw_cohort`), on the retraining
cron `ingest.retrain_schedule` of `params.yaml` (weekly by default, UTC), and when triggered (UI,
REST, `drift_monitor`).

1. **resolve_dataset_version** — `dvc add` + `dvc push` the raw cohort; its DVC hash is the dataset
   version; fixes the run key (hash of dataset version + params). A run started by an Asset event
   trains exactly the version the event carries (and is skipped as superseded when a newer cohort
   has replaced it since).
2. **align_reads**, **call_genotypes** (Spark; only for a cohort of reads, `preprocess.input`) — each
   patient's FASTQ aligned with minimap2 (mappy), then piled up and jointly genotyped like
   `bcftools call -m`; writes the genotype table and a bgzipped, tabix-indexed VCF. A VCF cohort skips them.
3. **preprocess_cohort** (Spark) — VCF (or the calls) → Parquet genotype table, REF vs FASTA, genes from GFF,
   variant/sample QC, FASTQ read QC (Biopython), clinical validation, pseudonymised ids.
4. **build_features** (Spark) — stratified patient split, association scan on training patients
   only, top-K dosages + covariates + read QC.
5. **train_models** (Spark MLlib) — LR / RF / GBT with cross-validation, logged to MLflow.
6. **evaluate_models** (Spark) — held-out AUC-ROC / AUC-PR, ROC curves as MLflow artifacts.
7. **promote_champion** — register, alias `challenger`, move `champion` only past the margin.
8. **build_report** (Spark) — one HTML page (QC, Manhattan/QQ, ROC/PR, calibration, champion
   comparison) at `steps/report/<key>/report.html`, logged as `report.html` on each candidate run.

Params come from `params.yaml`; override any section in the trigger form or run conf, e.g.
`{"features": {"top_k": 20}}`. Steps are idempotent: a rerun with the same data and params
reuses the committed outputs.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag
from genoflow_plugins.assets import RAW_COHORT
from genoflow_plugins.operators import (
    GenoflowSparkSubmitOperator,
    PromoteChampionOperator,
    ResolveDatasetVersionOperator,
    is_reads_cohort,
)

from genoflow.config import Settings, load_params

SETTINGS = Settings()
PARAMS = load_params(SETTINGS.params_file)
INGEST = PARAMS.get("ingest") or {}
RUN = "ti.xcom_pull(task_ids='resolve_dataset_version')"


def retraining_schedule():
    """New cohorts (the raw-cohort Asset) or the retraining cron, whichever comes first."""
    cron = INGEST.get("retrain_schedule")
    if not cron:
        return [RAW_COHORT]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[RAW_COHORT])


def spark_step(task_id: str, step: str, **kwargs) -> GenoflowSparkSubmitOperator:
    """A genoflow Spark job, submitted to the cluster of the `spark_default` connection with the library zipped
    (spark-submit settings are resolved when the task runs: GenoflowSparkSubmitOperator)."""
    return GenoflowSparkSubmitOperator(
        task_id=task_id,
        application=str(SETTINGS.home / "jobs" / f"{step}.py"),
        name=f"genoflow-{step}",
        conn_id="spark_default",
        application_args=[
            "--storage-root", "{{ " + RUN + "['storage_root'] }}",
            "--dataset-version", "{{ " + RUN + "['dataset_version'] }}",
            "--git-commit", "{{ " + RUN + "['git_commit'] }}",
            "--params-json", "{{ " + RUN + "['params_json'] }}",
        ],
        **kwargs,
    )


@dag(
    dag_id="genomic_risk_training",
    schedule=retraining_schedule(),
    # No start_date on purpose: with one, a cron timetable with catchup=False runs the latest
    # missed slot as soon as the DAG is unpaused (a full retraining nobody asked for); without,
    # the first timed run waits for the next slot (CronTriggerTimetable, run_immediately=False).
    catchup=False,
    max_active_runs=2,
    tags=["genoflow", "training", "spark", "mlflow"],
    doc_md=__doc__,
    params={section: values for section, values in PARAMS.items() if section not in ("spark", "monitor", "ingest")},
    default_args={"owner": "genoflow", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def genomic_risk_training():
    version = ResolveDatasetVersionOperator(task_id="resolve_dataset_version", target=INGEST.get("target", "data/raw"))
    # A VCF cohort skips align and call; preprocess runs after them or after their skip.
    has_reads = ShortCircuitOperator(task_id="cohort_has_reads", python_callable=is_reads_cohort,
                                     op_args=[version.output], ignore_downstream_trigger_rules=False)
    align = spark_step("align_reads", "align")
    call = spark_step("call_genotypes", "call")
    preprocess = spark_step("preprocess_cohort", "preprocess", trigger_rule="none_failed")
    features = spark_step("build_features", "features")
    train = spark_step("train_models", "train")
    evaluate = spark_step("evaluate_models", "evaluate")
    promote = PromoteChampionOperator(
        task_id="promote_champion",
        run_key="{{ " + RUN + "['run_key'] }}",
        params_json="{{ " + RUN + "['params_json'] }}",
    )
    report = spark_step("build_report", "report")
    version >> has_reads >> align >> call >> preprocess
    version >> preprocess >> features >> train >> evaluate >> promote >> report


genomic_risk_training()

"""
### cohort_ingest

Takes a newly landed cohort and makes it the dataset version the pipeline trains on.

1. **ingest_cohort** — the cohort folder `ingest.landing_dir` (relative to the project; laid out
   like `data/raw`: `cohort.vcf.gz`, `reference_genome/`, `patient_data/<patient>/`) is validated
   without Spark: required files, the VCF header, VCF samples against the clinical CSVs, every
   record's contig and REF against the FASTA, the first `ingest.full_check_records` records fully
   decoded, the GFF3. Then it replaces `data/raw` (by rename), is `dvc add`ed and `dvc push`ed
   to the DVC remote, and its `.dvc` pointer is committed to git. The task emits an event on the
   Asset `genoflow_raw_cohort` whose extra holds the DVC hash (`dataset_version`), the pointer's
   git commit and the remote; `genomic_risk_training` is scheduled on that Asset.

An invalid cohort fails the task with the file and line at fault; nothing is moved, pushed or
committed. Land a cohort elsewhere with run conf, e.g. `{"ingest": {"landing_dir": "data/incoming/b7"}}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag
from genoflow_plugins.assets import RAW_COHORT
from genoflow_plugins.operators import IngestCohortOperator

from genoflow.config import Settings, load_params

PARAMS = load_params(Settings().params_file)


@dag(
    dag_id="cohort_ingest",
    schedule=None,  # triggered when a cohort lands: UI, REST, or drift_monitor
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one swap of data/raw at a time
    tags=["genoflow", "ingest", "dvc"],
    doc_md=__doc__,
    params={"ingest": dict(PARAMS.get("ingest") or {})},
    default_args={"owner": "genoflow", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def cohort_ingest():
    IngestCohortOperator(task_id="ingest_cohort", outlets=[RAW_COHORT])


cohort_ingest()

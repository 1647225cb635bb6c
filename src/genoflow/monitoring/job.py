"""drift: compare an incoming cohort with the training data of the registry's champion (a Spark job).

The champion of ``genoflow_<monitor.target>`` names its MLflow run; the run's tags and
``params.json`` give the dataset version and params it was trained with, hence (through
:func:`genoflow.config.step_key`) the committed training genotype table
(``steps/preprocess/<key>/genotypes``) and feature table (``steps/features/<key>/table``); its
``feature_spec.json`` gives the model's inputs. The new cohort (a VCF plus per-patient folders,
like ``raw/``) goes through the preprocess code paths with the champion's preprocess params: the
same VCF decoding, REF check against the reference FASTA, variant and sample QC, clinical
validation, read QC and pseudonyms. Then, on QC-passing patients:

- **allele frequencies**: every training QC-passing variant, training-split patients vs new
  patients (:func:`genoflow.monitoring.drift.allele_frequency_shift`);
- **features**: PSI of each model input, training split vs the new patients' observed values, both
  computed from raw values by the champion's feature spec (imputed values are left out: a batch
  without reads is not a read-QC shift; training patients' polygenic scores are recomputed with the
  weights new patients get, not the cross-fitted ones of the feature table);
- **scores**: the champion (``mlflow.spark.load_model``) scores the held-out test split and the new
  patients (training-split scores of a tree model are optimistically confident, which would look
  like drift); PSI and KS between the two, and the AUC on the batch when it has labels.

The report (``report.json``, ``drift_report.png``, per-variant ``af_shift/``, the batch's
``genotypes/`` and ``samples/``) commits atomically to ``<root>/steps/drift/<key>/``, the key
hashing the cohort files' identity, the champion's run and the monitor params; a rerun on the
same inputs reuses it. Each invocation logs one MLflow run in experiment ``monitor.experiment``
tagged with ``--run-id`` (the Airflow run id), with metric ``drift_detected`` 0/1.

This module is the orchestration (:func:`run`) and the entry point's home for ``jobs/drift.py`` and
the DAG; the parts live beside it: :mod:`~genoflow.monitoring.cli` (arguments and the monitor
params), :mod:`~genoflow.monitoring.compute` (the Spark computation),
:mod:`~genoflow.monitoring.mlflow_io` (the champion and the drift runs).
"""

from __future__ import annotations

import json
import logging
import time

from genoflow.monitoring.cli import MONITOR_DEFAULTS, build_parser, main, resolve_monitor
from genoflow.monitoring.compute import champion_public, compute_drift, drift_key
from genoflow.monitoring.mlflow_io import champion_of, find_drift_run, log_drift_run
from genoflow.registry.tracking import TAG_AIRFLOW_RUN_ID, TAG_DRIFT_REPORT

__all__ = ["main", "build_parser", "resolve_monitor", "find_drift_run", "run", "TAG_AIRFLOW_RUN_ID",
           "MONITOR_DEFAULTS"]

log = logging.getLogger("genoflow")


def run(args, monitor: dict) -> dict:
    """One drift check: reuse this Airflow run's logged result, else compute (or reuse) the report and log it."""
    from genoflow.config import Settings
    from genoflow.errors import InputError
    from genoflow.pipeline.runner import step_uri
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage

    settings = Settings()
    existing = find_drift_run(args.run_id, monitor["experiment"], settings.mlflow_tracking_uri)
    if existing is not None and args.run_id != "manual":
        log.info("drift run %s already logged for %s: nothing to do", existing.info.run_id, args.run_id)
        return {"drift_detected": existing.data.metrics.get("drift_detected") == 1.0,
                "mlflow_run_id": existing.info.run_id, "report_uri": existing.data.tags.get(TAG_DRIFT_REPORT)}

    champion = champion_of(monitor, settings.mlflow_tracking_uri)
    spark = get_spark(f"genoflow-drift-{champion['run_id'][:8]}")
    storage = HadoopStorage(spark, args.storage_root)
    params, version = champion["params"], champion["dataset_version"]
    upstream = {step: step_uri(args.storage_root, step, version, params) for step in ("preprocess", "features")}
    for step, uri in upstream.items():
        if not storage.is_committed(uri):
            raise InputError(uri, f"the champion's {step} output is not under this storage root "
                                  f"(dataset {version}); was it trained against another root?")
    cohort = {"vcf": storage.uri(monitor["cohort_vcf"]), "patient_dir": storage.uri(monitor["patient_dir"])}
    for key, uri in cohort.items():
        if not storage.exists(uri):
            raise InputError(uri, f"does not exist (monitor.{'cohort_vcf' if key == 'vcf' else key} in params)")

    key = drift_key(storage, cohort, champion, monitor)
    out_uri = storage.uri("steps", "drift", key)
    started = time.time()
    if storage.is_committed(out_uri):
        log.info("drift report %s is already committed: reusing it", out_uri)
    else:
        with storage.step_output(out_uri) as output:
            report, png = compute_drift(spark, storage, output, champion, upstream, cohort, monitor,
                                        settings.checked_pseudonym_key())  # weak keys refused (decision 0018)
            output.write_json("report.json", report)
            storage.write_bytes(output.path("drift_report.png"), png)
            output.write_json("inputs.json", {
                "step": "drift", "key": key, "git_commit": args.git_commit, "storage_root": args.storage_root,
                "cohort": cohort, "upstream": upstream, "champion": champion_public(champion),
                "monitor": monitor, "seconds": round(time.time() - started, 1)})
        log.info("drift committed %s in %.1f s", out_uri, time.time() - started)
    report = json.loads(storage.read_text(f"{out_uri}/report.json"))
    png = storage.read_bytes(f"{out_uri}/drift_report.png")
    run_id = log_drift_run(report, png, out_uri, monitor, run_id=args.run_id, git_commit=args.git_commit,
                           settings=settings)
    return {"drift_detected": report["drift_detected"], "mlflow_run_id": run_id, "report_uri": out_uri}

"""The drift_monitor DAG's decision step: did this run's drift check find drift, and what to ingest if so.

Runs at task time with the run's params (params.yaml merged with the trigger's conf), never the
values the DAG file saw when it was parsed. Import-light: genoflow's monitoring and MLflow load inside.
"""

from __future__ import annotations

__all__ = ["drift_detected"]


def drift_detected(**context):
    """The drift run this DAG run logged: its summary when ``drift_detected`` is 1, else False (a short circuit)."""
    from genoflow.config import Settings
    from genoflow.ingest import batch_landing
    from genoflow.monitoring.job import find_drift_run, resolve_monitor
    from genoflow.registry.tracking import (
        TAG_COHORT,
        TAG_DRIFT_REASONS,
        TAG_DRIFT_REPORT,
        TAG_MONITORED_MODEL,
        TAG_MONITORED_VERSION,
    )
    from genoflow_plugins.operators import fail_once, run_params

    with fail_once("invalid params"):
        params = run_params(context)
    monitor = resolve_monitor(dict(context["params"]).get("monitor") or {})
    run = find_drift_run(context["run_id"], monitor["experiment"])
    if run is None:
        raise LookupError(f"no finished drift run tagged with Airflow run {context['run_id']!r} in MLflow "
                          f"experiment {monitor['experiment']!r}: did detect_drift log one?")
    detected = run.data.metrics.get("drift_detected") == 1.0
    reasons = run.data.tags.get(TAG_DRIFT_REASONS, "")
    print(f"drift run {run.info.run_id}: drift_detected={int(detected)} ({reasons})")
    if not detected:
        return False
    landing = batch_landing(Settings().storage_root, monitor["cohort_vcf"], monitor["patient_dir"], params)
    return {"drift_run_id": run.info.run_id, "report": run.data.tags.get(TAG_DRIFT_REPORT),
            "landing_dir": landing,
            "cohort_vcf": run.data.tags.get(TAG_COHORT), "reasons": reasons,
            "model": f"{run.data.tags.get(TAG_MONITORED_MODEL)} v{run.data.tags.get(TAG_MONITORED_VERSION)}"}

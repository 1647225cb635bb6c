"""The drift job's command line and its monitor params (``jobs/drift.py``; the orchestration is
:func:`genoflow.monitoring.job.run`)."""

from __future__ import annotations

import argparse
import json
import os

from genoflow.params import Monitor

__all__ = ["MONITOR_DEFAULTS", "build_parser", "resolve_monitor", "main"]

# The schema's defaults are the one home of the monitor settings' values (params.yaml ships the
# same values; tests/unit/monitoring/test_job.py checks that they agree).
MONITOR_DEFAULTS = Monitor().model_dump()


def build_parser() -> argparse.ArgumentParser:
    from genoflow.config import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="jobs/drift.py",
        description="genoflow drift (a Spark job): an incoming cohort vs the champion model's training data")
    parser.add_argument("--storage-root", default=settings.storage_root,
                        help="URI every input and output lives under (default: %(default)s)")
    parser.add_argument("--monitor-json", default="{}",
                        help="the monitor params as JSON, merged over params.yaml's monitor section")
    parser.add_argument("--run-id", default="manual",
                        help="identifier of the calling run (the Airflow run id), tagged on the MLflow run")
    parser.add_argument("--git-commit", default="unknown", help="commit of the code that runs")
    return parser


def resolve_monitor(overrides: dict | None = None, params_file=None) -> dict:
    """The monitor params: built-in defaults < params.yaml ``monitor:`` < ``overrides``."""
    from genoflow.config import Settings, load_params, merge_params

    path = params_file or Settings().params_file
    from_file = load_params(path).get("monitor", {}) if os.path.exists(path) else {}
    return merge_params(merge_params(MONITOR_DEFAULTS, from_file or {}), overrides or {})


def main(argv: list[str] | None = None) -> int:
    from genoflow.pipeline.runner import report_errors, say
    from genoflow.versioning import code_commit

    args = build_parser().parse_args(argv)
    if args.git_commit == "unknown":
        args.git_commit = code_commit()

    def body() -> int:
        from genoflow.monitoring.job import run

        result = run(args, resolve_monitor(json.loads(args.monitor_json)))
        say(f"genoflow drift: drift_detected={int(result['drift_detected'])} "
            f"mlflow_run={result['mlflow_run_id']} report={result['report_uri']}")
        return 0

    return report_errors("drift", body, args.storage_root)

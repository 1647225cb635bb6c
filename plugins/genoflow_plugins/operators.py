"""Thin operators: store arguments, build the hook in execute(), return what downstream needs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import BaseOperator

__all__ = ["IngestCohortOperator", "ResolveDatasetVersionOperator", "PromoteChampionOperator",
           "GenoflowSparkSubmitOperator", "is_reads_cohort"]


def run_params(context) -> dict:
    """params.yaml deep-merged with this run's params/conf, limited to params' sections, validated.

    Airflow also puts every run-conf key (e.g. a drift trigger's reason) into params, and those
    must not change what is computed or its run key. Raises ParamsError (see :func:`fail_once`).
    """
    from genoflow.config import Settings, load_params
    from genoflow.params import SECTIONS

    overrides = {k: v for k, v in dict(context["params"]).items() if k in SECTIONS}
    return load_params(Settings().params_file, overrides)


@contextmanager
def fail_once(what: str):
    """Bad input (InputError, ParamsError) fails the task at once: a retry would fail the same way."""
    from airflow.sdk.exceptions import AirflowFailException

    from genoflow.errors import InputError

    try:
        yield
    except InputError as err:
        raise AirflowFailException(f"{what}: {err}") from err


class IngestCohortOperator(BaseOperator):
    """Ingest the cohort landed at ``ingest.landing_dir`` and emit an event on each outlet Asset.

    Validates it (fast path, no Spark), makes it ``ingest.target`` (or, with ``ingest.mode:
    append``, adds its patients to the current cohort), ``dvc add`` + ``dvc push``
    (``ingest.remote``, default: the repository's default remote) and commits the pointer to git.
    The event's extra carries ``dataset_version`` (the DVC hash), the pointer's git commit and the
    remote. An invalid cohort fails the task at once (no retries): nothing is moved or pushed.
    """

    def execute(self, context):
        from genoflow.config import Settings
        from genoflow_plugins.hooks import DvcHook

        with fail_once("invalid params"):
            params = run_params(context)
        ingest = params["ingest"]
        hook = DvcHook(Settings().home, remote=ingest["remote"])
        with fail_once("invalid cohort"):
            result = hook.ingest(ingest["landing_dir"], params, target=ingest["target"], mode=ingest["mode"],
                                 commit=ingest["commit"], full_check_records=ingest["full_check_records"])
        self.log.info("%s at %s (was %s), %d samples x %d variants, pushed to %s, pointer in git commit %s",
                      result["target"], result["dataset_version"], result["previous_version"], result["n_samples"],
                      result["n_variants"], result["remote_url"], result["git_commit"])
        extra = {k: result[k] for k in ("dataset_version", "previous_version", "changed", "git_commit", "remote",
                                        "remote_url", "target", "landing", "mode", "n_samples", "n_samples_added",
                                        "n_variants")}
        for asset in self.outlets:
            context["outlet_events"][asset].extra = extra
        return result


class ResolveDatasetVersionOperator(BaseOperator):
    """Version the raw cohort with DVC and fix this run's identity.

    Returns (as XCom) ``dataset_version`` (DVC hash), ``git_commit``, the effective ``params``
    (params.yaml deep-merged with the run's params/conf), ``params_json``, ``run_key`` and
    ``genotype_source`` (``vcf`` or ``reads``: ``preprocess.input`` resolved against the workspace).

    A run triggered by asset events trains the dataset version the newest event carries: the
    workspace must hold exactly that version, else the run is superseded (a newer cohort was
    ingested since) and skips, training nothing. Manual and scheduled runs version what is there.
    """

    template_fields: Sequence[str] = ("target",)

    def __init__(self, *, target: str = "data/raw", push: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.push = push

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        from genoflow.config import Settings, run_key
        from genoflow.reads.inputs import workspace_genotype_source
        from genoflow.versioning import code_commit
        from genoflow_plugins.hooks import DvcHook

        settings = Settings()
        event = triggering_event(context)
        version = DvcHook(settings.home).track(self.target, push=self.push)
        if event is not None and event["dataset_version"] != version:
            raise AirflowSkipException(
                f"this run was triggered for dataset version {event['dataset_version']} but {self.target} now "
                f"holds {version}: a newer cohort was ingested (or {self.target} changed) since, so this run is "
                "superseded and trains nothing")
        with fail_once("invalid params"):
            params = run_params(context)
        key = run_key(version, params)
        self.log.info("dataset %s at %s (%s); run key %s", self.target, version,
                      f"from the asset event of {event['source']}" if event else "as found in the workspace", key)
        return {"dataset_version": version, "git_commit": code_commit(), "params": params,
                "params_json": json.dumps(params, sort_keys=True), "run_key": key,
                "storage_root": settings.storage_root, "asset_event": event,
                "genotype_source": workspace_genotype_source((Path(settings.home) / self.target).parent, params)}


def is_reads_cohort(resolved: dict) -> bool:
    """Whether the training DAG's reads tasks (align, call) run: the short circuit of a VCF cohort."""
    return resolved.get("genotype_source") == "reads"


def triggering_event(context) -> dict | None:
    """The newest triggering asset event that carries a dataset version (None for manual/scheduled runs)."""
    from genoflow_plugins.assets import DATASET_VERSION_KEY

    events = [event for per_asset in (context.get("triggering_asset_events") or {}).values() for event in per_asset
              if (event.extra or {}).get(DATASET_VERSION_KEY)]
    if not events:
        return None
    newest = max(events, key=lambda event: event.timestamp)
    return {"dataset_version": newest.extra[DATASET_VERSION_KEY], "asset": newest.asset.name,
            "source": f"{newest.source_dag_id}/{newest.source_run_id}", "timestamp": newest.timestamp.isoformat(),
            "git_commit": newest.extra.get("git_commit")}


class PromoteChampionOperator(BaseOperator):
    """Register each target's candidate, alias it ``challenger`` and gate the ``champion`` alias."""

    template_fields: Sequence[str] = ("run_key", "params_json")

    def __init__(self, *, run_key: str, params_json: str, **kwargs):
        super().__init__(**kwargs)
        self.run_key = run_key
        self.params_json = params_json

    def execute(self, context):
        from genoflow.pipeline.runner import job_params
        from genoflow_plugins.hooks import MlflowRegistryHook

        with fail_once("cannot promote"):
            decisions = MlflowRegistryHook().promote(self.run_key, job_params(self.params_json, "params_json"))
        for d in decisions:
            self.log.info("%s v%s -> %s: %s", d["model_name"], d["version"],
                          "champion" if d["promoted"] else "challenger", d["reason"])
        return decisions


class GenoflowSparkSubmitOperator(SparkSubmitOperator):
    """A genoflow Spark job that takes the genoflow library with it to a cluster (spark-submit ``--py-files``).

    At run time, not parse time, the spark-submit settings are resolved
    (:func:`genoflow.spark_submit.spark_conf` with the run's params; ``conf`` given to the operator
    is laid over them; a ``local`` master also gets the Python worker daemon that imports the
    installed pyspark, decision 0030). For a cluster master the genoflow package this worker imports is
    zipped into ``$GENOFLOW_HOME/.genoflow/py-files/genoflow-<content hash>.zip`` (written once per code
    version) and put first in ``py_files``. The driver and the executors import genoflow from that
    zip, so the cluster's workers need only the third-party packages in their Python
    (``PYSPARK_PYTHON``); see docs/decisions/0004-shipping-the-library-to-executors.md. A ``local``
    master's driver and workers run here and import the genoflow this worker imports (decision 0036).

    A job that exits :data:`genoflow.errors.INPUT_ERROR_EXIT` (bad input or params) fails the task
    without retries, with the job's one-line error as the reason; any other failure keeps them.
    """

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        import genoflow
        from genoflow.config import Settings
        from genoflow.errors import INPUT_ERROR_EXIT
        from genoflow.spark_submit import is_local, spark_conf

        settings = Settings()
        with fail_once("invalid params"):
            params = run_params(context)
        master = self.spark_master()
        # Resolved here, on the machine that submits, with the run's params: the DAG file only names the job.
        self.conf = {**spark_conf(settings, params, master=master), **(self.conf or {})}
        if is_local(master):
            # A zip of it made every local job compile genoflow's modules and numba kernels again: Python keeps
            # no bytecode for a zip, and numba keys its cache by the zip's per-job path (decision 0036).
            self.log.info("local master: the driver and its Python workers import the genoflow at %s",
                          os.path.dirname(genoflow.__file__))
        else:
            self._ship_library(settings)
        try:
            return super().execute(context)
        except AirflowException as err:
            if isinstance(err, AirflowFailException) or submit_exit_code(err) != INPUT_ERROR_EXIT:
                raise
            raise AirflowFailException(job_error_line(err) or f"spark-submit exited {INPUT_ERROR_EXIT}: bad "
                                       "input (not retried); the job's error is in the log above") from err

    def _ship_library(self, settings) -> None:
        from genoflow.packaging import build_py_files

        library = str(build_py_files(settings.state_dir / "py-files"))
        others = [p for p in (self.py_files or "").split(",") if p and p != library]
        self.py_files = ",".join([library, *others])
        self.log.info("genoflow library for the driver and executors: %s", library)

    def spark_master(self) -> str:
        """The master spark-submit gets: the connection's, as the Spark provider's hook resolves it."""
        return self._get_hook()._connection["master"]


# SparkSubmitHook.submit's failure: "Cannot execute: <cmd>. Error code is: <rc>.\nLast spark-submit output:\n..."
_SUBMIT_EXIT = re.compile(r"Error code is: (\d+)")
_JOB_ERROR = re.compile(r"^genoflow [\w-]+: error: .+$", re.MULTILINE)


def submit_exit_code(err: BaseException) -> int | None:
    """spark-submit's exit status from the Spark provider's failure message; None when it has none."""
    match = _SUBMIT_EXIT.search(str(err))
    return int(match.group(1)) if match else None


def job_error_line(err: BaseException) -> str | None:
    """The last ``genoflow <step>: error: ...`` line (genoflow.pipeline.runner.report_errors) in the output tail."""
    lines = _JOB_ERROR.findall(str(err))
    return lines[-1] if lines else None

"""The shared shell of every Spark job: arguments, session, commit protocol, error reporting.

A step's output lives at ``<root>/steps/<step>/<step key>/``, where the key hashes the dataset
version and the params the step depends on (:func:`genoflow.config.step_key`). A step that finds
its output already committed does nothing (reruns are free and safe); otherwise it writes into a
temporary sibling and commits by rename, recording its inputs in ``inputs.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time

from genoflow.config import STEPS, Settings, run_key, step_key
from genoflow.errors import INPUT_ERROR_EXIT, UNAVAILABLE_EXIT, InputError

__all__ = ["main", "build_parser", "step_uri", "job_params", "report_errors", "user_error"]

log = logging.getLogger("genoflow")

UPSTREAM = {"align": (), "call": ("align",), "preprocess": (), "features": ("preprocess",), "train": ("features",),
            "evaluate": ("features", "train")}
READS_STEPS = ("align", "call")  # reads to genotypes: run only when preprocess.input resolves to reads


def upstream_steps(step: str, genotype_source: str) -> tuple[str, ...]:
    """The steps whose committed outputs ``step`` reads: preprocess reads the calls when the cohort is reads."""
    if step == "preprocess" and genotype_source == "reads":
        return ("call",)
    return UPSTREAM[step]


def build_parser(step: str) -> argparse.ArgumentParser:
    settings = Settings()
    parser = argparse.ArgumentParser(prog=f"jobs/{step}.py", description=f"genoflow {step} (a Spark job)")
    parser.add_argument("--storage-root", default=settings.storage_root,
                        help="URI every input and output lives under (default: %(default)s)")
    parser.add_argument("--dataset-version", required=True, help="DVC content hash of the raw cohort")
    parser.add_argument("--git-commit", default="unknown", help="commit of the code that runs")
    parser.add_argument("--params-json", required=True, help="the run's params (params.yaml + overrides) as JSON")
    return parser


def step_uri(root: str, step: str, dataset_version: str, params: dict) -> str:
    """Where ``step`` commits its output for this data and these params."""
    return f"{root.rstrip('/')}/steps/{step}/{step_key(step, dataset_version, params)}"


def main(step: str, argv: list[str] | None = None) -> int:
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, got {step!r}")
    args = build_parser(step).parse_args(argv)
    return report_errors(step, lambda: _run(step, args, job_params(args.params_json)), args.storage_root)


def job_params(params_json: str, source: str = "--params-json") -> dict:
    """The run's params a job was given, validated before any Spark work (:func:`genoflow.params.validate_params`).

    The complete dict (the schema's defaults filled in); raises :class:`~genoflow.errors.ParamsError`.
    """
    from genoflow.errors import ParamsError
    from genoflow.params import validate_params

    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as err:
        raise ParamsError(source, "(top level)", f"not JSON: {err}") from None
    return validate_params(params, source).model_dump()


def report_errors(step: str, body, storage_root: str | None = None) -> int:
    """Run ``body()`` (returns an exit code); a user error becomes one line on stderr and an exit code.

    Bad input (:class:`InputError`, :class:`~genoflow.errors.ParamsError`) exits
    :data:`~genoflow.errors.INPUT_ERROR_EXIT`: it fails the same way every time, so the Airflow
    task fails without retrying. An unavailable ``storage_root`` (HDFS NameNode down or in safe
    mode) exits :data:`~genoflow.errors.UNAVAILABLE_EXIT`: a retry may find it back. Anything
    else is a bug and keeps its traceback.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        return body()
    except Exception as err:  # noqa: BLE001 - one clear line for the user, the traceback in the log
        failure = user_error(err, storage_root)
        if failure is None:
            raise
        message, code = failure
        say(f"genoflow {step}: error: {message}")
        return code


def say(line: str) -> None:
    """Print one line for the task log."""
    print(line, file=sys.stderr, flush=True)
    # spark-submit relays the driver's output through a JVM thread that can lose the last lines
    # when the process exits at once; a moment's pause keeps this line in the task log.
    time.sleep(0.5)


def _run(step: str, args, params: dict) -> int:
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage

    settings = Settings()
    if step == "preprocess":
        settings.checked_pseudonym_key()  # refuse a weak key before Spark starts (decision 0018)
    key = run_key(args.dataset_version, params)
    spark = get_spark(f"genoflow-{step}-{key}")
    storage = HadoopStorage(spark, args.storage_root)
    # Keys hash the params as given ("auto" too): the dataset version fixes what "auto" resolves to.
    source = genotype_source(spark, storage, params)
    if step in READS_STEPS and source != "reads":
        log.info("the cohort's genotypes come from its VCF (preprocess.input: %s): nothing to %s",
                 params["preprocess"]["input"], step)
        return 0
    out_uri = step_uri(args.storage_root, step, args.dataset_version, params)
    if storage.is_committed(out_uri):
        log.info("%s is already committed at %s: nothing to do", step, out_uri)
        return 0
    upstream = {name: step_uri(args.storage_root, name, args.dataset_version, params)
                for name in upstream_steps(step, source)}
    for name, uri in upstream.items():
        if not storage.is_committed(uri):
            if name == "call" and params["preprocess"]["input"] == "auto":
                vcf = storage.uri(params["preprocess"]["vcf"] or "")
                raise InputError(vcf, "does not exist, so preprocess.input auto takes the patients' FASTQs as the "
                                 f"cohort, and their calls are not committed ({uri}): run align and call first, or "
                                 "bring the VCF (preprocess.input: vcf)")
            raise InputError(uri, f"the {name} step has not committed its output; run {name} first")

    started = time.time()
    with storage.step_output(out_uri) as output:
        result = _call_step(step, spark, storage, output, upstream, params, args)
        output.write_json("inputs.json", {
            "step": step, "run_key": key, "dataset_version": args.dataset_version,
            "pseudonym_key_fingerprint": settings.pseudonym_fingerprint,  # never the key itself
            "git_commit": args.git_commit, "storage_root": args.storage_root,
            "upstream": upstream, "params": params, "seconds": round(time.time() - started, 1),
        })
    log.info("%s committed %s in %.1f s: %s", step, out_uri, time.time() - started, _short(result))
    return 0


def genotype_source(spark, storage, params: dict) -> str:
    """``"vcf"`` or ``"reads"``: ``preprocess.input``, with ``auto`` resolved against the cohort under the root."""
    from genoflow.reads.inputs import resolve_input

    def has_reads() -> bool:
        from genoflow.reads.fastq_input import patient_read_sets

        patient_dir = params["preprocess"].get("patient_dir")
        return bool(patient_dir) and storage.exists(storage.uri(patient_dir)) and \
            bool(patient_read_sets(spark, storage.uri(patient_dir)))

    return resolve_input(params, exists=lambda name: storage.exists(storage.uri(name)), has_reads=has_reads)


def _call_step(step, spark, storage, output, upstream, params, args):
    if step == "align":
        from genoflow.pipeline.reads import run_align_step

        return run_align_step(spark, storage, output, params)
    if step == "call":
        from genoflow.pipeline.reads import run_call_step

        return run_call_step(spark, storage, output, upstream["align"], params)
    if step == "preprocess":
        from genoflow.pipeline.preprocess import run_preprocess

        settings = Settings()
        key = settings.checked_pseudonym_key()
        if settings.pseudonym_key_weakness:
            log.warning("GENOFLOW_PSEUDONYM_KEY %s; allowed because GENOFLOW_ALLOW_DEMO_KEY=1 (demo data only)",
                        settings.pseudonym_key_weakness)
        return run_preprocess(spark, storage, output, params, key, calls_uri=upstream.get("call"))
    if step == "features":
        from genoflow.pipeline.features import run_features

        return run_features(spark, upstream["preprocess"], output, params)
    from genoflow.registry import TAG_DATASET_VERSION, TAG_GIT_COMMIT, TAG_RUN_KEY, ensure_experiment

    settings = Settings()
    experiment_id = ensure_experiment(settings.mlflow_tracking_uri, params["mlflow"]["experiment"],
                                      settings.mlflow_artifact_root)
    if step == "train":
        from genoflow.pipeline.train import run_train

        tags = {TAG_RUN_KEY: run_key(args.dataset_version, params), TAG_DATASET_VERSION: args.dataset_version,
                TAG_GIT_COMMIT: args.git_commit}
        return run_train(spark, upstream["features"], output, params, experiment_id=experiment_id, tags=tags)
    from genoflow.pipeline.evaluate import run_evaluate

    return run_evaluate(spark, upstream["features"], upstream["train"], output, params)


_INPUT_ERROR = re.compile(r"\b(?:Input|Params)Error: (.+)")


def user_error(err: BaseException, storage_root: str | None = None) -> tuple[str, int] | None:
    """(one-line message, exit code) of bad input (also when Spark wrapped it from an executor) or of a
    storage outage under ``storage_root``; None for anything else (a bug: the traceback is the message)."""
    if isinstance(err, InputError):
        return str(err), INPUT_ERROR_EXIT
    match = _INPUT_ERROR.search(str(err))
    if match:
        return match.group(1).strip(), INPUT_ERROR_EXIT
    if storage_root:
        from genoflow.storage.health import storage_unavailable_message

        message = storage_unavailable_message(err, storage_root)
        if message is not None:
            return message, UNAVAILABLE_EXIT
    return None


def _short(result) -> str:
    text = json.dumps(result, default=str)
    return text if len(text) < 400 else text[:400] + "..."

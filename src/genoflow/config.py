"""Settings from the environment and pipeline params from params.yaml.

Small and import-light on purpose: DAG files import it at parse time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Settings", "load_params", "merge_params", "run_key", "step_key", "spark_conf", "bgzf_codec_conf", "STEPS"]

STEPS = ("align", "call", "preprocess", "features", "train", "evaluate")

_DEMO_PSEUDONYM_KEY = "genoflow-demo-key-not-for-real-patients"


class Settings:
    """Where things live. Every value can be overridden by an environment variable.

    ``GENOFLOW_HOME`` is the project folder (params.yaml, dvc.yaml, jobs/). The storage root,
    MLflow and the pseudonym key default to the embedded, single-machine setup under it.
    """

    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.home = Path(env.get("GENOFLOW_HOME", Path.cwd())).resolve()
        state = self.home / ".genoflow"
        self.state_dir = state
        self.storage_root = env.get("GENOFLOW_STORAGE_ROOT", (self.home / "data").as_uri()).rstrip("/")
        self.mlflow_tracking_uri = env.get("MLFLOW_TRACKING_URI", f"sqlite:///{state / 'mlflow.db'}")
        # Empty means "the tracking server's default" (e.g. a server proxying artifacts to HDFS).
        self.mlflow_artifact_root = env.get("GENOFLOW_ARTIFACT_ROOT", (state / "mlartifacts").as_uri()) or None
        self.pseudonym_key = env.get("GENOFLOW_PSEUDONYM_KEY", _DEMO_PSEUDONYM_KEY)
        self.params_file = Path(env.get("GENOFLOW_PARAMS", self.home / "params.yaml"))

    @property
    def uses_demo_pseudonym_key(self) -> bool:
        return self.pseudonym_key == _DEMO_PSEUDONYM_KEY


# The driver JVM (in local mode also the executor) compiles with C1 only: a genoflow job lasts seconds
# to minutes, and C2's compile threads cost more than its faster code repays there (ooa cohort,
# bench/: VCF->Parquet 18.7 -> 17.1 s, association 19.1 -> 16.6 s, about a third less CPU). Cluster
# executors, which run long, keep the JVM's default.
DRIVER_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


def spark_conf(settings: Settings, params: dict, *, share_classes: bool = True) -> dict[str, str]:
    """spark-submit --conf values for genoflow jobs: params.yaml's `spark:`, quiet driver logging,
    C1-only compilation and (once built) the class archive in the driver JVM, the BGZF codec."""
    from genoflow.jvm_archive import sharing_option

    log4j = settings.home / "config" / "spark" / "log4j2.properties"
    options = [f"-Dlog4j2.configurationFile={log4j.as_uri()}" if log4j.exists() else "", DRIVER_JVM_OPTIONS,
               sharing_option(settings) if share_classes else ""]
    conf = {"spark.driver.extraJavaOptions": " ".join(option for option in options if option)}
    return {**conf, **bgzf_codec_conf(settings), **{k: str(v) for k, v in (params.get("spark") or {}).items()}}


BGZF_CODEC_JAR = "hadoop/bgzf-codec/target/genoflow-bgzf-codec.jar"
BGZF_CODECS = "org.genoflow.hadoop.BgzfCodec,org.genoflow.hadoop.BgzCodec"


def bgzf_codec_conf(settings: Settings) -> dict[str, str]:
    """Spark conf that splits bgzip files at BGZF blocks (decision 0006); empty until the jar is built.

    ``make codec`` (part of ``make test``/``make demo``) builds the jar. It goes on the driver and
    executor classpath for local runs and in ``spark.jars`` for cluster executors; registering it
    for ``.gz`` replaces Hadoop's GzipCodec, which it falls back to behaving like for plain gzip.
    """
    jar = settings.home / BGZF_CODEC_JAR
    if not jar.exists():
        return {}
    return {
        "spark.jars": jar.as_uri(),
        "spark.driver.extraClassPath": str(jar),
        "spark.executor.extraClassPath": str(jar),
        "spark.hadoop.io.compression.codecs": BGZF_CODECS,
    }


def load_params(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
                overrides_source: str = "run conf") -> dict:
    """Read params.yaml, deep-merge ``overrides`` (e.g. an Airflow run's conf) over it and validate both.

    Returns the complete params (:mod:`genoflow.params`' defaults filled in, types as the schema
    says). Raises :class:`genoflow.errors.ParamsError` naming the first bad key, and the file or
    ``overrides_source`` it came from, so a DAG, an operator or a job stops before any Spark work.
    """
    import yaml

    from genoflow.params import validate_params  # pydantic: only when params are read, not on import

    path = Path(path) if path else Settings().params_file
    with open(path) as handle:
        params = validate_params(yaml.safe_load(handle) or {}, str(path)).model_dump()
    if not overrides:
        return params
    return validate_params(merge_params(params, overrides), overrides_source).model_dump()


def merge_params(base: dict, overrides: dict) -> dict:
    """Return ``base`` with ``overrides`` merged in, recursively for nested sections."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_params(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Part of every content key: bump it when a step's outputs change meaning or format, so committed
# outputs of older code are not reused (keys hash data and params, not the code itself).
OUTPUT_FORMAT = 3  # 3: study columns in the sample table, study.json, FeatureSpec.covariates

# Sections that change how a run is carried out or judged, not what it computes.
_NOT_IN_RUN_KEY = ("promote", "spark", "compute", "monitor", "ingest")


def _content_key(dataset_version: str, inputs: dict) -> str:
    document = {"dataset": dataset_version, "params": _canonical(inputs), "format": OUTPUT_FORMAT}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


def _canonical(value):
    """Equal params hash equally: 4.0 and 4 are one value (Airflow's trigger form turns one into the other)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run_key(dataset_version: str, params: dict) -> str:
    """Content address of one pipeline run: same data and params give the same key (and outputs).

    The promotion gate, Spark resources, drift-monitor and ingest settings are left out: changing the
    margin re-judges the same trained models rather than training new ones.
    """
    return _content_key(dataset_version, {k: v for k, v in params.items() if k not in _NOT_IN_RUN_KEY})


def _genotype_inputs(params: dict) -> dict:
    """The params the genotype table depends on: preprocess, and reads when it may be called from reads."""
    reads = {"reads": params["reads"]} if params["preprocess"].get("input", "auto") != "vcf" else {}
    return {"preprocess": params["preprocess"], **reads}


def step_key(step: str, dataset_version: str, params: dict) -> str:
    """Content address of one step's output: the data plus only the params the step depends on.

    preprocess depends on its own section, the study and the covariates in use (the sample table holds
    the study's columns);
    features on preprocess, features, the study and ``train.cv_folds`` (it learns each CV fold's features);
    train and evaluate on the whole run (their key is the run key). So tuning a model reuses the
    committed preprocess and features outputs.
    align and call (reads to genotypes) depend on the reads section, the reference and the patients' folder,
    and call also on the cohort VCF it checks for sample swaps; preprocess on reads too when it reads calls.
    """
    if step in ("align", "call"):
        p = params["preprocess"]
        return _content_key(dataset_version, {"reads": params["reads"], "reference": p["reference_fasta"],
                                              "patient_dir": p["patient_dir"],
                                              **({"vcf": p["vcf"]} if step == "call" else {})})
    if step == "preprocess":
        return _content_key(dataset_version, {**_genotype_inputs(params), "study": params["study"],
                                              "covariates": params["features"]["covariates"]})
    if step == "features":
        return _content_key(dataset_version, {**_genotype_inputs(params), "features": params["features"],
                                              "study": params["study"], "cv_folds": params["train"]["cv_folds"]})
    if step in STEPS:
        return run_key(dataset_version, params)
    raise ValueError(f"step must be one of {STEPS}, got {step!r}")

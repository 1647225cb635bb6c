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

from genoflow.pseudonym import (
    ALLOW_DEMO_KEY_ENV,
    DEMO_PSEUDONYM_KEY,
    check_pseudonym_key,
    key_fingerprint,
    weak_key_reason,
)

__all__ = ["Settings", "load_params", "merge_params", "run_key", "step_key", "STEPS"]

STEPS = ("align", "call", "preprocess", "features", "train", "evaluate")


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
        self._pseudonym_key_as_set = env.get("GENOFLOW_PSEUDONYM_KEY")  # None: unset
        self.pseudonym_key = DEMO_PSEUDONYM_KEY if self._pseudonym_key_as_set is None else self._pseudonym_key_as_set
        # "1" declares the data a demo: the public demo key (or another weak one) may pseudonymise it.
        self.allow_demo_key = env.get(ALLOW_DEMO_KEY_ENV, "").strip().lower() in ("1", "true", "yes")
        self.params_file = Path(env.get("GENOFLOW_PARAMS", self.home / "params.yaml"))

    @property
    def uses_demo_pseudonym_key(self) -> bool:
        return self.pseudonym_key == DEMO_PSEUDONYM_KEY

    @property
    def pseudonym_key_weakness(self) -> str | None:
        """Why the key must not protect real patients (:func:`genoflow.pseudonym.weak_key_reason`), or None."""
        return weak_key_reason(self._pseudonym_key_as_set)

    def checked_pseudonym_key(self) -> str:
        """The key to pseudonymise with; :class:`~genoflow.errors.InputError` if it is weak and
        ``GENOFLOW_ALLOW_DEMO_KEY`` is not 1 (:func:`genoflow.pseudonym.check_pseudonym_key`)."""
        return check_pseudonym_key(self._pseudonym_key_as_set, allow_weak=self.allow_demo_key)

    @property
    def pseudonym_fingerprint(self) -> str:
        """:func:`genoflow.pseudonym.key_fingerprint` of the key: in the keys of steps whose outputs hold pseudonyms."""
        return key_fingerprint(self.pseudonym_key)


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
OUTPUT_FORMAT = 4  # 3: study columns in the sample table, study.json, FeatureSpec.covariates
# 4: samples in pseudonym order, age in 5-year bands (decision 0018)

# Sections that change how a run is carried out or judged, not what it computes.
_NOT_IN_RUN_KEY = ("promote", "spark", "compute", "monitor", "ingest")


def _pseudonym_inputs(fingerprint: str | None) -> dict:
    """The pseudonym key's part of a key (decision 0018): its fingerprint, from the environment unless given.

    Outputs that hold pseudonyms depend on the key: a rotated key must not reuse the old key's outputs.
    """
    return {"pseudonym_key": fingerprint if fingerprint is not None else Settings().pseudonym_fingerprint}


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


def run_key(dataset_version: str, params: dict, *, pseudonym_fingerprint: str | None = None) -> str:
    """Content address of one pipeline run: same data, params and pseudonym key give the same key (and outputs).

    The promotion gate, Spark resources, drift-monitor and ingest settings are left out: changing the
    margin re-judges the same trained models rather than training new ones. ``pseudonym_fingerprint``:
    :attr:`Settings.pseudonym_fingerprint` of the environment's key unless given.
    """
    return _content_key(dataset_version, {**{k: v for k, v in params.items() if k not in _NOT_IN_RUN_KEY},
                                          **_pseudonym_inputs(pseudonym_fingerprint)})


def _genotype_inputs(params: dict) -> dict:
    """The params the genotype table depends on: preprocess, and reads when it may be called from reads."""
    reads = {"reads": params["reads"]} if params["preprocess"].get("input", "auto") != "vcf" else {}
    return {"preprocess": params["preprocess"], **reads}


def step_key(step: str, dataset_version: str, params: dict, *, pseudonym_fingerprint: str | None = None) -> str:
    """Content address of one step's output: the data plus only the params the step depends on.

    preprocess depends on its own section, the study and the covariates in use (the sample table holds
    the study's columns);
    features on preprocess, features, the study and ``train.cv_folds`` (it learns each CV fold's features);
    train and evaluate on the whole run (their key is the run key). So tuning a model reuses the
    committed preprocess and features outputs.
    preprocess, features, train and evaluate write pseudonyms, so their keys include the pseudonym key's
    fingerprint (``pseudonym_fingerprint``, the environment's key unless given; decision 0018).
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
                                              "covariates": params["features"]["covariates"],
                                              **_pseudonym_inputs(pseudonym_fingerprint)})
    if step == "features":
        return _content_key(dataset_version, {**_genotype_inputs(params), "features": params["features"],
                                              "study": params["study"], "cv_folds": params["train"]["cv_folds"],
                                              **_pseudonym_inputs(pseudonym_fingerprint)})
    if step in STEPS:
        return run_key(dataset_version, params, pseudonym_fingerprint=pseudonym_fingerprint)
    raise ValueError(f"step must be one of {STEPS}, got {step!r}")

"""A served model (registry identity + feature spec + portable scorer) and the swappable store."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np

from genoflow.features.spec import FeatureSpec
from genoflow.models.portable import PortableModel
from genoflow.serving.ranges import Range, input_ranges

__all__ = ["ModelLoadError", "ServedModel", "ModelStore", "Covariate", "spec_covariates"]

BINARY, QUANTITATIVE = "binary", "quantitative"


class ModelLoadError(Exception):
    """A registry version that cannot be served (missing or inconsistent artifacts)."""


@dataclass(frozen=True)
class Covariate:
    """One study covariate a model reads (decision 0011's ``FeatureSpec.covariates`` entry).

    ``levels`` is empty for a numeric covariate; a categorical one accepts exactly its levels (the
    reference included). ``imputed``: a missing value takes the training fill instead of being refused.
    """

    name: str
    kind: str  # numeric | categorical
    levels: tuple[str, ...] = ()
    imputed: bool = False


def spec_covariates(spec: FeatureSpec) -> tuple[Covariate, ...]:
    """The covariates of ``spec`` (``FeatureSpec.covariates``), as serving validates them."""
    out = []
    for c in spec.covariates:
        levels = [str(level) for level in c.get("levels") or []]
        reference = c.get("reference")
        if reference is not None and str(reference) not in levels:
            levels.insert(0, str(reference))
        out.append(Covariate(c["name"], c["kind"], tuple(levels) if c["kind"] == "categorical" else (),
                             c.get("fill") is not None))
    return tuple(out)


@dataclass(frozen=True)
class ServedModel:
    """Everything one request needs, immutable: a request holds one and never sees a half-swap.

    Attributes
    ----------
    target, name, version, alias, run_id : str
        What is served and where it came from in the registry.
    dataset_version : str or None
        The DVC hash of the cohort the model was trained on (run tag ``genoflow.dataset_version``).
    target_type : str
        ``binary`` (the API answers a ``risk``) or ``quantitative`` (a ``prediction``).
    spec : FeatureSpec
        The run's ``feature_spec.json``: raw values -> model inputs, exactly as in training.
    model : PortableModel
        The run's ``portable_model.json``.
    """

    target: str
    name: str
    version: str
    alias: str
    run_id: str
    dataset_version: str | None
    spec: FeatureSpec
    model: PortableModel
    target_type: str = BINARY
    # Derived once (FeatureSpec computes its column names on every access). The input variants are the
    # selected ones and those of the genotype scores (PC projection, polygenic scores, burdens).
    variant_order: tuple[str, ...] = field(init=False, repr=False)
    variant_columns: frozenset[str] = field(init=False, repr=False)
    covariates: tuple[Covariate, ...] = field(init=False, repr=False)
    covariate_columns: frozenset[str] = field(init=False, repr=False)
    ranges: dict[str, Range] = field(init=False, repr=False)  # numeric input -> allowed values

    def __post_init__(self):
        object.__setattr__(self, "variant_order", tuple(self.spec.input_variant_columns))
        object.__setattr__(self, "variant_columns", frozenset(self.variant_order))
        object.__setattr__(self, "covariates", spec_covariates(self.spec))
        object.__setattr__(self, "covariate_columns",
                           frozenset([*(c.name for c in self.covariates), *self.spec.read_qc]))
        object.__setattr__(self, "ranges", input_ranges(self.spec.covariates, self.spec.read_qc))

    def score(self, x: np.ndarray) -> np.ndarray:
        """The served number of each row, shape (n,): P(y = 1) (binary) or the predicted value."""
        return self.model.predict(x) if self.target_type == QUANTITATIVE else self.model.predict_proba(x)

    @classmethod
    def build(cls, *, target: str, name: str, version: str, alias: str, run_id: str,
              dataset_version: str | None, spec: dict, portable: dict,
              target_type: str | None = None) -> ServedModel:
        """Check that the spec and the model belong together, then build.

        ``target_type`` is the run's tag ``genoflow.target_type``; None (runs before decision 0011)
        takes the model's: a regressor is quantitative.

        Raises
        ------
        ModelLoadError
            Unreadable artifacts, a model whose inputs are not the spec's columns (in order):
            serving it would silently feed features into the wrong coefficients, or a classifier
            for a quantitative target (or a regressor for a binary one).
        """
        where = f"{name} v{version} (run {run_id})"
        try:
            feature_spec = FeatureSpec.from_json(json.dumps(spec))  # from_json reads older specs too
            model = PortableModel.from_dict(portable)
        except (TypeError, ValueError, KeyError) as error:
            raise ModelLoadError(f"{where}: unreadable model artifacts: {error}") from None
        names = feature_spec.names
        if model.n_features != len(names) or (model.features is not None and model.features != names):
            raise ModelLoadError(f"{where}: the model's inputs {model.features or model.n_features} are not "
                                 f"the feature spec's columns {names}")
        own_type = QUANTITATIVE if model.is_regressor else BINARY
        if target_type not in (None, own_type):
            raise ModelLoadError(f"{where}: a {model.kind} model cannot serve a {target_type} target")
        served = cls(target, name, str(version), alias, run_id, dataset_version, feature_spec, model, own_type)
        # One smoke prediction, so a broken model fails the swap rather than the first patient.
        p = served.score(np.zeros((1, len(names))))
        if not (np.isfinite(p).all() and (own_type == QUANTITATIVE or 0 <= p[0] <= 1)):
            raise ModelLoadError(f"{where}: the model returns {p[0]} for an all-zero input")
        return served

    def ref(self) -> dict:
        """The model block of a response."""
        return {"name": self.name, "version": self.version, "alias": self.alias, "run_id": self.run_id}

    def describe(self) -> dict:
        return {**self.ref(), "dataset_version": self.dataset_version, "target_type": self.target_type,
                "kind": self.model.kind,
                "n_features": self.model.n_features, "n_variants": len(self.variant_order)}


class ModelStore:
    """The served model of each target; swapped whole, read without locks.

    Writers replace the dict under a lock (copy-on-write); readers take one reference, which is
    atomic in CPython, so a request scores with one consistent model even during a swap.
    """

    def __init__(self, targets: tuple[str, ...]):
        self.targets = tuple(targets)
        self._models: dict[str, ServedModel] = {}
        self._unserved: dict[str, str] = {}  # target -> why the registry has no model to serve
        self._lock = threading.Lock()

    def get(self, target: str) -> ServedModel | None:
        return self._models.get(target)

    def set_unserved(self, target: str, reason: str | None) -> None:
        """Record why ``target`` has nothing to serve (None: forget it), e.g. its candidate failed the gate."""
        with self._lock:
            reasons = {k: v for k, v in self._unserved.items() if k != target}
            self._unserved = reasons if reason is None else {**reasons, target: reason}

    def unserved_reason(self, target: str) -> str | None:
        return self._unserved.get(target)

    def put(self, model: ServedModel) -> ServedModel | None:
        """Serve ``model`` for its target; returns the model it replaces."""
        with self._lock:
            previous = self._models.get(model.target)
            self._models = {**self._models, model.target: model}
            self._unserved = {k: v for k, v in self._unserved.items() if k != model.target}
        return previous

    def missing(self) -> list[str]:
        models = self._models
        return [t for t in self.targets if t not in models]

    def snapshot(self) -> dict[str, ServedModel]:
        return dict(self._models)

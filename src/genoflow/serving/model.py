"""A served model (registry identity + feature spec + portable scorer) and the swappable store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from genoflow.features.spec import FeatureSpec
from genoflow.models.portable import PortableModel

__all__ = ["ModelLoadError", "ServedModel", "ModelStore"]


class ModelLoadError(Exception):
    """A registry version that cannot be served (missing or inconsistent artifacts)."""


@dataclass(frozen=True)
class ServedModel:
    """Everything one request needs, immutable: a request holds one and never sees a half-swap.

    Attributes
    ----------
    target, name, version, alias, run_id : str
        What is served and where it came from in the registry.
    dataset_version : str or None
        The DVC hash of the cohort the model was trained on (run tag ``genoflow.dataset_version``).
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
    # Derived once (FeatureSpec computes its column names on every access). The input variants are the
    # selected ones and those of the genotype scores (PC projection, polygenic scores, burdens).
    variant_order: tuple[str, ...] = field(init=False, repr=False)
    variant_columns: frozenset[str] = field(init=False, repr=False)
    covariate_columns: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "variant_order", tuple(self.spec.input_variant_columns))
        object.__setattr__(self, "variant_columns", frozenset(self.variant_order))
        object.__setattr__(self, "covariate_columns", frozenset([*self.spec.clinical, *self.spec.read_qc]))

    @classmethod
    def build(cls, *, target: str, name: str, version: str, alias: str, run_id: str,
              dataset_version: str | None, spec: dict, portable: dict) -> ServedModel:
        """Check that the spec and the model belong together, then build.

        Raises
        ------
        ModelLoadError
            Unreadable artifacts, or a model whose inputs are not the spec's columns (in order):
            serving it would silently feed features into the wrong coefficients.
        """
        where = f"{name} v{version} (run {run_id})"
        try:
            feature_spec = FeatureSpec(**spec)
            model = PortableModel.from_dict(portable)
        except (TypeError, ValueError, KeyError) as error:
            raise ModelLoadError(f"{where}: unreadable model artifacts: {error}") from None
        names = feature_spec.names
        if model.n_features != len(names) or (model.features is not None and model.features != names):
            raise ModelLoadError(f"{where}: the model's inputs {model.features or model.n_features} are not "
                                 f"the feature spec's columns {names}")
        # One smoke prediction, so a broken model fails the swap rather than the first patient.
        p = model.predict_proba(np.zeros((1, len(names))))
        if not (np.isfinite(p).all() and 0 <= p[0] <= 1):
            raise ModelLoadError(f"{where}: the model returns {p[0]} for an all-zero input")
        return cls(target, name, str(version), alias, run_id, dataset_version, feature_spec, model)

    def ref(self) -> dict:
        """The model block of a response."""
        return {"name": self.name, "version": self.version, "alias": self.alias, "run_id": self.run_id}

    def describe(self) -> dict:
        return {**self.ref(), "dataset_version": self.dataset_version, "kind": self.model.kind,
                "n_features": self.model.n_features, "n_variants": len(self.variant_order)}


class ModelStore:
    """The served model of each target; swapped whole, read without locks.

    Writers replace the dict under a lock (copy-on-write); readers take one reference, which is
    atomic in CPython, so a request scores with one consistent model even during a swap.
    """

    def __init__(self, targets: tuple[str, ...]):
        self.targets = tuple(targets)
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()

    def get(self, target: str) -> ServedModel | None:
        return self._models.get(target)

    def put(self, model: ServedModel) -> ServedModel | None:
        """Serve ``model`` for its target; returns the model it replaces."""
        with self._lock:
            previous = self._models.get(model.target)
            self._models = {**self._models, model.target: model}
        return previous

    def missing(self) -> list[str]:
        models = self._models
        return [t for t in self.targets if t not in models]

    def snapshot(self) -> dict[str, ServedModel]:
        return dict(self._models)

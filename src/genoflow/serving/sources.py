"""Where served models come from: the MLflow registry, or (tests, demos) models held in memory.

A source answers three questions: which version an alias points at now (cheap, asked every
poll), the servable model of that version (downloads two small JSON artifacts), and, when the
alias does not exist, why (the promotion gate's reason on the newest version). None is ever asked
on the request path.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Protocol

from genoflow.serving.model import ModelLoadError, ServedModel

__all__ = ["ModelSource", "MlflowSource", "StaticSource", "PORTABLE_ARTIFACT", "SPEC_ARTIFACT"]

log = logging.getLogger(__name__)

PORTABLE_ARTIFACT = "portable_model.json"  # genoflow.models.portable.export_portable, logged by train
SPEC_ARTIFACT = "feature_spec.json"  # genoflow.features.spec.FeatureSpec, logged by train


class ModelSource(Protocol):
    def version_of(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the model or alias does not exist."""

    def load(self, target: str, name: str, alias: str) -> ServedModel:
        """The servable model ``name@alias`` points at (raises ModelLoadError if it cannot be served)."""

    def absence_reason(self, name: str) -> str | None:
        """Why ``name`` has no version to serve (its newest version's promotion decision), if known."""


class MlflowSource:
    """Models from an MLflow registry: ``models:/<name>@<alias>`` and its run's artifacts."""

    def __init__(self, tracking_uri: str):
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def version_of(self, name: str, alias: str) -> str | None:
        version = self._by_alias(name, alias)
        return None if version is None else str(version.version)

    def load(self, target: str, name: str, alias: str) -> ServedModel:
        from genoflow.registry.tracking import TAG_DATASET_VERSION, TAG_TARGET_TYPE

        version = self._by_alias(name, alias)
        if version is None:
            raise ModelLoadError(f"models:/{name}@{alias} does not exist")
        run = self._client.get_run(version.run_id)
        artifacts = self._artifacts(version.run_id, (PORTABLE_ARTIFACT, SPEC_ARTIFACT),
                                    where=f"{name} v{version.version}")
        return ServedModel.build(
            target=target, name=name, version=str(version.version), alias=alias, run_id=version.run_id,
            dataset_version=run.data.tags.get(TAG_DATASET_VERSION), spec=artifacts[SPEC_ARTIFACT],
            portable=artifacts[PORTABLE_ARTIFACT], target_type=run.data.tags.get(TAG_TARGET_TYPE),
        )

    def absence_reason(self, name: str) -> str | None:
        from mlflow.exceptions import MlflowException

        from genoflow.registry.tracking import TAG_PROMOTION, TAG_PROMOTION_REASON, filter_literal

        try:
            versions = self._client.search_model_versions(f"name = {filter_literal(name)}")
        except MlflowException:
            return None
        if not versions:
            return f"{name} has no registered version yet"
        newest = max(versions, key=lambda v: int(v.version))
        decision, reason = newest.tags.get(TAG_PROMOTION), newest.tags.get(TAG_PROMOTION_REASON)
        if not reason:
            return f"{name} v{newest.version} has not been through the promotion gate"
        return f"{name} v{newest.version} {decision or 'not promoted'}: {reason}"

    def _by_alias(self, name: str, alias: str):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

        try:
            return self._client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            # A missing model or alias is a state (nothing to serve yet), anything else an outage.
            if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST) or "not found" in str(error).lower():
                return None
            raise

    def _artifacts(self, run_id: str, paths: tuple[str, ...], where: str) -> dict[str, dict]:
        from mlflow.exceptions import MlflowException

        present = {a.path for a in self._client.list_artifacts(run_id)}
        absent = [p for p in paths if p not in present]
        if absent:
            raise ModelLoadError(f"{where} (run {run_id}) has no {' or '.join(absent)}, which the API scores "
                                 "with; models trained before train logged it must be retrained to be served")
        out = {}
        with tempfile.TemporaryDirectory(prefix="genoflow-serving-") as tmp:
            for path in paths:
                try:
                    local = self._client.download_artifacts(run_id, path, tmp)
                    out[path] = json.loads(Path(local).read_text())
                except (MlflowException, OSError, ValueError) as error:
                    raise ModelLoadError(f"{where} (run {run_id}): cannot read {path}: {error}") from None
        return out


class StaticSource:
    """Models held in memory (no registry): for tests, demos and air-gapped scoring.

    `set` plays the part of moving an alias: the next poll or reload serves the new model;
    ``reasons`` (model name -> text) plays the registry's promotion reason of a model without one.
    """

    def __init__(self, models: list[ServedModel] | None = None, reasons: dict[str, str] | None = None):
        self._models: dict[tuple[str, str], ServedModel] = {}
        self.reasons = dict(reasons or {})
        for model in models or []:
            self.set(model)

    def absence_reason(self, name: str) -> str | None:
        return self.reasons.get(name)

    def set(self, model: ServedModel) -> None:
        self._models[(model.name, model.alias)] = model

    def version_of(self, name: str, alias: str) -> str | None:
        model = self._models.get((name, alias))
        return None if model is None else model.version

    def load(self, target: str, name: str, alias: str) -> ServedModel:
        model = self._models.get((name, alias))
        if model is None:
            raise ModelLoadError(f"models:/{name}@{alias} does not exist")
        return model

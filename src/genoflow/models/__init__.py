"""Spark MLlib model families and their pipelines."""

from genoflow.models.estimators import MODEL_FAMILIES, TARGET_TYPES, build_pipeline, param_grid

__all__ = ["MODEL_FAMILIES", "TARGET_TYPES", "build_pipeline", "param_grid"]

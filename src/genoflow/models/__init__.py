"""Spark MLlib model families and their cross-validated training."""

from genoflow.models.estimators import MODEL_FAMILIES, build_cross_validator

__all__ = ["MODEL_FAMILIES", "build_cross_validator"]

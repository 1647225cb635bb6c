"""MLflow tracking and registry: experiments, run tags, registration and the champion gate.

Follows the mlflow flavor pattern: a small public API, mlflow imported inside functions.
"""

from genoflow.registry.promotion import PromotionDecision, promote_candidates, promote_pipeline_run
from genoflow.registry.tracking import (
    TAG_CANDIDATE,
    TAG_DATASET_VERSION,
    TAG_GIT_COMMIT,
    TAG_MODEL_FAMILY,
    TAG_RUN_KEY,
    TAG_TARGET,
    ensure_experiment,
    model_name,
)

__all__ = [
    "PromotionDecision", "promote_candidates", "promote_pipeline_run", "ensure_experiment", "model_name",
    "TAG_CANDIDATE", "TAG_DATASET_VERSION", "TAG_GIT_COMMIT", "TAG_MODEL_FAMILY", "TAG_RUN_KEY", "TAG_TARGET",
]

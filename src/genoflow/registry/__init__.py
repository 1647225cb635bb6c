"""MLflow tracking and registry: experiments, run tags, registration and the champion gate.

Follows the mlflow flavor pattern: a small public API, mlflow imported inside functions.
"""

from genoflow.registry.promotion import (
    GateEvidence,
    PromotionDecision,
    decide,
    promote_candidates,
    promote_pipeline_run,
)
from genoflow.registry.tracking import (
    GATE_CHAMPION_DELTA,
    GATE_P_VS_BASELINE,
    HELD_OUT_METRIC,
    TAG_BASELINE,
    TAG_CANDIDATE,
    TAG_DATASET_VERSION,
    TAG_GATE_CHAMPION,
    TAG_GIT_COMMIT,
    TAG_MODEL_FAMILY,
    TAG_PROMOTION,
    TAG_PROMOTION_REASON,
    TAG_RUN_KEY,
    TAG_TARGET,
    TAG_TARGET_TYPE,
    ensure_experiment,
    filter_literal,
    model_name,
)

__all__ = [
    "GateEvidence", "PromotionDecision", "decide", "promote_candidates", "promote_pipeline_run",
    "ensure_experiment", "model_name", "filter_literal",
    "TAG_CANDIDATE", "TAG_DATASET_VERSION", "TAG_GIT_COMMIT", "TAG_MODEL_FAMILY", "TAG_RUN_KEY", "TAG_TARGET",
    "TAG_BASELINE", "TAG_TARGET_TYPE", "TAG_GATE_CHAMPION", "TAG_PROMOTION", "TAG_PROMOTION_REASON",
    "GATE_P_VS_BASELINE", "GATE_CHAMPION_DELTA", "HELD_OUT_METRIC",
]

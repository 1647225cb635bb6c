"""Register each target's candidate model, alias it ``challenger``, and gate ``champion``.

The gate: the challenger becomes champion when no champion exists, or when its held-out metric
beats the champion's by at least ``min_improvement``. Every decision is written on the model
version as tags, so the registry itself explains why the champion is the champion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from genoflow.registry.tracking import TAG_CANDIDATE, TAG_RUN_KEY, TAG_TARGET, model_name

__all__ = ["PromotionDecision", "promote_candidates", "promote_pipeline_run", "decide"]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass
class PromotionDecision:
    model_name: str
    version: str
    run_id: str
    metric: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None
    promoted: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def decide(challenger_value: float, champion_value: float | None, min_improvement: float,
           metric: str, same_version: bool = False) -> tuple[bool, str]:
    """Whether the challenger should become champion, and why (pure; no MLflow)."""
    if same_version:
        return True, "this version is already the champion"
    if champion_value is None:
        return True, "no champion yet"
    margin = challenger_value - champion_value
    if margin >= min_improvement:
        return True, (f"{metric} {challenger_value:.4f} beats the champion's {champion_value:.4f} "
                      f"by {margin:+.4f} (>= {min_improvement})")
    return False, (f"{metric} {challenger_value:.4f} vs the champion's {champion_value:.4f}: "
                   f"margin {margin:+.4f} < {min_improvement}")


def promote_candidates(experiment_id: str, run_key: str, targets: list[str], *, prefix: str,
                       metric: str, min_improvement: float) -> list[PromotionDecision]:
    """Promote the candidate run of each target from pipeline run ``run_key``."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    decisions = []
    for target in targets:
        runs = mlflow.search_runs(
            [experiment_id], output_format="list",
            filter_string=(f"tags.`{TAG_RUN_KEY}` = '{run_key}' and tags.`{TAG_TARGET}` = '{target}' "
                           f"and tags.`{TAG_CANDIDATE}` = 'true' and attributes.status = 'FINISHED'"),
        )
        if not runs:
            raise LookupError(f"no finished candidate run for target {target!r} of pipeline run {run_key}")
        run = runs[0]
        decisions.append(_promote_run(client, run, model_name(prefix, target), metric, min_improvement))
    return decisions


def _promote_run(client, run, name: str, metric: str, min_improvement: float) -> PromotionDecision:
    import mlflow

    if metric not in run.data.metrics:
        raise LookupError(f"run {run.info.run_id} has no metric {metric!r}; did evaluate run?")
    value = run.data.metrics[metric]
    version = _existing_version(client, name, run.info.run_id)
    if version is None:
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version
    client.set_registered_model_alias(name, CHALLENGER, version)

    champion = _alias_version(client, name, CHAMPION)
    champion_value = None
    if champion is not None:
        champion_value = client.get_run(champion.run_id).data.metrics.get(metric)
    already_champion = champion is not None and str(champion.version) == str(version)
    promoted, reason = decide(value, champion_value, min_improvement, metric, same_version=already_champion)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    if not already_champion:  # a rerun keeps the record of why this version became champion
        client.set_model_version_tag(name, version, "genoflow.promotion",
                                     "champion" if promoted else "kept challenger")
        client.set_model_version_tag(name, version, "genoflow.promotion_reason", reason)
    decision = PromotionDecision(
        model_name=name, version=str(version), run_id=run.info.run_id, metric=metric,
        challenger_value=value, champion_version=None if champion is None else str(champion.version),
        champion_value=champion_value, promoted=promoted, reason=reason,
    )
    log.info("%s v%s: %s (%s)", name, version, "champion" if promoted else "not promoted", reason)
    return decision


def _existing_version(client, name: str, run_id: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    return str(versions[0].version) if versions else None


def _alias_version(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def promote_pipeline_run(run_key: str, params: dict, *, tracking_uri: str,
                         artifact_root: str | None = None) -> list[PromotionDecision]:
    """Promote every target of pipeline run ``run_key`` with the gate settings in ``params``."""
    from genoflow.registry.tracking import ensure_experiment

    experiment_id = ensure_experiment(tracking_uri, params["mlflow"]["experiment"], artifact_root)
    gate = params["promote"]
    return promote_candidates(
        experiment_id, run_key, list(params["train"]["targets"]), prefix=gate["model_name_prefix"],
        metric=gate["metric"], min_improvement=float(gate["min_improvement"]),
    )

"""Register each target's candidate model, alias it ``challenger``, and gate ``champion``.

The gate (decision 0011) protects patients from a model that only looks good: a candidate
becomes champion only when both hold:

a. it beats the covariates-only baseline on the held-out patients: the evaluate step's one-sided
   paired test (DeLong on AUC for a binary target, squared errors for a quantitative one) gives
   ``gate_p_vs_baseline < promote.max_p_vs_baseline`` (default 0.05);
b. there is no champion, or the candidate beats it by ``promote.min_improvement`` on the *same*
   test patients (``gate_champion_delta``, the champion scored by evaluate with its own spec and
   model), and the champion evaluate compared with is still the champion.

Otherwise it stays ``challenger``. Every decision and its reason is written on the model version
as tags, so the registry itself explains why the champion is the champion, and the model API
answers 503 with the reason for a target that has none.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from genoflow.registry.tracking import (
    GATE_CHAMPION_DELTA,
    GATE_P_VS_BASELINE,
    HELD_OUT_METRIC,
    TAG_CANDIDATE,
    TAG_GATE_CHAMPION,
    TAG_PROMOTION,
    TAG_PROMOTION_REASON,
    TAG_RUN_KEY,
    TAG_TARGET,
    TAG_TARGET_TYPE,
    filter_literal,
    model_name,
)

__all__ = ["GateEvidence", "PromotionDecision", "decide", "promote_candidates", "promote_pipeline_run",
           "DEFAULT_MAX_P_VS_BASELINE"]

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MAX_P_VS_BASELINE = 0.05


@dataclass(frozen=True)
class GateEvidence:
    """What evaluate logged on a candidate's run for the gate.

    Attributes
    ----------
    value : float or None
        The candidate's held-out metric (``test_auc_roc``; ``test_r2`` for a quantitative target).
    p_vs_baseline : float or None
        ``gate_p_vs_baseline``; None when evaluate did not log it (the gate then refuses).
    champion_delta : float or None
        ``gate_champion_delta``, in the same metric; None when evaluate found no champion.
    compared_champion : str or None
        Tag ``genoflow.gate.champion_version``: the champion version evaluate scored.
    """

    value: float | None
    p_vs_baseline: float | None
    champion_delta: float | None
    compared_champion: str | None

    @classmethod
    def from_run(cls, run, metric: str) -> GateEvidence:
        metrics, tags = run.data.metrics, run.data.tags
        return cls(metrics.get(metric), metrics.get(GATE_P_VS_BASELINE), metrics.get(GATE_CHAMPION_DELTA),
                   tags.get(TAG_GATE_CHAMPION))


@dataclass
class PromotionDecision:
    model_name: str
    version: str
    run_id: str
    metric: str
    challenger_value: float | None
    p_vs_baseline: float | None
    champion_version: str | None
    champion_delta: float | None
    promoted: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def decide(evidence: GateEvidence, version: str, champion: str | None, *, metric: str, min_improvement: float,
           max_p_vs_baseline: float = DEFAULT_MAX_P_VS_BASELINE) -> tuple[bool, str]:
    """Whether candidate ``version`` becomes champion, and why (pure; no MLflow).

    Parameters
    ----------
    evidence : GateEvidence
    version : str
        The candidate's registered version.
    champion : str or None
        The version the ``champion`` alias points at now (None: no champion).
    metric, min_improvement, max_p_vs_baseline
        ``promote`` settings: the metric's name (for the reason), the margin over the champion,
        and the significance level of the test against the covariates-only baseline.

    Returns
    -------
    (promoted, reason) : (bool, str)
        Missing evidence never promotes: the gate fails closed.
    """
    if champion is not None and str(champion) == str(version):
        return True, "this version is already the champion"
    p = evidence.p_vs_baseline
    if p is None:
        return False, f"no {GATE_P_VS_BASELINE} on the run: evaluate did not test it against the baseline"
    if not p < max_p_vs_baseline:
        return False, f"not better than the covariates-only baseline (p={p:.2g} >= {max_p_vs_baseline:g})"
    baseline = f"beats the covariates-only baseline (p={p:.2g})"
    compared = evidence.compared_champion
    if (compared or None) != (champion or None):
        was = f"v{compared}" if compared else "no champion"
        now = f"v{champion}" if champion else "none"
        return False, (f"the champion changed since evaluate (it compared with {was}, the champion is now {now}); "
                       "evaluate again to compare on the same patients")
    if champion is None:
        return True, f"no champion yet; {baseline}"
    delta = evidence.champion_delta
    if delta is None:
        return False, f"no {GATE_CHAMPION_DELTA} on the run: evaluate did not score champion v{champion}"
    if delta >= min_improvement:
        return True, (f"{metric} beats champion v{champion} by {delta:+.4f} on the same test patients "
                      f"(>= {min_improvement:g}); {baseline}")
    return False, (f"not better than champion v{champion}: {metric} {delta:+.4f} on the same test patients "
                   f"(< {min_improvement:g})")


def promote_candidates(experiment_id: str, run_key: str, targets: list[str], *, prefix: str, metric: str,
                       min_improvement: float, max_p_vs_baseline: float = DEFAULT_MAX_P_VS_BASELINE,
                       ) -> list[PromotionDecision]:
    """Register, alias and gate the candidate run of each target from pipeline run ``run_key``.

    ``metric`` is the binary targets' held-out metric (``promote.metric``); a quantitative target
    (run tag ``genoflow.target_type``) is compared on ``test_r2``.

    Raises
    ------
    LookupError
        A target without a finished candidate run, or a candidate without its held-out metric.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    decisions = []
    for target in targets:
        runs = mlflow.search_runs(
            [experiment_id], output_format="list", order_by=["attributes.start_time DESC"],
            filter_string=(f"tags.`{TAG_RUN_KEY}` = {filter_literal(run_key)} "
                           f"and tags.`{TAG_TARGET}` = {filter_literal(target)} "
                           f"and tags.`{TAG_CANDIDATE}` = 'true' and attributes.status = 'FINISHED'"),
        )
        if not runs:
            raise LookupError(f"no finished candidate run for target {target!r} of pipeline run {run_key}")
        run = runs[0]  # the newest: a retried evaluate step re-tags
        kind = run.data.tags.get(TAG_TARGET_TYPE, "binary")
        target_metric = metric if kind == "binary" else HELD_OUT_METRIC[kind]
        decisions.append(_promote_run(client, run, model_name(prefix, target), target_metric, min_improvement,
                                      max_p_vs_baseline))
    return decisions


def _promote_run(client, run, name: str, metric: str, min_improvement: float,
                 max_p_vs_baseline: float) -> PromotionDecision:
    import mlflow

    if metric not in run.data.metrics:
        raise LookupError(f"run {run.info.run_id} has no metric {metric!r}; did evaluate run?")
    evidence = GateEvidence.from_run(run, metric)
    version = _existing_version(client, name, run.info.run_id)
    if version is None:
        version = str(mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version)
    client.set_registered_model_alias(name, CHALLENGER, version)

    champion = _alias_version(client, name, CHAMPION)
    champion = None if champion is None else str(champion.version)
    promoted, reason = decide(evidence, version, champion, metric=metric, min_improvement=min_improvement,
                              max_p_vs_baseline=max_p_vs_baseline)
    already_champion = champion == version
    if promoted and not already_champion:
        client.set_registered_model_alias(name, CHAMPION, version)
    if not already_champion:  # a rerun keeps the record of why this version became champion
        client.set_model_version_tag(name, version, TAG_PROMOTION, CHAMPION if promoted else "kept challenger")
        client.set_model_version_tag(name, version, TAG_PROMOTION_REASON, reason)
    log.info("%s v%s: %s (%s)", name, version, CHAMPION if promoted else "kept challenger", reason)
    return PromotionDecision(
        model_name=name, version=version, run_id=run.info.run_id, metric=metric, challenger_value=evidence.value,
        p_vs_baseline=evidence.p_vs_baseline, champion_version=champion, champion_delta=evidence.champion_delta,
        promoted=promoted, reason=reason,
    )


def _existing_version(client, name: str, run_id: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = {filter_literal(name)} and run_id = {filter_literal(run_id)}")
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
    """Promote every study target of pipeline run ``run_key`` with the gate settings in ``params["promote"]``
    (``params`` as `genoflow.config.load_params` returns them: validated, defaults filled in)."""
    from genoflow.registry.tracking import ensure_experiment
    from genoflow.study import targets as study_targets

    experiment_id = ensure_experiment(tracking_uri, params["mlflow"]["experiment"], artifact_root)
    gate = params["promote"]
    return promote_candidates(
        experiment_id, run_key, list(study_targets(params)), prefix=gate["model_name_prefix"],
        metric=gate["metric"], min_improvement=float(gate["min_improvement"]),
        max_p_vs_baseline=float(gate["max_p_vs_baseline"]),
    )

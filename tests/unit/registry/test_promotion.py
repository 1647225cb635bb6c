"""The promotion gate: decide() for each reason, and promote_candidates on a real SQLite MLflow store."""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow import MlflowClient

from genoflow.registry.promotion import GateEvidence, decide, promote_candidates
from genoflow.registry.tracking import (
    GATE_CHAMPION_DELTA,
    GATE_P_VS_BASELINE,
    TAG_CANDIDATE,
    TAG_GATE_CHAMPION,
    TAG_PROMOTION,
    TAG_PROMOTION_REASON,
    TAG_RUN_KEY,
    TAG_TARGET,
    TAG_TARGET_TYPE,
    filter_literal,
)

SETTINGS = {"metric": "test_auc_roc", "min_improvement": 0.005}


@pytest.mark.parametrize("evidence, version, champion, promoted, reason", [
    (GateEvidence(0.7, 0.01, None, None), "1", None, True, "no champion yet; beats the covariates-only baseline "
                                                           "(p=0.01)"),
    (GateEvidence(0.7, 0.41, None, None), "1", None, False, "not better than the covariates-only baseline "
                                                            "(p=0.41 >= 0.05)"),
    (GateEvidence(0.7, 0.05, None, None), "1", None, False, "(p=0.05 >= 0.05)"),  # strict: p < 0.05
    (GateEvidence(0.7, None, None, None), "1", None, False, "no gate_p_vs_baseline on the run"),
    (GateEvidence(0.8, 0.001, 0.012, "3"), "4", "3", True, "test_auc_roc beats champion v3 by +0.0120 on the "
                                                           "same test patients (>= 0.005)"),
    (GateEvidence(0.8, 0.001, 0.003, "3"), "4", "3", False, "not better than champion v3: test_auc_roc +0.0030 "
                                                            "on the same test patients (< 0.005)"),
    (GateEvidence(0.8, 0.001, -0.1, "3"), "4", "3", False, "not better than champion v3"),
    (GateEvidence(0.8, 0.001, None, "3"), "4", "3", False, "no gate_champion_delta on the run"),
    # The champion moved between evaluate and promote: the delta is against the wrong model.
    (GateEvidence(0.8, 0.001, 0.05, "3"), "5", "4", False, "the champion changed since evaluate (it compared "
                                                           "with v3, the champion is now v4)"),
    (GateEvidence(0.8, 0.001, None, None), "5", "4", False, "it compared with no champion, the champion is now v4"),
    (GateEvidence(0.8, 0.001, 0.05, "3"), "5", None, False, "it compared with v3, the champion is now none"),
    # A rerun of promote for the version that already is champion keeps it, whatever the evidence.
    (GateEvidence(0.8, 0.9, None, None), "4", "4", True, "this version is already the champion"),
])
def test_decide__each_reason(evidence, version, champion, promoted, reason):
    got_promoted, got_reason = decide(evidence, version, champion, **SETTINGS)
    assert got_promoted is promoted
    assert reason in got_reason


def test_decide__significance_level_is_a_setting():
    evidence = GateEvidence(0.7, 0.08, None, None)
    assert decide(evidence, "1", None, **SETTINGS)[0] is False
    assert decide(evidence, "1", None, **SETTINGS, max_p_vs_baseline=0.1)[0] is True


def test_filter_literal__quotes_and_refuses_what_mlflow_cannot_match():
    assert filter_literal("abc") == "'abc'"
    assert filter_literal("it's") == '"it\'s"'
    with pytest.raises(ValueError, match="both quote characters"):
        filter_literal("' or \"")


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # the registry follows it (a set registry URI would outlive the test)
    experiment = mlflow.create_experiment("gate", artifact_location=(tmp_path / "artifacts").as_uri())
    yield experiment
    mlflow.set_tracking_uri(None)


def _candidate(experiment: str, run_key: str, *, target: str = "disease_status", kind: str = "binary",
               metrics: dict, champion: str | None = None) -> str:
    tags = {TAG_RUN_KEY: run_key, TAG_TARGET: target, TAG_CANDIDATE: "true", TAG_TARGET_TYPE: kind}
    if champion:
        tags[TAG_GATE_CHAMPION] = champion
    with mlflow.start_run(experiment_id=experiment, tags=tags) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    time.sleep(0.01)
    return run.info.run_id


def _aliases(name: str) -> dict[str, str]:
    model = MlflowClient().get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_promote_candidates__gate_on_a_real_registry(store):
    name = "genoflow_disease_status"
    # 1. A chance-level model, the first ever: stays challenger, with the reason in the registry.
    _candidate(store, "k1", metrics={"test_auc_roc": 0.52, GATE_P_VS_BASELINE: 0.41})
    [d] = promote_candidates(store, "k1", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert not d.promoted and _aliases(name) == {"challenger": "1"}
    tags = MlflowClient().get_model_version(name, "1").tags
    assert tags[TAG_PROMOTION] == "kept challenger"
    assert tags[TAG_PROMOTION_REASON] == "not better than the covariates-only baseline (p=0.41 >= 0.05)"

    # 2. A model that beats the baseline, still no champion: champion.
    _candidate(store, "k2", metrics={"test_auc_roc": 0.70, GATE_P_VS_BASELINE: 0.002})
    [d] = promote_candidates(store, "k2", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert d.promoted and _aliases(name) == {"challenger": "2", "champion": "2"}

    # 3. Better than the baseline, but only +0.003 over champion v2 on the same patients: challenger.
    _candidate(store, "k3", metrics={"test_auc_roc": 0.71, GATE_P_VS_BASELINE: 0.001, GATE_CHAMPION_DELTA: 0.003},
               champion="2")
    [d] = promote_candidates(store, "k3", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert not d.promoted and _aliases(name) == {"challenger": "3", "champion": "2"}
    assert "not better than champion v2" in MlflowClient().get_model_version(name, "3").tags[TAG_PROMOTION_REASON]

    # 4. Evaluated against v1, which was never champion (the champion moved since): refused.
    _candidate(store, "k4", metrics={"test_auc_roc": 0.9, GATE_P_VS_BASELINE: 1e-5, GATE_CHAMPION_DELTA: 0.2},
               champion="1")
    [d] = promote_candidates(store, "k4", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert not d.promoted and "champion changed since evaluate" in d.reason

    # 5. Beats champion v2 by +0.02: champion. Promoting the same run again keeps it and its reason.
    _candidate(store, "k5", metrics={"test_auc_roc": 0.72, GATE_P_VS_BASELINE: 1e-4, GATE_CHAMPION_DELTA: 0.02},
               champion="2")
    [d] = promote_candidates(store, "k5", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert d.promoted and _aliases(name) == {"challenger": "5", "champion": "5"}
    [again] = promote_candidates(store, "k5", ["disease_status"], prefix="genoflow", **SETTINGS)
    assert again.promoted and again.version == "5" and again.reason == "this version is already the champion"
    assert "beats champion v2 by +0.0200" in MlflowClient().get_model_version(name, "5").tags[TAG_PROMOTION_REASON]


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_promote_candidates__quantitative_target_compares_r2(store):
    _candidate(store, "q1", target="ldl", kind="quantitative", metrics={"test_r2": 0.2, GATE_P_VS_BASELINE: 0.01})
    [d] = promote_candidates(store, "q1", ["ldl"], prefix="genoflow", **SETTINGS)
    assert d.promoted and d.metric == "test_r2" and d.challenger_value == 0.2


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_promote_candidates__missing_candidate_or_metric(store):
    with pytest.raises(LookupError, match="no finished candidate run"):
        promote_candidates(store, "nope", ["disease_status"], prefix="genoflow", **SETTINGS)
    _candidate(store, "k1", metrics={GATE_P_VS_BASELINE: 0.01})
    with pytest.raises(LookupError, match="no metric 'test_auc_roc'"):
        promote_candidates(store, "k1", ["disease_status"], prefix="genoflow", **SETTINGS)
    # A quote in a run key is quoted, not injected into the filter.
    with pytest.raises(LookupError, match="no finished candidate run"):
        promote_candidates(store, "x' or tags.`genoflow.target` = 'disease_status", ["disease_status"],
                           prefix="genoflow", **SETTINGS)


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_promote_pipeline_run__every_study_target_with_the_params_gate(store, tmp_path):
    from genoflow.config import load_params
    from genoflow.registry.promotion import promote_pipeline_run
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml", overrides={
        "study": {"targets": {"disease_status": "binary", "ldl": "quantitative"}},
        "promote": {"max_p_vs_baseline": 0.01}, "mlflow": {"experiment": "gate"}})
    _candidate(store, "k9", metrics={"test_auc_roc": 0.7, GATE_P_VS_BASELINE: 0.02})
    _candidate(store, "k9", target="ldl", kind="quantitative", metrics={"test_r2": 0.3, GATE_P_VS_BASELINE: 0.001})
    _candidate(store, "k9", target="treatment_response", metrics={"test_auc_roc": 0.6, GATE_P_VS_BASELINE: 0.005})
    decisions = promote_pipeline_run("k9", params, tracking_uri=mlflow.get_tracking_uri())
    assert sorted((d.model_name, d.promoted) for d in decisions) == [
        ("genoflow_disease_status", False), ("genoflow_ldl", True), ("genoflow_treatment_response", True)]
    assert next(d.reason for d in decisions if d.model_name == "genoflow_disease_status") == (
        "not better than the covariates-only baseline (p=0.02 >= 0.01)")

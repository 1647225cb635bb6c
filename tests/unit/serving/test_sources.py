"""MlflowSource against a real SQLite MLflow registry: the gate's reason for a target without a champion,
and a quantitative champion served as one."""

from __future__ import annotations

from dataclasses import asdict

import mlflow
import pytest
from mlflow import MlflowClient

from genoflow.models.portable import FORMAT
from genoflow.registry.tracking import TAG_PROMOTION, TAG_PROMOTION_REASON, TAG_TARGET_TYPE
from genoflow.serving.sources import PORTABLE_ARTIFACT, SPEC_ARTIFACT, MlflowSource
from tests.unit.serving.conftest import COEFFICIENTS, INTERCEPT, spec


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("serving", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("serving")
    yield uri
    mlflow.set_tracking_uri(None)


def _version(name: str, kind: str, target_type: str) -> str:
    s = spec()
    portable = {"format": FORMAT, "kind": kind, "n_features": len(s.names), "features": s.names,
                "coefficients": COEFFICIENTS, "intercept": INTERCEPT}
    with mlflow.start_run(tags={TAG_TARGET_TYPE: target_type}) as run:
        mlflow.log_dict(asdict(s), SPEC_ARTIFACT)
        mlflow.log_dict(portable, PORTABLE_ARTIFACT)
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    return str(mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version)


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_absence_reason__the_newest_versions_gate_decision(registry):
    source = MlflowSource(registry)
    assert source.absence_reason("genoflow_ldl") == "genoflow_ldl has no registered version yet"
    client = MlflowClient()
    _version("genoflow_ldl", "linear_regression", "quantitative")
    version = _version("genoflow_ldl", "linear_regression", "quantitative")
    assert source.absence_reason("genoflow_ldl") == f"genoflow_ldl v{version} has not been through the promotion gate"
    client.set_model_version_tag("genoflow_ldl", version, TAG_PROMOTION, "kept challenger")
    client.set_model_version_tag("genoflow_ldl", version, TAG_PROMOTION_REASON,
                                 "not better than the covariates-only baseline (p=0.41 >= 0.05)")
    assert source.absence_reason("genoflow_ldl") == (
        "genoflow_ldl v2 kept challenger: not better than the covariates-only baseline (p=0.41 >= 0.05)")
    assert source.version_of("genoflow_ldl", "champion") is None


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_load__a_quantitative_champion_is_served_as_one(registry):
    version = _version("genoflow_ldl", "linear_regression", "quantitative")
    MlflowClient().set_registered_model_alias("genoflow_ldl", "champion", version)
    served = MlflowSource(registry).load("ldl", "genoflow_ldl", "champion")
    assert served.target_type == "quantitative" and served.model.is_regressor


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_load__a_classifier_tagged_quantitative_is_refused(registry):
    from genoflow.serving.model import ModelLoadError

    version = _version("genoflow_ldl", "logistic_regression", "quantitative")
    MlflowClient().set_registered_model_alias("genoflow_ldl", "champion", version)
    with pytest.raises(ModelLoadError, match="cannot serve a quantitative target"):
        MlflowSource(registry).load("ldl", "genoflow_ldl", "champion")

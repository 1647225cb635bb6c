"""An app around in-memory models (no MLflow, no Spark): a logistic model with known weights."""

from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np
import pytest

from genoflow.features.spec import FeatureSpec
from genoflow.models.portable import FORMAT
from genoflow.serving import ServingSettings, create_app
from genoflow.serving.model import ServedModel
from genoflow.serving.sources import StaticSource

with warnings.catch_warnings():  # starlette nudges towards httpx2, which is not in the lock file
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

KEY = "test-key-1"
AUTH = {"X-API-Key": KEY}
VARIANTS = [
    {"contig": "chr22", "pos": 1114906, "ref": "C", "alt": "G", "gene": "GF01", "train_p": 1e-6},
    {"contig": "chr22", "pos": 1120044, "ref": "T", "alt": "C", "gene": "", "train_p": 1e-5},
    {"contig": "chr22", "pos": 1200000, "ref": "A", "alt": "AT", "gene": "GF02", "train_p": 1e-4},
]
FILL = {"mean_phred": 34.0, "v_chr22_1114906_C_G": 0.5, "v_chr22_1120044_T_C": 1.2, "v_chr22_1200000_A_AT": 0.1}
COEFFICIENTS = [0.03, -0.4, 0.05, 0.8, -0.6, 0.3]  # age, sex, mean_phred, the three dosages
INTERCEPT = -3.0
GOOD = {"covariates": {"age": 61, "sex": "F"}, "genotypes": {"chr22:1114906:C:G": 1, "chr22:1120044:T:C": 2}}


COVARIATES = [{"name": "age", "kind": "numeric", "levels": [], "reference": None, "fill": None},
              {"name": "sex", "kind": "categorical", "levels": ["F", "M"], "reference": "F", "fill": None}]


def spec(covariates: list[dict] | None = None) -> FeatureSpec:
    """Age and sex (decision 0011's covariate entries: sex one-hot as ``sex=M``), read QC, three variants."""
    return FeatureSpec([dict(c) for c in covariates or COVARIATES], ["mean_phred"], [dict(v) for v in VARIANTS],
                       dict(FILL))


def served(target: str = "disease_status", version: str = "1", intercept: float = INTERCEPT) -> ServedModel:
    s = spec()
    portable = {"format": FORMAT, "kind": "logistic_regression", "n_features": len(s.names), "features": s.names,
                "coefficients": COEFFICIENTS, "intercept": intercept}
    return ServedModel.build(target=target, name=f"genoflow_{target}", version=version, alias="champion",
                             run_id=f"run-{target}-{version}", dataset_version="d78f00.dir",
                             spec=asdict(s), portable=portable)


def served_quantitative(target: str = "ldl", version: str = "1") -> ServedModel:
    """A linear regression with the same spec and coefficients: a quantitative target's model."""
    s = spec()
    portable = {"format": FORMAT, "kind": "linear_regression", "n_features": len(s.names), "features": s.names,
                "coefficients": COEFFICIENTS, "intercept": INTERCEPT}
    return ServedModel.build(target=target, name=f"genoflow_{target}", version=version, alias="champion",
                             run_id=f"run-{target}-{version}", dataset_version="d78f00.dir",
                             spec=asdict(s), portable=portable, target_type="quantitative")


def served_with_ranges(target: str = "disease_status") -> ServedModel:
    """A model whose numeric inputs all have ranges: read QC mean_phred, gc_fraction and n_rate (as
    params.yaml's default), age, and a covariate bmi trained on [20, 40] (``min``/``max`` in the spec)."""
    covariates = [*COVARIATES, {"name": "bmi", "kind": "numeric", "levels": [], "reference": None, "fill": 30.0,
                                "min": 20.0, "max": 40.0}]
    s = spec(covariates)
    s.read_qc = ["mean_phred", "gc_fraction", "n_rate"]
    s.fill.update(gc_fraction=0.4, n_rate=0.01)
    portable = {"format": FORMAT, "kind": "logistic_regression", "n_features": len(s.names), "features": s.names,
                "coefficients": [0.01] * len(s.names), "intercept": 0.0}
    return ServedModel.build(target=target, name=f"genoflow_{target}", version="1", alias="champion", run_id="r",
                             dataset_version=None, spec=asdict(s), portable=portable)


def expected_risk(age, sex, phred, dosages) -> float:
    """The logistic model by hand: what /predict must answer."""
    x = np.array([age, sex, phred, *dosages])
    return float(1 / (1 + np.exp(-(x @ COEFFICIENTS + INTERCEPT))))


def settings(**overrides) -> ServingSettings:
    # /ready and /metrics open, as test_api and test_api_bombs call them without a key (test_audit tests
    # the default, where only /health is).
    return ServingSettings(**{"api_keys": frozenset({KEY, "second-key"}), "poll_seconds": 0.0,
                              "public_routes": frozenset({"health", "ready", "metrics"}), **overrides})


@pytest.fixture
def source():
    return StaticSource([served("disease_status"), served("treatment_response")])


@pytest.fixture
def client(source):
    with TestClient(create_app(settings(max_body_bytes=20_000, max_upload_bytes=50_000, max_batch=5),
                               source=source)) as c:
        yield c

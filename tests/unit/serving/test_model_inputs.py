"""Input preparation, model assembly and settings, without HTTP."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from genoflow.features.spec import FeatureSpec
from genoflow.models.portable import FORMAT
from genoflow.serving import ServingSettings
from genoflow.serving.errors import InputProblem
from genoflow.serving.model import ModelLoadError, ServedModel
from genoflow.serving.patients import PatientValues, prepare, variant_column
from tests.unit.serving.conftest import FILL, served, spec


@pytest.mark.parametrize("key, column", [
    ("chr22:1114906:C:G", "v_chr22_1114906_C_G"),
    ("chr22:1200000:a:at", "v_chr22_1200000_A_AT"),
    ("HLA-A*01:01:01:01:77:A:G", "v_HLA-A*01:01:01:01_77_A_G"),  # a contig with colons
    ("v_chr22_1114906_C_G", "v_chr22_1114906_C_G"),
    ("chr22:1114906:C", None), ("chr22:pos:C:G", None), ("chr22:10:C:<DEL>", None), ("rs1234", None),
])
def test_variant_column__both_key_forms(key, column):
    assert variant_column(key) == column


def test_prepare__matrix_is_the_spec_transform_with_training_fills():
    model = served()
    prepared = prepare(model, [PatientValues({"age": 50, "sex": "M", "mean_phred": None},
                                             {"chr22:1120044:T:C": 0, "chr22:1114906:C:G": -1})])
    assert prepared.x.tolist() == [[50.0, 1.0, FILL["mean_phred"], FILL["v_chr22_1114906_C_G"], 0.0,
                                    FILL["v_chr22_1200000_A_AT"]]]
    assert (prepared.n_variants_used[0], prepared.n_variants_missing[0]) == (1, 2)


def test_prepare__collects_every_problem_of_every_patient():
    with pytest.raises(InputProblem) as caught:
        prepare(served(), [PatientValues({"age": "old"}, {"chr22:1114906:C:G": 9}), PatientValues([], {})],
                labels=["patients[0]", "patients[1]"])
    problems = caught.value.problems
    assert len(problems) == 4 and caught.value.status == 422
    assert problems[0] == "patients[0].covariates.age: expected a finite number, got 'old'"
    assert problems[1] == "patients[0].covariates.sex: required"
    assert problems[3] == "patients[1].covariates: expected an object of name -> value"


def test_served_model__refuses_a_model_whose_inputs_are_not_the_spec():
    s = spec()
    wrong_order = [*reversed(s.names)]
    portable = {"format": FORMAT, "kind": "logistic_regression", "n_features": len(s.names), "features": wrong_order,
                "coefficients": [0.0] * len(s.names), "intercept": 0.0}
    with pytest.raises(ModelLoadError, match="not the feature spec's columns"):
        ServedModel.build(target="t", name="n", version="1", alias="champion", run_id="r", dataset_version=None,
                          spec=asdict(s), portable=portable)
    with pytest.raises(ModelLoadError, match="unreadable model artifacts"):
        ServedModel.build(target="t", name="n", version="1", alias="champion", run_id="r", dataset_version=None,
                          spec=asdict(s), portable={"format": "pickle"})


def test_settings__from_env():
    env = {"GENOFLOW_API_KEYS": " a, b ,", "GENOFLOW_SERVING_PORT": "9001",
           "GENOFLOW_SERVING_TARGETS": "disease_status", "GENOFLOW_SERVING_POLL_SECONDS": "5",
           "MLFLOW_TRACKING_URI": "http://mlflow:5000", "GENOFLOW_HOME": "/tmp"}
    s = ServingSettings.from_env(env)
    assert s.api_keys == frozenset({"a", "b"}) and s.port == 9001 and s.targets == ("disease_status",)
    assert s.poll_seconds == 5.0 and s.tracking_uri == "http://mlflow:5000" and s.host == "127.0.0.1"
    assert s.model_name("disease_status") == "genoflow_disease_status"
    assert ServingSettings.from_env({"GENOFLOW_HOME": "/srv/p"}).tracking_uri == "sqlite:////srv/p/.genoflow/mlflow.db"
    with pytest.raises(ValueError, match="GENOFLOW_SERVING_PORT='http'"):
        ServingSettings.from_env({"GENOFLOW_SERVING_PORT": "http"})
    assert "secret" not in repr(ServingSettings.from_env({"GENOFLOW_API_KEYS": "secret"}))


def test_spec_covariates__decision_0011_entries():
    from types import SimpleNamespace

    from genoflow.serving.model import Covariate, spec_covariates

    entries = [{"name": "bmi", "kind": "numeric", "levels": [], "reference": None, "fill": None},
               {"name": "stratum", "kind": "categorical", "levels": ["2", "3"], "reference": "1", "fill": None},
               {"name": "smoker", "kind": "categorical", "levels": ["no", "yes"], "reference": "no", "fill": "no"}]
    assert spec_covariates(SimpleNamespace(covariates=entries)) == (
        Covariate("bmi", "numeric"), Covariate("stratum", "categorical", ("1", "2", "3")),
        Covariate("smoker", "categorical", ("no", "yes"), imputed=True))
    # A spec saved before 0011 (``clinical``: age a number, sex F/M), as FeatureSpec.from_json reads it.
    legacy = FeatureSpec.from_json(json.dumps({"clinical": ["age", "sex"], "read_qc": [], "variants": []}))
    assert spec_covariates(legacy) == (Covariate("age", "numeric"), Covariate("sex", "categorical", ("F", "M")))


def test_covariate__levels_exact_or_by_case_numbers_finite():
    from genoflow.serving.model import Covariate
    from genoflow.serving.patients import _covariate

    stratum = Covariate("stratum", "categorical", ("1", "2", "pop", "POP"))
    assert _covariate(stratum, 2) == ("2", None)  # a JSON number naming a level
    assert _covariate(stratum, " pop ") == ("pop", None)
    assert _covariate(stratum, "Pop")[1] == "unknown level 'Pop'; known levels: '1', '2', 'pop', 'POP'"  # ambiguous
    assert _covariate(stratum, None) == (None, "required")
    assert _covariate(Covariate("stratum", "categorical", ("1",), imputed=True), None) == (None, None)
    assert _covariate(Covariate("bmi", "numeric"), float("inf"))[1] == "expected a finite number, got inf"

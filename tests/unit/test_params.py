"""genoflow.params: one typed schema for params.yaml; a bad key is one line naming it (decision 0011)."""

from __future__ import annotations

import pickle
import re

import pytest
import yaml

from genoflow.config import merge_params
from genoflow.errors import InputError, ParamsError
from genoflow.params import SECTIONS, Params, validate_params, validate_section
from tests.conftest import REPO

STUDY = {"study": {"targets": {"disease_status": "binary", "bmi": "quantitative"}}}


def error_of(overrides: dict, source: str = "params.yaml") -> str:
    with pytest.raises(ParamsError) as caught:
        validate_params(merge_params(STUDY, overrides), source)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_validate_params__the_repository_params_yaml():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = validate_params(raw, "params.yaml")
    assert isinstance(params, Params) and set(SECTIONS) >= set(raw)
    # Every key of the shipped file keeps the file's value: validating only adds the keys it leaves out.
    dumped = params.model_dump()
    assert {section: {key: dumped[section][key] for key in values} for section, values in raw.items()} == raw


def test_validate_params__defaults_fill_every_section():
    params = validate_params(STUDY)
    assert params.features.top_k == 40 and params.promote.max_p_vs_baseline == 0.05
    assert params.study.id_column == "patient_id" and params.study.missing_covariates == "drop"
    assert params.study.phenotypes is None and params.ingest.remote is None
    assert set(params.model_dump()) == set(SECTIONS)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"features": {"top_kk": 5}}, "params.yaml: features.top_kk: unknown key (did you mean top_k?)"),
    ({"featurs": {"top_k": 5}}, "params.yaml: featurs: unknown key (did you mean features?)"),
    ({"study": {"target": {"x": "binary"}}}, "params.yaml: study.target: unknown key (did you mean targets?)"),
    ({"mlflow": {"zzz": 1}}, "params.yaml: mlflow.zzz: unknown key (known keys: experiment)"),
    ({"train": {"targets": ["disease_status"]}}, "params.yaml: train.targets: moved to study.targets"),
    ({"preprocess": {"vcf_chunk_lines": 2000}}, "params.yaml: preprocess.vcf_chunk_lines: replaced by compute"),
])
def test_validate_params__unknown_key_is_named_with_a_suggestion(overrides, expected):
    assert error_of(overrides).startswith(expected)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"train": {"cv_folds": "three"}}, "train.cv_folds: expected an integer, got 'three'"),
    ({"train": {"cv_folds": 1}}, "train.cv_folds: must be greater than or equal to 2, got 1"),
    ({"features": {"top_k_independent": "maybe"}}, "features.top_k_independent: expected true or false, got 'maybe'"),
    ({"features": {"covariates": "age"}}, "features.covariates: expected a list, got 'age'"),
    ({"features": {"covariates": ["age", 3]}}, "features.covariates[1]: expected a string, got 3"),
    ({"features": 3}, "features: expected a mapping, got 3"),
    ({"preprocess": {"min_maf": 0.7}}, "preprocess.min_maf: must be less than or equal to 0.5, got 0.7"),
    ({"preprocess": {"patient_vcf": None}}, "preprocess.patient_vcf: expected a string, got None"),
    ({"preprocess": {"input": "bam"}}, "preprocess.input: must be 'auto', 'vcf' or 'reads', got 'bam'"),
    ({"preprocess": {"vcf_layout": "split"}}, "preprocess.vcf_layout: must be 'cohort' or 'per_patient', got 'split'"),
    ({"study": {"targets": {"bmi": "continuous"}}},
     "study.targets.bmi: must be 'binary' or 'quantitative', got 'continuous'"),
    ({"study": {"missing_covariates": "mean"}}, "study.missing_covariates: must be 'drop' or 'impute', got 'mean'"),
    ({"train": {"models": ["gbt", "svm"]}}, "train.models[1]: must be 'logistic_regression', 'random_forest' or"),
    ({"train": {"grid": {"gbtt": {"maxDepth": [2]}}}}, "train.grid.gbtt (key): must be 'logistic_regression'"),
    ({"train": {"grid": {"gbt": {"maxDepth": []}}}}, "train.grid.gbt.maxDepth: must not be empty, got []"),
    ({"preprocess": {"vcf": ""}}, "preprocess.vcf: must not be empty, got ''"),
    ({"spark": {"sprak.driver.memory": "2g"}}, "spark.sprak.driver.memory (key): 'sprak.driver.memory' is not a Spark"),
    ({"spark": {"spark.driver.memory": None}}, "spark.spark.driver.memory: expected a number, string or boolean"),
    ({"features": {"pca_components": 3, "pca_covariates": 5}}, "features: pca_covariates (5) exceeds pca_components"),
    ({"promote": {"max_p_vs_baseline": 0}}, "promote.max_p_vs_baseline: must be greater than 0, got 0"),
])
def test_validate_params__wrong_type_or_value_names_the_nested_key(overrides, expected):
    message = error_of(overrides)
    assert message.startswith(f"params.yaml: {expected}"), message


def test_validate_params__empty_targets_and_several_errors_on_one_line():
    with pytest.raises(ParamsError, match=r"^run conf: study\.targets: must not be empty, got \{\}$"):
        validate_params({"study": {"targets": {}}}, "run conf")
    message = error_of({"train": {"cv_folds": "x", "seed": "y"}, "monitor": {"alpha": 2}})
    assert re.fullmatch(r"params\.yaml: train\.cv_folds: expected an integer, got 'x' "
                        r"\(also wrong: monitor\.alpha, train\.seed\)", message), message


@pytest.mark.parametrize("overrides", [
    {"preprocess": {"reference_fasta": None, "annotations_gff": None}},
    {"study": {"phenotypes": None, "covariates_file": None}},
    {"ingest": {"remote": None, "retrain_schedule": None}},
    {"monitor": {"schedule": None}},
    {"study": {"phenotypes": "raw/for_exercise.fam", "covariates_file": "raw/for_exercise.covar",
               "id_column": "IID", "categorical": ["stratum"], "missing_covariates": "impute"}},
])
def test_validate_params__null_where_allowed_and_study_files(overrides):
    params = validate_params(merge_params(STUDY, overrides)).model_dump()
    assert merge_params(params, overrides) == params


def test_validate_params__normalises_types_the_steps_read():
    """YAML reads 1e-6 (no dot) as a string and the trigger form may send 4 for 4.0: the steps get numbers."""
    params = validate_params(merge_params(STUDY, {"preprocess": {"min_hwe_p": "1e-6", "max_het_sd": 4}}))
    assert params.preprocess.min_hwe_p == 1e-6 and isinstance(params.preprocess.max_het_sd, float)


def test_validate_params__not_a_mapping():
    with pytest.raises(ParamsError, match="expected a mapping of sections, got list"):
        validate_params(["study"], "params.yaml")


def test_validate_section__one_section_with_its_path():
    assert validate_section("monitor", {"psi_bins": 4}).psi_bins == 4
    with pytest.raises(ParamsError, match=r"^run conf: monitor\.psi_bin: unknown key \(did you mean psi_bins\?\)$"):
        validate_section("monitor", {"psi_bin": 4}, "run conf")


def test_params_error__is_an_input_error_that_survives_pickling():
    """Spark and py4j pickle exceptions; the key must come back, and the runner treats it as bad input."""
    err = ParamsError("params.yaml", "features.top_k", "expected an integer, got 'x'")
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, InputError) and (again.source, again.key, again.problem) == (
        "params.yaml", "features.top_k", "expected an integer, got 'x'")
    assert str(again) == "params.yaml: features.top_k: expected an integer, got 'x'"

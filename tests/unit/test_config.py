import re

import pytest

from genoflow.config import Settings, load_params, merge_params, run_key, step_key
from genoflow.errors import ParamsError
from genoflow.params import Features
from genoflow.spark_submit import spark_conf
from tests.conftest import REPO


def test_merge_params__deep_merges_sections():
    base = {"features": {"top_k": 40, "split_seed": 42}, "train": {"models": ["gbt"]}}
    merged = merge_params(base, {"features": {"top_k": 5}})
    assert merged == {"features": {"top_k": 5, "split_seed": 42}, "train": {"models": ["gbt"]}}
    assert base["features"]["top_k"] == 40  # the base is not modified


def test_load_params__reads_repo_params_with_overrides():
    params = load_params(REPO / "params.yaml", overrides={"train": {"cv_folds": 2}})
    assert params["train"]["cv_folds"] == 2
    assert params["study"]["targets"] and params["train"]["models"]


def test_load_params__validates_the_file_naming_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("study:\n  targets: {case: binary}\nfeatures:\n  top_kk: 5\n")
    expected = rf"^{re.escape(str(path))}: features\.top_kk: unknown key \(did you mean top_k\?\)$"
    with pytest.raises(ParamsError, match=expected):
        load_params(path)


def test_load_params__validates_overrides_naming_the_run_conf(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("study:\n  targets: {case: binary}\n")
    with pytest.raises(ParamsError, match=r"^run conf: train\.cv_folds: expected an integer, got 'three'$"):
        load_params(path, overrides={"train": {"cv_folds": "three"}})


def test_load_params__complete_params_from_a_short_file(tmp_path):
    """A params file may leave keys out: the schema's defaults (params.yaml's values) fill them in."""
    path = tmp_path / "params.yaml"
    path.write_text("study:\n  targets: {case: quantitative}\n")
    params = load_params(path)
    assert params["study"]["targets"] == {"case": "quantitative"}
    assert params["features"] == Features().model_dump() and params["features"]["top_k"] == 40


def test_run_key__changes_with_data_or_params_only():
    params = {"a": {"b": 1}}
    assert run_key("v1", params) == run_key("v1", {"a": {"b": 1}})
    assert run_key("v1", params) != run_key("v2", params)
    assert run_key("v1", params) != run_key("v1", {"a": {"b": 2}})


def test_settings__embedded_defaults_under_home(tmp_path):
    s = Settings({"GENOFLOW_HOME": str(tmp_path)})
    assert s.storage_root == (tmp_path / "data").as_uri()
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path / '.genoflow' / 'mlflow.db'}"
    assert s.uses_demo_pseudonym_key
    s = Settings({"GENOFLOW_HOME": str(tmp_path), "GENOFLOW_STORAGE_ROOT": "hdfs://nn:8020/genoflow/"})
    assert s.storage_root == "hdfs://nn:8020/genoflow"


def test_step_key__depends_only_on_upstream_params():
    params = load_params(REPO / "params.yaml")
    tuned = merge_params(params, {"train": {"seed": 8}})
    assert step_key("preprocess", "v", params) == step_key("preprocess", "v", tuned)
    assert step_key("features", "v", params) == step_key("features", "v", tuned)
    assert step_key("train", "v", params) != step_key("train", "v", tuned)
    # The features step writes each CV fold's table, so the fold count is part of its key (nested CV).
    refolded = merge_params(params, {"train": {"cv_folds": 5}})
    assert step_key("preprocess", "v", params) == step_key("preprocess", "v", refolded)
    assert step_key("features", "v", params) != step_key("features", "v", refolded)
    refiltered = merge_params(params, {"preprocess": {"min_maf": 0.05}})
    assert step_key("preprocess", "v", params) != step_key("preprocess", "v", refiltered)
    assert step_key("features", "v", params) != step_key("features", "v", refiltered)
    # The block budget changes memory and speed, never an output (decision 0012): no key moves.
    reblocked = merge_params(params, {"compute": {"block_mb": 4}})
    assert all(step_key(step, "v", params) == step_key(step, "v", reblocked)
               for step in ("preprocess", "features", "train", "evaluate"))


def test_run_key__ignores_the_promotion_gate_and_spark_resources():
    params = load_params(REPO / "params.yaml")
    regated = merge_params(params, {"promote": {"min_improvement": 0.05}, "spark": {"spark.driver.memory": "8g"}})
    assert run_key("v", params) == run_key("v", regated) == step_key("evaluate", "v", params)


def test_run_key__integral_floats_equal_ints():
    """Airflow's trigger form sends 4 for params.yaml's 4.0: the same run, the same key."""
    params = load_params(REPO / "params.yaml")
    from_form = merge_params(params, {"preprocess": {"max_het_sd": 4}, "train": {"grid": {
        "logistic_regression": {"elasticNetParam": [0], "regParam": [0.01, 0.1]}}}})
    assert params["preprocess"]["max_het_sd"] == 4.0 and isinstance(params["preprocess"]["max_het_sd"], float)
    assert run_key("v", params) == run_key("v", from_form)
    assert step_key("preprocess", "v", params) == step_key("preprocess", "v", from_form)


def test_spark_conf__maps_the_driver_class_archive_once_built(tmp_path):
    settings = Settings({"GENOFLOW_HOME": str(tmp_path)})
    params = {"spark": {"spark.driver.memory": "1g"}}
    assert "SharedArchiveFile" not in spark_conf(settings, params)["spark.driver.extraJavaOptions"]
    archive = tmp_path / ".genoflow" / "jvm" / "spark-driver.jsa"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    options = spark_conf(settings, params)["spark.driver.extraJavaOptions"].split()
    assert f"-XX:SharedArchiveFile={archive}" in options and "-XX:TieredStopAtLevel=1" in options
    # Writing a new archive must not map the old one underneath it.
    assert "SharedArchiveFile" not in spark_conf(settings, params, share_classes=False)["spark.driver.extraJavaOptions"]

from genoflow.config import Settings, load_params, merge_params, run_key
from tests.conftest import REPO


def test_merge_params__deep_merges_sections():
    base = {"features": {"top_k": 40, "split_seed": 42}, "train": {"models": ["gbt"]}}
    merged = merge_params(base, {"features": {"top_k": 5}})
    assert merged == {"features": {"top_k": 5, "split_seed": 42}, "train": {"models": ["gbt"]}}
    assert base["features"]["top_k"] == 40  # the base is not modified


def test_load_params__reads_repo_params_with_overrides():
    params = load_params(REPO / "params.yaml", overrides={"train": {"cv_folds": 2}})
    assert params["train"]["cv_folds"] == 2
    assert params["train"]["targets"] == ["disease_status", "treatment_response"]


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

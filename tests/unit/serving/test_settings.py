"""ServingSettings.from_env: every variable name, comma-separated lists, blank = unset, errors naming the
variable (a ValueError, so ``python -m genoflow.serving`` exits 2). Well under 1 s."""

from __future__ import annotations

import re

import pytest

from genoflow.serving.__main__ import main
from genoflow.serving.settings import ServingSettings, ServingSettingsError


def test_from_env__reads_every_variable_by_its_documented_name(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"alice: sha256:{'0' * 64}\n")
    s = ServingSettings.from_env({
        "GENOFLOW_API_KEYS": " k1, k2 ,", "GENOFLOW_API_KEYS_FILE": str(keys), "GENOFLOW_AUDIT_LOG": "/tmp/audit.jsonl",
        "GENOFLOW_AUDIT_HASH_KEY": "h", "GENOFLOW_SERVING_PUBLIC_ROUTES": "ready, metrics",
        "GENOFLOW_SERVING_TARGETS": "ldl,bmi", "GENOFLOW_SERVING_MODEL_PREFIX": "p", "GENOFLOW_SERVING_ALIAS": "a",
        "GENOFLOW_SERVING_POLL_SECONDS": "2.5", "GENOFLOW_SERVING_HOST": "0.0.0.0", "GENOFLOW_SERVING_PORT": " 9000 ",
        "GENOFLOW_SERVING_MAX_BATCH": "7", "GENOFLOW_SERVING_MAX_QUEUED": "0", "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert (s.api_keys, s.api_keys_file, s.audit_log, s.audit_hash_key) == (
        frozenset({"k1", "k2"}), str(keys), "/tmp/audit.jsonl", "h")
    assert (s.public_routes, s.targets, s.default_target) == (frozenset({"ready", "metrics"}), ("ldl", "bmi"), "ldl")
    assert (s.model_prefix, s.alias, s.poll_seconds, s.host, s.port, s.max_batch, s.max_queued) == (
        "p", "a", 2.5, "0.0.0.0", 9000, 7, 0)
    assert s.tracking_uri == "http://mlflow:5000"
    assert "k1" not in repr(s) and "'h'" not in repr(s)  # secrets stay out of logs


def test_from_env__blank_is_unset_and_none_closes_every_route():
    blank = ServingSettings.from_env({"GENOFLOW_SERVING_PORT": "  ", "GENOFLOW_SERVING_PUBLIC_ROUTES": "",
                                      "GENOFLOW_AUDIT_LOG": " ", "GENOFLOW_API_KEYS": ""})
    assert (blank.port, blank.public_routes, blank.audit_log, blank.has_api_keys) == (
        8000, frozenset({"health"}), None, False)
    assert ServingSettings.from_env({"GENOFLOW_SERVING_PUBLIC_ROUTES": "none"}).public_paths == frozenset()
    # Only the exact names: pydantic-settings alone would also take lower-case ones and GENOFLOW_SERVING_TRACKING_URI.
    odd = ServingSettings.from_env({"genoflow_serving_port": "1", "GENOFLOW_SERVING_TRACKING_URI": "x"})
    assert odd.port == 8000 and odd.tracking_uri != "x"


@pytest.mark.parametrize(("env", "message"), [
    ({"GENOFLOW_SERVING_PORT": "80.0"}, "GENOFLOW_SERVING_PORT='80.0' is not a valid int"),
    ({"GENOFLOW_SERVING_POLL_SECONDS": "soon"}, "GENOFLOW_SERVING_POLL_SECONDS='soon' is not a valid float"),
    ({"GENOFLOW_SERVING_POLL_SECONDS": "-1"}, "GENOFLOW_SERVING_POLL_SECONDS='-1': poll_seconds must be >= 0"),
    ({"GENOFLOW_SERVING_TARGETS": " , "}, "GENOFLOW_SERVING_TARGETS=',': at least one target must be served"),
    ({"GENOFLOW_SERVING_PUBLIC_ROUTES": "health,admin"}, "admin cannot be public"),
    ({"GENOFLOW_API_KEYS_FILE": "/no/such/keys"}, "GENOFLOW_API_KEYS_FILE"),
])
def test_from_env__a_bad_value_is_refused_naming_the_variable(env, message):
    with pytest.raises(ServingSettingsError, match=re.escape(message)):
        ServingSettings.from_env(env)


def test_constructor__reads_no_environment_and_enforces_the_same_rules(monkeypatch):
    monkeypatch.setenv("GENOFLOW_SERVING_PORT", "1234")
    monkeypatch.setenv("GENOFLOW_API_KEYS", "from-env")
    s = ServingSettings(targets=("ldl",))
    assert (s.port, s.api_keys) == (8000, frozenset())
    with pytest.raises(ValueError, match="max_batch must be at least 1, got 0"):
        ServingSettings(max_batch=0)
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1
    assert s.model_copy(update={"port": 1}).port == 1


def test_main__exits_2_naming_the_bad_variable(monkeypatch, capsys):
    monkeypatch.setenv("GENOFLOW_SERVING_MAX_CONCURRENT", "lots")
    assert main([]) == 2
    assert "GENOFLOW_SERVING_MAX_CONCURRENT='lots' is not a valid int" in capsys.readouterr().err

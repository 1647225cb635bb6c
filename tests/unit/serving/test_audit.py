"""Named API keys, key rotation, public routes and the audit trail, through FastAPI's TestClient."""

from __future__ import annotations

import json
import logging
import os

import pytest

from genoflow.errors import InputError
from genoflow.serving import ServingSettings, create_app
from genoflow.serving.audit import subject_hash
from genoflow.serving.auth import KeyRing, KeysUnavailable, fingerprint, hash_key, read_key_file
from genoflow.serving.sources import StaticSource
from tests.unit.serving.conftest import GOOD, KEY, TestClient, served

ALICE_KEY, BOB_KEY = "alice-key-0123456789abcdef", "bob-key-fedcba9876543210"


def write_keys(path, text: str) -> None:
    """Replace the keys file as an operator should: write aside, then rename over it."""
    aside = path.with_suffix(".new")
    aside.write_text(text)
    os.replace(aside, path)


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "keys"
    write_keys(path, f"# callers\nalice: {hash_key(ALICE_KEY)}\n\nbob: {BOB_KEY}\n")
    return path


def audited_app(tmp_path, keys_file, **overrides):
    audit = tmp_path / "audit.jsonl"
    settings = ServingSettings(targets=("disease_status",), poll_seconds=0.0, api_keys=frozenset({KEY}),
                               api_keys_file=str(keys_file), audit_log=str(audit), audit_hash_key="k", **overrides)
    return create_app(settings, source=StaticSource([served()])), audit


def records(audit) -> list[dict]:
    return [json.loads(line) for line in audit.read_text().splitlines()]


# --- the keys file -------------------------------------------------------------------------------


def test_read_key_file__hashed_and_plain_keys_by_caller(keys_file):
    import hashlib

    assert read_key_file(str(keys_file)) == [(hashlib.sha256(ALICE_KEY.encode()).digest(), "alice"),
                                             (hashlib.sha256(BOB_KEY.encode()).digest(), "bob")]


@pytest.mark.parametrize("text, problem", [
    ("just-a-secret-key-on-its-own\n", "line 1: expected 'caller_id: sha256:<64 hex>'"),
    ("alice smith: secret-key-value\n", "line 1: the caller id (before ':') is not"),
    ("alice: k1-secret-value\nalice: k2-secret-value\n", "line 2: caller id 'alice' repeats line 1"),
    ("alice: same-secret-value\nbob: same-secret-value\n", "line 2: 'bob' has the same key as 'alice'"),
], ids=["no-colon", "bad-caller", "repeated-caller", "shared-key"])
def test_read_key_file__bad_lines_named_without_the_key(tmp_path, text, problem):
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(InputError, match="keys") as error:
        read_key_file(str(path))
    assert problem in str(error.value)
    assert "secret" not in str(error.value)  # no key is ever quoted


def test_key_ring__env_keys_named_by_fingerprint_file_keys_by_caller(keys_file):
    ring = KeyRing({KEY}, str(keys_file))
    assert ring.caller(KEY) == fingerprint(KEY) and fingerprint(KEY).startswith("key-")
    assert (ring.caller(ALICE_KEY), ring.caller(BOB_KEY)) == ("alice", "bob")
    assert ring.caller(hash_key(ALICE_KEY)) is None  # the stored hash is not itself a key
    assert ring.caller(ALICE_KEY[:-1]) is None


def test_key_ring__follows_the_file_and_fails_closed_while_it_is_broken(keys_file):
    ring = KeyRing((), str(keys_file))
    write_keys(keys_file, f"carol: {hash_key('carol-key-0000000000')}\nbob: {BOB_KEY}\n")
    assert ring.caller(ALICE_KEY) is None and ring.caller("carol-key-0000000000") == "carol"
    write_keys(keys_file, "carol\n")
    with pytest.raises(KeysUnavailable):
        ring.caller(BOB_KEY)
    keys_file.unlink()
    with pytest.raises(KeysUnavailable, match="file missing"):
        ring.caller(BOB_KEY)
    write_keys(keys_file, f"bob: {BOB_KEY}\n")
    assert ring.caller(BOB_KEY) == "bob"


# --- settings ------------------------------------------------------------------------------------


def test_settings__public_routes_from_env_default_health_only(keys_file):
    assert ServingSettings.from_env({}).public_routes == {"health"}
    env = {"GENOFLOW_SERVING_PUBLIC_ROUTES": "health, metrics", "GENOFLOW_API_KEYS_FILE": str(keys_file),
           "GENOFLOW_AUDIT_LOG": "/var/log/genoflow/audit.jsonl"}
    s = ServingSettings.from_env(env)
    assert s.public_routes == {"health", "metrics"} and s.has_api_keys and s.audit_log.endswith("audit.jsonl")
    assert ServingSettings.from_env({"GENOFLOW_SERVING_PUBLIC_ROUTES": "none"}).public_paths == frozenset()
    with pytest.raises(ValueError, match="predict cannot be public; choose from health, ready, metrics, docs"):
        ServingSettings.from_env({"GENOFLOW_SERVING_PUBLIC_ROUTES": "health,predict"})


def test_settings__unreadable_keys_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}/absent.*cannot read the API keys file"):
        ServingSettings.from_env({"GENOFLOW_API_KEYS_FILE": str(tmp_path / "absent")})


# --- public and protected routes -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ready", "/metrics", "/docs", "/redoc", "/openapi.json"])
def test_routes__only_health_is_open_by_default(tmp_path, keys_file, path):
    app, _ = audited_app(tmp_path, keys_file)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {ALICE_KEY}"}).status_code == 200


def test_routes__an_operator_opens_metrics_and_docs(tmp_path, keys_file):
    app, audit = audited_app(tmp_path, keys_file, public_routes=frozenset({"health", "metrics", "docs"}))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 200
        assert "/predict" in client.get("/openapi.json").json()["paths"]
        assert client.get("/ready").status_code == 401
        assert client.post("/predict", json=GOOD).status_code == 401
    assert [(r["route"], r["caller"]) for r in records(audit)] == [("/ready", "rejected"), ("/predict", "rejected")]


# --- the audit records ---------------------------------------------------------------------------


def test_audit__one_record_per_protected_request_with_caller_model_and_request_id(tmp_path, keys_file):
    app, audit = audited_app(tmp_path, keys_file)
    with TestClient(app) as client:
        ok = client.post("/predict", json=GOOD, headers={"X-API-Key": ALICE_KEY, "X-Request-ID": "trace-42.a"})
        refused = client.post("/predict", json=GOOD, headers={"X-API-Key": "nope"})
        odd_id = client.get("/models", headers={"X-API-Key": KEY, "X-Request-ID": "no spaces\tor tabs"})
        client.get("/health")
        too_big = client.post("/predict", content=b"{" + b" " * 5_000_000, headers={"X-API-Key": BOB_KEY})
    assert ok.headers["X-Request-ID"] == "trace-42.a"
    assert len(odd_id.headers["X-Request-ID"]) == 32 and " " not in odd_id.headers["X-Request-ID"]
    assert too_big.status_code == 413
    got = records(audit)
    assert [(r["route"], r["method"], r["status"], r["caller"]) for r in got] == [
        ("/predict", "POST", 200, "alice"), ("/predict", "POST", 401, "rejected"),
        ("/models", "GET", 200, fingerprint(KEY)), ("/predict", "POST", 413, "anonymous")]
    first = got[0]
    assert (first["request_id"], first["model"], first["model_version"]) == ("trace-42.a", "genoflow_disease_status",
                                                                           "1")
    assert first["client"] == "testclient" and first["time"].endswith("Z")
    assert first["subjects"] == [_subject("k", GOOD)]
    assert got[1]["request_id"] == refused.headers["X-Request-ID"] and "subjects" not in got[1]


def _subject(hash_key: str, patient: dict) -> str:
    """What an auditor holding the hash key computes for a patient's values."""
    return subject_hash(hash_key, patient["covariates"], patient["genotypes"])


def test_audit__subject_ignores_key_order_and_hides_values():
    reordered = {"covariates": {"sex": "F", "age": 61}, "genotypes": dict(reversed(GOOD["genotypes"].items()))}
    assert _subject("k", GOOD) == _subject("k", reordered) != _subject("other-key", GOOD)
    assert _subject("k", GOOD) != _subject("k", {**GOOD, "covariates": {"age": 62, "sex": "F"}})


def test_logs__access_line_names_caller_and_request_id(tmp_path, keys_file, caplog):
    caplog.set_level(logging.INFO, logger="genoflow.serving.access")
    app, _ = audited_app(tmp_path, keys_file)
    with TestClient(app) as client:
        client.post("/predict", json=GOOD, headers={"X-API-Key": BOB_KEY, "X-Request-ID": "req-7"})
    assert "POST /predict 200" in caplog.text and "caller=bob request_id=req-7" in caplog.text

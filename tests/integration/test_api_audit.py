"""The model API's named keys, key rotation and audit trail in a real server process.

uvicorn serves `create_app` with `ServingSettings.from_env` (a keys file, an audit log, an audit
hash key; the default public routes) on a free loopback port, around an in-memory model
(tests/unit/serving/conftest.py's `served`: no registry is needed to check who called). The
keys file is replaced while the server runs; distinctive patient values are sent and then looked
for, in vain, in the audit log and in the server's own log.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genoflow.serving.audit import subject_hash
from genoflow.serving.auth import fingerprint, hash_key
from tests.services.api import answering, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ALICE, CAROL, LEGACY = "alice-0b1f7d2c9e4a6f80", "carol-5e3a9c1d7b2f4e60", "legacy-env-key-31c4"
HASH_KEY = "audit-hash-key-for-tests"
PRIOR_RECORD = '{"written":"before this server started"}'

SERVER = """
import logging, sys, uvicorn
from genoflow.serving import ServingSettings, create_app
from genoflow.serving.sources import StaticSource
from tests.unit.serving.conftest import served
logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
settings = ServingSettings.from_env().model_copy(update={"targets": ("disease_status",), "poll_seconds": 0})
uvicorn.run(create_app(settings, source=StaticSource([served()])), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="info", access_log=False)
"""


def write_keys(path: Path, text: str) -> None:
    """Replace the keys file the documented way: write aside, rename over it."""
    aside = path.with_name(path.name + ".new")
    aside.write_text(text)
    os.replace(aside, path)


class Api:
    def __init__(self, url: str, keys: Path, audit: Path, log: Path):
        self.url, self.keys, self.audit, self.log = url, keys, audit, log

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()[1:]]  # after PRIOR_RECORD

    def records_of(self, request_ids: list[str], timeout_s: float = 10.0) -> list[dict]:
        """The records of these requests, in this order: a record is written once its response is sent,
        so the client can read the log before the last one lands."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = {r["request_id"]: r for r in self.records() if r["request_id"] in request_ids}
            if len(found) == len(request_ids) or time.monotonic() > deadline:
                return [found.get(i, {"request_id": None}) for i in request_ids]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The server, started once for this module and stopped (its own process only) after."""
    folder = tmp_path_factory.mktemp("audit")
    keys, audit, log = folder / "api-keys", folder / "audit.jsonl", folder / "api.log"
    write_keys(keys, f"alice: {hash_key(ALICE)}\n")
    audit.write_text(PRIOR_RECORD + "\n")  # must survive: the log is appended to, never truncated
    port = free_port()
    env = {**os.environ, "GENOFLOW_API_KEYS": LEGACY, "GENOFLOW_API_KEYS_FILE": str(keys),
           "GENOFLOW_AUDIT_LOG": str(audit), "GENOFLOW_AUDIT_HASH_KEY": HASH_KEY}
    env.pop("GENOFLOW_SERVING_PUBLIC_ROUTES", None)
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Api(f"http://127.0.0.1:{port}", keys, audit, log)
    with answering(process, server.url, lambda: log.read_text()[-4000:]):
        yield server


def predict(api: Api, key: str, body: dict | None = None, **headers):
    import httpx

    body = body or {"covariates": {"age": 61, "sex": "F"}, "genotypes": {"chr22:1114906:C:G": 1}}
    return httpx.post(f"{api.url}/predict", json=body, headers={"X-API-Key": key, **headers}, timeout=30)


def test_rotation__a_removed_key_stops_working_on_the_next_request(api):
    sent = []

    def status(key: str) -> int:
        sent.append(predict(api, key))
        return sent[-1].status_code

    try:
        assert status(ALICE) == 200
        assert status(CAROL) == 401
        write_keys(api.keys, f"carol: {hash_key(CAROL)}\n")
        assert status(ALICE) == 401
        assert status(CAROL) == 200
        assert status(LEGACY) == 200  # GENOFLOW_API_KEYS still counts
        write_keys(api.keys, "carol\n")  # a broken file refuses everyone rather than keep revoked keys
        assert status(CAROL) == 503
        assert status(LEGACY) == 503
    finally:
        write_keys(api.keys, f"alice: {hash_key(ALICE)}\n")
    assert status(ALICE) == 200
    callers = [(r.get("caller"), r.get("status")) for r in api.records_of([r.headers["X-Request-ID"] for r in sent])]
    assert callers == [("alice", 200), ("rejected", 401), ("rejected", 401), ("carol", 200),
                       (fingerprint(LEGACY), 200), ("anonymous", 503), ("anonymous", 503), ("alice", 200)]


def test_routes__metrics_and_ready_need_a_key_by_default(api):
    import httpx

    assert httpx.get(f"{api.url}/health").status_code == 200
    for path in ("/metrics", "/ready", "/openapi.json"):
        assert httpx.get(f"{api.url}{path}").status_code == 401, path
    scraped = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {ALICE}"})  # Prometheus' way
    assert scraped.status_code == 200 and "genoflow_api_requests_total" in scraped.text


# Distinctive values no log line could contain by chance.
SECRETS = {"age": 97.3141, "phred": 31.41592, "batch_age": 88.8172, "bad_age": 200.123, "pid": "PATIENT-ZX81-SECRET",
           "sample": "SAMPLE-QX-7731", "rsid": "rs987654321", "pos": 777123}
VCF = (f"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{SECRETS['sample']}\n"
       f"chr22\t{SECRETS['pos']}\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n"
       f"chr22\t1114906\t{SECRETS['rsid']}\tC\tG\t.\tPASS\t.\tGT\t1/1\n")


def test_audit__records_who_and_what_but_never_a_patient_value(api):
    import httpx

    patient = {"covariates": {"age": SECRETS["age"], "sex": "M", "mean_phred": SECRETS["phred"]},
               "genotypes": {"chr22:1114906:C:G": 2, "chr22:1120044:T:C": 0}}
    sent = []
    with httpx.Client(base_url=api.url, headers={"X-API-Key": ALICE}, timeout=30) as client:
        sent.append(client.post("/predict", json=patient, headers={"X-Request-ID": "audit-test-1"}))
        sent.append(client.post("/predict/batch", json={"ignore_unknown": True, "patients": [
            {"id": SECRETS["pid"], "covariates": {"age": SECRETS["batch_age"], "sex": "F"},
             "genotypes": {f"chr1:{SECRETS['pos']}:A:G": 1}}]}))
        sent.append(client.post("/predict/vcf", data={"age": str(SECRETS["age"]), "sex": "F"},
                                files={"vcf": ("patient.vcf.gz", gzip.compress(VCF.encode()))}))
        sent.append(client.post("/predict", json={**patient, "covariates": {"age": SECRETS["bad_age"], "sex": "F"}}))
    assert [r.status_code for r in sent] == [200, 200, 200, 422], [r.text for r in sent]
    assert str(SECRETS["bad_age"]) in sent[-1].json()["detail"]  # the client is told; the logs are not

    assert api.audit.read_text().splitlines()[0] == PRIOR_RECORD
    records = api.records_of([r.headers["X-Request-ID"] for r in sent])
    assert records[0]["request_id"] == "audit-test-1"
    assert [(r["route"], r["status"], r["caller"], r["client"]) for r in records] == [
        ("/predict", 200, "alice", "127.0.0.1"), ("/predict/batch", 200, "alice", "127.0.0.1"),
        ("/predict/vcf", 200, "alice", "127.0.0.1"), ("/predict", 422, "alice", "127.0.0.1")]
    assert {(r["model"], r["model_version"]) for r in records} == {("genoflow_disease_status", "1")}
    assert records[0]["subjects"] == [subject_hash(HASH_KEY, patient["covariates"], patient["genotypes"])]
    assert all(len(r["subjects"]) == 1 for r in records)

    server_log = api.log.read_text()
    assert "caller=alice request_id=audit-test-1" in server_log
    for name, value in SECRETS.items():
        assert str(value) not in api.audit.read_text(), f"{name} ({value}) reached the audit log"
        assert str(value) not in server_log, f"{name} ({value}) reached the server log"

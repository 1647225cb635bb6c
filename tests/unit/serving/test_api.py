"""Every route of the model API through FastAPI's TestClient, around in-memory models."""

from __future__ import annotations

import gzip
import json
import logging
import math

import pytest

from genoflow.models.portable import FORMAT
from genoflow.serving import create_app
from genoflow.serving.model import ModelLoadError
from genoflow.serving.sources import StaticSource
from tests.unit.serving.conftest import (
    AUTH,
    COEFFICIENTS,
    FILL,
    GOOD,
    INTERCEPT,
    KEY,
    TestClient,
    expected_risk,
    served,
    served_quantitative,
    settings,
)

GOOD_RISK = expected_risk(61, 0, FILL["mean_phred"], [1, 2, FILL["v_chr22_1200000_A_AT"]])


def predict(client, body, **kwargs):
    return client.post("/predict", json=body, headers=AUTH, **kwargs)


def assert_still_serving(client):
    response = predict(client, GOOD)
    assert response.status_code == 200, response.text
    assert response.json()["risk"] == pytest.approx(GOOD_RISK, abs=1e-12)


# --- health, readiness, metadata -----------------------------------------------------------------


def test_health_and_ready__no_auth_needed(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["models"]["disease_status"]["version"] == "1"


def test_ready__503_until_every_target_is_loaded_then_reload_fixes_it():
    source = StaticSource([served("disease_status")])
    with TestClient(create_app(settings(), source=source)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["missing"] == ["treatment_response"]
        response = predict(client, {**GOOD, "target": "treatment_response"})
        assert response.status_code == 503 and "no model is loaded" in response.json()["detail"]
        assert_still_serving(client)  # the loaded target serves meanwhile

        source.set(served("treatment_response", version="4"))
        reload = client.post("/admin/reload", headers=AUTH)
        assert reload.status_code == 200
        assert reload.json()["targets"]["treatment_response"]["outcome"] == "loaded"
        assert client.get("/ready").status_code == 200


def test_models__lists_what_each_model_needs(client):
    body = client.get("/models", headers=AUTH).json()
    assert body["disease_status"]["required_covariates"] == ["age", "sex"]
    assert body["disease_status"]["categorical_levels"] == {"sex": ["F", "M"]}
    assert body["disease_status"]["variants"][0] == "chr22:1114906:C:G"


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("post", "/predict"), ("post", "/predict/batch"),
                                          ("post", "/predict/vcf"), ("post", "/admin/reload"), ("get", "/models")])
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY}"}])
def test_auth__401_without_a_valid_key(client, method, path, headers):
    response = getattr(client, method)(path, headers=headers, **({"json": GOOD} if method == "post" else {}))
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]


def test_auth__header_or_bearer(client):
    assert client.post("/predict", json=GOOD, headers={"X-API-Key": "second-key"}).status_code == 200
    assert client.post("/predict", json=GOOD, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_auth__no_configured_keys_refuses_everyone(source):
    with TestClient(create_app(settings(api_keys=frozenset()), source=source)) as client:
        assert client.post("/predict", json=GOOD, headers={"X-API-Key": ""}).status_code == 401


# --- /predict ------------------------------------------------------------------------------------


def test_predict__risk_is_the_model_on_the_spec_transform(client):
    response = predict(client, GOOD)
    assert response.status_code == 200
    body = response.json()
    assert body["risk"] == pytest.approx(GOOD_RISK, abs=1e-12)
    assert body["target"] == "disease_status" and body["dataset_version"] == "d78f00.dir"
    assert body["model"] == {"name": "genoflow_disease_status", "version": "1", "alias": "champion",
                             "run_id": "run-disease_status-1"}
    assert (body["n_variants_used"], body["n_variants_missing"]) == (2, 1)


def test_predict__feature_names_read_qc_and_missing_calls(client):
    body = {"covariates": {"age": 61.5, "sex": "m", "mean_phred": 30.0},  # a level ignoring case
            "genotypes": {"v_chr22_1114906_C_G": 1, "chr22:1120044:t:c": None, "chr22:1200000:A:AT": -1},
            "target": "treatment_response"}
    response = predict(client, body)
    assert response.status_code == 200, response.text
    expected = expected_risk(61.5, 1, 30.0, [1, FILL["v_chr22_1120044_T_C"], FILL["v_chr22_1200000_A_AT"]])
    assert response.json()["risk"] == pytest.approx(expected, abs=1e-12)
    assert response.json()["target"] == "treatment_response"
    assert (response.json()["n_variants_used"], response.json()["n_variants_missing"]) == (1, 2)


def test_predict__unknown_variants_listed_unless_ignored(client):
    genotypes = {**GOOD["genotypes"], **{f"chr1:{p}:A:G": 1 for p in range(100, 108)}}
    response = predict(client, {**GOOD, "genotypes": genotypes})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'chr1:100:A:G'" in detail and "and 3 more" in detail and "ignore_unknown" in detail
    ignored = predict(client, {**GOOD, "genotypes": genotypes, "ignore_unknown": True})
    assert ignored.status_code == 200 and ignored.json()["risk"] == pytest.approx(GOOD_RISK, abs=1e-12)


BAD_BODIES = {
    "missing covariates": ({"genotypes": {}}, 422, "covariates"),
    "missing age": ({"covariates": {"sex": "F"}}, 422, "covariates.age: required"),
    "age as text": ({"covariates": {"age": "61", "sex": "F"}}, 422, "covariates.age: expected a finite number"),
    "age as bool": ({"covariates": {"age": True, "sex": "F"}}, 422, "covariates.age: expected a finite number"),
    "age too big for a float": ({"covariates": {"age": 10**400, "sex": "F"}}, 422,
                                "expected a finite number, got 1000"),
    "sex unknown level": ({"covariates": {"age": 61, "sex": "X"}}, 422,
                          "covariates.sex: unknown level 'X'; known levels: 'F', 'M'"),
    "sex not text": ({"covariates": {"age": 61, "sex": 1.5}}, 422, "covariates.sex: unknown level 1.5"),
    "read QC as text": ({"covariates": {"age": 61, "sex": "F", "mean_phred": "high"}}, 422, "mean_phred"),
    "unknown covariate": ({"covariates": {"age": 61, "sex": "F", "bmi": 22}}, 422, "'bmi' is not used"),
    "dosage 3": ({**GOOD, "genotypes": {"chr22:1114906:C:G": 3}}, 422, "dosage must be 0, 1 or 2"),
    "dosage 1.5": ({**GOOD, "genotypes": {"chr22:1114906:C:G": 1.5}}, 422, "got 1.5"),
    "dosage as text": ({**GOOD, "genotypes": {"chr22:1114906:C:G": "1"}}, 422, "got '1'"),
    "dosage as bool": ({**GOOD, "genotypes": {"chr22:1114906:C:G": True}}, 422, "got True"),
    "conflicting duplicate": ({**GOOD, "genotypes": {"chr22:1114906:C:G": 1, "v_chr22_1114906_C_G": 2}}, 422,
                              "twice"),
    "malformed variant key": ({**GOOD, "genotypes": {"rs123": 1}}, 422, "not a variant key"),
    "genotypes not an object": ({**GOOD, "genotypes": [1, 2]}, 422, "genotypes"),
    "unknown target": ({**GOOD, "target": "height"}, 422, "target 'height' is not served"),
    "unknown field": ({**GOOD, "patient_name": "x"}, 422, "patient_name"),
    "ignore_unknown not a bool": ({**GOOD, "ignore_unknown": "yes"}, 422, "ignore_unknown"),
    "not an object": ([GOOD], 422, "JSON object"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_predict__bad_input_is_a_clear_4xx_and_the_server_keeps_serving(client, case):
    body, status, message = BAD_BODIES[case]
    response = predict(client, body)
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json()), response.json()
    assert_still_serving(client)


@pytest.mark.parametrize("raw, status, message", [
    (b'{"covariates": {"age": 61, "sex": "F"', 400, "malformed JSON"),
    (b'{"covariates": {"age": NaN, "sex": "F"}}', 422, "expected a finite number, got nan"),
    (b"\xff\xfe not text", 400, "error parsing the body"),
    (b"", 422, "body"),
])
def test_predict__unparseable_bodies(client, raw, status, message):
    response = client.post("/predict", content=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json())
    assert_still_serving(client)


def test_predict__oversized_body_is_413_declared_or_streamed(client):
    big = {**GOOD, "genotypes": {f"chr1:{p}:A:G": 1 for p in range(2000)}, "ignore_unknown": True}
    response = predict(client, big)
    assert response.status_code == 413 and "larger than 20000 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield json.dumps(big).encode()

    streamed = client.post("/predict", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert 'genoflow_api_requests_total{method="POST",route="/predict",status="413"} 2.0' in client.get("/metrics").text
    assert_still_serving(client)


# --- /predict/batch ------------------------------------------------------------------------------


def test_batch__same_risks_as_single_predictions_ids_echoed(client):
    patients = [GOOD, {"covariates": {"age": 40, "sex": "M"}, "genotypes": {}},
                {"covariates": {"age": 75, "sex": "F", "mean_phred": 31.0}, "genotypes": {"chr22:1200000:A:AT": 2}}]
    response = client.post("/predict/batch", headers=AUTH,
                           json={"patients": [{**p, "id": f"row-{i}"} for i, p in enumerate(patients)]})
    assert response.status_code == 200, response.text
    items = response.json()["predictions"]
    assert [i["id"] for i in items] == ["row-0", "row-1", "row-2"]
    for item, patient in zip(items, patients, strict=True):
        assert item["risk"] == pytest.approx(predict(client, patient).json()["risk"], abs=1e-15)
    assert response.json()["model"]["version"] == "1"


def test_batch__limits_and_per_patient_problems(client):
    too_many = client.post("/predict/batch", headers=AUTH, json={"patients": [GOOD] * 6})
    assert too_many.status_code == 413 and "at most 5" in too_many.json()["detail"]
    bad = client.post("/predict/batch", headers=AUTH,
                      json={"patients": [GOOD, {"covariates": {"age": 61}}, {**GOOD, "genotypes": {"x": 1}}]})
    assert bad.status_code == 422
    problems = bad.json()["problems"]
    assert any(p.startswith("patients[1].covariates.sex") for p in problems)
    assert any(p.startswith("patients[2].genotypes") for p in problems)
    empty = client.post("/predict/batch", headers=AUTH, json={"patients": []})
    assert empty.status_code == 200 and empty.json()["predictions"] == []
    assert_still_serving(client)


# --- /predict/vcf --------------------------------------------------------------------------------

VCF = """##fileformat=VCFv4.2
##contig=<ID=chr22,length=2000000>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPATIENT
chr22\t1000\t.\tA\tG\t.\tPASS\t.\tGT\t0/1
chr22\t1114906\t.\tC\tG\t.\tPASS\t.\tGT\t0|1
chr22\t1120044\t.\tT\tC,G\t.\tPASS\t.\tGT:DP\t1/1:30
"""


def post_vcf(client, content: bytes, name="patient.vcf", **fields):
    form = {"age": "61", "sex": "F", **fields}
    return client.post("/predict/vcf", headers=AUTH, data=form, files={"vcf": (name, content)})


@pytest.mark.parametrize("compress", [False, True])
def test_vcf__same_risk_as_json(client, compress):
    content = VCF.encode()
    response = post_vcf(client, gzip.compress(content) if compress else content)
    assert response.status_code == 200, response.text
    assert response.json()["risk"] == pytest.approx(GOOD_RISK, abs=1e-12)  # chr22:1000 is not a model variant
    assert (response.json()["n_variants_used"], response.json()["n_variants_missing"]) == (2, 1)


@pytest.mark.parametrize("content, fields, status, message", [
    (VCF.replace("\t0/1\n", "\t0/1\t1/1\n", 1).encode(), {}, 422, "patient.vcf, line 4: expected 10 tab-separated"),
    (VCF.replace("PATIENT", "A\tB").replace("\t0/1\n", "\t0/1\t0/0\n").replace("0|1\n", "0|1\t0/0\n")
     .replace(":30\n", ":30\t0/0\n").encode(), {}, 422, "single-sample VCF, found 2 samples"),
    (VCF.replace("0|1", "0/5").encode(), {}, 422, "patient.vcf, line 5"),
    (b"not a vcf at all\n", {}, 422, "#CHROM"),
    (gzip.compress(VCF.encode())[:40], {}, 422, "patient.vcf"),
    (VCF.encode(), {"age": "sixty"}, 422, "expected a finite number, got 'sixty'"),
    (VCF.encode(), {"sex": ""}, 422, "covariates.sex: required"),
    (VCF.encode(), {"ignore_unknown": "false"}, 422, "'v_chr22_1000_A_G', 'v_chr22_1120044_T_G' are not used"),
    (VCF.encode(), {"ignore_unknown": "maybe"}, 422, "expected true or false"),
    (VCF.encode(), {"target": "height"}, 422, "not served"),
    (b"x" * 60_000, {}, 413, "larger than 50000 bytes"),
])
def test_vcf__bad_uploads_are_clear_4xx(client, content, fields, status, message):
    response = post_vcf(client, content, **fields)
    assert response.status_code == status, response.text
    assert message in json.dumps(response.json()), response.json()
    assert_still_serving(client)


def test_vcf__file_field_required(client):
    response = client.post("/predict/vcf", headers=AUTH, data={"age": "61", "sex": "F"})
    assert response.status_code == 422 and "multipart form field 'vcf'" in response.json()["detail"]


# --- metrics, logs -------------------------------------------------------------------------------


def test_metrics__requests_latency_risks_and_model_versions(client):
    predict(client, GOOD)
    predict(client, {"covariates": {}})
    client.post("/predict", json=GOOD)
    text = client.get("/metrics").text
    assert 'genoflow_api_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'genoflow_api_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'genoflow_api_requests_total{method="POST",route="/predict",status="401"} 1.0' in text
    assert 'genoflow_api_request_duration_seconds_count{route="/predict"} 3.0' in text
    assert 'genoflow_prediction_risk_count{target="disease_status"} 1.0' in text
    assert ('genoflow_model_info{alias="champion",dataset_version="d78f00.dir",name="genoflow_disease_status",'
            'run_id="run-disease_status-1",target="disease_status",version="1"} 1.0') in text


def test_logs__route_status_and_model_only_never_patient_data(client, caplog):
    caplog.set_level(logging.DEBUG)
    body = {"patients": [{**GOOD, "id": "PATIENT-SECRET-ID"}, {"covariates": {"age": 987654}, "id": "OTHER-ID"}]}
    client.post("/predict/batch", headers=AUTH, json=body)
    client.post("/predict/batch", headers=AUTH, json={"patients": body["patients"][:1]})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /predict/batch 200" in logged and "model=genoflow_disease_status/v1" in logged
    assert "POST /predict/batch 422" in logged
    for secret in ("PATIENT-SECRET-ID", "OTHER-ID", "987654", "1114906"):
        assert secret not in logged


# --- model swaps -----------------------------------------------------------------------------------


def test_reload__alias_move_is_served_atomically_and_failures_keep_the_old_model(client, source):
    source.set(served("disease_status", version="2", intercept=-2.0))
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200
    outcome = response.json()["targets"]["disease_status"]
    assert (outcome["outcome"], outcome["previous"], outcome["current"]) == ("loaded", "1", "2")
    assert response.json()["targets"]["treatment_response"]["outcome"] == "unchanged"
    moved = predict(client, GOOD).json()
    assert moved["model"]["version"] == "2" and moved["risk"] > GOOD_RISK
    info = [line for line in client.get("/metrics").text.splitlines()
            if line.startswith("genoflow_model_info{") and 'target="disease_status"' in line]
    assert len(info) == 1 and 'version="2"' in info[0]

    broken = served("disease_status", version="3")
    source.set(broken)
    source.load = lambda *a: (_ for _ in ()).throw(ModelLoadError("run r3 has no portable_model.json"))
    failed = client.post("/admin/reload", headers=AUTH)
    assert failed.status_code == 502
    assert "no portable_model.json" in failed.json()["targets"]["disease_status"]["error"]
    assert predict(client, GOOD).json()["model"]["version"] == "2"


def test_poller__picks_up_an_alias_move_by_itself():
    import time

    source = StaticSource([served("disease_status")])
    app = create_app(settings(targets=("disease_status",), poll_seconds=0.02), source=source)
    with TestClient(app) as client:
        source.set(served("disease_status", version="7"))
        for _ in range(500):  # bounded wait for the background thread; no timing is asserted
            if predict(client, GOOD).json()["model"]["version"] == "7":
                break
            time.sleep(0.01)
        assert predict(client, GOOD).json()["model"]["version"] == "7"


# --- the promotion gate's word, quantitative targets ----------------------------------------------------


def test_ready__a_target_without_champion_answers_503_with_the_gate_reason():
    reason = ("genoflow_treatment_response v3 kept challenger: not better than the covariates-only baseline "
              "(p=0.41 >= 0.05)")
    source = StaticSource([served("disease_status")], reasons={"genoflow_treatment_response": reason})
    with TestClient(create_app(settings(), source=source)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["reasons"] == {"treatment_response": reason}
        response = predict(client, {**GOOD, "target": "treatment_response"})
        assert response.status_code == 503
        assert response.json()["detail"] == f"no champion model for 'treatment_response': {reason}"
        assert_still_serving(client)

        source.set(served("treatment_response", version="4"))  # a later candidate passed the gate
        assert client.post("/admin/reload", headers=AUTH).status_code == 200
        assert predict(client, {**GOOD, "target": "treatment_response"}).status_code == 200
        assert client.get("/ready").json()["reasons"] == {}


def test_predict__quantitative_target_answers_the_predicted_value():
    source = StaticSource([served("disease_status"), served_quantitative("ldl")])
    with TestClient(create_app(settings(targets=("disease_status", "ldl")), source=source)) as client:
        response = predict(client, {**GOOD, "target": "ldl"})
        assert response.status_code == 200, response.text
        body = response.json()
        x = [61, 0, FILL["mean_phred"], 1, 2, FILL["v_chr22_1200000_A_AT"]]
        assert "risk" not in body
        assert body["prediction"] == pytest.approx(sum(c * v for c, v in zip(COEFFICIENTS, x, strict=True))
                                                   + INTERCEPT, abs=1e-12)
        batch = client.post("/predict/batch", headers=AUTH, json={"target": "ldl", "patients": [
            {**GOOD, "id": "a"}, {**GOOD, "id": "b"}]})
        assert batch.status_code == 200, batch.text
        assert [p["prediction"] for p in batch.json()["predictions"]] == pytest.approx([body["prediction"]] * 2)
        assert "risk" not in batch.json()["predictions"][0]
        assert "prediction" not in predict(client, GOOD).json()  # binary targets keep their risk
        assert client.get("/models", headers=AUTH).json()["ldl"]["target_type"] == "quantitative"


def test_served_model__a_classifier_cannot_serve_a_quantitative_target():
    from dataclasses import asdict

    m = served()
    with pytest.raises(ModelLoadError, match="cannot serve a quantitative target"):
        type(m).build(target="ldl", name="n", version="1", alias="champion", run_id="r", dataset_version=None,
                      spec=asdict(m.spec), portable={"format": FORMAT, "kind": "logistic_regression",
                                                     "n_features": len(m.spec.names), "features": m.spec.names,
                                                     "coefficients": COEFFICIENTS, "intercept": 0.0},
                      target_type="quantitative")


# --- study covariates by the feature spec (decision 0011) ------------------------------------------------------


def test_predict__categorical_and_imputed_covariates_by_the_spec():
    from dataclasses import asdict

    from genoflow.serving.model import ServedModel
    from tests.unit.serving.conftest import spec

    covariates = [{"name": "stratum", "kind": "categorical", "levels": ["1", "2", "3"], "reference": "1",
                   "fill": None},
                  {"name": "bmi", "kind": "numeric", "levels": [], "reference": None, "fill": 27.0}]
    s = spec(covariates)
    assert s.names[:2] == ["stratum=2", "stratum=3"]  # one column per non-reference level, then bmi
    coefficients = [0.5, 1.0, 0.1, 0.0, 0.0, 0.0, 0.0]
    portable = {"format": FORMAT, "kind": "logistic_regression", "n_features": len(s.names), "features": s.names,
                "coefficients": coefficients, "intercept": -3.0}
    model = ServedModel.build(target="disease_status", name="genoflow_disease_status", version="9",
                              alias="champion", run_id="r9", dataset_version=None, spec=asdict(s), portable=portable)
    source = StaticSource([model])
    with TestClient(create_app(settings(targets=("disease_status",)), source=source)) as client:
        def risk(covariates):
            response = predict(client, {"covariates": covariates, "genotypes": {}})
            return response.status_code, response.json()

        status, body = risk({"stratum": "3", "bmi": 30.0})
        assert status == 200 and body["risk"] == pytest.approx(1 / (1 + math.exp(-(1.0 + 3.0 - 3.0))))
        # bmi absent: the study imputes it (fill 27); stratum 1 is the reference level; a JSON number names a level.
        status, body = risk({"stratum": 1})
        assert status == 200 and body["risk"] == pytest.approx(1 / (1 + math.exp(-(2.7 - 3.0))))
        status, body = risk({"stratum": "4", "bmi": 30.0})
        assert status == 422 and body["detail"] == "covariates.stratum: unknown level '4'; known levels: '1', '2', '3'"
        status, body = risk({"bmi": 30.0})
        assert status == 422 and body["detail"] == "covariates.stratum: required"  # no fill: drop mode
        body = client.get("/models", headers=AUTH).json()["disease_status"]
        assert body["required_covariates"] == ["stratum"] and body["optional_covariates"] == ["bmi", "mean_phred"]
        assert body["categorical_levels"] == {"stratum": ["1", "2", "3"]}


@pytest.mark.parametrize("sex, expected", [("female", 0.0), ("M", 1.0), ("m", 1.0), (2, 0.0)])
def test_predict__sex_as_the_study_reads_it(client, sex, expected):
    response = predict(client, {**GOOD, "covariates": {"age": 61, "sex": sex}})
    assert response.status_code == 200, response.text
    assert response.json()["risk"] == pytest.approx(
        expected_risk(61, expected, FILL["mean_phred"], [1, 2, FILL["v_chr22_1200000_A_AT"]]), abs=1e-12)

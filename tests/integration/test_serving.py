"""The model API end to end: the real server process on the registry the training DAG filled.

`python -m genoflow.serving` runs as a subprocess on a free loopback port against the throwaway
project's MLflow registry (after a real Airflow/Spark run). The skew test sends held-out
patients' raw values (the preprocess tables: covariates, read QC, dosages) and requires the API's
risk to equal the score evaluate gave the same patient. evaluate scores each model's portable form;
the Spark models it was exported from must give those scores too.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.services.api import answering

pytestmark = pytest.mark.integration

API_KEY = "integration-test-key"
AUTH = {"X-API-Key": API_KEY}
TARGET = "disease_status"
MODEL = f"genoflow_{TARGET}"
N_PATIENTS = 30
TOLERANCE = 1e-6


class Api:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url = url
        self.process = process
        self.log = log

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api(project, first_run, tmp_path_factory):
    """The API server, started once for this module and stopped (its own process only) after."""

    port = _free_port()
    log = tmp_path_factory.mktemp("serving") / "api.log"
    env = {**project.env, "MLFLOW_TRACKING_URI": project.tracking_uri, "GENOFLOW_API_KEYS": API_KEY,
           "GENOFLOW_SERVING_POLL_SECONDS": "0",  # alias moves are picked up by /admin/reload here
           "GENOFLOW_SERVING_PUBLIC_ROUTES": "health,ready,metrics"}  # read below without a key
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "genoflow.serving", "--port", str(port)],
                                   cwd=project.root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Api(f"http://127.0.0.1:{port}", process, log)
    with answering(process, server.url, server.tail):
        yield server


@pytest.fixture(scope="module")
def http(api):
    import httpx

    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def registry(project):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.tracking_uri)


# --- the project's committed tables --------------------------------------------------------------


def _step_dir(project, run_id: str, registry) -> dict[str, Path]:
    """The evaluate, features and preprocess folders behind an MLflow run (via inputs.json)."""
    run_key = registry.get_run(run_id).data.tags["genoflow.run_key"]
    evaluate = project.root / "data" / "steps" / "evaluate" / run_key
    features_uri = json.loads((evaluate / "inputs.json").read_text())["upstream"]["features"]
    features = Path(features_uri.removeprefix("file://"))
    preprocess = Path(json.loads((features / "inputs.json").read_text())["upstream"]["preprocess"]
                      .removeprefix("file://"))
    return {"evaluate": evaluate, "features": features, "preprocess": preprocess}


class Cohort:
    """Held-out patients' raw values, as a client would hold them, and evaluate's scores."""

    def __init__(self, dirs: dict[str, Path]):
        import pandas as pd

        self.samples = pd.read_parquet(dirs["preprocess"] / "samples").set_index("pid")
        self.genotypes = pd.read_parquet(dirs["preprocess"] / "genotypes", columns=[
            "contig", "pos", "ref", "alt", "qc_pass", "dosages"])
        self.scores = pd.read_parquet(dirs["evaluate"] / "scores")

    def scores_of(self, run_id: str, target: str):
        rows = self.scores[(self.scores["run_id"] == run_id) & (self.scores["target"] == target)]
        return rows.sort_values("pid").set_index("pid")["score"]

    def covariates(self, pid: str, read_qc: list[str]) -> dict:
        import pandas as pd

        row = self.samples.loc[pid]
        out = {"age": int(row["age"]), "sex": str(row["sex"])}
        for name in read_qc:
            out[name] = None if pd.isna(row[name]) else float(row[name])  # missing read QC -> null
        return out

    def dosages(self, pid: str, qc_pass_only: bool = True) -> dict[str, int]:
        """contig:pos:ref:alt -> dosage (-1 = no call) of every variant of the table."""
        index = int(self.samples.loc[pid, "sample_index"])
        table = self.genotypes[self.genotypes["qc_pass"]] if qc_pass_only else self.genotypes
        return {f"{r.contig}:{r.pos}:{r.ref}:{r.alt}": int(np.frombuffer(r.dosages, dtype=np.int8)[index])
                for r in table.itertuples()}


@pytest.fixture(scope="module")
def champion(registry):
    return registry.get_model_version_by_alias(MODEL, "champion")


@pytest.fixture(scope="module")
def cohort(project, champion, registry) -> Cohort:
    return Cohort(_step_dir(project, champion.run_id, registry))


def _spec(registry, run_id: str) -> dict:
    """The run's feature_spec.json, read straight from MLflow (not through the API under test)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(registry.download_artifacts(run_id, "feature_spec.json", tmp)).read_text())


# --- tests ---------------------------------------------------------------------------------------


def test_ready__serves_the_registry_champions(http, registry):
    ready = http.get("/ready")
    assert ready.status_code == 200, ready.text
    for target in ("disease_status", "treatment_response"):
        champion = registry.get_model_version_by_alias(f"genoflow_{target}", "champion")
        served = ready.json()["models"][target]
        assert (served["version"], served["run_id"]) == (str(champion.version), champion.run_id)
        assert served["dataset_version"] == registry.get_run(champion.run_id).data.tags["genoflow.dataset_version"]
    assert http.post("/predict", json={"covariates": {"age": 50, "sex": "F"}}).status_code == 401


def test_held_out__evaluates_scores_are_the_spark_models_scores(spark, project, registry, champion, cohort):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array

    dirs = _step_dir(project, champion.run_id, registry)
    train = Path(json.loads((dirs["evaluate"] / "inputs.json").read_text())["upstream"]["train"]
                 .removeprefix("file://"))
    test = spark.read.parquet(str(dirs["features"] / "table")).filter("split = 'test'")
    models = json.loads((train / "models.json").read_text())["models"]
    assert {m["family"] for m in models} >= {"logistic_regression", "random_forest", "gbt"}
    for m in models:
        scored = PipelineModel.load(str(train / m["model_path"])).transform(test.filter(f"`{m['target']}` is not null"))
        score = vector_to_array("probability")[1] if m["type"] == "binary" else scored["prediction"]
        by_spark = scored.select("pid", score.alias("score")).toPandas().sort_values("pid").set_index("pid")["score"]
        evaluated = cohort.scores_of(m["run_id"], m["target"])
        assert list(evaluated.index) == list(by_spark.index), m["family"]
        np.testing.assert_allclose(evaluated.to_numpy(), by_spark.to_numpy(), rtol=0, atol=1e-9, err_msg=m["family"])


def test_skew__api_risk_equals_the_held_out_score(http, registry, champion, cohort):
    spec = _spec(registry, champion.run_id)
    from genoflow.features.spec import FeatureSpec

    inputs = FeatureSpec(**spec).input_variants  # selected variants + those of the PCs, PRS and burdens
    wanted = {f"{v['contig']}:{v['pos']}:{v['ref']}:{v['alt']}" for v in inputs}
    expected = cohort.scores_of(champion.run_id, TARGET)
    assert len(expected) >= N_PATIENTS
    for i, (pid, score) in enumerate(expected.head(N_PATIENTS).items()):
        dosages = cohort.dosages(pid)
        # Half the patients send just the model's variants, half their whole panel.
        body = {"target": TARGET, "covariates": cohort.covariates(pid, spec["read_qc"]),
                "genotypes": dosages if i % 2 else {k: d for k, d in dosages.items() if k in wanted},
                "ignore_unknown": bool(i % 2)}
        response = http.post("/predict", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["model"] == {"name": MODEL, "version": str(champion.version), "alias": "champion",
                                   "run_id": champion.run_id}
        assert abs(result["risk"] - score) <= TOLERANCE, (pid, result["risk"], score)
        assert result["n_variants_used"] + result["n_variants_missing"] == len(inputs)


def test_skew__single_sample_vcf_upload(http, registry, champion, cohort):
    spec = _spec(registry, champion.run_id)
    expected = cohort.scores_of(champion.run_id, TARGET)
    pid, score = next(iter(expected.tail(1).items()))
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPATIENT"]
    calls = {0: "0/0", 1: "0/1", 2: "1/1", -1: "./."}
    for key, dosage in cohort.dosages(pid).items():
        contig, pos, ref, alt = key.rsplit(":", 3)
        lines.append(f"{contig}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t{calls[dosage]}")
    covariates = {k: str(v) for k, v in cohort.covariates(pid, spec["read_qc"]).items() if v is not None}
    response = http.post("/predict/vcf", headers=AUTH, data=covariates,
                         files={"vcf": ("patient.vcf", ("\n".join(lines) + "\n").encode())})
    assert response.status_code == 200, response.text
    assert abs(response.json()["risk"] - score) <= TOLERANCE


def test_reload__alias_move_is_served_and_scores_like_spark(project, http, registry, champion, cohort):
    """Point champion at another model of the same pipeline run; /admin/reload serves it."""
    tags = registry.get_run(champion.run_id).data.tags
    others = [r for r in registry.search_runs(
        [registry.get_run(champion.run_id).info.experiment_id],
        filter_string=f"tags.`genoflow.run_key` = '{tags['genoflow.run_key']}' and tags.`genoflow.target` = '{TARGET}'")
        if r.info.run_id != champion.run_id]
    assert others, "the pipeline run trained several families"
    other = others[0].info.run_id
    import mlflow

    mlflow.set_tracking_uri(project.tracking_uri)
    version = mlflow.register_model(f"runs:/{other}/model", MODEL).version
    try:
        registry.set_registered_model_alias(MODEL, "champion", version)
        reload = http.post("/admin/reload", headers=AUTH)
        assert reload.status_code == 200, reload.text
        outcome = reload.json()["targets"][TARGET]
        assert (outcome["outcome"], outcome["current"]) == ("loaded", str(version))

        spec = _spec(registry, other)
        pid, score = next(iter(cohort.scores_of(other, TARGET).head(1).items()))
        body = {"covariates": cohort.covariates(pid, spec["read_qc"]), "genotypes": cohort.dosages(pid),
                "ignore_unknown": True}
        result = http.post("/predict", json=body, headers=AUTH).json()
        assert (result["model"]["version"], result["model"]["run_id"]) == (str(version), other)
        assert abs(result["risk"] - score) <= TOLERANCE
        assert f'version="{version}"' in http.get("/metrics").text
    finally:
        registry.set_registered_model_alias(MODEL, "champion", champion.version)
        http.post("/admin/reload", headers=AUTH)
    assert http.get("/ready").json()["models"][TARGET]["version"] == str(champion.version)


def test_bad_input__clear_4xx_then_still_serving(http, api):
    bad = http.post("/predict", content=b'{"covariates": ', headers={**AUTH, "Content-Type": "application/json"})
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["detail"]
    unknown = http.post("/predict", json={"covariates": {"age": 50, "sex": "F"}, "genotypes": {"chr9:1:A:G": 1}},
                        headers=AUTH)
    assert unknown.status_code == 422 and "chr9:1:A:G" in unknown.json()["detail"]
    assert http.post("/predict", json={"covariates": {"age": 50, "sex": "F"}}, headers=AUTH).status_code == 200
    log = api.tail()
    assert "POST /predict 422" in log and "chr9:1:A:G" not in log  # the access log names no input


def test_range_checks__the_champions_inputs_refuse_impossible_values(http, registry, champion, cohort):
    """gc_fraction 7 or mean_phred 500 once scored a risk of 1.0; now every numeric input has a range."""
    from genoflow.serving.ranges import RANGE_BY_MEANING

    spec = _spec(registry, champion.run_id)
    numeric = [c for c in spec["covariates"] if c["kind"] == "numeric"]
    assert all(c["min"] is not None and c["min"] <= c["max"] for c in numeric)  # recorded by the features step
    pid = next(iter(cohort.scores_of(champion.run_id, TARGET).index))
    good = cohort.covariates(pid, spec["read_qc"])
    names = [name for name in [*spec["read_qc"], *(c["name"] for c in numeric)] if name in RANGE_BY_MEANING]
    assert names, "the champion reads read-QC values or an age"
    for name in names:
        allowed = RANGE_BY_MEANING[name]
        value = allowed.high + 1 if allowed.high < float("inf") else allowed.low - 1
        response = http.post("/predict", json={"covariates": {**good, name: value}}, headers=AUTH)
        assert response.status_code == 422, response.text
        assert f"covariates.{name}: {value:g} is out of range: allowed {allowed.describe()}" in response.text
    assert http.post("/predict", json={"covariates": good}, headers=AUTH).status_code == 200

"""`genoflow lineage` on a real pipeline run: the chain it prints is what the run recorded.

The session `first_run` (genomic_risk_training through `airflow dags test`, real Spark, MLflow
SQLite registry, DVC local remote) registered and aliased the models; the CLI runs as a user
would, in the project, and each link is checked against the registry, the run and the files.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.project import VENV_BIN

pytestmark = pytest.mark.integration

MODEL = "genoflow_disease_status"


def _lineage(project, *args: str, check: bool = True):
    return project.run(str(VENV_BIN / "genoflow"), "lineage", *args, check=check, timeout=300)


def test_lineage__champion_chain_matches_the_recorded_run(project, first_run):
    import mlflow

    from genoflow.versioning import dvc_version

    lineage = json.loads(_lineage(project, MODEL, "champion", "--json").stdout)

    client = mlflow.MlflowClient(project.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(champion.run_id)
    assert str(lineage["model"]["version"]) == str(champion.version) and "champion" in lineage["model"]["aliases"]
    assert lineage["run"]["id"] == champion.run_id
    assert lineage["run"]["experiment"]["name"] == "genomic_risk_training"
    assert lineage["run"]["metrics"] == run.data.metrics and "test_auc_roc" in lineage["run"]["metrics"]
    assert lineage["run"]["run_key"] == run.data.tags["genoflow.run_key"]
    assert lineage["code"]["git_commit"] == run.data.tags["mlflow.source.git.commit"] != "unknown"

    dataset = lineage["dataset"]
    assert dataset["version"] == run.data.tags["genoflow.dataset_version"] == dvc_version(project.root)
    assert dataset["current"] and dataset["remote"]["name"] == "local"
    raw = project.root / "data" / "raw"
    on_disk = {str(p.relative_to(raw)): p for p in raw.rglob("*") if p.is_file()}
    assert {f["path"] for f in dataset["files"]} == set(on_disk)
    for f in dataset["files"]:
        content = on_disk[f["path"]].read_bytes()
        assert (f["md5"], f["size"]) == (hashlib.md5(content).hexdigest(), len(content)), f["path"]
        assert f["on_remote"], f"{f['path']} was not pushed"
    remote = project.root / ".genoflow" / "dvc-remote"
    vcf = dataset["files"][0]
    assert vcf["path"] == "cohort.vcf.gz"
    pushed = remote / "files" / "md5" / vcf["md5"][:2] / vcf["md5"][2:]
    assert pushed.read_bytes() == (raw / "cohort.vcf.gz").read_bytes()


def test_lineage__by_version_number_and_as_text(project, first_run):
    by_alias = json.loads(_lineage(project, MODEL, "--json").stdout)  # champion by default
    by_number = json.loads(_lineage(project, MODEL, str(by_alias["model"]["version"]), "--json").stdout)
    assert by_number["run"]["id"] == by_alias["run"]["id"]
    text = _lineage(project, MODEL).stdout
    for value in (by_alias["run"]["id"], by_alias["dataset"]["version"], by_alias["code"]["git_commit"],
                  "cohort.vcf.gz", f"{MODEL} v{by_alias['model']['version']}"):
        assert value in text, value


@pytest.mark.parametrize(("args", "message"), [
    ((MODEL, "no-such-alias"), f"{MODEL} has no alias 'no-such-alias' (versions: "),
    ((MODEL, "999"), f"{MODEL} has no version '999'"),
    (("genoflow_no_such_model",), "no registered model 'genoflow_no_such_model' (registered: "),
])
def test_lineage__unknown_model_version_or_alias(project, first_run, args, message):
    result = _lineage(project, *args, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"genoflow lineage: error: {message}"), result.stderr
    assert "Traceback" not in result.stderr

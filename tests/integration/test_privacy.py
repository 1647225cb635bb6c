"""Privacy of the step outputs on a small demo cohort through the jobs' entry point (decision 0018).

A 60-patient demo cohort (raw ids PT00001..PT00060, its VCF's columns in that order) runs preprocess
and features with :func:`genoflow.pipeline.runner.main` on the shared local[2] session. Asserted: the
sample and feature tables are stored in pseudonym order, so a row's place and ``sample_index`` say
nothing about the raw id; the genotype table's dosages follow that order (each patient keeps their
own genotypes); ages are 5-year band midpoints; inputs.json records the key's fingerprint, never the
key; a weak key stops preprocess with the input-error exit naming GENOFLOW_PSEUDONYM_KEY.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genoflow.config import load_params, merge_params
from genoflow.errors import INPUT_ERROR_EXIT
from genoflow.genotypes import unpack_dosages
from genoflow.pipeline.runner import main, step_uri
from genoflow.pseudonym import key_fingerprint, pseudonymise
from tests.conftest import REPO

pytestmark = pytest.mark.integration  # ~110 s on two busy cores (Spark start, preprocess, features); each check < 1 s

N_PATIENTS = 60
KEY = "integration-test-key-0018-not-weak"
PARAMS = merge_params(load_params(REPO / "params.yaml"), {
    "features": {"pca_components": 2, "pca_covariates": 1},
    "train": {"cv_folds": 2},
})


def _args(root: Path, version: str) -> list[str]:
    return ["--storage-root", root.as_uri(), "--dataset-version", version, "--params-json", json.dumps(PARAMS)]


@pytest.fixture(scope="module")
def private_run(tmp_path_factory, spark):
    from genoflow.simulate.cohort import make_demo_cohort

    root = tmp_path_factory.mktemp("privacy")
    make_demo_cohort(root, n_patients=N_PATIENTS, sequence_length=100_000, reads_per_patient=10, n_causal=5)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GENOFLOW_PSEUDONYM_KEY", KEY)
        env.delenv("GENOFLOW_ALLOW_DEMO_KEY", raising=False)  # a real key needs no flag
        for step in ("preprocess", "features"):
            assert main(step, _args(root, "privacy")) == 0, f"{step} failed (see the log above)"
        out = {step: Path(step_uri(root.as_uri(), step, "privacy", PARAMS).removeprefix("file://"))
               for step in ("preprocess", "features")}
    raw_of = {pseudonymise(f"PT{i:05d}", KEY): i for i in range(1, N_PATIENTS + 1)}  # pid -> raw id number
    return root, out, raw_of


def _unrelated_to_raw_order(numbers, positions) -> None:
    rho = stats.spearmanr(numbers, positions).statistic
    assert abs(rho) < 0.35, f"stored order follows the raw ids (Spearman {rho:.2f})"
    assert int((np.asarray(numbers) - 1 == np.asarray(positions)).sum()) <= 3


def test_privacy__samples_stored_in_pseudonym_order(private_run):
    _, out, raw_of = private_run
    samples = pd.read_parquet(out["preprocess"] / "samples")
    assert samples["pid"].tolist() == sorted(raw_of)
    assert samples["sample_index"].tolist() == list(range(N_PATIENTS))
    _unrelated_to_raw_order(samples["pid"].map(raw_of), samples["sample_index"])
    table = pd.read_parquet(out["features"] / "table")
    assert table["pid"].tolist() == sorted(table["pid"])  # and the feature table keeps it
    _unrelated_to_raw_order(table["pid"].map(raw_of), np.arange(len(table)))


def test_privacy__each_patient_keeps_their_own_genotypes(private_run):
    root, out, raw_of = private_run
    samples = pd.read_parquet(out["preprocess"] / "samples")
    genotypes = pd.read_parquet(out["preprocess"] / "genotypes", columns=["pos", "ref", "alt", "dosages"])
    vcf = _vcf_dosages(root / "raw" / "cohort.vcf.gz", n_records=40)
    column_of_raw = samples["pid"].map(raw_of).to_numpy() - 1  # VCF column of each stored sample
    checked = 0
    for row in genotypes.itertuples():
        if (row.pos, row.ref, row.alt) in vcf:
            np.testing.assert_array_equal(unpack_dosages(row.dosages), vcf[row.pos, row.ref, row.alt][column_of_raw])
            checked += 1
    assert checked >= 20


def _vcf_dosages(path: Path, n_records: int) -> dict:
    """ALT dosages (-1 missing) of the first biallelic GT records, in the VCF's sample order."""
    out = {}
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if "," in fields[4]:
                continue
            calls = [f.split(":")[0].replace("|", "/") for f in fields[9:]]
            out[int(fields[1]), fields[3], fields[4]] = np.array(
                [-1 if "." in c else sum(int(a) for a in c.split("/")) for c in calls], dtype=np.int8)
            if len(out) >= n_records:
                break
    return out


def test_privacy__ages_are_five_year_bands(private_run):
    _, out, _ = private_run
    ages = pd.read_parquet(out["preprocess"] / "samples")["age"].dropna().to_numpy()
    assert len(ages) > 0
    np.testing.assert_array_equal(ages % 5.0, np.full(len(ages), 2.5))


def test_privacy__inputs_json_records_the_fingerprint_not_the_key(private_run):
    _, out, _ = private_run
    for step in ("preprocess", "features"):
        text = (out[step] / "inputs.json").read_text()
        assert json.loads(text)["pseudonym_key_fingerprint"] == key_fingerprint(KEY)
        assert KEY not in text


@pytest.mark.parametrize("key", [None, "change-me", ""])
def test_privacy__weak_key_stops_preprocess_without_retry(private_run, monkeypatch, capfd, key):
    root, _, _ = private_run
    if key is None:
        monkeypatch.delenv("GENOFLOW_PSEUDONYM_KEY", raising=False)
    else:
        monkeypatch.setenv("GENOFLOW_PSEUDONYM_KEY", key)
    monkeypatch.delenv("GENOFLOW_ALLOW_DEMO_KEY", raising=False)
    assert main("preprocess", _args(root, "privacy-weak")) == INPUT_ERROR_EXIT
    err = capfd.readouterr().err
    assert "genoflow preprocess: error: GENOFLOW_PSEUDONYM_KEY" in err and "openssl rand" in err
    committed = [json.loads(p.read_text())["dataset_version"] for p in root.glob("steps/preprocess/*/inputs.json")]
    assert "privacy-weak" not in committed

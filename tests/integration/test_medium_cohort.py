"""A medium cohort through preprocess and features: 20,000 patients x a 100 kb region (issue 14).

At this width one genotype row is 20 KB of int8 and 80 KB of VCF text, so blocks sized by a count of
lines would already be large (2,000 VCF lines: 160 MB of text; 2,048 float64 rows: 330 MB); blocks
sized by bytes (decision 0012) stay within ``compute.block_mb``. The study is the biobank simulator's
one phenotype table (no per-patient folders, FASTA or GFF); the run is the jobs' own entry point
(:func:`genoflow.pipeline.runner.main`) on the shared local[2] session, a small block budget making
every split decode in several blocks.

Asserted: every patient is in the sample table, QC keeps a plausible share of variants and nearly every
patient, the feature table has one row per kept patient and every expected column, and the ancestry PCs
are (nearly) uncorrelated and carry the simulated populations (YRI, CEU, CHB), whichever PCA method computed them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genoflow.config import Settings, load_params, merge_params
from genoflow.pipeline.runner import main, step_uri
from genoflow.pseudonym import pseudonymise
from tests.conftest import REPO

pytestmark = pytest.mark.integration  # ~150 s on two busy cores: simulation ~10 s, preprocess ~60 s, features ~55 s

N_PATIENTS = 20_000
PARAMS = merge_params(load_params(REPO / "params.yaml"), {
    "study": {"phenotypes": "raw/phenotypes.csv"},
    "preprocess": {"reference_fasta": None, "annotations_gff": None, "patient_dir": None},
    "features": {"read_qc": [], "pca_components": 4, "pca_covariates": 2},
    "train": {"cv_folds": 2},
    "compute": {"block_mb": 8},  # 100 lines of VCF text, 52 float64 rows: many blocks per split
})
PARAMS["study"]["targets"] = {"disease_status": "binary"}  # the table's one target (merging would keep the demo's)


@pytest.fixture(scope="module")
def medium_run(tmp_path_factory, spark):
    from genoflow.simulate.biobank import make_biobank_cohort

    root = tmp_path_factory.mktemp("medium")
    cohort = make_biobank_cohort(root, n_patients=N_PATIENTS, sequence_length=100_000, seed=14, n_causal=5)
    args = ["--storage-root", root.as_uri(), "--dataset-version", "medium", "--params-json", json.dumps(PARAMS)]
    seconds = {}
    for step in ("preprocess", "features"):
        started = time.perf_counter()
        assert main(step, args) == 0, f"{step} failed (see the log above)"
        seconds[step] = round(time.perf_counter() - started, 1)
    print(f"medium cohort: {cohort['n_variants']} variants, {seconds}")
    out = {step: Path(step_uri(str(root), step, "medium", PARAMS).removeprefix("file://"))
           for step in ("preprocess", "features")}
    return root, cohort, out


def test_medium_cohort__preprocess_keeps_every_patient_and_plausible_qc(medium_run):
    _, cohort, out = medium_run
    qc = json.loads((out["preprocess"] / "qc_summary.json").read_text())
    samples = pd.read_parquet(out["preprocess"] / "samples")
    assert qc["n_samples"] == len(samples) == N_PATIENTS
    assert sorted(samples["sample_index"]) == list(range(N_PATIENTS))
    assert qc["n_variants"] == cohort["n_variants"]
    # min_maf 0.01 drops the rare majority of a coalescent's sites, not every site; 0.5% missing calls
    # leave call rates far above 0.95, so neither --geno nor --mind removes anything.
    assert 50 <= qc["n_variants_pass_qc"] < qc["n_variants"]
    assert qc["n_variants_fail_maf"] > 0 and qc["n_variants_fail_call_rate"] == 0
    assert qc["n_samples_fail_missingness"] == 0
    assert qc["n_samples_pass_qc"] >= 0.99 * N_PATIENTS


def test_medium_cohort__features_table_and_ancestry_pcs(medium_run):
    root, _, out = medium_run
    meta = json.loads((out["features"] / "features.json").read_text())
    table = pd.read_parquet(out["features"] / "table")
    assert len(table) == meta["n_train"] + meta["n_test"] >= 0.99 * N_PATIENTS
    assert table["pid"].is_unique
    assert abs(meta["n_test"] / len(table) - PARAMS["features"]["test_fraction"]) < 0.01
    names = meta["targets"]["disease_status"]["features"]
    assert set(names) <= set(table.columns) and {"pc1", "pc2", "pc3", "pc4"} <= set(names)
    assert np.isfinite(table[names].to_numpy(dtype=float)).all()
    eigenvalues = np.asarray(meta["pca"]["eigenvalues"])
    assert eigenvalues.shape == (4,) and (eigenvalues > 0).all() and (np.diff(eigenvalues) <= 1e-9).all()
    assert meta["pca"]["n_pruned_variants"] >= 20
    # Past 2,000 patients the randomized PCA runs; LD r² is measured on at most features.ld_max_samples.
    assert meta["pca"]["method"] == "randomized"
    assert meta["pca"]["prune_ld_samples"] == min(N_PATIENTS, 20_000)
    assert 0 < meta["targets"]["disease_status"]["clump_ld_samples"] <= 20_000

    # Real PCs whichever method computed them: (nearly) uncorrelated, and carrying the simulated populations
    # (YRI, CEU, CHB). 100 kb leaves few pruned variants, so the PCs mix local haplotype structure in:
    # a population effect is asserted, not a clean split.
    values = table[["pc1", "pc2", "pc3", "pc4"]].to_numpy(dtype=float)
    assert np.allclose(values.var(axis=0), 1.0, atol=0.05)  # scores U sqrt(n): unit variance, as served
    corr = np.corrcoef(values, rowvar=False)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.05  # centred orthogonal scores: ~0
    # Tables are in pseudonym order (decision 0018): the truth's raw ids are matched by their pseudonyms.
    truth = pd.read_csv(root / "truth" / "patients.csv")
    truth["pid"] = [pseudonymise(patient, Settings().pseudonym_key) for patient in truth["patient_id"]]
    population = table[["pid"]].merge(truth, on="pid", how="left")["population"].to_numpy()
    p = [stats.f_oneway(*(column[population == name] for name in ("YRI", "CEU", "CHB"))).pvalue
         for column in values.T]
    assert min(p) < 1e-10, p

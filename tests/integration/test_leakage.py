"""No leakage: nothing the features step learns from labels has seen a test patient.

Runs the real preprocess and features steps (in-process, real Spark), then reruns features with
every test patient's labels flipped. If any label-driven statistic (association scans, variant
selection, clumping and polygenic-score weights, burden gene choice, imputation values) or any
training row used test labels, the two outputs would differ. PCA is fitted on every patient but
never sees a label, so the genotype features of test patients must not move either.

The split itself is stratified on disease status by design (so flipping a label can move a
patient across strata); the rerun therefore keeps the original patient -> split assignment, and
tests what matters: given the split, test labels reach nothing that is learned.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from genoflow.config import load_params, merge_params
from genoflow.pipeline.features import run_features, split_samples
from genoflow.pipeline.runner import main
from genoflow.storage import HadoopStorage
from tests.conftest import REPO

pytestmark = pytest.mark.integration

PARAMS = load_params(REPO / "params.yaml", overrides={"features": {"top_k": 15}})


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory, spark):
    from genoflow.simulate import make_demo_cohort

    root = tmp_path_factory.mktemp("leakage") / "data"
    make_demo_cohort(root, n_patients=200, sequence_length=300_000, seed=11, n_causal=8, reads_per_patient=10)
    rc = main("preprocess", ["--storage-root", root.as_uri(), "--dataset-version", "t",
                             "--params-json", json.dumps(PARAMS)])
    assert rc == 0
    return root


def features_for(spark, root, samples_edit, name, params=PARAMS):
    """Run the features step on a copy of the preprocess output whose sample table is edited."""
    (source,) = (root / "steps" / "preprocess").glob("*[!.]")
    copy = root / "variants" / name
    shutil.copytree(source, copy)
    samples = pd.read_parquet(copy / "samples")
    shutil.rmtree(copy / "samples")
    spark.createDataFrame(samples_edit(samples)).coalesce(1).write.parquet(str(copy / "samples"))
    storage = HadoopStorage(spark, root.as_uri())
    out = storage.uri("features", name)
    with storage.step_output(out) as output:
        run_features(spark, copy.as_uri(), output, params)
    return root / "features" / name


def flip_test_labels(samples: pd.DataFrame) -> pd.DataFrame:
    split = split_samples(samples, PARAMS["features"], PARAMS).set_index("pid")["split"]
    is_test = samples["pid"].map(split).eq("test").to_numpy()
    edited = samples.copy()
    for target in ("disease_status", "treatment_response"):
        edited.loc[is_test, target] = 1 - edited.loc[is_test, target]
    return edited


@pytest.fixture(scope="module")
def original(spark, preprocessed):
    return features_for(spark, preprocessed, lambda s: s, "original")


def keep_split_of(original, monkeypatch):
    """Rerun with the original run's patient -> split assignment (flipping labels can move strata)."""
    import genoflow.pipeline.features as features

    assigned = pd.read_parquet(original / "table").set_index("pid")["split"]

    def original_split(samples, *_):
        kept = samples[samples["sample_qc_pass"]].reset_index(drop=True)
        kept["split"] = kept["pid"].map(assigned).to_numpy()
        return kept

    monkeypatch.setattr(features, "split_samples", original_split)
    return assigned


def test_features__test_labels_do_not_reach_anything_learned(spark, preprocessed, original, monkeypatch):
    keep_split_of(original, monkeypatch)
    flipped = features_for(spark, preprocessed, flip_test_labels, "flipped")

    meta_a = json.loads((original / "features.json").read_text())
    meta_b = json.loads((flipped / "features.json").read_text())
    assert meta_a == meta_b  # same selected variants, train p-values, imputation values, split sizes

    for target in ("disease_status", "treatment_response"):
        scan_a = pd.read_parquet(original / "association" / target).sort_values(["pos", "alt"])
        scan_b = pd.read_parquet(flipped / "association" / target).sort_values(["pos", "alt"])
        pd.testing.assert_frame_equal(scan_a.reset_index(drop=True), scan_b.reset_index(drop=True))

    table_a = pd.read_parquet(original / "table").set_index("pid").sort_index()
    table_b = pd.read_parquet(flipped / "table").set_index("pid").sort_index()
    train = table_a["split"] == "train"
    pd.testing.assert_frame_equal(table_a[train], table_b[train])
    # Every feature of a test patient (PCs, polygenic scores, burdens, dosages) is the same too: only labels moved.
    labels = ["disease_status", "treatment_response"]
    pd.testing.assert_frame_equal(table_a.drop(columns=labels), table_b.drop(columns=labels))
    assert {"pc1", "prs_disease_status_p1em2", "prs_treatment_response_p1em2"} <= set(table_a.columns)
    assert table_a["prs_disease_status_p1em2"].std() > 0  # weights were learnt (not an all-zero score)
    # The edit really happened: the test rows' labels differ, so the equalities above are not vacuous.
    assert (table_a.loc[~train, "disease_status"] != table_b.loc[~train, "disease_status"]).all()
    assert train.sum() > 100 and (~train).sum() > 30


def test_features__training_polygenic_scores_are_cross_fitted(spark, preprocessed, monkeypatch):
    """With prs_folds, flip the disease labels of one fold of training patients: their own scores must
    not move (weights from the other folds), while the other patients' scores, whose weights saw them, do."""
    import genoflow.features.split as split

    params = merge_params(PARAMS, {"features": {"prs_folds": 3}})
    k, seed = 3, int(params["features"]["split_seed"])
    cross_fitted = features_for(spark, preprocessed, lambda s: s, "cross-fitted", params)
    table = pd.read_parquet(cross_fitted / "table").set_index("pid").sort_index()
    train = table[(table["split"] == "train") & table["disease_status"].notna()]
    fold_of = pd.Series(split.stratified_folds(train.index.tolist(), train["disease_status"].to_numpy(), k=k,
                                               seed=seed), index=train.index)
    keep_split_of(cross_fitted, monkeypatch)
    monkeypatch.setattr(split, "stratified_folds", lambda ids, labels, k, seed: fold_of.loc[list(ids)].to_numpy())
    fold0 = fold_of.index[fold_of == 0]

    def flip_fold0(samples: pd.DataFrame) -> pd.DataFrame:
        edited = samples.copy()
        rows = edited["pid"].isin(fold0)
        edited.loc[rows, "disease_status"] = 1 - edited.loc[rows, "disease_status"]
        return edited

    edited = pd.read_parquet(features_for(spark, preprocessed, flip_fold0, "fold0-flipped", params) / "table")
    edited = edited.set_index("pid").sort_index()
    prs = [c for c in table.columns if c.startswith("prs_disease_status_")]
    assert prs and len(fold0) >= 10
    pd.testing.assert_frame_equal(table.loc[fold0, prs], edited.loc[fold0, prs])
    others = train.index.difference(fold0)
    assert (table.loc[others, prs] != edited.loc[others, prs]).any(axis=None)
    assert (table.loc[fold0, "disease_status"] != edited.loc[fold0, "disease_status"]).all()


def test_features__a_cv_fold_never_learns_from_its_own_validation_labels(spark, preprocessed, original, monkeypatch):
    """Nested CV: flip the labels of CV fold cv0's validation patients. Everything fold cv0 learnt (its
    spec: variants, polygenic-score weights, burden genes, fill values) and every feature of its table
    stays; the final set, which learns from those patients, moves."""
    import genoflow.features.split as split

    keep_split_of(original, monkeypatch)
    meta = json.loads((original / "features.json").read_text())
    fold = meta["targets"]["disease_status"]["folds"][0]
    table = pd.read_parquet(original / fold["path"]).set_index("pid").sort_index()
    validate = table.index[table["role"] == "validate"]
    labelled = table.index
    # Hold the outer folds as they were (they are stratified on the label, which the flip moves).
    outer = pd.Series(0, index=labelled)
    for k, other in enumerate(meta["targets"]["disease_status"]["folds"]):
        roles = pd.read_parquet(original / other["path"]).set_index("pid")["role"]
        outer[roles.index[roles == "validate"]] = k
    real = split.stratified_folds

    def held(ids, labels, k, seed):
        ids = list(ids)
        if k == len(meta["targets"]["disease_status"]["folds"]) and set(ids) == set(labelled):
            return outer.loc[ids].to_numpy()
        return real(ids, labels, k=k, seed=seed)

    monkeypatch.setattr(split, "stratified_folds", held)

    def flip_validation(samples: pd.DataFrame) -> pd.DataFrame:
        edited = samples.copy()
        rows = edited["pid"].isin(validate)
        edited.loc[rows, "disease_status"] = 1 - edited.loc[rows, "disease_status"]
        return edited

    flipped = features_for(spark, preprocessed, flip_validation, "cv0-validation-flipped")
    meta_b = json.loads((flipped / "features.json").read_text())
    assert meta_b["targets"]["disease_status"]["folds"][0] == fold
    table_b = pd.read_parquet(flipped / fold["path"]).set_index("pid").sort_index()
    features = [c for c in table.columns if c != "disease_status"]
    pd.testing.assert_frame_equal(table[features], table_b[features])
    assert (table.loc[validate, "disease_status"] != table_b.loc[validate, "disease_status"]).all()
    # Not vacuous: the final set and the other folds did learn from those labels.
    assert meta_b["targets"]["disease_status"]["spec"] != meta["targets"]["disease_status"]["spec"]
    assert len(validate) > 30 and any(c.startswith("prs_disease_status_") for c in features)

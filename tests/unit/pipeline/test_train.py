"""The train step's pure parts: which columns each model reads, and the fold-wise grid choice."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from genoflow.features.scores import ScoreBlock
from genoflow.features.spec import FeatureSpec
from genoflow.pipeline.train import Plan, foldwise_choice, plans


def _spec() -> FeatureSpec:
    variant = ["1", 10, "A", "G"]

    def block(kind, names):
        return asdict(ScoreBlock(kind, names, [variant], [0.3], [[1.0] * len(names)], [0.0] * len(names)))

    covariates = [{"name": "age", "kind": "numeric", "levels": [], "reference": None, "fill": None},
                  {"name": "stratum", "kind": "categorical", "levels": ["a", "b"], "reference": "a", "fill": None}]
    variants = [{"contig": "1", "pos": 20, "ref": "C", "alt": "T", "gene": "", "train_p": 1e-5}]
    scores = [block("pca", ["pc1", "pc2"]), block("prs", ["prs_y_p1em2"]), block("burden", ["burden_G"])]
    return FeatureSpec(covariates, ["mean_phred"], variants, scores=scores)


def test_plans__families_then_two_baselines():
    assert [p.name for p in plans(["logistic_regression", "gbt"])] == [
        "logistic_regression", "gbt", "baseline_covariates", "baseline_prs"]


def test_plan_columns__a_family_reads_everything_a_baseline_its_own_part():
    spec = _spec()
    assert Plan("gbt").columns(spec) == spec.names
    assert Plan("logistic_regression", "covariates").columns(spec) == ["age", "stratum=b", "pc1", "pc2"]
    assert Plan("logistic_regression", "prs").columns(spec) == ["prs_y_p1em2"]


def test_plan_spec__a_baselines_spec_computes_exactly_its_inputs():
    """Serving scores a model through its logged spec: a baseline's must yield its columns, no more."""
    spec = _spec()
    frame = {"age": [50.0, 61.0], "stratum": ["a", "b"], "mean_phred": [30.0, 31.0], "v_1_10_A_G": [0, 2],
             "v_1_20_C_T": [1, 1]}
    for baseline in ("covariates", "prs"):
        plan = Plan("logistic_regression", baseline)
        own = plan.spec(spec)
        assert own.transform(frame).shape == (2, len(plan.columns(spec)))
        assert FeatureSpec.from_json(own.to_json()).names == plan.columns(spec)


def test_foldwise_choice__each_fold_scored_with_the_setting_best_elsewhere():
    metric = np.array([[0.70, 0.60, 0.80], [0.72, 0.62, 0.50]])
    per_fold, best = foldwise_choice(metric)
    # Fold 2 alone favours setting 0 (0.80); folds 0 and 1 favour 1, so fold 2 gets setting 1.
    assert per_fold == [0, 0, 1] and best == 0
    assert foldwise_choice(np.array([[0.6, 0.7]])) == ([0, 0], 0)

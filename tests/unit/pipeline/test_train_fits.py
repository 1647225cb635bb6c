"""The train step fits each estimator on a cached assembled table: the models must be the ones a
plain ``Pipeline.fit`` gives (same rows, same order, same seed), so the held-out metrics do not move."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.models import build_pipeline, param_grid
from genoflow.pipeline.train import Plan, _fit_final

GRID = {"logistic_regression": {"regParam": [0.1]}, "random_forest": {"numTrees": [4], "maxDepth": [3]},
        "gbt": {"maxIter": [4], "maxDepth": [2]}}


@pytest.fixture(scope="module")
def table(spark):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=150) > 0).astype(float)
    rows = [(f"p{i}", float(y[i]), *map(float, x[i])) for i in range(150)]
    return spark.createDataFrame(rows, ["pid", "y", "a", "b", "c"]).cache()


@pytest.mark.parametrize("family", sorted(GRID))
def test_fit_final__the_model_a_pipeline_fit_gives(spark, table, family):
    features = ["a", "b", "c"]
    t = {"seed": 7}
    pipeline, estimator = build_pipeline(family, features=features, label="y", seed=7)
    expected = pipeline.fit(table.select("y", *features), params=param_grid(estimator, family, GRID[family])[0])
    model = _fit_final(Plan(family), "y", "binary", features, table, GRID[family], 0, t)

    def scores(fitted):
        return np.array([row.probability[1] for row in fitted.transform(table).orderBy("pid").collect()])

    assert [type(s).__name__ for s in model.stages] == [type(s).__name__ for s in expected.stages]
    np.testing.assert_allclose(scores(model), scores(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("family, grid", [("gbt", {"maxIter": [6], "maxDepth": [2, 3]}),
                                          ("random_forest", {"numTrees": [20], "maxDepth": [3, 5]}),
                                          ("logistic_regression", {"regParam": [0.01, 0.1]})])
def test_fold_scores__the_driver_gives_mllibs_cv(spark, family, grid):
    """train.cv_engine: auto fits the CV folds on the driver (decision 0035); every fold's score must be
    the one MLlib's own fit gives (trees: the same trees; LR: the same optimum within L-BFGS's tolerance)."""
    from types import SimpleNamespace

    from genoflow.models.local_fit import JvmNumbers
    from genoflow.pipeline.train import _fold_scores

    rng = np.random.default_rng(11)
    folds = []
    for _ in range(2):
        x = rng.normal(size=(200, 3)).round(2)
        y = (x[:, 0] - 0.7 * x[:, 2] + rng.logistic(size=200) > 0).astype(float)
        rows = [(f"p{i}", "fit" if i < 140 else "validate", float(y[i]), *map(float, x[i])) for i in range(200)]
        table = spark.createDataFrame(rows, ["pid", "role", "y", "a", "b", "c"]).coalesce(1).cache()
        folds.append((SimpleNamespace(names=["a", "b", "c"]), table, 140))
    n_grid = len(next(iter(grid.values())))

    def scores(engine: str):
        t = {"seed": 7, "parallelism": 2, "cv_engine": engine}
        return _fold_scores(Plan(family), "y", "binary", folds, grid, n_grid, t, JvmNumbers.of(spark))

    (on_driver, where), (with_mllib, where_mllib) = scores("auto"), scores("mllib")
    assert (where, where_mllib) == ("driver", "mllib")
    np.testing.assert_allclose(on_driver, with_mllib, rtol=0, atol=1e-3 if family == "logistic_regression" else 0)


def test_cv_on_driver__falls_back_to_mllib_without_the_jvm_helper(caplog):
    """Forests and binary GBT need the JVM's own numbers (org.genoflow.ml.JvmMath in the codec jar): without
    them train says so and fits with MLlib; logistic regression needs nothing from the JVM."""
    from genoflow.pipeline.train import _cv_on_driver

    t = {"cv_engine": "auto"}
    forest = {"impurity": "gini", "bootstrap": True, "featureSubsetStrategy": "auto"}
    logistic = {"elasticNetParam": 0.0, "fitIntercept": True, "standardization": True, "family": "auto"}
    with caplog.at_level("WARNING"):
        assert not _cv_on_driver(Plan("random_forest"), "binary", [forest], [400, 400], t, None)
    assert "org.genoflow.ml.JvmMath" in caplog.text and "make codec" in caplog.text
    assert _cv_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, 400], t, None)
    assert not _cv_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, None], t, None)
    assert not _cv_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, 400], {"cv_engine": "mllib"},
                             None)

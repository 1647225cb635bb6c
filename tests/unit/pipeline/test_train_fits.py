"""The train step fits each estimator on a cached assembled table: the models must be the ones a
plain ``Pipeline.fit`` gives (same rows, same order, same seed), so the held-out metrics do not move."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.models import build_pipeline, param_grid
from genoflow.pipeline.train import Collected, Plan, _fit_final

GRID = {"logistic_regression": {"regParam": [0.1]}, "random_forest": {"numTrees": [4], "maxDepth": [3]},
        "gbt": {"maxIter": [4], "maxDepth": [2]}}


@pytest.fixture(scope="module")
def table(spark):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(150, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=150) > 0).astype(float)
    rows = [(f"p{i}", float(y[i]), *map(float, x[i])) for i in range(150)]
    return spark.createDataFrame(rows, ["pid", "y", "a", "b", "c"]).cache()


@pytest.mark.parametrize("engine", ["auto", "mllib"])
@pytest.mark.parametrize("family", sorted(GRID))
def test_fit_final__the_model_a_pipeline_fit_gives(spark, table, family, engine):
    """Either engine gives the model MLlib's Pipeline.fit gives: with ``auto`` it is fitted on the driver
    and built as MLlib's object (decision 0037); trees to the bit, LR to L-BFGS's tolerance."""
    from genoflow.models.local_fit import JvmNumbers

    features = ["a", "b", "c"]
    t = {"seed": 7, "final_engine": engine}
    pipeline, estimator = build_pipeline(family, features=features, label="y", seed=7)
    expected = pipeline.fit(table.select("y", *features), params=param_grid(estimator, family, GRID[family])[0])
    model, where = _fit_final(Plan(family), "y", "binary", features, table, GRID[family], 0, t, JvmNumbers.of(spark),
                              Collected(), n_rows=150)

    def scores(fitted):
        return np.array([row.probability[1] for row in fitted.transform(table).orderBy("pid").collect()])

    assert where == ("driver" if engine == "auto" else "mllib")
    assert [type(s).__name__ for s in model.stages] == [type(s).__name__ for s in expected.stages]
    assert model.stages[-1].uid != expected.stages[-1].uid  # two estimators: not the same model by accident
    tolerance = 1e-6 if (family, engine) == ("logistic_regression", "auto") else 1e-12
    np.testing.assert_allclose(scores(model), scores(expected), rtol=0, atol=tolerance)


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
        return _fold_scores(Plan(family), "y", "binary", folds, grid, n_grid, t, JvmNumbers.of(spark), Collected())

    (on_driver, where), (with_mllib, where_mllib) = scores("auto"), scores("mllib")
    assert (where, where_mllib) == ("driver", "mllib")
    np.testing.assert_allclose(on_driver, with_mllib, rtol=0, atol=1e-3 if family == "logistic_regression" else 0)


def test_fits_on_driver__falls_back_to_mllib_without_the_jvm_helpers(caplog, spark):
    """Forests and binary GBT need the JVM's own numbers (org.genoflow.ml.JvmMath in the codec jar): without
    them train says so and fits with MLlib; logistic regression's CV needs nothing from the JVM, and its
    final model needs the builder of MLlib's objects (org.genoflow.ml.TreeNodes, on this classpath)."""
    from genoflow.pipeline.train import _fits_on_driver

    forest = {"impurity": "gini", "bootstrap": True, "featureSubsetStrategy": "auto"}
    logistic = {"elasticNetParam": 0.0, "fitIntercept": True, "standardization": True, "family": "auto"}
    with caplog.at_level("WARNING"):
        assert not _fits_on_driver(Plan("random_forest"), "binary", [forest], [400, 400], "auto", None)
    assert "org.genoflow.ml.JvmMath" in caplog.text and "make codec" in caplog.text
    assert _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, 400], "auto", None)
    assert _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400], "auto", None, final=True)
    assert not _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, None], "auto", None)
    assert not _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400, 400], "mllib", None)


def test_fits_on_driver__a_codec_jar_without_the_model_builder_leaves_final_fits_to_mllib(caplog, monkeypatch):
    """A codec jar built before org.genoflow.ml.TreeNodes: the CV fits stay on the driver, the final ones
    go to MLlib, and the log says why."""
    from genoflow.models import spark_model
    from genoflow.pipeline.train import _fits_on_driver

    logistic = {"elasticNetParam": 0.0, "fitIntercept": True, "standardization": True, "family": "auto"}
    monkeypatch.setattr(spark_model, "builder_on_classpath", lambda: False)
    assert _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400], "auto", None)
    with caplog.at_level("WARNING"):
        assert not _fits_on_driver(Plan("logistic_regression"), "binary", [logistic], [400], "auto", None, final=True)
    assert "org.genoflow.ml.TreeNodes" in caplog.text and "make codec" in caplog.text

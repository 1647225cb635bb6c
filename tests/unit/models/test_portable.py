"""Portable models score exactly as the Spark models they were exported from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genoflow.models.portable import FORMAT, PortableModel, export_portable

N_FEATURES = 6
NAMES = [f"x{i}" for i in range(N_FEATURES)]


def _data(n: int, seed: int):
    """Age-like, sex-like, dosage-like (0/1/2 with ties) and continuous columns, label from a logit."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([
        rng.normal(55, 10, n), rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 3, n),
        rng.normal(size=n), rng.uniform(size=n),
    ]).astype(float)
    logit = 0.05 * (x[:, 0] - 55) + 0.6 * x[:, 2] - 0.8 * x[:, 3] + x[:, 4]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    return x, y


def _frame(spark, x, y):
    import pandas as pd

    return spark.createDataFrame(pd.DataFrame({**{c: x[:, i] for i, c in enumerate(NAMES)}, "label": y}))


@pytest.fixture(scope="module")
def frames(spark):
    x_train, y_train = _data(500, seed=1)
    x_test, y_test = _data(500, seed=2)
    return _frame(spark, x_train, y_train), x_test, _frame(spark, x_test, y_test)


def _fit(train, classifier):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    return Pipeline(stages=[VectorAssembler(inputCols=NAMES, outputCol="features"), classifier]).fit(train)


def _spark_p1(model, frame) -> np.ndarray:
    from pyspark.ml.functions import vector_to_array

    scored = model.transform(frame).select(vector_to_array("probability")[1].alias("p")).toPandas()
    return scored["p"].to_numpy()


def _classifier(family: str):
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier

    common = {"featuresCol": "features", "labelCol": "label"}
    return {
        "logistic_regression": lambda: LogisticRegression(maxIter=50, regParam=0.01, **common),
        "random_forest": lambda: RandomForestClassifier(numTrees=20, maxDepth=5, seed=7, **common),
        "gbt": lambda: GBTClassifier(maxIter=15, maxDepth=3, seed=7, **common),
    }[family]()


@pytest.fixture(scope="module")
def fitted(frames):
    """One fitted pipeline per family, shared by the tests (fitting is most of their time)."""
    cache = {}

    def get(family: str):
        if family not in cache:
            cache[family] = _fit(frames[0], _classifier(family))
        return cache[family]

    return get


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest", "gbt"])
def test_export__portable_probabilities_equal_spark(frames, fitted, family):
    _, x_test, test = frames
    model = fitted(family)
    exported = json.loads(json.dumps(export_portable(model)))  # what MLflow stores and serving reads
    assert exported["format"] == FORMAT and exported["features"] == NAMES

    portable = PortableModel.from_dict(exported)
    np.testing.assert_allclose(portable.predict_proba(x_test), _spark_p1(model, test), rtol=0, atol=1e-9)
    assert portable.kind == family and portable.features == NAMES


@pytest.mark.parametrize("family", ["random_forest", "gbt"])
def test_export__rows_exactly_on_a_threshold_go_left_like_spark(spark, frames, fitted, family):
    _, x_test, _ = frames
    model = fitted(family)
    exported = export_portable(model)
    # Put every split's feature exactly on its threshold in some row: ties decide the branch.
    rows = []
    for tree in exported["trees"][:5]:
        for f, t in zip(tree["feature"], tree["threshold"], strict=True):
            if f >= 0:
                row = x_test[len(rows) % len(x_test)].copy()
                row[f] = t
                rows.append(row)
    x = np.asarray(rows)
    np.testing.assert_allclose(PortableModel.from_dict(exported).predict_proba(x),
                               _spark_p1(model, _frame(spark, x, np.zeros(len(x)))), rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", ["random_forest", "gbt"])
def test_export__from_the_saved_model_equals_the_walk_of_the_live_one(fitted, family, tmp_path):
    model = fitted(family)
    model.write().save(str(tmp_path / "model"))
    walked = export_portable(model)
    assert export_portable(model, saved=str(tmp_path / "model")) == walked
    assert sum(len(tree["feature"]) for tree in walked["trees"]) > 5 * len(walked["trees"])  # trees, not stumps


def test_export__from_a_save_of_another_model_is_refused(fitted, tmp_path):
    fitted("gbt").write().save(str(tmp_path / "gbt"))
    with pytest.raises(FileNotFoundError, match="no saved stage"):
        export_portable(fitted("random_forest"), saved=str(tmp_path / "gbt"))


def test_export__refuses_stages_it_would_skip(spark, frames):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    train, _, _ = frames
    model = Pipeline(stages=[VectorAssembler(inputCols=NAMES, outputCol="raw"),
                             StandardScaler(inputCol="raw", outputCol="features"),
                             LogisticRegression(labelCol="label")]).fit(train)
    with pytest.raises(TypeError, match="StandardScaler"):
        export_portable(model)


# --- numpy side only (no Spark) --------------------------------------------------------------

# x0 <= 0.5 ? (x1 <= 2 ? leaf A : leaf B) : leaf C, in pre-order: 0 root, 1 inner, 2 A, 3 B, 4 C.
TREE = {"feature": [0, 1, -1, -1, -1], "threshold": [0.5, 2.0, 0.0, 0.0, 0.0],
        "left": [1, 2, -1, -1, -1], "right": [4, 3, -1, -1, -1],
        "prediction": [0.0, 0.0, 0.1, -0.2, 0.3], "stats": [[], [], [3.0, 1.0], [0.0, 0.0], [1.0, 1.0]]}
X = np.array([[0.0, 1.0], [0.5, 2.0], [0.0, 5.0], [0.9, 0.0], [np.nan, 0.0]])


def test_gbt__margin_and_descent():
    d = {"format": FORMAT, "kind": "gbt", "n_features": 2, "features": None, "trees": [TREE, TREE],
         "tree_weights": [1.0, 0.5]}
    leaf = np.array([0.1, 0.1, -0.2, 0.3, 0.3])  # NaN compares false: right, as in Spark
    expected = 1 - 1 / (1 + np.exp(2 * 1.5 * leaf))
    np.testing.assert_allclose(PortableModel.from_dict(d).predict_proba(X), expected, rtol=0, atol=1e-15)


def test_forest__empty_leaf_does_not_vote():
    d = {"format": FORMAT, "kind": "random_forest", "n_features": 2, "features": None, "trees": [TREE]}
    np.testing.assert_allclose(PortableModel.from_dict(d).predict_proba(X), [0.25, 0.25, 0.0, 0.5, 0.5])


def test_logistic__empty_batch_and_shape_check():
    model = PortableModel.from_dict({"format": FORMAT, "kind": "logistic_regression", "n_features": 2,
                                     "features": ["a", "b"], "coefficients": [1.0, -1.0], "intercept": 0.0})
    assert model.predict_proba(np.empty((0, 2))).shape == (0,)
    assert model.predict_proba(np.array([[1.0, 1.0]]))[0] == 0.5
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        model.predict_proba(np.ones((1, 3)))


@pytest.mark.parametrize("broken, message", [
    ({"format": "other"}, "not a portable model"),
    ({"kind": "svm"}, "unknown portable model kind"),
    ({"trees": [{**TREE, "left": [1, 9, -1, -1, -1]}]}, "dangling"),
    ({"n_features": 1}, "feature 1 of a 1-feature model"),
])
def test_from_dict__rejects_inconsistent_models(broken, message):
    d = {"format": FORMAT, "kind": "random_forest", "n_features": 2, "features": None, "trees": [TREE], **broken}
    with pytest.raises(ValueError, match=message):
        PortableModel.from_dict(d)


# --- regressors (quantitative targets) --------------------------------------------------------


def _regressor(family: str):
    from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor

    common = {"featuresCol": "features", "labelCol": "label"}
    return {
        "linear_regression": lambda: LinearRegression(maxIter=50, regParam=0.01, elasticNetParam=0.5, **common),
        "random_forest_regression": lambda: RandomForestRegressor(numTrees=20, maxDepth=5, seed=7, **common),
        "gbt_regression": lambda: GBTRegressor(maxIter=15, maxDepth=3, seed=7, **common),
    }[family]()


@pytest.mark.parametrize("family", ["linear_regression", "random_forest_regression", "gbt_regression"])
def test_export__portable_regressor_predictions_equal_spark(spark, family, tmp_path):
    x_train, _ = _data(400, seed=3)
    x_test, _ = _data(300, seed=4)
    quantitative = lambda x: 0.03 * x[:, 0] + 0.5 * x[:, 2] - 0.7 * x[:, 3] + x[:, 4]  # noqa: E731
    y_train = quantitative(x_train) + np.random.default_rng(5).normal(size=len(x_train))
    model = _fit(_frame(spark, x_train, y_train), _regressor(family))
    exported = json.loads(json.dumps(export_portable(model)))
    if exported.get("trees"):  # the tree reader of a saved model, on regression trees too
        model.write().save(str(tmp_path / "model"))
        assert export_portable(model, saved=str(tmp_path / "model")) == export_portable(model)
    portable = PortableModel.from_dict(exported)
    spark_prediction = model.transform(_frame(spark, x_test, np.zeros(len(x_test)))).select("prediction")
    np.testing.assert_allclose(portable.predict(x_test), spark_prediction.toPandas()["prediction"].to_numpy(),
                               rtol=0, atol=1e-9)
    assert portable.kind == family and portable.is_regressor
    with pytest.raises(TypeError, match="use predict"):
        portable.predict_proba(x_test)


def test_regression_forest__mean_of_leaf_values_and_gbt_weighted_sum():
    leaf = np.array([0.1, 0.1, -0.2, 0.3, 0.3])
    forest = {"format": FORMAT, "kind": "random_forest_regression", "n_features": 2, "features": None,
              "trees": [TREE, {**TREE, "prediction": [0.0, 0.0, 1.0, 1.0, 1.0]}]}
    np.testing.assert_allclose(PortableModel.from_dict(forest).predict(X), (leaf + 1.0) / 2, rtol=0, atol=1e-15)
    gbt = {"format": FORMAT, "kind": "gbt_regression", "n_features": 2, "features": None, "trees": [TREE, TREE],
           "tree_weights": [1.0, 0.1]}
    np.testing.assert_allclose(PortableModel.from_dict(gbt).predict(X), 1.1 * leaf, rtol=0, atol=1e-15)
    linear = PortableModel.from_dict({"format": FORMAT, "kind": "linear_regression", "n_features": 2,
                                      "features": None, "coefficients": [2.0, -1.0], "intercept": 0.5})
    np.testing.assert_allclose(linear.predict(np.array([[1.0, 1.0], [0.0, 3.0]])), [1.5, -2.5])
    with pytest.raises(TypeError, match="use predict_proba"):
        PortableModel.from_dict({**forest, "kind": "random_forest", "trees": [TREE]}).predict(X)

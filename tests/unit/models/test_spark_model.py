"""genoflow.models.spark_model builds the model MLlib's fit returns: saved, its files equal the save of MLlib's
own fit on the same rows (metadata, params, every node's prediction, impurity, gain, statistics and raw
count), except the save's timestamp and the trees' random uids; loaded, it scores as MLlib's."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from genoflow.models import local_fit
from genoflow.models.spark_model import from_local_fit
from tests.unit.models.test_local_fit import _frame, _settings, _table


@pytest.fixture(scope="module")
def jvm(spark):
    numbers = local_fit.JvmNumbers.of(spark)
    assert numbers is not None, "org.genoflow.ml.JvmMath is missing from the codec jar (make codec)"
    return numbers


def _metadata(path: str) -> dict:
    """A saved stage's metadata, less what differs between two saves of one model."""
    (part,) = glob.glob(os.path.join(path, "metadata", "part-*"))
    with open(part) as handle:
        metadata = json.loads(handle.readline())
    metadata.pop("timestamp")
    return metadata


def _rows(path: str, *keys: str) -> list[dict]:
    return sorted(pq.read_table(path).to_pylist(), key=lambda row: [row[k] for k in keys] if keys else 0)


def _same_save(ours: str, mllib: str, *, tolerance: float = 0.0) -> None:
    assert _metadata(ours) == _metadata(mllib)
    if os.path.isdir(os.path.join(mllib, "treesMetadata")):
        # (tree id, the tree's metadata, its weight)
        trees = [_rows(os.path.join(path, "treesMetadata"), "_1") for path in (ours, mllib)]
        for row in (row for rows in trees for row in rows):
            row["_2"] = {k: v for k, v in json.loads(row["_2"]).items() if k not in ("uid", "timestamp")}
        assert trees[0] == trees[1]
        nodes = [_rows(os.path.join(path, "data"), "treeID") for path in (ours, mllib)]
        for rows in nodes:
            rows.sort(key=lambda row: (row["treeID"], row["nodeData"]["id"]))
        assert len(nodes[0]) == len(nodes[1])
        for our_node, mllib_node in zip(*nodes, strict=True):
            assert our_node == mllib_node
        return
    ours_data, mllib_data = (_rows(os.path.join(path, "data")) for path in (ours, mllib))
    assert len(ours_data) == len(mllib_data) == 1
    for key, value in mllib_data[0].items():
        if isinstance(value, dict):  # a vector or matrix: its layout exactly, its values to the tolerance
            assert {k: v for k, v in ours_data[0][key].items() if k != "values"} == \
                {k: v for k, v in value.items() if k != "values"}
            np.testing.assert_allclose(ours_data[0][key]["values"], value["values"], rtol=tolerance, atol=tolerance)
        else:
            assert ours_data[0][key] == value, key


def _check(spark, tmp_path, estimator, family: str, kind: str, x, y, jvm, *, tolerance: float = 0.0):
    frame = _frame(spark, x, y)
    extra = {estimator.getParam("maxIter"): estimator.getMaxIter()} if estimator.hasParam("maxIter") else {}
    mllib = estimator.fit(frame, params=extra)
    fitted = local_fit.fit(family, kind, _settings(estimator.copy(extra)), x, y, jvm=jvm, mllib_nodes=True)
    ours = from_local_fit(estimator, extra, fitted)

    assert type(ours) is type(mllib)
    assert ours.uid == mllib.uid == estimator.uid
    assert ours.extractParamMap() == mllib.extractParamMap()
    mllib.save(str(tmp_path / "mllib"))
    ours.save(str(tmp_path / "ours"))
    _same_save(str(tmp_path / "ours"), str(tmp_path / "mllib"), tolerance=tolerance)

    loaded = type(mllib).load(str(tmp_path / "ours"))
    column = "probability" if kind == "binary" else "prediction"
    scored = [model.transform(frame).select(column).toPandas()[column] for model in (loaded, mllib)]
    if kind == "binary":
        scored = [np.array([v[1] for v in s]) for s in scored]
    np.testing.assert_allclose(scored[0], scored[1], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("depth", [2, 4])
def test_random_forest_classifier(spark, tmp_path, jvm, depth):
    from pyspark.ml.classification import RandomForestClassifier

    x, y = _table(n=500)
    estimator = RandomForestClassifier(seed=11, numTrees=12, maxDepth=depth, labelCol="label")
    _check(spark, tmp_path, estimator, "random_forest", "binary", x, y, jvm)


def test_random_forest_regressor(spark, tmp_path, jvm):
    from pyspark.ml.regression import RandomForestRegressor

    x, y = _table()
    estimator = RandomForestRegressor(seed=3, numTrees=10, maxDepth=4)
    _check(spark, tmp_path, estimator, "random_forest", "quantitative", x, x[:, 4] * 2.0 + x[:, 0] + y, jvm)


@pytest.mark.parametrize("depth", [2, 3])
def test_gbt_classifier(spark, tmp_path, jvm, depth):
    from pyspark.ml.classification import GBTClassifier

    x, y = _table()
    _check(spark, tmp_path, GBTClassifier(seed=7, maxIter=8, maxDepth=depth), "gbt", "binary", x, y, jvm)


def test_gbt_regressor(spark, tmp_path, jvm):
    from pyspark.ml.regression import GBTRegressor

    x, y = _table()
    _check(spark, tmp_path, GBTRegressor(seed=7, maxIter=6, maxDepth=3), "gbt", "quantitative", x,
           x[:, 4] * 2.0 + x[:, 0] + y, jvm)


def test_logistic_regression(spark, tmp_path, jvm):
    """The optimum of MLlib's objective, which MLlib's L-BFGS reaches to its tolerance."""
    from pyspark.ml.classification import LogisticRegression

    x, y = _table()
    _check(spark, tmp_path, LogisticRegression(maxIter=100, regParam=0.05), "logistic_regression", "binary",
           x, y, jvm, tolerance=1e-5)


def test_a_model_without_a_builder_is_refused(spark):
    from pyspark.ml.regression import LinearRegression

    with pytest.raises(ValueError, match="linear_regression"):
        from_local_fit(LinearRegression(), {}, {"kind": "linear_regression", "n_features": 2})

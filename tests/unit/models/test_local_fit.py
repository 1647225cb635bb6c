"""genoflow.models.local_fit is MLlib's fit, not a look-alike: GBT and random-forest trees equal MLlib's to the
bit, logistic regression MLlib's optimum to its tolerance, on tables built to hit MLlib's corner cases."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from genoflow.models import local_fit
from genoflow.models.portable import PortableModel, export_portable


def _table(n: int = 400, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Columns like train's: genotype dosages (0/1/2, many zeros), a burden-like count whose values
    0.9999999999999999 / 1.0 / 1.0000000000000002 make MLlib repeat a threshold, a continuous covariate
    with more distinct values than bins, an integer age, a constant column and an all-zero one."""
    rng = np.random.default_rng(seed)
    dosage = rng.binomial(2, 0.3, size=(n, 3)).astype(float)
    burden = rng.choice([0.0, 0.9999999999999999, 1.0, 1.0000000000000002, 2.0, 2.0202020202020203], size=n)
    pc = rng.normal(size=n)
    age = rng.integers(30, 80, size=n).astype(float)
    x = np.column_stack([dosage, burden, pc, age, np.full(n, 3.5), np.zeros(n)])
    margin = 0.8 * dosage[:, 0] - 0.6 * burden + 0.5 * pc + 0.02 * (age - 55)
    y = (margin + rng.logistic(size=n) > 0).astype(float)
    return x, y


def _frame(spark, x: np.ndarray, y: np.ndarray):
    from pyspark.ml.linalg import Vectors

    return spark.createDataFrame([(float(label), Vectors.dense(row)) for label, row in zip(y, x, strict=True)],
                                 ["label", "features"]).coalesce(1)


def _settings(estimator) -> dict:
    return {param.name: value for param, value in estimator.extractParamMap().items()}


@pytest.fixture(scope="module")
def jvm(spark):
    numbers = local_fit.JvmNumbers.of(spark)
    assert numbers is not None, "org.genoflow.ml.JvmMath is missing from the codec jar (make codec)"
    return numbers


@pytest.mark.parametrize("depth", [2, 3])
def test_gbt_classifier__mllibs_trees_to_the_bit(spark, jvm, depth):
    from pyspark.ml.classification import GBTClassifier

    x, y = _table()
    estimator = GBTClassifier(seed=7, maxIter=12, maxDepth=depth)
    expected = export_portable(estimator.fit(_frame(spark, x, y)))
    assert local_fit.supports("gbt", "binary", _settings(estimator), len(y))

    fitted = local_fit.fit("gbt", "binary", _settings(estimator), x, y, jvm=jvm)

    assert fitted["tree_weights"] == expected["tree_weights"]
    for k, (ours, mllib) in enumerate(zip(fitted["trees"], expected["trees"], strict=True)):
        assert ours == mllib, f"tree {k} differs"


def test_gbt_classifier__numpys_exp_is_not_enough(spark):
    """Why the JVM's exp: with numpy's, a last-bit difference in some residual shows in the leaves."""
    from pyspark.ml.classification import GBTClassifier

    x, y = _table()
    estimator = GBTClassifier(seed=7, maxIter=12, maxDepth=3)
    expected = export_portable(estimator.fit(_frame(spark, x, y)))
    fitted = local_fit.fit("gbt", "binary", _settings(estimator), x, y, jvm=SimpleNamespace(exp=np.exp))
    assert fitted["trees"] != expected["trees"]


@pytest.mark.parametrize("trees, depth, subsets", [(30, 4, "auto"), (25, 6, "auto"), (10, 3, "all"), (1, 3, "auto")])
def test_random_forest_classifier__mllibs_forest_to_the_bit(spark, jvm, trees, depth, subsets):
    """The bootstrap, the per-node feature subsets in MLlib's node order, Gini, and the pruning of
    children that predict the same class (which changes the leaves' class counts)."""
    from pyspark.ml.classification import RandomForestClassifier

    x, y = _table(n=600)
    estimator = RandomForestClassifier(seed=11, numTrees=trees, maxDepth=depth, featureSubsetStrategy=subsets)
    expected = export_portable(estimator.fit(_frame(spark, x, y)))
    assert local_fit.supports("random_forest", "binary", _settings(estimator), len(y))
    fitted = local_fit.fit("random_forest", "binary", _settings(estimator), x, y, jvm=jvm)
    for k, (ours, mllib) in enumerate(zip(fitted["trees"], expected["trees"], strict=True)):
        assert ours == mllib, f"tree {k} differs"


def test_random_forest_classifier__one_bootstrap_stream_per_partition(spark, jvm):
    """MLlib reseeds the bootstrap per partition (seed + partition + 1); class counts are integers, so the
    forest is bit-identical whatever order the partitions' statistics are merged in."""
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.linalg import Vectors

    x, y = _table(n=500)
    rows = [(float(label), Vectors.dense(row)) for label, row in zip(y, x, strict=True)]
    frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), ["label", "features"])
    assert frame.rdd.getNumPartitions() == 2
    partition = np.repeat([0, 1], [250, 250])  # parallelize slices the list into contiguous halves
    estimator = RandomForestClassifier(seed=5, numTrees=15, maxDepth=4)
    expected = export_portable(estimator.fit(frame))
    fitted = local_fit.fit("random_forest", "binary", _settings(estimator), x, y, jvm=jvm, partition=partition)
    assert fitted["trees"] == expected["trees"]
    single = local_fit.fit("random_forest", "binary", _settings(estimator), x, y, jvm=jvm)
    assert single["trees"] != expected["trees"]


def test_random_forest_regressor__mllibs_forest_to_the_bit(spark, jvm):
    from pyspark.ml.regression import RandomForestRegressor

    x, y = _table()
    target = x[:, 4] * 2.0 + x[:, 0] + y
    estimator = RandomForestRegressor(seed=3, numTrees=20, maxDepth=4)
    expected = export_portable(estimator.fit(_frame(spark, x, target)))
    fitted = local_fit.fit("random_forest", "quantitative", _settings(estimator), x, target, jvm=jvm)
    assert fitted["trees"] == expected["trees"]


def test_gbt_regressor__mllibs_trees_to_the_bit(spark):
    from pyspark.ml.regression import GBTRegressor

    x, y = _table()
    target = x[:, 4] * 2.0 + x[:, 0] + y
    estimator = GBTRegressor(seed=7, maxIter=10, maxDepth=3)
    expected = export_portable(estimator.fit(_frame(spark, x, target)))
    fitted = local_fit.fit("gbt", "quantitative", _settings(estimator), x, target)
    assert fitted["trees"] == expected["trees"]
    assert fitted["tree_weights"] == expected["tree_weights"]


@pytest.mark.parametrize("reg", [0.01, 0.1])
def test_logistic_regression__mllibs_optimum(spark, reg):
    from pyspark.ml.classification import LogisticRegression

    x, y = _table()
    held_out, y_held_out = _table(seed=6)
    estimator = LogisticRegression(maxIter=100, standardization=True, regParam=reg)
    expected = export_portable(estimator.fit(_frame(spark, x, y)))
    fitted = local_fit.fit("logistic_regression", "binary", _settings(estimator), x, y)

    # MLlib's L-BFGS stops at a relative tolerance of 1e-6; constant columns get 0 in both.
    np.testing.assert_allclose(fitted["coefficients"], expected["coefficients"], rtol=0, atol=2e-3)
    assert fitted["coefficients"][6] == fitted["coefficients"][7] == 0.0
    auc = [roc_auc_score(y_held_out, PortableModel.from_dict(m).predict_proba(held_out)) for m in (fitted, expected)]
    assert round(auc[0], 3) == round(auc[1], 3)


def test_java_binary_search__javas_index_on_repeated_thresholds(spark):
    jvm = spark._jvm
    rng = np.random.default_rng(2)
    for _ in range(50):
        thresholds = np.sort(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0], size=rng.integers(1, 12)))
        values = np.array([0.0, 0.5, 0.7, 1.0, 2.0, 2.5, 3.0, 9.0])
        java = jvm.java.util.Arrays
        array = spark.sparkContext._gateway.new_array(jvm.double, len(thresholds))
        for i, t in enumerate(thresholds):
            array[i] = float(t)
        expected = [(lambda i: i if i >= 0 else -i - 1)(java.binarySearch(array, float(v))) for v in values]
        assert local_fit._java_binary_search(thresholds, values).tolist() == expected, thresholds


def test_continuous_splits__mllibs_candidates():
    # Few distinct values: every midpoint; zeros are counted from the non-zero ones, as MLlib does.
    assert local_fit._continuous_splits(np.array([0.0, 0.0, 1.0, 2.0, 2.0]), max_bins=32).tolist() == [0.5, 1.5]
    assert local_fit._continuous_splits(np.full(7, 4.0), max_bins=32).size == 0
    assert local_fit._continuous_splits(np.zeros(5), max_bins=32).size == 0
    # More distinct values than bins: at most max_bins - 1 thresholds, strided by count.
    splits = local_fit._continuous_splits(np.arange(1000, dtype=float), max_bins=32)
    assert len(splits) == 31 and np.all(np.diff(splits) > 0)


@pytest.mark.parametrize("family, kind, change, rows", [
    ("gbt", "binary", {"subsamplingRate": 0.8}, 100),
    ("gbt", "binary", {"featureSubsetStrategy": "sqrt"}, 100),
    ("gbt", "binary", {"lossType": "squared"}, 100),
    ("gbt", "binary", {}, local_fit.MAX_ROWS + 1),
    ("gbt", "binary", {"weightCol": "w"}, 100),
    ("gbt", "binary", {"validationIndicatorCol": "v"}, 100),
    ("logistic_regression", "binary", {"elasticNetParam": 0.5}, 100),
    ("logistic_regression", "binary", {"standardization": False}, 100),
    ("logistic_regression", "quantitative", {}, 100),
    ("random_forest", "binary", {"impurity": "entropy"}, 100),
    ("random_forest", "binary", {"bootstrap": False}, 100),
    ("random_forest", "binary", {"featureSubsetStrategy": "0.5"}, 100),
    ("random_forest", "quantitative", {"impurity": "gini"}, 100),
    ("random_forest", "binary", {}, local_fit.MAX_ROWS + 1),
])
def test_supports__refuses_what_it_does_not_reproduce(family, kind, change, rows):
    defaults = {"gbt": {"lossType": "logistic", "subsamplingRate": 1.0, "featureSubsetStrategy": "all",
                        "minWeightFractionPerNode": 0.0, "maxBins": 32},
                "logistic_regression": {"elasticNetParam": 0.0, "fitIntercept": True, "standardization": True,
                                        "family": "auto"},
                "random_forest": {"impurity": "gini" if kind == "binary" else "variance", "bootstrap": True,
                                  "featureSubsetStrategy": "auto"}}[family]
    assert local_fit.supports(family, kind, defaults, 100) == (family != "logistic_regression" or kind == "binary")
    assert not local_fit.supports(family, kind, {**defaults, **change}, rows)


def test_scala_map_order__the_jvms_iteration_order(spark):
    """Forests draw feature subsets in the order MLlib's node stack gives, which follows the iteration of a
    ``mutable.HashMap[Int, _]`` of tree indices turned ``.toMap`` (Scala 2.13): built here in the JVM."""
    import random

    immutable_map = getattr(getattr(spark._jvm.scala.collection.immutable, "Map$"), "MODULE$")
    rng = random.Random(3)
    for _ in range(200):
        keys = rng.sample(range(100), rng.choice([1, 2, 3, 4, 5, 6, 10, 30, 60, 100]))
        mutable = spark._jvm.scala.collection.mutable.HashMap()
        for key in keys:
            mutable.put(key, 0)
        text = getattr(immutable_map, "from")(mutable).toString()
        inner = text[text.index("(") + 1:-1]
        assert local_fit._scala_map_order(keys) == [int(entry.split(" -> ")[0]) for entry in inner.split(", ")]

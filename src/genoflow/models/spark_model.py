"""MLlib's fitted model objects from driver-side fits (`genoflow.models.local_fit`, decision 0037).

`from_local_fit` returns the model ``estimator.fit(rows, params)`` returns, built from the arrays of a
driver-side fit on the same rows instead of by the fit's Spark jobs: the same class, uid, params and
trees, node statistics included, so it saves, registers, loads and scores as MLlib's own. Trees are
MLlib's to the bit (local_fit reproduces MLlib's algorithm); a logistic regression is the optimum of
MLlib's objective, which MLlib's L-BFGS reaches to its tolerance (1e-6).

What `Predictor.fit` does besides fitting, this does too: each tree of an ensemble gets a fresh uid
and the estimator's params (``copyValues``), and so does the model, which keeps the estimator's uid.
The builder of the tree nodes is ``org.genoflow.ml.TreeNodes`` in the codec jar (``make codec``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_local_fit", "builder_on_classpath"]

# portable kind -> (model class, its trees' class and uid prefix, the nodes' impurity calculator)
_TREE_MODELS = {
    "random_forest": ("classification.RandomForestClassificationModel",
                      "classification.DecisionTreeClassificationModel", "dtc", "GiniCalculator"),
    "random_forest_regression": ("regression.RandomForestRegressionModel",
                                 "regression.DecisionTreeRegressionModel", "dtr", "VarianceCalculator"),
    "gbt": ("classification.GBTClassificationModel", "regression.DecisionTreeRegressionModel", "dtr",
            "VarianceCalculator"),
    "gbt_regression": ("regression.GBTRegressionModel", "regression.DecisionTreeRegressionModel", "dtr",
                       "VarianceCalculator"),
}


def from_local_fit(estimator, params: dict, fitted: dict):
    """The fitted pyspark model of ``estimator`` with extra ``params`` (a ParamMap, as ``fit`` takes
    it) whose driver-side fit is ``fitted`` (`local_fit.fit` with ``mllib_nodes=True`` for trees)."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    chosen = estimator.copy(params)
    chosen._transfer_params_to_java()
    java_estimator = chosen._java_obj
    kind = fitted["kind"]
    ml = jvm.org.apache.spark.ml
    if kind == "logistic_regression":
        java_model = ml.classification.LogisticRegressionModel(
            chosen.uid, _coefficient_matrix(jvm, fitted["coefficients"]),
            ml.linalg.Vectors.dense(_doubles(jvm, [fitted["intercept"]])).compressed(), 2, False)
    elif kind in _TREE_MODELS:
        java_model = _ensemble(jvm, chosen.uid, java_estimator, kind, fitted)
    else:
        raise ValueError(f"no MLlib model is built from a driver-side {kind!r} fit")
    java_estimator.copyValues(java_model, ml.param.ParamMap.empty())
    return chosen._copyValues(chosen._create_model(java_model))


def builder_on_classpath() -> bool:
    """Whether the active Spark driver has ``org.genoflow.ml.TreeNodes`` (a codec jar from before it has not)."""
    from pyspark import SparkContext

    return type(SparkContext._jvm.org.genoflow.ml.TreeNodes).__name__ == "JavaClass"


def _ensemble(jvm, uid: str, java_estimator, kind: str, fitted: dict):
    """The ensemble's Java model: its trees built by ``TreeNodes.roots``, each given the params."""
    from pyspark import SparkContext

    model_class, tree_class, prefix, calculator = _TREE_MODELS[kind]
    ml = jvm.org.apache.spark.ml
    trees = fitted["trees"]
    roots = jvm.org.genoflow.ml.TreeNodes.roots(calculator, len(trees[0]["calculator"][0]), *_node_bytes(trees))
    n_features = int(fitted["n_features"])
    tree_type, model_type = _java_class(ml, tree_class), _java_class(ml, model_class)
    models = SparkContext._gateway.new_array(tree_type, len(trees))
    empty = ml.param.ParamMap.empty()
    for i, root in enumerate(roots):
        tree = tree_type(ml.util.Identifiable.randomUID(prefix), root, *_sizes(tree_class, n_features))
        java_estimator.copyValues(tree, empty)
        models[i] = tree
    weights = [_doubles(jvm, fitted["tree_weights"])] if "tree_weights" in fitted else []
    return model_type(uid, models, *weights, *_sizes(model_class, n_features))


def _sizes(model_class: str, n_features: int) -> tuple:
    """A model constructor's last arguments: numFeatures, and numClasses (binary) for a classifier."""
    return (n_features, 2) if model_class.startswith("classification.") else (n_features,)


def _node_bytes(trees: list[dict]) -> list[bytearray]:
    """``TreeNodes.roots``' arrays, after its calculator name and statistics size: every tree's nodes in turn."""
    def packed(field: str, dtype: str) -> bytearray:
        return bytearray(np.concatenate([np.asarray(tree[field], dtype=dtype).ravel() for tree in trees]).tobytes())

    sizes = bytearray(np.array([len(tree["feature"]) for tree in trees], dtype="<i4").tobytes())
    return [sizes, packed("feature", "<i4"), packed("threshold", "<f8"), packed("left", "<i4"),
            packed("right", "<i4"), packed("prediction", "<f8"), packed("impurity", "<f8"), packed("gain", "<f8"),
            packed("calculator", "<f8"), packed("raw_count", "<i8")]


def _coefficient_matrix(jvm, coefficients: list[float]):
    """A binomial model's 1 x p coefficients as MLlib's fit stores them: row-major, then ``compressed``."""
    values = _doubles(jvm, coefficients)
    return jvm.org.apache.spark.ml.linalg.DenseMatrix(1, len(coefficients), values, True).compressed()


def _doubles(jvm, values) -> object:
    """A Java ``double[]`` (one py4j call, not one per value)."""
    return jvm.org.genoflow.ml.TreeNodes.doubles(bytearray(np.asarray(values, dtype="<f8").tobytes()))


def _java_class(ml, name: str):
    package, simple = name.split(".")
    return getattr(getattr(ml, package), simple)


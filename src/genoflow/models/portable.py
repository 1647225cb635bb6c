"""Spark-free copies of fitted MLlib classifiers and regressors, for serving.

`export_portable` reads a fitted ``PipelineModel([VectorAssembler, <model>])`` on the driver
and returns a JSON-serialisable dict; `PortableModel.from_dict` turns that dict back into a
vectorised numpy scorer whose ``predict_proba`` equals Spark's ``probability[1]`` (classifiers),
or whose ``predict`` equals Spark's ``prediction`` (regressors), to rounding.
Training logs the dict next to the Spark model (``portable_model.json``), so the model API scores
without a JVM, and without a second implementation of the features (that is
`genoflow.features.spec.FeatureSpec`).

Supported classifiers (binary labels only): ``LogisticRegressionModel`` (binomial),
``RandomForestClassificationModel`` and ``GBTClassificationModel``; regressors (quantitative
targets): ``LinearRegressionModel``, ``RandomForestRegressionModel`` and ``GBTRegressionModel``;
trees with continuous splits. The arithmetic copies Spark's own, so the two agree to
floating-point rounding:

- logistic regression: ``m = x . w + b``; Spark computes ``p0 = 1 / (1 + exp(m))``, ``p1 = 1 - p0``;
- random forest: each tree votes its leaf's class counts normalised to sum 1; the votes are
  summed over trees and normalised again;
- GBT: ``m = sum_t w_t * leaf_t(x)``; with log loss ``p0 = 1 / (1 + exp(2 m))``, ``p1 = 1 - p0``;
- linear regression: ``x . w + b``; random forest regression: the mean of the trees' leaf
  predictions; GBT regression: ``sum_t w_t * leaf_t(x)``.

Trees are array-encoded (one flat node table for all trees), and all rows descend all trees at
once, one level per step, so scoring is a few dozen numpy operations whatever the row count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FORMAT", "KINDS", "CLASSIFIER_KINDS", "REGRESSOR_KINDS", "PortableModel", "export_portable"]

FORMAT = "genoflow.portable_model/1"
CLASSIFIER_KINDS = ("logistic_regression", "random_forest", "gbt")
REGRESSOR_KINDS = ("linear_regression", "random_forest_regression", "gbt_regression")
KINDS = CLASSIFIER_KINDS + REGRESSOR_KINDS
_SPARK_KINDS = {"LogisticRegressionModel": "logistic_regression",
                "RandomForestClassificationModel": "random_forest",
                "GBTClassificationModel": "gbt",
                "LinearRegressionModel": "linear_regression",
                "RandomForestRegressionModel": "random_forest_regression",
                "GBTRegressionModel": "gbt_regression"}


# --------------------------------------------------------------------------------------------
# Export (driver side, needs a live Spark model)
# --------------------------------------------------------------------------------------------


def export_portable(pipeline_model, *, saved: str | None = None) -> dict:
    """A JSON-serialisable description of a fitted Spark classifier or regressor pipeline.

    Parameters
    ----------
    pipeline_model : pyspark.ml.PipelineModel or a fitted model
        ``PipelineModel([VectorAssembler, model])`` as train fits it (a bare model is accepted
        too; its feature names are then unknown). Other pipeline stages are refused: the portable
        model would silently skip them.
    saved : str, optional
        A local directory where ``pipeline_model`` has just been saved (``PipelineModel.save``):
        a tree ensemble's nodes are then read from its node table in one go, not walked over py4j
        node by node (1-2 s for a forest of 100 trees). The result is the same.

    Returns
    -------
    dict
        ``format``, ``kind`` (one of `KINDS`), ``n_features``, ``features`` (the assembler's input
        columns, in vector order, or None), and ``coefficients``/``intercept`` or ``trees``
        (+ ``tree_weights`` for GBT). Each tree is
        a dict of parallel node arrays in pre-order: ``feature`` (split feature, -1 at leaves),
        ``threshold``, ``left``, ``right`` (child node indices, -1 at leaves), ``prediction`` and,
        for forests, ``stats`` (the leaf's class counts, ``[n0, n1]``; ``[]`` at internal nodes).

    Raises
    ------
    TypeError
        A stage or model that has no portable form.
    ValueError
        A multi-class or multinomial model, or a categorical split.
    """
    stages = list(getattr(pipeline_model, "stages", [pipeline_model]))
    fitted, features = stages[-1], None
    for stage in stages[:-1]:
        if type(stage).__name__ != "VectorAssembler":
            raise TypeError(f"pipeline stage {type(stage).__name__} has no portable form; "
                            "only VectorAssembler may precede the model")
        features = list(stage.getInputCols())
    kind = _kind(fitted)
    n_features = int(fitted.numFeatures)
    if features is not None and len(features) != n_features:
        raise ValueError(f"the assembler has {len(features)} columns but the model expects {n_features}")
    out = {"format": FORMAT, "kind": kind, "n_features": n_features, "features": features}
    if kind in CLASSIFIER_KINDS and int(fitted.numClasses) != 2:
        raise ValueError(f"only binary classifiers are portable; this one has {fitted.numClasses} classes")
    if kind == "logistic_regression" and fitted.coefficientMatrix.numRows != 1:
        raise ValueError("multinomial logistic regression is not portable; fit with family='binomial'/'auto'")
    if kind in ("logistic_regression", "linear_regression"):
        out["coefficients"] = [float(c) for c in fitted.coefficients.toArray()]
        out["intercept"] = float(fitted.intercept)
    else:
        with_stats = kind == "random_forest"
        out["trees"] = _saved_trees(_saved_stage(saved, fitted.uid), with_stats=with_stats) if saved else \
            [_export_tree(tree._java_obj.rootNode(), with_stats=with_stats) for tree in fitted.trees]
        if kind in ("gbt", "gbt_regression"):
            out["tree_weights"] = [float(w) for w in fitted.treeWeights]
    return out


def _kind(model) -> str:
    name = type(model).__name__
    if name not in _SPARK_KINDS:
        raise TypeError(f"{name} has no portable form; supported: {', '.join(_SPARK_KINDS)}")
    return _SPARK_KINDS[name]


def _export_tree(root, *, with_stats: bool) -> dict:
    """Flatten one Java tree (``org.apache.spark.ml.tree.Node``) into pre-order node arrays.

    Iterative (an explicit stack), so deep trees cannot hit Python's recursion limit. Each node
    costs a handful of py4j round trips (~0.2 ms), about a second per 5,000 nodes: seconds for
    the forests train fits, next to minutes of cross-validation.
    """
    tree = {"feature": [], "threshold": [], "left": [], "right": [], "prediction": []}
    if with_stats:
        tree["stats"] = []
    stack = [(root, -1, "")]  # (node, parent index, which child of the parent)
    while stack:
        node, parent, side = stack.pop()
        index = len(tree["feature"])
        if parent >= 0:
            tree[side][parent] = index
        tree["prediction"].append(float(node.prediction()))
        tree["left"].append(-1)
        tree["right"].append(-1)
        if node.getClass().getSimpleName() == "InternalNode":
            split = node.split()
            if split.getClass().getSimpleName() != "ContinuousSplit":
                raise ValueError("categorical splits are not portable: assemble features as continuous columns")
            tree["feature"].append(int(split.featureIndex()))
            tree["threshold"].append(float(split.threshold()))
            if with_stats:
                tree["stats"].append([])
            # Right first so the left child is popped (and numbered) first: pre-order.
            stack.append((node.rightChild(), index, "right"))
            stack.append((node.leftChild(), index, "left"))
        else:
            tree["feature"].append(-1)
            tree["threshold"].append(0.0)
            if with_stats:
                tree["stats"].append([float(s) for s in node.impurityStats().stats()])
    return tree


def _saved_stage(saved: str, uid: str) -> str:
    """The directory of the stage ``uid`` in a saved PipelineModel (``stages/<index>_<uid>``) or a saved model."""
    import glob
    import os

    found = glob.glob(os.path.join(glob.escape(saved), "stages", f"*_{glob.escape(uid)}")) or \
        ([saved] if os.path.isdir(os.path.join(saved, "data")) else [])
    if len(found) != 1:
        raise FileNotFoundError(f"{saved}: no saved stage {uid} (a PipelineModel.save of the model exported)")
    return found[0]


def _saved_trees(stage: str, *, with_stats: bool) -> list[dict]:
    """`_export_tree` of every tree of a saved MLlib ensemble, from its node table (``<stage>/data``).

    MLlib numbers each tree's nodes in pre-order (``NodeData.build``), so a node's id is its index here.
    """
    import os

    import pyarrow.parquet as pq

    rows = pq.read_table(os.path.join(stage, "data")).to_pylist()
    rows.sort(key=lambda row: (row["treeID"], row["nodeData"]["id"]))
    trees: list[dict] = []
    for row in rows:
        node = row["nodeData"]
        if node["id"] == 0:
            trees.append({"feature": [], "threshold": [], "left": [], "right": [], "prediction": [],
                          **({"stats": []} if with_stats else {})})
        tree, split, leaf = trees[-1], node["split"], node["leftChild"] < 0
        if node["id"] != len(tree["feature"]) or len(trees) != row["treeID"] + 1:
            raise ValueError(f"{stage}: tree {row['treeID']}'s nodes are not numbered 0, 1, ... in pre-order")
        if not leaf and split["numCategories"] != -1:
            raise ValueError("categorical splits are not portable: assemble features as continuous columns")
        tree["feature"].append(-1 if leaf else int(split["featureIndex"]))
        tree["threshold"].append(0.0 if leaf else float(split["leftCategoriesOrThreshold"][0]))
        tree["left"].append(int(node["leftChild"]))
        tree["right"].append(int(node["rightChild"]))
        tree["prediction"].append(float(node["prediction"]))
        if with_stats:
            tree["stats"].append([float(v) for v in node["impurityStats"]] if leaf else [])
    return trees


# --------------------------------------------------------------------------------------------
# Scoring (numpy only)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Forest:
    """All trees of a model in one flat node table.

    A leaf splits on feature 0 with both children equal to itself, so a row that has reached its
    leaf stays there on further steps and the descent needs no per-step mask.
    """

    roots: np.ndarray  # (n_trees,) int64: node index of each tree's root
    feature: np.ndarray  # (n_nodes,) int64, 0 at leaves
    threshold: np.ndarray  # (n_nodes,) float64
    left: np.ndarray  # (n_nodes,) int64
    right: np.ndarray  # (n_nodes,) int64
    value: np.ndarray  # (n_nodes,) or (n_nodes, 2) float64: what a leaf contributes
    depth: int  # the longest root-to-leaf path: the number of descent steps

    @classmethod
    def from_trees(cls, trees: list[dict], leaf_value) -> _Forest:
        feature, threshold, left, right, value, roots = [], [], [], [], [], []
        depth, offset = 0, 0
        for t in trees:
            f = np.asarray(t["feature"], dtype=np.int64)
            n = len(f)
            if n == 0:
                raise ValueError("a tree without nodes")
            idx = np.arange(n, dtype=np.int64)
            is_leaf = f < 0
            lt = np.where(is_leaf, idx, np.asarray(t["left"], dtype=np.int64))
            rt = np.where(is_leaf, idx, np.asarray(t["right"], dtype=np.int64))
            if (lt < 0).any() or (rt < 0).any() or (lt >= n).any() or (rt >= n).any():
                raise ValueError("a tree with a dangling child index")
            roots.append(offset)
            feature.append(np.where(is_leaf, 0, f))
            threshold.append(np.asarray(t["threshold"], dtype=np.float64))
            left.append(lt + offset)
            right.append(rt + offset)
            value.append(leaf_value(t, is_leaf))
            depth = max(depth, _tree_depth(lt, rt, is_leaf))
            offset += n
        return cls(np.asarray(roots, dtype=np.int64), np.concatenate(feature), np.concatenate(threshold),
                   np.concatenate(left), np.concatenate(right), np.concatenate(value), depth)

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf node index of every (row, tree), shape (n_rows, n_trees)."""
        rows = np.arange(x.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (x.shape[0], len(self.roots))).copy()
        for _ in range(self.depth):
            # Spark's ContinuousSplit: left iff x <= threshold (NaN goes right).
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node


def _tree_depth(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> int:
    """Depth of a tree from its child arrays (leaves self-linked), breadth-first from node 0."""
    level, depth, seen = np.array([0]), 0, 0
    while True:
        inner = level[~is_leaf[level]]
        if inner.size == 0:
            return depth
        seen += inner.size
        if seen > len(is_leaf):
            raise ValueError("a tree with a cycle")
        level = np.concatenate([left[inner], right[inner]])
        depth += 1


class PortableModel:
    """A binary classifier or a regressor scored with numpy; built by `from_dict` from
    `export_portable`'s dict.

    Attributes
    ----------
    kind : str
        One of `KINDS`.
    n_features : int
        Columns ``predict_proba`` / ``predict`` expect.
    features : list of str or None
        The feature names in column order (the training pipeline's assembler inputs).
    """

    def __init__(self, kind: str, n_features: int, features: list[str] | None, *,
                 coefficients: np.ndarray | None = None, intercept: float = 0.0,
                 forest: _Forest | None = None, tree_weights: np.ndarray | None = None):
        self.kind = kind
        self.n_features = n_features
        self.features = features
        self._coefficients = coefficients
        self._intercept = intercept
        self._forest = forest
        self._tree_weights = tree_weights

    @classmethod
    def from_dict(cls, d: dict) -> PortableModel:
        """Rebuild a model from `export_portable`'s output (e.g. ``portable_model.json``).

        Raises
        ------
        ValueError
            An unknown format or kind, or arrays inconsistent with ``n_features``.
        """
        if d.get("format") != FORMAT:
            raise ValueError(f"not a portable model: format {d.get('format')!r}, expected {FORMAT!r}")
        kind, n = d.get("kind"), int(d["n_features"])
        features = d.get("features")
        if features is not None and len(features) != n:
            raise ValueError(f"{len(features)} feature names for {n} features")
        if kind not in KINDS:
            raise ValueError(f"unknown portable model kind {kind!r}; expected one of {KINDS}")
        if kind in ("logistic_regression", "linear_regression"):
            coefficients = np.asarray(d["coefficients"], dtype=np.float64)
            if coefficients.shape != (n,):
                raise ValueError(f"{coefficients.size} coefficients for {n} features")
            return cls(kind, n, features, coefficients=coefficients, intercept=float(d["intercept"]))
        if kind == "random_forest":
            forest = _Forest.from_trees(d["trees"], _class_shares)
        else:  # a leaf's prediction: the GBT margin's term, or a regression tree's value
            forest = _Forest.from_trees(d["trees"], lambda t, _: np.asarray(t["prediction"], dtype=np.float64))
        if forest.feature.size and forest.feature.max() >= n:
            raise ValueError(f"a split on feature {forest.feature.max()} of a {n}-feature model")
        weights = None
        if kind in ("gbt", "gbt_regression"):
            weights = np.asarray(d["tree_weights"], dtype=np.float64)
            if weights.shape != forest.roots.shape:
                raise ValueError(f"{weights.size} tree weights for {forest.roots.size} trees")
        return cls(kind, n, features, forest=forest, tree_weights=weights)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(y = 1) of each row, as Spark's ``probability[1]``.

        Parameters
        ----------
        x : array_like, shape (n_rows, n_features), float64
            Model inputs, columns in `features` order (`FeatureSpec.transform`'s output).

        Returns
        -------
        numpy.ndarray, shape (n_rows,), float64

        Raises
        ------
        TypeError
            The model is a regressor (use `predict`).
        """
        if self.is_regressor:
            raise TypeError(f"a {self.kind} model predicts values, not probabilities: use predict()")
        x = self._checked(x)
        if self.kind == "logistic_regression":
            margin = x @ self._coefficients + self._intercept
            return 1.0 - 1.0 / (1.0 + np.exp(margin))
        leaves = self._forest.leaves(x)
        if self.kind == "random_forest":
            votes = self._forest.value[leaves].sum(axis=1)  # (n_rows, 2)
            total = votes[:, 0] + votes[:, 1]
            # Spark's normalizeToProbabilitiesInPlace; rows without any vote stay at 0.
            return np.divide(votes[:, 1], total, out=np.zeros_like(total), where=total > 0)
        margin = self._forest.value[leaves] @ self._tree_weights
        return 1.0 - 1.0 / (1.0 + np.exp(2.0 * margin))

    @property
    def is_regressor(self) -> bool:
        return self.kind in REGRESSOR_KINDS

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The predicted value of each row, as a Spark regressor's ``prediction``.

        Parameters
        ----------
        x : array_like, shape (n_rows, n_features), float64
            Model inputs, columns in `features` order.

        Returns
        -------
        numpy.ndarray, shape (n_rows,), float64

        Raises
        ------
        TypeError
            The model is a classifier (use `predict_proba`).
        """
        if not self.is_regressor:
            raise TypeError(f"a {self.kind} model predicts probabilities: use predict_proba()")
        x = self._checked(x)
        if self.kind == "linear_regression":
            return x @ self._coefficients + self._intercept
        leaf_values = self._forest.value[self._forest.leaves(x)]  # (n_rows, n_trees)
        if self.kind == "random_forest_regression":
            return leaf_values.mean(axis=1)  # Spark: the trees' predictions summed, over the tree count
        return leaf_values @ self._tree_weights

    def _checked(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected an (n, {self.n_features}) matrix, got shape {x.shape}")
        return x


def _class_shares(tree: dict, is_leaf: np.ndarray) -> np.ndarray:
    """Each leaf's vote, shape (n_nodes, 2): its class counts over their total, as Spark's
    ``predictRaw`` adds them (a leaf without weight votes nothing; internal nodes never vote)."""
    shares = np.zeros((len(is_leaf), 2))
    for i in np.flatnonzero(is_leaf):
        counts = tree["stats"][i]
        if len(counts) != 2:
            raise ValueError(f"leaf {i} has {len(counts)} class counts; binary forests have 2")
        total = counts[0] + counts[1]
        if total != 0:
            shares[i] = (counts[0] / total, counts[1] / total)
    return shares

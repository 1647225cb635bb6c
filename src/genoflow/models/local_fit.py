"""MLlib's tree ensembles and binomial logistic regression, fitted in the driver's memory.

Why (decision 0035): on a small cohort an MLlib fit is 10-90 one-task Spark jobs whose cost is the
JVM's per-job overhead, not arithmetic; the train step's cross-validation fits (most of its ~2,150
jobs) are where the data scientist's loop went. For a table small enough to hold (train's
``cv_engine``), those fits run here instead, with MLlib's own algorithm, and return the fitted model
as `genoflow.models.portable`'s dict, which also scores it. Final models are fitted here too, and built as
MLlib's own model objects (`genoflow.models.spark_model`, decision 0037).

What "MLlib's algorithm" means (Spark 4.2, ``org.apache.spark.ml.tree.impl``,
``ml.classification.LogisticRegression``):

- **Trees** (GBT: ``GBTClassifier`` log loss, ``GBTRegressor`` squared error; random forests:
  ``RandomForestClassifier`` Gini, ``RandomForestRegressor`` variance; continuous features): the
  same split candidates (``findSplitsForContinuousFeature`` on every row: midpoints of distinct
  values, strided by count past ``maxBins - 1``, zeros counted from the non-zero ones), the same
  binning (``Arrays.binarySearch``, whose pick among repeated thresholds matters), the same
  statistics summed in row then bin order, the same gains and first-max tie-breaks, rows descending
  by their bin's threshold (not its index), the same leaves and boosting updates. Forests replay
  MLlib's random streams from the JVM (`JvmNumbers`): the Poisson bootstrap (commons-math, one
  stream per partition) and the feature subsets (``Random(seed)`` -> ``XORShiftRandom`` reservoirs),
  assigned to nodes in the order MLlib's node stack and Scala's hash maps give them. The log-loss
  gradient uses the JVM's ``Math.exp``. Trees come out identical to MLlib's, thresholds, leaf values
  and class counts included (``tests/unit/models/test_local_fit.py``).
- **Logistic regression** (binomial, ``elasticNetParam`` 0, with intercept): the optimum of MLlib's
  objective, mean log loss + ``regParam / 2 * ||beta * sd||^2`` (the penalty on standardized
  coefficients, sample standard deviations; a constant feature gets 0), by Newton's method to
  machine precision. MLlib's L-BFGS stops at a relative tolerance of 1e-6, so the two agree to that
  tolerance, not to the bit.

Anything else (other losses, impurities or settings, weights, more rows than ``findSplits`` uses
without sampling) is not supported: `supports` says so and train fits with MLlib.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict

import numpy as np

__all__ = ["supports", "fit", "JvmNumbers", "MAX_ROWS", "MLLIB_NODE"]

# MLlib's findSplits uses every row up to max(maxBins^2, 10,000) rows and samples beyond.
MAX_ROWS = 10_000
# ml.tree.impl's Utils.EPSILON: the machine epsilon of a double.
_EPSILON = float(np.finfo(np.float64).eps)
_INVALID_GAIN = -np.finfo(np.float64).max  # ImpurityStats.getInvalidImpurityStats: Double.MinValue
_BATCH_SLOTS = 1 << 22  # (row, feature) pairs whose statistics one bincount gathers
_SUBSET_STRATEGIES = ("auto", "all", "sqrt", "log2", "onethird")
# What an MLlib tree node holds beyond the portable arrays, per node (`fit`'s ``mllib_nodes``).
MLLIB_NODE = ("impurity", "gain", "calculator", "raw_count")


def supports(family: str, kind: str, params: dict, n_rows: int) -> bool:
    """Whether `fit` reproduces MLlib for this family, target kind, full param map (name -> value) and size."""
    if n_rows > MAX_ROWS or params.get("weightCol") or int(params.get("maxBins", 32)) ** 2 > MAX_ROWS:
        return False
    trees = float(params.get("minWeightFractionPerNode", 0.0)) == 0.0
    if family == "gbt":
        return (trees and params.get("lossType") == ("logistic" if kind == "binary" else "squared")
                and float(params.get("subsamplingRate", 1.0)) == 1.0
                and params.get("featureSubsetStrategy", "all") in ("all", "auto")
                and not params.get("validationIndicatorCol"))
    if family == "random_forest":
        return (trees and params.get("impurity") == ("gini" if kind == "binary" else "variance")
                and params.get("bootstrap", True) and params.get("featureSubsetStrategy") in _SUBSET_STRATEGIES)
    if family == "logistic_regression":
        return (kind == "binary" and float(params.get("elasticNetParam", 0.0)) == 0.0
                and params.get("fitIntercept", True) and params.get("standardization", True)
                and params.get("family", "auto") in ("auto", "binomial")
                and not any(params.get(bound) is not None for bound in
                            ("lowerBoundsOnCoefficients", "upperBoundsOnCoefficients",
                             "lowerBoundsOnIntercepts", "upperBoundsOnIntercepts")))
    return False


def fit(family: str, kind: str, params: dict, x: np.ndarray, y: np.ndarray, *, jvm=None,
        partition: np.ndarray | None = None, mllib_nodes: bool = False) -> dict:
    """Fit on rows ``x`` (n x p float64, in the table's row order) and labels ``y``; returns the
    `genoflow.models.portable` dict of the model MLlib would have fitted (features unnamed).

    ``jvm`` (`JvmNumbers`) supplies the JVM's numbers: needed for a forest and a binary GBT.
    ``partition`` is each row's Spark partition (default: all in one): a forest's bootstrap draws
    one stream per partition. ``mllib_nodes`` adds the `MLLIB_NODE` arrays to each tree, from which
    `genoflow.models.spark_model` builds MLlib's own model object."""
    from genoflow.models.portable import FORMAT

    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    binary = kind == "binary"
    out = {"format": FORMAT, "n_features": x.shape[1], "features": None}
    if family == "logistic_regression":
        coefficients, intercept = _logistic(x, y, reg=float(params["regParam"]))
        return {**out, "kind": "logistic_regression", "coefficients": coefficients.tolist(), "intercept": intercept}
    grower = _Grower(x, max_bins=int(params["maxBins"]), max_depth=int(params["maxDepth"]),
                     min_instances=int(params["minInstancesPerNode"]), min_info_gain=float(params["minInfoGain"]),
                     gini=family == "random_forest" and binary, max_memory_mb=int(params["maxMemoryInMB"]),
                     mllib_nodes=mllib_nodes)
    if family == "gbt":
        trees, weights = _boost(grower, y, binary=binary, max_iter=int(params["maxIter"]),
                                step=float(params["stepSize"]), exp=jvm.exp if binary else None)
        return {**out, "kind": "gbt" if binary else "gbt_regression", "trees": trees, "tree_weights": weights}
    if family == "random_forest":
        trees = _forest(grower, y, n_trees=int(params["numTrees"]), seed=int(params["seed"]),
                        rate=float(params["subsamplingRate"]), strategy=params["featureSubsetStrategy"],
                        binary=binary, jvm=jvm, partition=partition)
        return {**out, "kind": "random_forest" if binary else "random_forest_regression", "trees": trees}
    raise ValueError(f"no driver-side fit for {family!r}")


class JvmNumbers:
    """The JVM's own numbers, in bulk, through ``org.genoflow.ml.JvmMath`` (the codec jar, ``make codec``)."""

    def __init__(self, helper):
        self._helper = helper

    @classmethod
    def of(cls, spark) -> JvmNumbers | None:
        """The driver JVM's helper; None when the class is not on its classpath, or is from a codec jar
        built before its arrays came back as text, which this reads (``make codec`` rebuilds it)."""
        helper = spark._jvm.org.genoflow.ml.JvmMath
        if type(helper).__name__ != "JavaClass" or not isinstance(helper.exp(bytearray(8)), str):
            return None
        return cls(helper)

    def exp(self, values: np.ndarray) -> np.ndarray:
        """``java.lang.Math.exp`` of each value (HotSpot's intrinsic, not C's)."""
        packed = np.ascontiguousarray(values, dtype="<f8")
        return _unpacked(self._helper.exp(bytearray(packed.tobytes())), "<f8").reshape(packed.shape)

    def poisson_counts(self, mean: float, seed: int, n: int) -> np.ndarray:
        """The first ``n`` draws of commons-math's ``PoissonDistribution(mean)`` reseeded with ``seed``."""
        return _unpacked(self._helper.poissonCounts(float(mean), int(seed), int(n)), "<i4")

    def feature_subsets(self, seed: int, n_features: int, k: int, draws: int) -> np.ndarray:
        """``draws`` x ``k``: the feature subsets MLlib's ``selectNodesToSplit`` draws, in draw order."""
        return _unpacked(self._helper.featureSubsets(int(seed), int(n_features), int(k), int(draws)), "<i4") \
            .reshape(draws, k)


def _unpacked(text: str, dtype: str) -> np.ndarray:
    """A JvmMath array: little-endian values, as Base64 text."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------------------------


def _boost(grower: _Grower, y: np.ndarray, *, binary: bool, max_iter: int, step: float, exp):
    """GradientBoostedTrees.boost: tree 0 on the labels (+-1 for log loss) with weight 1, then each
    tree on the negative gradient at the current predictions, with weight ``step``."""
    label = y * 2 - 1 if binary else y
    ones = np.ones((len(y), 1), dtype=np.int64)
    trees, weights, target, prediction = [], [], label, 0.0
    for m in range(max_iter):
        if m and binary:  # -LogLoss.gradient: -(-4 y / (1 + exp(2 y F)))
            target = -((-4.0 * label) / (1.0 + exp((2.0 * label) * prediction)))
        elif m:  # -SquaredError.gradient: -(-2 (y - F))
            target = -(-2.0 * (label - prediction))
        (tree,), leaf = grower.grow(target, ones, subsets=None)
        weight = step if m else 1.0
        prediction = prediction + leaf[:, 0] * weight
        trees.append(tree)
        weights.append(weight)
    return trees, weights


def _forest(grower: _Grower, y: np.ndarray, *, n_trees: int, seed: int, rate: float, strategy: str,
            binary: bool, jvm, partition) -> list[dict]:
    """RandomForest.run: a Poisson(rate) bootstrap count per (row, tree), drawn row by row from one
    commons-math stream per partition seeded ``seed + partition + 1``; feature subsets per node."""
    n_rows, n_features = len(y), grower.n_features
    partition = np.zeros(n_rows, dtype=np.int64) if partition is None else np.asarray(partition)
    counts = np.empty((n_rows, n_trees), dtype=np.int64)
    for part in np.unique(partition):
        rows = np.flatnonzero(partition == part)
        counts[rows] = jvm.poisson_counts(rate, seed + int(part) + 1, len(rows) * n_trees).reshape(-1, n_trees)
    k = _features_per_node(strategy, n_features, n_trees=n_trees, binary=binary)
    subsets = _SubsetDraws(jvm, seed, n_features, k) if k < n_features else None
    trees, _ = grower.grow(y, counts, subsets=subsets)
    return trees


def _features_per_node(strategy: str, n_features: int, *, n_trees: int, binary: bool) -> int:
    """DecisionTreeMetadata.numFeaturesPerNode."""
    if strategy == "auto":
        strategy = "all" if n_trees == 1 else "sqrt" if binary else "onethird"
    return {"all": n_features, "sqrt": math.ceil(math.sqrt(n_features)),
            "log2": max(1, math.ceil(math.log(n_features) / math.log(2))),
            "onethird": math.ceil(n_features / 3.0)}[strategy]


class _SubsetDraws:
    """The feature subsets of successive nodes, fetched from the JVM in batches (each batch redraws from
    the seed, so a longer one extends a shorter)."""

    def __init__(self, jvm, seed: int, n_features: int, k: int):
        self._args = (seed, n_features, k)
        self._jvm = jvm
        self._drawn = np.empty((0, k), dtype=np.int32)
        self._next = 0

    def next(self) -> np.ndarray:
        if self._next == len(self._drawn):
            self._drawn = self._jvm.feature_subsets(*self._args, max(1024, 2 * len(self._drawn)))
        self._next += 1
        return self._drawn[self._next - 1]


class _Grower:
    """RandomForest.runBagged for continuous features: the trees of one ensemble grown together, node
    groups taken from MLlib's node stack in its order; a group's statistics, for all its nodes and their
    features, are one ``bincount`` per statistic over (node, feature, bin) slots."""

    def __init__(self, x: np.ndarray, *, max_bins: int, max_depth: int, min_instances: int, min_info_gain: float,
                 gini: bool, max_memory_mb: int, mllib_nodes: bool = False):
        n_rows, self.n_features = x.shape
        self.thresholds = [_continuous_splits(x[:, j], max_bins=min(max_bins, n_rows)) for j in range(self.n_features)]
        self.bins = np.column_stack([_java_binary_search(t, x[:, j]) for j, t in enumerate(self.thresholds)]) \
            if self.thresholds else np.zeros((n_rows, 0), dtype=np.int64)
        self.n_splits = np.array([len(t) for t in self.thresholds], dtype=np.int64)
        self.width = int(self.n_splits.max(initial=0)) + 1  # bins per feature, padded to the widest
        self.upper = [np.append(t, np.inf) for t in self.thresholds]  # a bin's threshold; the last bin: none
        self.max_depth = max_depth
        self.min_instances = min_instances
        self.min_info_gain = min_info_gain
        self.gini = gini
        self.mllib_nodes = mllib_nodes
        # RandomForest.aggregateSizeForNode, in bytes, against maxMemoryInMB
        self.bytes_per_bin = 8 * (2 if gini else 3)
        self.max_memory = max_memory_mb * 1024 * 1024

    def grow(self, label: np.ndarray, counts: np.ndarray, *, subsets: _SubsetDraws | None):
        """The trees (portable pre-order arrays) of bootstrap ``counts`` (rows x trees), and each training
        row's leaf value per tree."""
        n_rows, n_trees = counts.shape
        nodes = [dict() for _ in range(n_trees)]  # per tree: MLlib node id (root 1, children 2i, 2i+1) -> node
        leaf = np.empty((n_rows, n_trees))
        everyone = np.arange(n_rows)
        stack = [(tree, {"id": 1, "rows": everyone, "stats": None}) for tree in reversed(range(n_trees))]
        while stack:
            group = self._take_group(stack, subsets)
            decided = [(tree, node, split) for (tree, node, _), split in
                       zip(group, self._best_splits(group, label, counts), strict=True)]
            by_tree = defaultdict(list)
            for item in decided:
                by_tree[item[0]].append(item)
            for tree in _scala_map_order(list(by_tree)):
                for _, node, split in by_tree[tree]:
                    for child in self._settle(node, split, nodes[tree], leaf[:, tree]):
                        stack.insert(0, (tree, child))
        return [_preorder(tree_nodes, with_stats=self.gini, mllib=self.mllib_nodes) for tree_nodes in nodes], leaf

    def _take_group(self, stack: list, subsets: _SubsetDraws | None) -> list:
        """RandomForest.selectNodesToSplit: nodes off the stack's head while their statistics fit in
        maxMemoryInMB (always one), each drawing its feature subset first."""
        group, used = [], 0
        while stack:
            tree, node = stack[0]
            features = subsets.next() if subsets is not None else np.arange(self.n_features)
            size = self.bytes_per_bin * int((self.n_splits[features] + 1).sum())
            if used and used + size > self.max_memory:
                break  # MLlib has drawn this node's subset already: the next group draws again
            stack.pop(0)
            group.append((tree, node, features))
            used += size
        return group

    def _best_splits(self, group: list, label: np.ndarray, counts: np.ndarray) -> list[dict]:
        """`_best_split_batch` over a group's nodes, a batch at a time (so memory stays bounded by
        `_BATCH_SLOTS`, not by the group's rows x features)."""
        splits, batch, size = [], [], 0
        for item in group:  # the rows' (feature, bin) slots, and the node's statistics over its own
            slots = (len(item[1]["rows"]) + self.width) * len(item[2])
            if batch and size + slots > _BATCH_SLOTS:
                splits += self._best_split_batch(batch, label, counts)
                batch, size = [], 0
            batch.append(item)
            size += slots
        return splits + self._best_split_batch(batch, label, counts)

    def _best_split_batch(self, batch: list, label: np.ndarray, counts: np.ndarray) -> list[dict]:
        """RandomForest.binsToBestSplit for continuous features, for each (tree, node, features) of ``batch``:
        the first best split of the first best feature, in the node's feature order; ``parent`` is the
        node's statistics as MLlib holds them. One ``bincount`` per statistic over (node, feature, bin)
        slots, each slot adding its rows in row order, as MLlib's aggregation does."""
        n_nodes, k, width = len(batch), len(batch[0][2]), self.width
        sizes = [len(node["rows"]) for _, node, _ in batch]
        rows = np.concatenate([node["rows"] for _, node, _ in batch])
        features = np.stack([chosen for _, _, chosen in batch])  # node x feature: each node's subset, in order
        node_of = np.repeat(np.arange(n_nodes), sizes)
        slots = (node_of[:, None] * k + np.arange(k)) * width + self.bins[rows[:, None], features[node_of]]
        per_row = self._per_row(label[rows], counts[rows, np.repeat([tree for tree, _, _ in batch], sizes)])
        cumulative = np.stack([np.bincount(slots.ravel(), weights=np.repeat(v, k), minlength=n_nodes * k * width)
                               for v in per_row]).reshape(len(per_row), n_nodes, k, width).cumsum(axis=3)
        n_splits = self.n_splits[features]
        left = cumulative[..., :-1]
        right = np.take_along_axis(cumulative, n_splits[None, :, :, None], axis=3) - left
        splittable = n_splits > 0
        first = np.argmax(splittable, axis=1)  # the root's statistics: its first candidate's left + right
        parent = np.stack([node["stats"] if node["stats"] is not None else
                           left[:, g, first[g], 0] + right[:, g, first[g], 0] for g, (_, node, _) in enumerate(batch)],
                          axis=1)
        exists = np.arange(width - 1) < n_splits[..., None]
        gains = np.where(exists, self._gains(left, right, self._impurity(parent)[:, None, None]), -np.inf)
        best = np.argmax(gains.reshape(n_nodes, -1), axis=1)
        splits, ends = [], np.cumsum(sizes)
        for g in range(n_nodes):
            if not splittable[g].any():  # nothing to split on: MLlib sums the node's rows' statistics directly
                own = slice(ends[g] - sizes[g], ends[g])
                splits.append({"gain": _INVALID_GAIN,
                               "parent": np.array([np.cumsum(v[own])[-1] if sizes[g] else 0.0 for v in per_row])})
                continue
            j, b = divmod(int(best[g]), width - 1)
            splits.append({"gain": float(gains[g, j, b]), "feature": int(features[g, j]), "bin": b,
                           "parent": parent[:, g], "left": left[:, g, j, b].copy(), "right": right[:, g, j, b].copy()})
        return splits

    def _per_row(self, y: np.ndarray, count: np.ndarray) -> tuple:
        """What one row adds to its bin: GiniAggregator (class weights, raw count) or VarianceAggregator
        (weight, weight * y, weight * y * y, raw count); the weight is the bootstrap count."""
        weight = count * 1.0
        if self.gini:
            return weight * (y == 0), weight * (y == 1), count.astype(np.float64)
        return weight, weight * y, weight * y * y, count.astype(np.float64)

    def _settle(self, node: dict, split: dict, tree: dict, leaf: np.ndarray) -> list[dict]:
        """Make ``node`` a leaf or an internal node (RandomForest.findBestSplits); return the children to
        push (left first, so the right ends on top, as MLlib prepends them)."""
        level = node["id"].bit_length() - 1
        record = self._node(split["parent"])
        tree[node["id"]] = record
        if split["gain"] <= 0 or level == self.max_depth:
            leaf[node["rows"]] = record["prediction"]
            if split["gain"] == _INVALID_GAIN:  # LearningNode.toNode: a leaf without a valid split says -1
                record["impurity"] = -1.0
            return []
        j, k = split["feature"], split["bin"]
        record.update(feature=j, threshold=float(self.thresholds[j][k]), gain=split["gain"])
        # Rows descend as ContinuousSplit.shouldGoLeft sends them: by their bin's threshold, not its index.
        # The two differ on a repeated threshold, where the statistics count a row right of the split
        # and the descent (and every later prediction) sends it left.
        goes_left = self.upper[j][self.bins[node["rows"], j]] <= self.thresholds[j][k]
        children = []
        for side, rows, stats in ((0, node["rows"][goes_left], split["left"]),
                                  (1, node["rows"][~goes_left], split["right"])):
            child = {"id": 2 * node["id"] + side, "rows": rows, "stats": stats}
            if level + 1 == self.max_depth or abs(self._impurity(stats)) < _EPSILON:
                tree[child["id"]] = self._node(stats)
                leaf[rows] = tree[child["id"]]["prediction"]
            else:
                children.append(child)
        return children

    def _node(self, stats: np.ndarray) -> dict:
        """A node as LearningNode.toNode makes it from its statistics (an internal node adds its split)."""
        return {"prediction": self._predict(stats), "impurity": float(self._impurity(stats)), "stats": stats}

    def _gains(self, left: np.ndarray, right: np.ndarray, impurity: float) -> np.ndarray:
        """RandomForest.calculateImpurityStats over every split; an invalid split gets Double.MinValue."""
        left_count, right_count = self._count(left), self._count(right)
        total = left_count + right_count
        with np.errstate(divide="ignore", invalid="ignore"):
            left_share, right_share = left_count / total, right_count / total
            gain = impurity - left_share * self._impurity(left) - right_share * self._impurity(right)
        invalid = (left[-1] < self.min_instances) | (right[-1] < self.min_instances) | ~(gain >= self.min_info_gain)
        return np.where(invalid, _INVALID_GAIN, gain)

    def _count(self, stats):
        return stats[0] + stats[1] if self.gini else stats[0]

    def _impurity(self, stats):
        """Gini.calculate or Variance.calculate; 0 for an empty node."""
        count = self._count(stats)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.gini:
                f0, f1 = stats[0] / count, stats[1] / count
                value = 1.0 - f0 * f0 - f1 * f1
            else:
                value = (stats[2] - (stats[1] * stats[1]) / count) / count
        return np.where(count == 0, 0.0, value) if np.ndim(value) else (0.0 if count == 0 else float(value))

    def _predict(self, stats) -> float:
        """GiniCalculator.predict (the first largest class weight) or VarianceCalculator.predict (the mean)."""
        if self.gini:
            return float(np.argmax(stats[:2]))
        return 0.0 if stats[0] == 0 else float(stats[1] / stats[0])


def _preorder(nodes: dict, *, with_stats: bool, mllib: bool = False) -> dict:
    """A tree keyed by MLlib node id as `genoflow.models.portable`'s pre-order arrays (its export's order),
    pruned as LearningNode.toNode prunes it. ``mllib`` adds what MLlib's node holds besides (`MLLIB_NODE`):
    every node's impurity, split gain (-1 at a leaf, as MLlib saves it), statistics and raw count."""
    nodes = dict(nodes)
    _prune(nodes, 1)
    tree = {"feature": [], "threshold": [], "left": [], "right": [], "prediction": []}
    if with_stats:
        tree["stats"] = []
    if mllib:
        tree.update({field: [] for field in MLLIB_NODE})
    pending = [(1, -1, "")]
    while pending:
        node_id, parent, side = pending.pop()
        index, node = len(tree["feature"]), nodes[node_id]
        if parent >= 0:
            tree[side][parent] = index
        tree["prediction"].append(node["prediction"])
        tree["left"].append(-1)
        tree["right"].append(-1)
        inner = "feature" in node
        tree["feature"].append(node["feature"] if inner else -1)
        tree["threshold"].append(node["threshold"] if inner else 0.0)
        if with_stats:
            tree["stats"].append([] if inner else [float(node["stats"][0]), float(node["stats"][1])])
        if mllib:  # the aggregator's statistics end with the raw count (ImpurityAggregator.getCalculator)
            tree["impurity"].append(node["impurity"])
            tree["gain"].append(float(node["gain"]) if inner else -1.0)
            tree["calculator"].append([float(v) for v in node["stats"][:-1]])
            tree["raw_count"].append(int(node["stats"][-1]))
        if inner:
            pending += [(2 * node_id + 1, index, "right"), (2 * node_id, index, "left")]
    return tree


def _prune(nodes: dict, node_id: int) -> None:
    """LearningNode.toNode(prune = true), bottom up: an internal node whose two children are leaves with
    the same prediction becomes a leaf (the left child's prediction, its own statistics). Predictions do
    not change; a forest's class counts, and so its probabilities, do."""
    node = nodes[node_id]
    if "feature" not in node:
        return
    _prune(nodes, 2 * node_id)
    _prune(nodes, 2 * node_id + 1)
    left, right = nodes[2 * node_id], nodes[2 * node_id + 1]
    if "feature" not in left and "feature" not in right and left["prediction"] == right["prediction"]:
        nodes[node_id] = {"prediction": left["prediction"], "impurity": node["impurity"], "stats": node["stats"]}


def _scala_map_order(keys: list[int]) -> list[int]:
    """The iteration order of ``mutable.HashMap[Int, _]`` filled with ``keys`` (in this order) and then
    ``.toMap``'d (Scala 2.13): up to 4 entries keep the mutable map's order (buckets by
    ``h ^ (h >>> 16)`` modulo its table size, then by hash); more become a CHAMP ``HashMap``, iterated by
    the 5-bit segments of ``Hashing.improve(h)``, a node's own entries before its sub-nodes'."""
    if len(keys) <= 4:
        table = 16
        for size in range(len(keys)):
            if size + 1 >= int(table * 0.75):
                table *= 2
        spread = [(k ^ (k >> 16)) & 0xFFFFFFFF for k in keys]
        return [k for _, _, k in sorted(zip((h & (table - 1) for h in spread), spread, keys, strict=True))]
    return _champ_order([(_improve(k), k) for k in keys], shift=0)


def _champ_order(entries: list[tuple[int, int]], shift: int) -> list[int]:
    groups = defaultdict(list)
    for entry in entries:
        groups[(entry[0] >> shift) & 31].append(entry)
    own = [group[0][1] for _, group in sorted(groups.items()) if len(group) == 1]
    below = [k for _, group in sorted(groups.items()) if len(group) > 1 for k in _champ_order(group, shift + 5)]
    return own + below


def _improve(h: int) -> int:
    """scala.collection.Hashing.improve on a 32-bit hash (unsigned result)."""
    mask = 0xFFFFFFFF
    h &= mask
    h = (h + (~(h << 9) & mask)) & mask
    h ^= h >> 14
    h = (h + (h << 4)) & mask
    return h ^ (h >> 10)


def _continuous_splits(values: np.ndarray, *, max_bins: int) -> np.ndarray:
    """RandomForest.findSplitsForContinuousFeature on every row (unit weights): the thresholds."""
    distinct, counts = np.unique(values, return_counts=True)
    counts = counts.astype(np.float64)
    n = float(len(values))
    n_nonzero = float(np.count_nonzero(values))
    # MLlib counts the zeros as "expected samples minus the non-zero ones" (exact with unit weights).
    if n - n_nonzero <= _EPSILON * n_nonzero * 100:
        keep = distinct != 0.0
        distinct, counts = distinct[keep], counts[keep]
    n_splits = max_bins - 1
    if len(distinct) <= 1:
        return np.empty(0)
    if len(distinct) - 1 <= n_splits:
        return (distinct[:-1] + distinct[1:]) / 2.0
    stride = n / (n_splits + 1)
    out, current, target = [], counts[0], stride
    for index in range(1, len(distinct)):
        previous = current
        current += counts[index]
        if abs(previous - target) < abs(current - target):
            out.append((distinct[index - 1] + distinct[index]) / 2.0)
            target += stride
    return np.asarray(out)


def _java_binary_search(thresholds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """TreePoint.findBin: ``java.util.Arrays.binarySearch``'s index where a value equals a threshold, else
    its insertion point. Not ``searchsorted``: midpoints can repeat (0.9999999999999999, 1.0 and
    1.0000000000000002 give 1.0 twice), and then Java returns whichever copy its bisection meets."""
    low = np.zeros(len(values), dtype=np.int64)
    high = np.full(len(values), len(thresholds) - 1, dtype=np.int64)
    found = np.full(len(values), -1, dtype=np.int64)
    while True:
        active = (low <= high) & (found < 0)
        if not active.any():
            return np.where(found >= 0, found, low)
        mid = (low + high) >> 1
        at = thresholds[np.minimum(mid, len(thresholds) - 1)] if len(thresholds) else np.zeros(len(values))
        below, above = active & (at < values), active & (at > values)
        found = np.where(active & ~below & ~above, mid, found)
        low = np.where(below, mid + 1, low)
        high = np.where(above, mid - 1, high)


# ---------------------------------------------------------------------------------------------
# Logistic regression
# ---------------------------------------------------------------------------------------------


def _logistic(x: np.ndarray, y: np.ndarray, *, reg: float) -> tuple[np.ndarray, float]:
    """argmin mean log loss + reg / 2 * ||beta * sd||^2 with an unpenalised intercept, by Newton's method
    on centred, standardized features (MLlib's objective; its solution within L-BFGS's tolerance)."""
    n, p = x.shape
    mean = x.mean(axis=0)
    sd = x.std(axis=0, ddof=1) if n > 1 else np.zeros(p)
    scale = np.where(sd > 0, sd, 1.0)
    z = np.where(sd > 0, (x - mean) / scale, 0.0)
    design = np.column_stack([z, np.ones(n)])
    penalty = np.r_[np.full(p, reg), 0.0]
    theta = np.zeros(p + 1)
    prior = y.mean()
    theta[-1] = math.log(prior / (1 - prior)) if 0 < prior < 1 else 0.0
    for _ in range(100):
        margin = design @ theta
        prob = 1.0 / (1.0 + np.exp(-margin))
        gradient = design.T @ (prob - y) / n + penalty * theta
        hessian = (design.T * (prob * (1 - prob))) @ design / n + np.diag(penalty)
        delta = np.linalg.solve(hessian, gradient)
        theta -= delta
        if np.max(np.abs(delta)) < 1e-13 * max(1.0, np.max(np.abs(theta))):
            break
    beta = np.where(sd > 0, theta[:p] / scale, 0.0)
    return beta, float(theta[-1] - beta @ mean)

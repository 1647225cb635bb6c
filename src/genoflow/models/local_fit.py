"""MLlib's gradient-boosted trees and binomial logistic regression, fitted in the driver's memory.

Why (decision 0035): on a small cohort an MLlib fit is 40-90 one-task Spark jobs whose cost is the
JVM's per-job overhead, not arithmetic; the train step's cross-validation fits (most of its ~2,150
jobs) are where the data scientist's loop goes. For a table small enough to hold (train's
``cv_engine``), those fits run here instead, with MLlib's algorithms, and return the fitted model as
`genoflow.models.portable`'s dict, which also scores it. The final models stay MLlib fits.

What "MLlib's algorithm" means, per family (Spark 4.2, ``org.apache.spark.ml.tree.impl``,
``ml.classification.LogisticRegression``):

- **GBT** (``GBTClassifier`` log loss, ``GBTRegressor`` squared error; ``subsamplingRate`` 1,
  every feature at every node): the same split candidates (``findSplitsForContinuousFeature`` on
  every row: at most ``maxBins - 1`` thresholds at midpoints between distinct values, strided by
  count when there are more), the same binning (a value goes left iff ``<=`` the threshold), the
  same sufficient statistics summed in row order and bin order, the same gain arithmetic and
  tie-breaking (the first best split, the first best feature), the same leaf values and boosting
  updates. Trees come out identical to MLlib's, thresholds and leaf values included, up to the last
  bit of ``exp`` in the log-loss gradient (the JVM's and numpy's may differ by an ulp), checked
  against MLlib in ``tests/integration/test_local_fit.py``.
- **Logistic regression** (binomial, ``elasticNetParam`` 0, with intercept): the optimum of MLlib's
  objective, mean log loss + ``regParam / 2 * ||beta * sd||^2`` (the penalty on standardized
  coefficients, sample standard deviations; a constant feature gets 0), solved by Newton's method
  to machine precision. MLlib's L-BFGS stops at a relative tolerance of 1e-6, so the two agree to
  that tolerance, not to the bit: the validation AUCs agree to 3 decimals (the test above).

Anything else (other losses or settings, weights, categorical features, more rows than
``findSplits`` would use without sampling) is not supported: `supports` says so and train fits
with MLlib.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["supports", "fit", "jvm_exp", "MAX_ROWS"]

# MLlib's findSplits uses every row up to max(maxBins^2, 10,000) rows and samples beyond.
MAX_ROWS = 10_000
# org.apache.spark.ml.tree.impl... Utils.EPSILON: the machine epsilon of a double.
_EPSILON = float(np.finfo(np.float64).eps)

_GBT_DEFAULTS = {"subsamplingRate": 1.0, "featureSubsetStrategy": ("all", "auto"), "minWeightFractionPerNode": 0.0,
                 "impurity": "variance"}


def supports(family: str, kind: str, params: dict, n_rows: int) -> bool:
    """Whether `fit` reproduces MLlib for this family, target kind, full param map (name -> value) and size."""
    if n_rows > MAX_ROWS or params.get("weightCol"):
        return False
    if family == "gbt":
        loss = params.get("lossType")
        return (loss == ("logistic" if kind == "binary" else "squared")
                and float(params.get("subsamplingRate", 1.0)) == 1.0
                and params.get("featureSubsetStrategy", "all") in ("all", "auto")
                and float(params.get("minWeightFractionPerNode", 0.0)) == 0.0
                and not params.get("validationIndicatorCol")
                and int(params.get("maxBins", 32)) ** 2 <= MAX_ROWS)
    if family == "logistic_regression":
        return (kind == "binary" and float(params.get("elasticNetParam", 0.0)) == 0.0
                and params.get("fitIntercept", True) and params.get("standardization", True)
                and params.get("family", "auto") in ("auto", "binomial")
                and not any(params.get(bound) is not None for bound in
                            ("lowerBoundsOnCoefficients", "upperBoundsOnCoefficients",
                             "lowerBoundsOnIntercepts", "upperBoundsOnIntercepts")))
    return False


def fit(family: str, kind: str, params: dict, x: np.ndarray, y: np.ndarray, *, exp=np.exp) -> dict:
    """Fit on rows ``x`` (n x p float64, in the table's row order) and labels ``y``; returns the
    `genoflow.models.portable` dict of the model MLlib would have fitted (features unnamed).

    ``exp`` is the exponential of the log-loss gradient: `jvm_exp` for MLlib's trees to the bit."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if family == "gbt":
        trees, weights = _boost(x, y, binary=kind == "binary", max_iter=int(params["maxIter"]),
                                max_depth=int(params["maxDepth"]), step=float(params["stepSize"]),
                                max_bins=int(params["maxBins"]),
                                min_instances=int(params["minInstancesPerNode"]),
                                min_info_gain=float(params["minInfoGain"]), exp=exp)
        return {"format": _portable_format(), "kind": "gbt" if kind == "binary" else "gbt_regression",
                "n_features": x.shape[1], "features": None, "trees": trees, "tree_weights": weights}
    if family == "logistic_regression":
        coefficients, intercept = _logistic(x, y, reg=float(params["regParam"]))
        return {"format": _portable_format(), "kind": "logistic_regression", "n_features": x.shape[1],
                "features": None, "coefficients": coefficients.tolist(), "intercept": intercept}
    raise ValueError(f"no driver-side fit for {family!r}")


def jvm_exp(spark):
    """``java.lang.Math.exp`` of a float64 array, through ``org.genoflow.ml.JvmMath`` on the driver's
    classpath (the codec jar, ``make codec``); None when the class is not there."""
    helper = spark._jvm.org.genoflow.ml.JvmMath
    if type(helper).__name__ != "JavaClass":
        return None

    def exp(values: np.ndarray) -> np.ndarray:
        packed = np.ascontiguousarray(values, dtype="<f8")
        return np.frombuffer(helper.exp(bytearray(packed.tobytes())), dtype="<f8").reshape(packed.shape)

    return exp


def _portable_format() -> str:
    from genoflow.models.portable import FORMAT

    return FORMAT


# ---------------------------------------------------------------------------------------------
# Gradient-boosted trees
# ---------------------------------------------------------------------------------------------


def _boost(x, y, *, binary: bool, max_iter: int, max_depth: int, step: float, max_bins: int,
           min_instances: int, min_info_gain: float, exp) -> tuple[list[dict], list[float]]:
    """GradientBoostedTrees.boost: tree 0 on the labels (+-1 for log loss) with weight 1, then each
    tree on the negative gradient at the current predictions, with weight ``step``."""
    thresholds = [_continuous_splits(x[:, j], max_bins=min(max_bins, x.shape[0])) for j in range(x.shape[1])]
    bins = np.column_stack([_java_binary_search(t, x[:, j]) for j, t in enumerate(thresholds)]) \
        if thresholds else np.zeros((x.shape[0], 0), dtype=np.int64)
    label = y * 2 - 1 if binary else y
    grow = _TreeGrower(bins, thresholds, max_depth=max_depth, min_instances=min_instances,
                       min_info_gain=min_info_gain)
    trees, weights = [], []
    tree, leaf_of_row = grow(label)
    prediction = 0.0 + leaf_of_row * 1.0
    trees.append(tree)
    weights.append(1.0)
    for _ in range(1, max_iter):
        if binary:  # LogLoss.gradient: -4 y / (1 + exp(2 y F))
            residual = -((-4.0 * label) / (1.0 + exp((2.0 * label) * prediction)))
        else:  # SquaredError.gradient: -2 (y - F)
            residual = -(-2.0 * (label - prediction))
        tree, leaf_of_row = grow(residual)
        prediction = prediction + leaf_of_row * step
        trees.append(tree)
        weights.append(step)
    return trees, weights


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


class _TreeGrower:
    """RandomForest.runBagged for one regression tree with variance impurity, every feature at every node.

    A node's sufficient statistics for all features are one ``bincount`` over (feature, bin) slots, so
    a tree is a few dozen numpy calls whatever the number of features."""

    def __init__(self, bins: np.ndarray, thresholds: list[np.ndarray], *, max_depth: int, min_instances: int,
                 min_info_gain: float):
        n_features = len(thresholds)
        self.thresholds = thresholds
        self.n_splits = np.array([len(t) for t in thresholds], dtype=np.int64)
        self.width = int(self.n_splits.max(initial=0)) + 1  # bins per feature, padded to the widest
        self.slots = (bins + np.arange(n_features) * self.width).astype(np.int64)  # (row, feature) -> slot
        self.bins = bins
        # split k of feature j exists iff k < n_splits[j]
        self.exists = np.arange(self.width - 1)[None, :] < self.n_splits[:, None]
        self.upper = [np.append(t, np.inf) for t in thresholds]  # a bin's threshold; the last bin: none
        self.max_depth = max_depth
        self.min_instances = min_instances
        self.min_info_gain = min_info_gain

    def __call__(self, label: np.ndarray) -> tuple[dict, np.ndarray]:
        """The tree (portable pre-order arrays) and each training row's leaf value."""
        tree = {"feature": [], "threshold": [], "left": [], "right": [], "prediction": []}
        leaf_of_row = np.empty(len(label))
        # (rows, level, the node's statistics (weight, sum, sum of squares, count) or None at the root,
        #  whether the node was made a leaf when its parent split, parent index, side)
        stack = [(np.arange(len(label)), 0, None, False, -1, "")]
        while stack:
            rows, level, stats, leaf, parent, side = stack.pop()
            index = len(tree["feature"])
            if parent >= 0:
                tree[side][parent] = index
            split = None if leaf else self._best_split(rows, label, stats)
            if split is not None:
                stats = split["parent"]
            elif stats is None:  # nothing to split on at the root: the labels' own sums
                y = label[rows]
                stats = np.array([len(y), np.cumsum(y)[-1], np.cumsum(y * y)[-1], len(y)], dtype=np.float64)
            tree["left"].append(-1)
            tree["right"].append(-1)
            tree["prediction"].append(_predict(stats))
            if split is None or split["gain"] <= 0 or level == self.max_depth:
                tree["feature"].append(-1)
                tree["threshold"].append(0.0)
                leaf_of_row[rows] = tree["prediction"][-1]
                continue
            j, k = split["feature"], split["bin"]
            tree["feature"].append(j)
            tree["threshold"].append(float(self.thresholds[j][k]))
            # Rows descend as MLlib's ContinuousSplit.shouldGoLeft sends them: by their bin's threshold, not
            # its index. The two differ on a repeated threshold, where the statistics above count a row
            # right of the split and the descent (and every later prediction) sends it left.
            goes_left = self.upper[j][self.bins[rows, j]] <= self.thresholds[j][k]
            child_level = level + 1
            left_leaf = child_level == self.max_depth or abs(_variance(split["left"])) < _EPSILON
            right_leaf = child_level == self.max_depth or abs(_variance(split["right"])) < _EPSILON
            # Right pushed first so the left child is numbered first (pre-order, like the export).
            stack.append((rows[~goes_left], child_level, split["right"], right_leaf, index, "right"))
            stack.append((rows[goes_left], child_level, split["left"], left_leaf, index, "left"))
        return tree, leaf_of_row

    def _best_split(self, rows: np.ndarray, label: np.ndarray, stats) -> dict | None:
        """RandomForest.binsToBestSplit for continuous features: the first best split of the first best feature."""
        if not self.exists.any():
            return None
        n_features = len(self.thresholds)
        y = label[rows]
        y_weighted = 1.0 * y
        slots = self.slots[rows].ravel()  # row-major: each slot's rows are added in row order, as MLlib does
        per_row = (np.ones(len(rows)), y_weighted, y_weighted * y, np.ones(len(rows)))
        size = n_features * self.width
        # (statistic, feature, bin), then MLlib's running sum over each feature's bins
        cumulative = np.stack([np.bincount(slots, weights=np.repeat(v, n_features), minlength=size)
                               .reshape(n_features, self.width) for v in per_row]).cumsum(axis=2)
        left = cumulative[:, :, :-1]
        total = np.take_along_axis(cumulative, self.n_splits[None, :, None], axis=2)
        right = total - left
        if stats is None:  # the root: the first candidate's left + right, as MLlib forms it
            first = int(np.argmax(self.n_splits > 0))
            stats = left[:, first, 0] + right[:, first, 0]
        gains = np.where(self.exists, self._gains(left, right, _variance(stats)), -np.inf)
        j, k = np.unravel_index(int(np.argmax(gains)), gains.shape)
        return {"gain": float(gains[j, k]), "feature": int(j), "bin": int(k), "parent": stats,
                "left": left[:, j, k].copy(), "right": right[:, j, k].copy()}

    def _gains(self, left: np.ndarray, right: np.ndarray, impurity: float) -> np.ndarray:
        """RandomForest.calculateImpurityStats over every split; an invalid split gets Double.MinValue."""
        left_count, right_count = left[0], right[0]
        total = left_count + right_count
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = impurity - (left_count / total) * _variance(left) - (right_count / total) * _variance(right)
        invalid = (left[3] < self.min_instances) | (right[3] < self.min_instances) | ~(gain >= self.min_info_gain)
        return np.where(invalid, -np.finfo(np.float64).max, gain)


def _variance(stats):
    """Variance.calculate(count, sum, sumSquares): 0 for an empty node."""
    count, total, squares = stats[0], stats[1], stats[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (squares - (total * total) / count) / count
    return np.where(count == 0, 0.0, value) if np.ndim(value) else (0.0 if count == 0 else float(value))


def _predict(stats) -> float:
    """VarianceCalculator.predict: the node's mean label."""
    return 0.0 if stats[0] == 0 else float(stats[1] / stats[0])


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

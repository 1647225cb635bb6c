"""Model families (Spark MLlib): one estimator per family and target type, its grid, its pipeline."""

from __future__ import annotations

__all__ = ["MODEL_FAMILIES", "TARGET_TYPES", "build_pipeline", "param_grid"]

MODEL_FAMILIES = ("logistic_regression", "random_forest", "gbt")
TARGET_TYPES = ("binary", "quantitative")


def _estimator(family: str, label: str, seed: int, kind: str = "binary"):
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier
    from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor

    common = {"featuresCol": "features", "labelCol": label}
    binary = kind == "binary"
    if family == "logistic_regression":  # linear regression (elastic net) for a quantitative target
        return LogisticRegression(maxIter=100, standardization=True, **common) if binary else \
            LinearRegression(maxIter=100, standardization=True, **common)
    if family == "random_forest":
        return (RandomForestClassifier if binary else RandomForestRegressor)(seed=seed, **common)
    if family == "gbt":
        return (GBTClassifier if binary else GBTRegressor)(seed=seed, **common)
    raise ValueError(f"train.models: unknown model family {family!r}; expected one of {MODEL_FAMILIES}")


def build_pipeline(family: str, *, features: list[str], label: str, seed: int, kind: str = "binary"):
    """Pipeline(VectorAssembler -> the family's estimator) and the estimator (to address its params)."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    estimator = _estimator(family, label, seed, kind)
    return Pipeline(stages=[VectorAssembler(inputCols=features, outputCol="features"), estimator]), estimator


def param_grid(estimator, family: str, grid: dict) -> list[dict]:
    """The grid's param maps (``{"regParam": [0.01, 0.1]}`` -> two maps) for ``estimator``."""
    from pyspark.ml.tuning import ParamGridBuilder

    builder = ParamGridBuilder()
    for name, values in (grid or {}).items():
        if not estimator.hasParam(name):
            raise ValueError(f"train.grid.{family}: {type(estimator).__name__} has no parameter {name!r}")
        builder = builder.addGrid(estimator.getParam(name), list(values))
    return builder.build()


"""Model families (Spark MLlib) and the cross-validator around each, built from params."""

from __future__ import annotations

__all__ = ["MODEL_FAMILIES", "build_cross_validator"]

MODEL_FAMILIES = ("logistic_regression", "random_forest", "gbt")


def _estimator(family: str, label: str, seed: int):
    from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier

    common = {"featuresCol": "features", "labelCol": label}
    if family == "logistic_regression":
        return LogisticRegression(maxIter=100, standardization=True, **common)
    if family == "random_forest":
        return RandomForestClassifier(seed=seed, **common)
    if family == "gbt":
        return GBTClassifier(seed=seed, **common)
    raise ValueError(f"train.models: unknown model family {family!r}; expected one of {MODEL_FAMILIES}")


def build_cross_validator(family: str, *, features: list[str], label: str, grid: dict, folds: int,
                          seed: int, parallelism: int):
    """A CrossValidator over Pipeline(VectorAssembler -> estimator) with the family's grid.

    ``grid`` maps MLlib parameter names to lists of values, e.g. ``{"regParam": [0.01, 0.1]}``.
    Selection metric: area under the ROC curve, averaged over ``folds`` folds.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder

    estimator = _estimator(family, label, seed)
    builder = ParamGridBuilder()
    for name, values in (grid or {}).items():
        if not estimator.hasParam(name):
            raise ValueError(f"train.grid.{family}: {type(estimator).__name__} has no parameter {name!r}")
        builder = builder.addGrid(estimator.getParam(name), list(values))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=features, outputCol="features"), estimator])
    return CrossValidator(
        estimator=pipeline,
        estimatorParamMaps=builder.build(),
        evaluator=BinaryClassificationEvaluator(labelCol=label, metricName="areaUnderROC"),
        numFolds=folds, seed=seed, parallelism=parallelism,
    )

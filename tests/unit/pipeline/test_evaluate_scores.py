"""evaluate scores each trained model as its portable form, in one pass over the test split (decision 0036)."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.pipeline.evaluate import _portable_of, held_out_scores


def _fitted(spark, table, family: str, label: str):
    from genoflow.models import build_pipeline

    return build_pipeline(family, features=["a", "b"], label=label, seed=7, kind="binary")[0] \
        .fit(table.filter(f"`{label}` is not null"))


def test_held_out_scores__every_model_on_its_labelled_patients_as_spark_scores_them(spark):
    from pyspark.ml.functions import vector_to_array

    from genoflow.models.portable import export_portable

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 2))
    y = (x[:, 0] + rng.normal(size=120) > 0).astype(float)
    other = np.where(np.arange(120) % 7 == 0, np.nan, (x[:, 1] > 0).astype(float))  # some patients unlabelled
    table = spark.createDataFrame([(f"p{i:03d}", *map(float, x[i]), float(y[i]),
                                    None if np.isnan(other[i]) else float(other[i])) for i in range(120)],
                                  "pid string, a double, b double, y double, z double").repartition(3)
    models = [{"run_id": "r1", "target": "y"}, {"run_id": "r2", "target": "z"}, {"run_id": "r3", "target": "z"}]
    fitted = {"r1": _fitted(spark, table, "logistic_regression", "y"), "r2": _fitted(spark, table, "gbt", "z"),
              "r3": _fitted(spark, table, "random_forest", "z")}

    scores = held_out_scores(table, models, {r: export_portable(m) for r, m in fitted.items()},
                             {"y": "binary", "z": "binary"})

    for m in models:
        mine = scores[scores["run_id"] == m["run_id"]].set_index("pid").sort_index()
        by_spark = fitted[m["run_id"]].transform(table.filter(f"`{m['target']}` is not null")).select(
            "pid", m["target"], vector_to_array("probability")[1].alias("p")).toPandas().set_index("pid").sort_index()
        assert list(mine.index) == list(by_spark.index)
        np.testing.assert_array_equal(mine["label"].to_numpy(), by_spark[m["target"]].to_numpy())
        np.testing.assert_allclose(mine["score"].to_numpy(), by_spark["p"].to_numpy(), rtol=0, atol=1e-9)
    assert (scores["run_id"] == "r2").sum() == np.isfinite(other).sum() < 120


@pytest.mark.slow  # a real MLflow registry in SQLite
def test_portable_of__an_older_train_output_without_it_reads_the_runs_copy(tmp_path):
    import mlflow

    portable = {"format": "genoflow.portable_model/1", "kind": "logistic_regression", "n_features": 1,
                "features": ["a"], "coefficients": [0.5], "intercept": -1.0}
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("older", (tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_dict(portable, "portable_model.json")
        assert _portable_of({"run_id": run.info.run_id, "target": "y"}, storage=None, train_uri="unused") == portable
    finally:
        mlflow.set_tracking_uri(None)

"""The train step saves each fitted model once (decision 0028): the run's MLflow model and the step
output's copy must both be the fitted model, and ``runs:/<run>/model`` must register and load."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.pipeline.train import _save_model


@pytest.mark.slow  # a real MLflow registry in SQLite: its schema migrations take seconds
def test_save_model__one_save_serves_mlflow_and_the_step_output(spark, tmp_path):
    import mlflow
    from pyspark.ml import PipelineModel

    from genoflow.models import build_pipeline
    from genoflow.storage import HadoopStorage

    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 2))
    rows = [(float(x[i, 0] + rng.normal() > 0), *map(float, x[i])) for i in range(80)]
    table = spark.createDataFrame(rows, ["y", "a", "b"])
    model = build_pipeline("logistic_regression", features=["a", "b"], label="y", seed=7)[0].fit(table)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("save-once", (tmp_path / "artifacts").as_uri())
        storage = HadoopStorage(spark, (tmp_path / "root").as_uri())
        with storage.step_output(storage.uri("steps", "train", "k")) as output:
            with mlflow.start_run(experiment_id=experiment) as run:
                _save_model(model, output, "models/y/logistic_regression", run.info.run_id)
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "genoflow_y").version
        logged = mlflow.spark.load_model(f"models:/genoflow_y/{version}")
        step_copy = PipelineModel.load(storage.uri("steps", "train", "k", "models", "y", "logistic_regression"))
    finally:
        mlflow.set_tracking_uri(None)

    def scores(fitted):
        return [row.probability[1] for row in fitted.transform(table).collect()]

    assert scores(logged) == scores(model)
    assert scores(step_copy) == scores(model)

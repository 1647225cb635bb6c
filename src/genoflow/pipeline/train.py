"""train: cross-validated Spark MLlib models for each target, each logged as one MLflow run.

Every run carries the pipeline run key, the DVC dataset version, the git commit and the params;
the fitted PipelineModel is saved twice: under the step output (for evaluate, on any storage
root) and as the run's MLflow model (for the registry and serving).
"""

from __future__ import annotations

import json
import logging
import time

__all__ = ["run_train"]

log = logging.getLogger(__name__)


def run_train(spark, features_uri: str, output, params: dict, *, experiment_id: str, tags: dict) -> list[dict]:
    """Train every (target, model family) pair on the training split; returns one record per model."""
    import mlflow

    from genoflow.models import build_cross_validator
    from genoflow.models.portable import export_portable
    from genoflow.registry import TAG_MODEL_FAMILY, TAG_TARGET

    t = params["train"]
    meta = json.loads(output.storage.read_text(f"{features_uri}/features.json"))
    table = spark.read.parquet(f"{features_uri}/table").filter("split = 'train'").cache()
    trained = []
    for target in t["targets"]:
        features = meta["targets"][target]["features"]
        data = table.filter(f"{target} is not null").select(target, *features).cache()
        for family in t["models"]:
            started = time.time()
            cv = build_cross_validator(
                family, features=features, label=target, grid=t["grid"].get(family, {}),
                folds=int(t["cv_folds"]), seed=int(t["seed"]), parallelism=int(t["parallelism"]),
            )
            run_tags = {**tags, TAG_TARGET: target, TAG_MODEL_FAMILY: family}
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"{target}-{family}",
                                  tags=run_tags) as run:
                model = cv.fit(data)
                best = max(range(len(model.avgMetrics)), key=model.avgMetrics.__getitem__)
                best_params = {p.name: v for p, v in model.getEstimatorParamMaps()[best].items()}
                mlflow.log_params({"target": target, "model_family": family, "n_features": len(features),
                                   "cv_folds": t["cv_folds"], **{f"best.{k}": v for k, v in best_params.items()}})
                mlflow.log_metric("cv_auc_roc", model.avgMetrics[best])
                mlflow.log_dict(params, "params.json")
                # What serving needs to turn a patient's raw values into this model's inputs.
                mlflow.log_dict(meta["targets"][target]["spec"], "feature_spec.json")
                _log_association(output.storage, features_uri, meta, target)
                model_uri = output.path(f"models/{target}/{family}")
                model.bestModel.write().save(model_uri)
                mlflow.spark.log_model(model.bestModel, artifact_path="model",
                                       pip_requirements=_model_requirements())
                # The same fitted model as plain arrays: the model API scores it without Spark.
                mlflow.log_dict(export_portable(model.bestModel), "portable_model.json")
            record = {"target": target, "family": family, "run_id": run.info.run_id,
                      "cv_auc_roc": float(model.avgMetrics[best]), "best_params": best_params,
                      "seconds": round(time.time() - started, 1)}
            log.info("trained %s", record)
            trained.append(record)
        data.unpersist()
    output.write_json("models.json", {"models": [{**r, "model_path": f"models/{r['target']}/{r['family']}"}
                                                 for r in trained]})
    return trained


def _log_association(storage, features_uri: str, meta: dict, target: str) -> None:
    """The features step's training-split association scan: lambda_GC and its Manhattan/QQ plots."""
    import os
    import tempfile

    import mlflow

    info = meta["targets"][target]
    if info.get("lambda_gc") is not None:
        mlflow.log_metric("lambda_gc", float(info["lambda_gc"]))
    if "n_clumped_index_variants" in info:
        mlflow.log_params({"n_prs_index_variants": info["n_clumped_index_variants"],
                           "n_pca_pruned_variants": meta.get("pca", {}).get("n_pruned_variants")})
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("manhattan.png", "qq.png"):
            uri = f"{features_uri}/plots/{target}/{name}"
            if storage.exists(uri):
                with open(os.path.join(tmp, name), "wb") as handle:
                    handle.write(storage.read_bytes(uri))
        mlflow.log_artifacts(tmp, artifact_path="association")


def _model_requirements() -> list[str]:
    """The serving environment, stated rather than inferred: inference would reload every model in a
    subprocess to capture its imports (~15 s per model here)."""
    import mlflow
    import pyspark

    return [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"]

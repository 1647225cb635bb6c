"""evaluate: held-out metrics of every trained model, plots, and the candidate of each target.

Each model is scored on the test patients only: AUC-ROC and AUC-PR (Spark's evaluator), a ROC
curve PNG and a metrics JSON, logged on the model's own MLflow run; the per-patient scores are
kept in ``scores/`` (pid, target, family, run_id, score, label). The candidate for promotion
is picked by cross-validated AUC on the training split, never by the test metric, so the
held-out numbers stay an honest estimate of the promoted model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

import numpy as np

__all__ = ["run_evaluate", "roc_points"]

log = logging.getLogger(__name__)


def run_evaluate(spark, features_uri: str, train_uri: str, output, params: dict) -> dict:
    import mlflow
    from pyspark.ml import PipelineModel
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array

    from genoflow.registry import TAG_CANDIDATE

    storage = output.storage
    models = json.loads(storage.read_text(f"{train_uri}/models.json"))["models"]
    test = spark.read.parquet(f"{features_uri}/table").filter("split = 'test'").cache()
    results, all_scores = [], []
    for m in models:
        target = m["target"]
        scored = (PipelineModel.load(f"{train_uri}/{m['model_path']}")
                  .transform(test.filter(f"{target} is not null"))
                  .withColumn("score", vector_to_array("probability")[1]).cache())
        evaluator = BinaryClassificationEvaluator(labelCol=target, rawPredictionCol="rawPrediction")
        auc_roc = evaluator.setMetricName("areaUnderROC").evaluate(scored)
        auc_pr = evaluator.setMetricName("areaUnderPR").evaluate(scored)
        # The test split is small (one row per held-out patient): its scores fit on the driver.
        pairs = scored.select("pid", "score", target).toPandas()
        scored.unpersist()
        all_scores.append(pairs.assign(target=target, family=m["family"], run_id=m["run_id"])
                          .rename(columns={target: "label"}))
        fpr, tpr = roc_points(pairs["score"].to_numpy(), pairs[target].to_numpy())
        metrics = {"test_auc_roc": auc_roc, "test_auc_pr": auc_pr, "n_test": len(pairs),
                   "test_prevalence": float(pairs[target].mean())}
        with mlflow.start_run(run_id=m["run_id"]):
            mlflow.log_metrics({k: v for k, v in metrics.items() if k.startswith("test_")})
            mlflow.log_metric("n_test", metrics["n_test"])
            with tempfile.TemporaryDirectory() as tmp:
                png = os.path.join(tmp, "roc_curve.png")
                plot_roc(fpr, tpr, auc_roc, f"{target} — {m['family']}", png)
                mlflow.log_artifact(png)
                with open(os.path.join(tmp, "metrics.json"), "w") as handle:
                    json.dump(metrics, handle, indent=2)
                mlflow.log_artifact(os.path.join(tmp, "metrics.json"))
        results.append({**m, **metrics})
        log.info("%s %s: held-out AUC-ROC %.3f AUC-PR %.3f", target, m["family"], auc_roc, auc_pr)

    candidates = {}
    for target in params["train"]["targets"]:
        own = [r for r in results if r["target"] == target]
        best = max(own, key=lambda r: r["cv_auc_roc"])
        candidates[target] = best["run_id"]
        mlflow.MlflowClient().set_tag(best["run_id"], TAG_CANDIDATE, "true")
    output.write_json("metrics.json", {"models": results, "candidates": candidates})
    # Per-patient held-out scores (pseudonyms only): what the model API must reproduce exactly.
    import pandas as pd

    spark.createDataFrame(pd.concat(all_scores, ignore_index=True)).coalesce(1).write.parquet(output.path("scores"))
    return {"models": results, "candidates": candidates}


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score threshold, shape (k,) each."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order].astype(float)
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(labels)[distinct]
    fps = (distinct + 1) - tps
    positives, negatives = max(labels.sum(), 1.0), max(len(labels) - labels.sum(), 1.0)
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives]


def plot_roc(fpr, tpr, auc: float, title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

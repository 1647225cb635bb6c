"""train: every model of every target, honestly cross-validated, each logged as one MLflow run.

Cross-validation is nested (decision 0011): the features step learnt its label-driven features
(scan, top-K, polygenic-score weights, burden genes) once per CV fold on the other folds' patients
and wrote each fold's table; here each grid point of each model is fitted on a fold's ``fit`` rows
and scored on its ``validate`` rows. The grid point scored on fold k is the one best on the *other*
folds, so no fold's estimate picked its own hyper-parameters; the CV metric is the mean over folds
of those scores (with its SD). The final model refits the grid point best over all folds on the
whole training split's features.

Besides the model families, two baselines per target on the same split and folds, never candidates:
``covariates`` (study covariates + PCs) and ``prs`` (the polygenic scores alone), logistic (binary)
or linear (quantitative) regression at the first setting of its grid.

Every run carries the pipeline run key, the DVC dataset version, the git commit and the params;
the fitted PipelineModel is saved once, as the run's MLflow model (for the registry and serving),
and that save is copied under the step output (the Spark model beside the run's outputs, on any storage root),
with the model's portable form, which the model API serves and evaluate scores.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from genoflow.spark import map_in_order

__all__ = ["run_train", "Plan", "plans", "foldwise_choice", "BASELINES"]

log = logging.getLogger(__name__)

BASELINES = ("covariates", "prs")


@dataclass(frozen=True)
class Plan:
    """One model to train for a target: a family on all features, or a baseline on some of them."""

    family: str
    baseline: str | None = None

    @property
    def name(self) -> str:
        return f"baseline_{self.baseline}" if self.baseline else self.family

    def spec(self, spec):
        """The model's own feature spec (the final one or a fold's): all of it for a family; a
        baseline's keeps only its columns, so that serving it computes exactly its inputs."""
        import dataclasses

        if self.baseline is None:
            return spec
        kinds = {name: block.kind for block in spec.score_blocks for name in block.names}
        kept = [name for name, kind in kinds.items() if kind == ("prs" if self.baseline == "prs" else "pca")]
        own = dataclasses.replace(spec.subset([], kept), read_qc=[])
        return dataclasses.replace(own, covariates=[]) if self.baseline == "prs" else own

    def columns(self, spec) -> list[str]:
        """The model's input columns."""
        return self.spec(spec).names


def plans(families: list[str]) -> list[Plan]:
    return [*(Plan(family) for family in families), *(Plan("logistic_regression", b) for b in BASELINES)]


def foldwise_choice(metric: np.ndarray) -> tuple[list[int], int]:
    """Grid choices from ``metric[g, k]`` (grid point g scored on fold k; higher is better).

    Returns, per fold k, the grid point with the best mean over the other folds (so fold k's score
    is not the maximum of its own noisy estimates), and the grid point best over all folds (the
    final model's). Ties go to the earlier grid point.

    >>> foldwise_choice(np.array([[0.70, 0.60, 0.80], [0.72, 0.62, 0.50]]))
    ([0, 0, 1], 0)
    """
    g, k = metric.shape
    per_fold = []
    for fold in range(k):
        others = np.delete(metric, fold, axis=1)
        per_fold.append(int(np.argmax(others.mean(axis=1))) if others.size else 0)
    return per_fold, int(np.argmax(metric.mean(axis=1)))


def run_train(spark, features_uri: str, output, params: dict, *, experiment_id: str, tags: dict) -> list[dict]:
    """Train every (target, model) pair on the training split; returns one record per model.

    ``train.parallelism`` models train at once, each fitting ``train.parallelism`` of its CV fits at
    once: on a small cohort every fit is dozens of one-task Spark jobs whose cost is the driver's, so
    overlapping them keeps the cores busy (decision 0028). Records keep the (target, plan) order.
    """
    from genoflow.features.spec import FeatureSpec
    from genoflow.models.local_fit import JvmNumbers
    from genoflow.study import targets as study_targets

    t = params["train"]
    jvm = JvmNumbers.of(spark)
    meta = json.loads(output.storage.read_text(f"{features_uri}/features.json"))
    table = spark.read.parquet(f"{features_uri}/table").filter("split = 'train'").cache()
    work, frames = [], [table]
    for target, kind in study_targets(params).items():
        info = meta["targets"][target]
        spec = FeatureSpec.from_json(json.dumps(info["spec"]))
        folds = [(FeatureSpec.from_json(json.dumps(fold["spec"])),
                  spark.read.parquet(f"{features_uri}/{fold['path']}").cache(), fold.get("n_fit"))
                 for fold in info["folds"]]
        data = table.filter(f"`{target}` is not null").cache()
        frames += [data, *(fold for _, fold, _ in folds)]
        collected = Collected()  # the target's tables, for every plan's driver-side fits
        for plan in plans(t["models"]):
            if not plan.columns(spec):
                log.info("%s: no %s columns, so no %s", target, plan.baseline, plan.name)
                continue
            work.append((plan, target, kind, spec, data, folds, collected))

    def train(job) -> dict:
        plan, target, kind, spec, data, folds, collected = job
        record = _train_plan(plan, target, kind, spec, data, folds, params, output, meta, features_uri,
                             experiment_id=experiment_id, tags=tags, jvm=jvm, collected=collected)
        log.info("trained %s", record)
        return record

    try:
        trained = map_in_order(train, work, workers=int(t.get("parallelism", 1)))
    finally:
        for frame in frames:
            frame.unpersist()
    output.write_json("models.json", {"models": trained})
    return trained


def _train_plan(plan: Plan, target: str, kind: str, spec, data, folds, params: dict, output, meta: dict,
                features_uri: str, *, experiment_id: str, tags: dict, jvm, collected: Collected) -> dict:
    import mlflow

    from genoflow.registry.tracking import TAG_BASELINE, TAG_MODEL_FAMILY, TAG_TARGET, TAG_TARGET_TYPE

    started = time.time()
    t = params["train"]
    metric = _selection_metric(kind)
    grid = t["grid"].get(plan.family, {})
    features = plan.columns(spec)
    _, _, maps = _pipeline(plan, target, kind, features, grid, t)
    if plan.baseline:  # a reference, not a contender: the family's first setting, not a search
        maps = maps[:1]
    scores, cv_engine = _fold_scores(plan, target, kind, folds, grid, len(maps), t, jvm, collected)  # [grid, fold]
    per_fold, best = foldwise_choice(scores)
    cv = np.array([scores[g, k] for k, g in enumerate(per_fold)])
    run_tags = {**tags, TAG_TARGET: target, TAG_MODEL_FAMILY: plan.family, TAG_TARGET_TYPE: kind,
                **({TAG_BASELINE: plan.baseline} if plan.baseline else {})}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{target}-{plan.name}", tags=run_tags) as run:
        model, final_engine = _fit_final(plan, target, kind, features, data, grid, best, t, jvm, collected,
                                         n_rows=meta.get("n_train"))
        best_params = {p.name: v for p, v in maps[best].items()}
        mlflow.log_params({"target": target, "model_family": plan.family, "model": plan.name,
                           "n_features": len(features), "cv_folds": len(folds), "cv_engine": cv_engine,
                           "final_engine": final_engine,
                           **{f"best.{k}": v for k, v in best_params.items()}})
        mlflow.log_metrics({f"cv_{metric}": float(cv.mean()), f"cv_{metric}_sd": float(cv.std(ddof=1)),
                            **{f"cv_{metric}_fold{k}": float(v) for k, v in enumerate(cv)}})
        mlflow.log_dict(params, "params.json")
        mlflow.log_dict({"features": features}, "model_columns.json")
        # What serving needs to turn a patient's raw values into this model's inputs.
        mlflow.log_dict(json.loads(plan.spec(spec).to_json()), "feature_spec.json")
        if plan.baseline is None:
            _log_association(output.storage, features_uri, meta, target)
        model_path, portable_path = f"models/{target}/{plan.name}", f"portable/{target}/{plan.name}.json"
        # The same fitted model as plain arrays: the model API, and evaluate, score it without the JVM.
        portable = _save_model(model, output, model_path, run.info.run_id)
        mlflow.log_dict(portable, "portable_model.json")
        output.write_json(portable_path, portable)
    return {"target": target, "type": kind, "family": plan.name, "baseline": plan.baseline,
            "run_id": run.info.run_id, f"cv_{metric}": float(cv.mean()), f"cv_{metric}_sd": float(cv.std(ddof=1)),
            "cv_metric": f"cv_{metric}", "best_params": best_params, "features": features,
            "seconds": round(time.time() - started, 1), "model_path": model_path, "portable_path": portable_path}


def _selection_metric(kind: str) -> str:
    return "auc_roc" if kind == "binary" else "r2"


def _pipeline(plan: Plan, target: str, kind: str, features: list[str], grid: dict, t: dict):
    from genoflow.models import build_pipeline, param_grid

    pipeline, estimator = build_pipeline(plan.family, features=features, label=target, seed=int(t["seed"]),
                                         kind=kind)
    return pipeline, estimator, param_grid(estimator, plan.family, grid) or [{}]


def _fit_final(plan: Plan, target: str, kind: str, features: list[str], data, grid: dict, best: int, t: dict, jvm,
               collected: Collected, *, n_rows: int | None):
    """The grid point ``best`` refitted on every training row, and where the fit ran: the same
    PipelineModel(VectorAssembler -> model) that ``Pipeline.fit`` returns.

    With ``train.final_engine: auto`` and a fit `genoflow.models.local_fit` reproduces, the model is
    fitted on the driver and built as MLlib's own object (`genoflow.models.spark_model`, decision
    0037); else MLlib fits a cached assembled table (see :func:`assembled`) instead of re-running the
    assembler on every pass over the data."""
    from pyspark.ml import PipelineModel

    pipeline, estimator, maps = _pipeline(plan, target, kind, features, grid, t)
    assembler = pipeline.getStages()[0]
    setting = {param.name: value for param, value in estimator.extractParamMap(maps[best]).items()}
    if _fits_on_driver(plan, kind, [setting], [n_rows], t.get("final_engine", "auto"), jvm, final=True):
        return PipelineModel(stages=[assembler, _driver_fit(plan, target, kind, features, collected(data),
                                                            estimator, maps[best], setting, jvm)]), "driver"
    rows = assembled(assembler, data, target)
    try:
        model = estimator.fit(rows.select(target, "features"), params=maps[best])
    finally:
        rows.unpersist()
    return PipelineModel(stages=[assembler, model]), "mllib"


def _driver_fit(plan: Plan, target: str, kind: str, features: list[str], frame, estimator, extra, setting: dict,
                jvm):
    """``estimator.fit`` with ``extra`` params on the rows of ``frame`` (a `Collected` table), fitted on
    the driver and returned as MLlib's model object."""
    from genoflow.models import local_fit
    from genoflow.models.spark_model import from_local_fit

    x, y = _finite(frame, target, features, f"{target} {plan.name}")
    fitted = local_fit.fit(plan.family, kind, setting, x, y, jvm=jvm, partition=frame["_partition"].to_numpy(),
                           mllib_nodes=True)
    return from_local_fit(estimator, extra, fitted)


class Collected:
    """Spark tables collected to the driver once each, whole and in row order, with each row's Spark
    partition (``_partition``: a forest's bootstrap draws one stream per partition, as MLlib sees them),
    for the driver-side fits of every plan that reads them: one Spark job per table, not per plan and
    table. Only tables that `local_fit.supports` (at most its ``MAX_ROWS`` rows) come here."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tables: dict[int, tuple] = {}  # id(table) -> (table, its lock, [its pandas frame])

    def __call__(self, table):
        from pyspark.sql import functions as F

        with self._lock:
            _, lock, frame = self._tables.setdefault(id(table), (table, threading.Lock(), []))
        with lock:  # another plan's thread may be collecting this table: wait for its frame
            if not frame:
                frame.append(table.select(F.spark_partition_id().alias("_partition"), "*").toPandas())
            return frame[0]


def _finite(frame, target: str, columns: list[str], what: str) -> tuple:
    """``frame``'s model inputs (rows x columns) and labels, which the features step writes finite."""
    bad = [c for c in columns if not np.isfinite(frame[c].to_numpy(np.float64)).all()]
    if bad:
        raise ValueError(f"{what}: inputs {bad} hold null or NaN values; the features step writes finite model "
                         "inputs, so its output is damaged")
    return frame[columns].to_numpy(np.float64), frame[target].to_numpy(np.float64)


def assembled(assembler, table, *keep: str):
    """``table``'s ``keep`` columns and the assembled ``features`` vector, cached and materialised.

    MLlib fits on a small table are dozens of Spark jobs each (a GBT of 30 trees: ~90), and every one
    of them would otherwise re-run the assembler over the input (LR would also cache its own copy);
    one cached vector table per fold serves every grid point's fit. The rows and their order are the
    input's, so the fitted models are the ones a Pipeline fit gives.
    """
    rows = assembler.transform(table).select(*(f"`{c}`" for c in keep), "features").cache()
    rows.count()
    return rows


def _fold_scores(plan: Plan, target: str, kind: str, folds, grid: dict, n_grid: int, t: dict, jvm,
                 collected: Collected):
    """The metric of every grid point on every fold's validation rows, fitted on its fit rows, and where
    the fits ran: on the driver with MLlib's algorithm when `genoflow.models.local_fit` reproduces it
    (``train.cv_engine: auto``, decision 0035), else with MLlib itself."""
    _, estimator, maps = _pipeline(plan, target, kind, plan.columns(folds[0][0]), grid, t)
    settings = [{param.name: value for param, value in estimator.extractParamMap(extra).items()}
                for extra in maps[:n_grid]]
    if _fits_on_driver(plan, kind, settings, [n_fit for *_, n_fit in folds], t.get("cv_engine", "auto"), jvm):
        return _driver_fold_scores(plan, target, kind, folds, settings, t, jvm, collected), "driver"
    return _mllib_fold_scores(plan, target, kind, folds, grid, n_grid, t), "mllib"


def _fits_on_driver(plan: Plan, kind: str, settings: list[dict], sizes: list, engine: str, jvm, *,
                    final: bool = False) -> bool:
    """Whether `genoflow.models.local_fit` fits these settings on tables of these sizes as MLlib would
    (``engine``: ``train.cv_engine`` or ``train.final_engine``), with what it needs from the JVM: MLlib's
    random draws and exp, and for a final model, the builder of MLlib's model object."""
    from genoflow.models import local_fit
    from genoflow.models.spark_model import builder_on_classpath

    if engine != "auto" or None in sizes:
        return False
    missing = ("org.genoflow.ml.JvmMath (MLlib's random draws and exp)" if jvm is None and
               (plan.family == "random_forest" or (plan.family == "gbt" and kind == "binary")) else
               "org.genoflow.ml.TreeNodes (MLlib's model objects)" if final and not builder_on_classpath() else None)
    if missing:
        log.warning("%s: %s fits with MLlib: %s is missing or out of date on the driver's classpath (make codec)",
                    plan.name, "the final model" if final else "CV", missing)
        return False
    return all(local_fit.supports(plan.family, kind, setting, max(sizes)) for setting in settings)


def _driver_fold_scores(plan: Plan, target: str, kind: str, folds, settings: list[dict], t: dict, jvm,
                        collected: Collected) -> np.ndarray:
    """`_mllib_fold_scores` without a Spark job per pass: each fold's table comes to the driver once (one
    job, for every plan of the target) and every grid point is fitted there by `genoflow.models.local_fit`
    and scored as a portable model."""
    from genoflow.models import local_fit
    from genoflow.models.portable import PortableModel

    def fold_arrays(k: int):
        spec, table, _ = folds[k]
        columns, what, frame = plan.columns(spec), f"{target} fold {k} {plan.name}", collected(table)
        fit, validate = (frame[frame["role"] == role] for role in ("fit", "validate"))
        return (*_finite(fit, target, columns, what), fit["_partition"].to_numpy(),
                *_finite(validate, target, columns, what))

    def fit_and_score(job: tuple[int, int]) -> float:
        g, k = job
        x, y, partition, x_validate, y_validate = arrays[k]
        model = PortableModel.from_dict(local_fit.fit(plan.family, kind, settings[g], x, y, jvm=jvm,
                                                      partition=partition))
        scores = model.predict_proba(x_validate) if kind == "binary" else model.predict(x_validate)
        return fold_metric(y_validate, scores, kind)

    workers = int(t.get("parallelism", 1))
    arrays = map_in_order(fold_arrays, list(range(len(folds))), workers=workers)
    values = map_in_order(fit_and_score, [(g, k) for g in range(len(settings)) for k in range(len(folds))],
                          workers=workers)
    return np.asarray(values, dtype=float).reshape(len(settings), len(folds))


def _mllib_fold_scores(plan: Plan, target: str, kind: str, folds, grid: dict, n_grid: int, t: dict) -> np.ndarray:
    """Every grid point on every fold with MLlib, ``train.parallelism`` fits at once (MLlib fits of small
    tables are mostly Spark job overhead). Each fold's fit and validation rows are assembled once
    (:func:`assembled`) for all grid points."""
    def fold_rows(k: int):
        spec, table, _ = folds[k]
        assembler = _pipeline(plan, target, kind, plan.columns(spec), grid, t)[0].getStages()[0]
        return (assembled(assembler, table.filter("role = 'fit'"), target),
                assembled(assembler, table.filter("role = 'validate'"), "pid", target))

    def fit_and_score(job: tuple[int, int]) -> float:
        g, k = job
        fit_rows, validate_rows = rows[k]
        _, estimator, maps = _pipeline(plan, target, kind, plan.columns(folds[k][0]), grid, t)
        model = estimator.fit(fit_rows, params=maps[g])
        scored = prediction_frame(model.transform(validate_rows), target, kind)
        return fold_metric(scored["label"].to_numpy(), scored["score"].to_numpy(), kind)

    workers = int(t.get("parallelism", 1))
    rows = map_in_order(fold_rows, list(range(len(folds))), workers=workers)
    try:
        values = map_in_order(fit_and_score, [(g, k) for g in range(n_grid) for k in range(len(folds))],
                              workers=workers)
    finally:
        for frame in (frame for pair in rows for frame in pair):
            frame.unpersist()
    return np.asarray(values, dtype=float).reshape(n_grid, len(folds))


def prediction_frame(scored, target: str, kind: str):
    """pandas (pid, label, score) of a transformed DataFrame: P(case) for binary, the prediction otherwise."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    score = vector_to_array("probability")[1] if kind == "binary" else F.col("prediction")
    return scored.select("pid", F.col(f"`{target}`").alias("label"), score.alias("score")).toPandas()


def fold_metric(labels: np.ndarray, scores: np.ndarray, kind: str) -> float:
    """AUC-ROC (binary) or R^2 (quantitative) of one fold's validation patients."""
    from sklearn.metrics import r2_score, roc_auc_score

    return float(roc_auc_score(labels, scores) if kind == "binary" else r2_score(labels, scores))


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


def _save_model(model, output, model_path: str, run_id: str) -> dict:
    """Save the fitted model once and use that save three times: as the active run's MLflow model
    (``model/``, for the registry), copied as files under the step output at ``model_path`` (on any
    storage root), and read back as the model's portable form
    (:func:`genoflow.models.portable.export_portable`), which this returns.

    A Spark save of a PipelineModel is several Spark jobs and a committed write per stage (~0.8 s of the
    driver here); mlflow.spark.log_model after a plain save paid it twice. The MLflow model is the one
    log_model writes (MLmodel with the run id, ``sparkml/``, the stated requirements), so
    ``runs:/<run>/model`` registers and loads as before.
    """
    import os
    import tempfile

    import mlflow
    from mlflow.models import Model

    from genoflow.models.portable import export_portable

    with tempfile.TemporaryDirectory(prefix="genoflow-model-") as tmp:
        local = os.path.join(tmp, "model")
        mlflow.spark.save_model(model, local, mlflow_model=Model(artifact_path="model", run_id=run_id),
                                pip_requirements=_model_requirements())
        if not output.storage.put(os.path.join(local, "sparkml"), output.path(model_path)):
            raise FileExistsError(f"{output.path(model_path)}: a model is already there; the step output is new")
        mlflow.log_artifacts(local, artifact_path="model")
        return export_portable(model, saved=os.path.join(local, "sparkml"))


def _model_requirements() -> list[str]:
    """The serving environment, stated rather than inferred: inference would reload every model in a
    subprocess to capture its imports (~15 s per model here)."""
    import mlflow
    import pyspark

    return [f"pyspark=={pyspark.__version__}", f"mlflow=={mlflow.__version__}"]

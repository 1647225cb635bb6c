"""evaluate: held-out metrics of every trained model, the candidate of each target, the gate's numbers.

Each model is scored on the test patients only, as its portable form (what the model API serves), and
its metrics are logged on its own MLflow run, each with its uncertainty (:mod:`genoflow.evaluation.metrics`):
AUC-ROC with its 95% DeLong CI, AUC-PR, Brier score and calibration for a binary target; R^2 and RMSE
with 95% CIs for a quantitative one; a ROC curve PNG and a metrics JSON. The candidate of a target is the
model family with the best nested-CV metric (the test split never picks a model); the baselines are never
candidates.

For the promotion gate the candidate's run also gets, on the same held-out patients:
``gate_p_vs_baseline`` (one-sided paired test of the candidate against the covariates-only baseline)
and, when the target has a champion, ``gate_champion_delta`` (candidate minus champion metric, the
champion scored with its own feature spec and portable model on *these* patients; the split is by
pseudonym hash, so an earlier cohort's champion never trained on them) with the champion's version
in the tag ``genoflow.gate.champion_version``. Per-patient held-out scores go to ``scores/``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

import numpy as np

from genoflow.registry.tracking import GATE_CHAMPION_DELTA, GATE_P_VS_BASELINE, TAG_GATE_CHAMPION
from genoflow.storage.parts import write_driver_table

__all__ = ["run_evaluate"]

log = logging.getLogger(__name__)


def run_evaluate(spark, features_uri: str, train_uri: str, output, params: dict) -> dict:
    import pandas as pd

    from genoflow.spark import map_in_order
    from genoflow.study import targets as study_targets

    storage = output.storage
    models = json.loads(storage.read_text(f"{train_uri}/models.json"))["models"]
    kinds = study_targets(params)
    portables = {m["run_id"]: _portable_of(m, storage, train_uri) for m in models}
    test = spark.read.parquet(f"{features_uri}/table").filter("split = 'test'")
    all_scores = held_out_scores(test, models, portables, kinds)

    def held_out(m: dict):
        pairs = all_scores[all_scores["run_id"] == m["run_id"]].drop(columns="run_id").reset_index(drop=True)
        metrics = _log_held_out(m, pairs, kinds[m["target"]])
        return pairs.assign(target=m["target"], family=m["family"], run_id=m["run_id"]), {**m, **metrics}

    # Logging a model's metrics and plot on its MLflow run is mostly waiting: models overlap (train.parallelism).
    scored = map_in_order(held_out, models, workers=int(params["train"].get("parallelism", 1)))
    scores, results = [pairs for pairs, _ in scored], [result for _, result in scored]

    candidates, gates = {}, {}
    for target, kind in kinds.items():
        own = [r for r in results if r["target"] == target]
        candidate = max((r for r in own if not r.get("baseline")), key=lambda r: r[r["cv_metric"]])
        candidates[target] = candidate["run_id"]
        gates[target] = _gate(spark, features_uri, storage, params, target, kind, candidate, own, scores)
    output.write_json("metrics.json", {"models": results, "candidates": candidates, "gates": gates})
    # Per-patient held-out scores (pseudonyms only): what the model API must reproduce exactly.
    write_driver_table(spark, pd.concat(scores, ignore_index=True), output.path("scores"))
    return {"models": results, "candidates": candidates, "gates": gates}


def _portable_of(m: dict, storage, train_uri: str) -> dict:
    """A trained model's portable form: from the train output, or, where an older genoflow committed that
    output without it, from the model's MLflow run, where train has always logged it."""
    import mlflow

    if "portable_path" in m:
        return json.loads(storage.read_text(f"{train_uri}/{m['portable_path']}"))
    return mlflow.artifacts.load_dict(f"runs:/{m['run_id']}/portable_model.json")


def held_out_scores(test, models: list[dict], portables: dict[str, dict], kinds: dict[str, str]):
    """Every model's score of each test patient labelled for its target, in one Spark pass over ``test``:
    pandas (run_id, pid, label, score), each model's rows in the table's order. A model scores as its
    portable form (``portables[run_id]``, :mod:`genoflow.models.portable`): what the model API serves,
    equal to the Spark model's ``probability[1]`` (binary) or ``prediction`` to rounding (decision 0036).
    """
    import pandas as pd

    plans = [(m["run_id"], m["target"], kinds[m["target"]], portables[m["run_id"]]) for m in models]
    columns = sorted({"pid", *(target for _, target, _, _ in plans),
                      *(name for *_, portable in plans for name in portable["features"])})

    def score(frames):
        from genoflow.models.portable import PortableModel

        scorers = [(run_id, target, kind, PortableModel.from_dict(portable)) for run_id, target, kind, portable
                   in plans]
        for frame in frames:
            for run_id, target, kind, model in scorers:
                rows = frame[frame[target].notna()]
                if len(rows):
                    x = rows[model.features].to_numpy(np.float64)
                    yield pd.DataFrame({"run_id": run_id, "pid": rows["pid"].to_numpy(),
                                        "label": rows[target].to_numpy(np.float64),
                                        "score": model.predict_proba(x) if kind == "binary" else model.predict(x)})

    return test.select(*(f"`{c}`" for c in columns)).mapInPandas(
        score, "run_id string, pid string, label double, score double").toPandas()


def _log_held_out(m: dict, pairs, kind: str) -> dict:
    """Held-out metrics of one model (numbers with their CIs), logged on its run with a plot."""
    import mlflow

    from genoflow.evaluation.metrics import binary_report, quantitative_report, roc_points

    y, score = pairs["label"].to_numpy(dtype=float), pairs["score"].to_numpy(dtype=float)
    report = binary_report(y, score) if kind == "binary" else quantitative_report(y, score)
    metrics = {f"test_{k}": float(v) for k, v in report.items() if isinstance(v, int | float) and np.isfinite(v)}
    with mlflow.start_run(run_id=m["run_id"]):
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "binary":
                png = os.path.join(tmp, "roc_curve.png")
                fpr, tpr = roc_points(y, score)
                plot_roc(fpr, tpr, metrics["test_auc_roc"], f"{m['target']} — {m['family']}", png)
                mlflow.log_artifact(png)
            with open(os.path.join(tmp, "metrics.json"), "w") as handle:
                json.dump(report, handle, indent=2, default=float)
            mlflow.log_artifact(os.path.join(tmp, "metrics.json"))
    log.info("%s %s: held-out %s", m["target"], m["family"],
             {k: round(v, 4) for k, v in metrics.items() if "bin" not in k})
    return metrics


def _gate(spark, features_uri: str, storage, params: dict, target: str, kind: str, candidate: dict,
          own: list[dict], scores: list) -> dict:
    """The gate's numbers for a target's candidate, logged on its run (see the module docstring)."""
    import mlflow

    from genoflow.registry.tracking import TAG_CANDIDATE

    by_run = {s["run_id"].iloc[0]: s for s in scores if len(s)}
    mine = by_run[candidate["run_id"]]
    baseline = next((r for r in own if r.get("baseline") == "covariates"), None)
    base_score = (by_run[baseline["run_id"]].set_index("pid")["score"].reindex(mine["pid"]).to_numpy()
                  if baseline else np.full(len(mine), mine["label"].mean()))  # no covariates: the intercept
    gate = {"baseline": baseline["run_id"] if baseline else None,
            GATE_P_VS_BASELINE: _paired_p(mine["label"].to_numpy(float), mine["score"].to_numpy(float),
                                          base_score, kind)}
    champion = _champion_scores(spark, features_uri, storage, params, target, kind, mine["pid"])
    client = mlflow.MlflowClient()
    if champion is not None:
        version, champion_score = champion
        gate[TAG_GATE_CHAMPION] = version
        y = mine["label"].to_numpy(float)
        gate[GATE_CHAMPION_DELTA] = _metric(y, mine["score"].to_numpy(float), kind, params) - \
            _metric(y, champion_score, kind, params)
        client.set_tag(candidate["run_id"], TAG_GATE_CHAMPION, version)
    with mlflow.start_run(run_id=candidate["run_id"]):
        mlflow.log_metrics({k: float(v) for k, v in gate.items() if k in (GATE_P_VS_BASELINE, GATE_CHAMPION_DELTA)})
    client.set_tag(candidate["run_id"], TAG_CANDIDATE, "true")
    log.info("%s: candidate %s, gate %s", target, candidate["family"], gate)
    return gate


def _metric(y: np.ndarray, score: np.ndarray, kind: str, params: dict) -> float:
    """The gate's held-out metric (``promote.metric`` for a binary target, R^2 for a quantitative one)."""
    from genoflow.evaluation.metrics import binary_report, quantitative_report
    from genoflow.registry.tracking import HELD_OUT_METRIC

    if kind == "binary":
        return float(binary_report(y, score)[params["promote"]["metric"].removeprefix("test_")])
    return float(quantitative_report(y, score)[HELD_OUT_METRIC[kind].removeprefix("test_")])


def _paired_p(y: np.ndarray, candidate: np.ndarray, baseline: np.ndarray, kind: str) -> float:
    """One-sided p that the candidate beats the baseline on the same patients: paired DeLong on AUC
    (binary), a paired test of squared errors (quantitative)."""
    from genoflow.evaluation.metrics import paired_delong, paired_squared_error_test

    if kind == "binary":
        return float(paired_delong(y, candidate, baseline)[-1])
    return float(paired_squared_error_test(y, candidate, baseline))


def _champion_scores(spark, features_uri: str, storage, params: dict, target: str, kind: str, pids):
    """(version, scores) of the target's current champion on the patients ``pids`` (in that order),
    through its own feature spec and portable model; None without a champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from genoflow.features.spec import FeatureSpec
    from genoflow.models.portable import PortableModel
    from genoflow.registry.promotion import CHAMPION
    from genoflow.registry.tracking import model_name

    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name(params["promote"]["model_name_prefix"], target),
                                                    CHAMPION)
    except MlflowException:
        return None
    spec = FeatureSpec.from_json(json.dumps(mlflow.artifacts.load_dict(f"runs:/{version.run_id}/feature_spec.json")))
    model = PortableModel.from_dict(mlflow.artifacts.load_dict(f"runs:/{version.run_id}/portable_model.json"))
    from genoflow.genotypes import block_budget

    raw, genotype_scores = _raw_patients(spark, features_uri, storage, spec, list(pids), block_budget(params))
    x = spec.transform(raw, genotype_scores)
    scores = model.predict_proba(x) if kind == "binary" else model.predict(x)
    return str(version.version), np.asarray(scores, dtype=float)


def _raw_patients(spark, features_uri: str, storage, spec, pids: list[str], budget: int):
    """The raw values ``spec`` reads of the patients ``pids`` (patient columns from the sample table,
    dosages of its selected variants from the genotype table) and their genotype scores, or None
    without score columns.

    The scores (PCs, polygenic scores, burdens) are computed in Spark, as the features job computes
    them: their variants (every pruned variant for the PCs) times the patients would not fit the driver
    at 100,000 patients; only the K selected variants' dosages are collected.
    """
    import pandas as pd

    from genoflow.features.learning import score_blocks
    from genoflow.genotypes import size_parquet_reader, unpack_dosages, variant_label

    preprocess_uri = json.loads(storage.read_text(f"{features_uri}/inputs.json"))["upstream"]["preprocess"]
    everyone = spark.read.parquet(f"{preprocess_uri}/samples").toPandas()
    samples = everyone.set_index("pid").loc[pids]
    raw = {col: samples[col].to_numpy() for col in samples.columns}
    index = samples["sample_index"].to_numpy()
    size_parquet_reader(spark, len(everyone))  # a genotype row holds every patient's dosage
    genotypes = spark.read.parquet(f"{preprocess_uri}/genotypes")
    keys = pd.DataFrame(spec.variants, columns=["contig", "pos", "ref", "alt"])
    if len(keys):
        wanted = spark.createDataFrame(keys[["contig", "pos", "ref", "alt"]].astype({"pos": "int64"}))
        rows = genotypes.join(wanted, ["contig", "pos", "ref", "alt"]) \
            .select("contig", "pos", "ref", "alt", "dosages").collect()
        raw.update({variant_label(r.contig, r.pos, r.ref, r.alt): unpack_dosages(r.dosages)[index].astype(float)
                    for r in rows})
    if not spec.score_blocks:
        return raw, None
    values = score_blocks(spark, genotypes, index, spec.score_blocks, budget)
    return raw, np.column_stack([values[id(block)] for block in spec.score_blocks])


def plot_roc(fpr, tpr, auc: float, title: str, path: str) -> None:
    from matplotlib.figure import Figure  # not pyplot: its global state is not for threads (models overlap)

    fig = Figure(figsize=(4.5, 4.5), dpi=110)
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)

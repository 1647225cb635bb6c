"""drift: compare an incoming cohort with the training data of the registry's champion (a Spark job).

The champion of ``genoflow_<monitor.target>`` names its MLflow run; the run's tags and
``params.json`` give the dataset version and params it was trained with, hence (through
:func:`genoflow.config.step_key`) the committed training genotype table
(``steps/preprocess/<key>/genotypes``) and feature table (``steps/features/<key>/table``); its
``feature_spec.json`` gives the model's inputs. The new cohort (a VCF plus per-patient folders,
like ``raw/``) goes through the preprocess code paths with the champion's preprocess params: the
same VCF decoding, REF check against the reference FASTA, variant and sample QC, clinical
validation, read QC and pseudonyms. Then, on QC-passing patients:

- **allele frequencies**: every training QC-passing variant, training-split patients vs new
  patients (:func:`genoflow.monitoring.drift.allele_frequency_shift`);
- **features**: PSI of each model input, training split vs the new patients' observed values, both
  computed from raw values by the champion's feature spec (imputed values are left out: a batch
  without reads is not a read-QC shift; training patients' polygenic scores are recomputed with the
  weights new patients get, not the cross-fitted ones of the feature table);
- **scores**: the champion (``mlflow.spark.load_model``) scores the held-out test split and the new
  patients (training-split scores of a tree model are optimistically confident, which would look
  like drift); PSI and KS between the two, and the AUC on the batch when it has labels.

The report (``report.json``, ``drift_report.png``, per-variant ``af_shift/``, the batch's
``genotypes/`` and ``samples/``) commits atomically to ``<root>/steps/drift/<key>/``, the key
hashing the cohort files' identity, the champion's run and the monitor params; a rerun on the
same inputs reuses it. Each invocation logs one MLflow run in experiment ``monitor.experiment``
tagged with ``--run-id`` (the Airflow run id), with metric ``drift_detected`` 0/1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
import time

__all__ = ["main", "build_parser", "resolve_monitor", "find_drift_run", "TAG_AIRFLOW_RUN_ID", "MONITOR_DEFAULTS"]

log = logging.getLogger("genoflow")

TAG_AIRFLOW_RUN_ID = "genoflow.airflow_run_id"
TAG_DRIFT_REPORT = "genoflow.drift_report"
TAG_MONITORED_MODEL = "genoflow.monitored_model"
TAG_MONITORED_VERSION = "genoflow.monitored_version"
TAG_MONITORED_RUN = "genoflow.monitored_run_id"
TAG_COHORT = "genoflow.cohort_vcf"

MONITOR_DEFAULTS = {
    "cohort_vcf": "incoming/latest/cohort.vcf.gz",
    "patient_dir": "incoming/latest/patient_data",
    "target": "disease_status",
    "model_name_prefix": "genoflow",
    "experiment": "drift_monitor",
    "alpha": 0.05,
    "min_significant_fraction": 0.01,
    "max_fst": 0.01,
    "psi_bins": 10,
    "score_psi_bins": 5,
    "psi_threshold": 0.25,
    "score_psi_threshold": 0.25,
}
# Settings that change what the drift step computes (the rest only say where and when).
_KEYED = ("cohort_vcf", "patient_dir", "target", "model_name_prefix", "alpha", "min_significant_fraction",
          "max_fst", "psi_bins", "score_psi_bins", "psi_threshold", "score_psi_threshold")
_THRESHOLDS = ("min_significant_fraction", "max_fst", "psi_threshold", "score_psi_threshold")


def build_parser() -> argparse.ArgumentParser:
    from genoflow.config import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="jobs/drift.py",
        description="genoflow drift (a Spark job): an incoming cohort vs the champion model's training data")
    parser.add_argument("--storage-root", default=settings.storage_root,
                        help="URI every input and output lives under (default: %(default)s)")
    parser.add_argument("--monitor-json", default="{}",
                        help="the monitor params as JSON, merged over params.yaml's monitor section")
    parser.add_argument("--run-id", default="manual",
                        help="identifier of the calling run (the Airflow run id), tagged on the MLflow run")
    parser.add_argument("--git-commit", default="unknown", help="commit of the code that runs")
    return parser


def resolve_monitor(overrides: dict | None = None, params_file=None) -> dict:
    """The monitor params: built-in defaults < params.yaml ``monitor:`` < ``overrides``."""
    from genoflow.config import Settings, load_params, merge_params

    path = params_file or Settings().params_file
    from_file = load_params(path).get("monitor", {}) if os.path.exists(path) else {}
    return merge_params(merge_params(MONITOR_DEFAULTS, from_file or {}), overrides or {})


def main(argv: list[str] | None = None) -> int:
    from genoflow.pipeline.runner import report_errors, say
    from genoflow.versioning import code_commit

    args = build_parser().parse_args(argv)
    if args.git_commit == "unknown":
        args.git_commit = code_commit()

    def body() -> int:
        result = run(args, resolve_monitor(json.loads(args.monitor_json)))
        say(f"genoflow drift: drift_detected={int(result['drift_detected'])} "
            f"mlflow_run={result['mlflow_run_id']} report={result['report_uri']}")
        return 0

    return report_errors("drift", body, args.storage_root)


# --------------------------------------------------------------------------- orchestration


def run(args, monitor: dict) -> dict:
    from genoflow.config import Settings
    from genoflow.errors import InputError
    from genoflow.pipeline.runner import step_uri
    from genoflow.spark import get_spark
    from genoflow.storage import HadoopStorage

    settings = Settings()
    existing = find_drift_run(args.run_id, monitor["experiment"], settings.mlflow_tracking_uri)
    if existing is not None and args.run_id != "manual":
        log.info("drift run %s already logged for %s: nothing to do", existing.info.run_id, args.run_id)
        return {"drift_detected": existing.data.metrics.get("drift_detected") == 1.0,
                "mlflow_run_id": existing.info.run_id, "report_uri": existing.data.tags.get(TAG_DRIFT_REPORT)}

    champion = champion_of(monitor, settings.mlflow_tracking_uri)
    spark = get_spark(f"genoflow-drift-{champion['run_id'][:8]}")
    storage = HadoopStorage(spark, args.storage_root)
    params, version = champion["params"], champion["dataset_version"]
    upstream = {step: step_uri(args.storage_root, step, version, params) for step in ("preprocess", "features")}
    for step, uri in upstream.items():
        if not storage.is_committed(uri):
            raise InputError(uri, f"the champion's {step} output is not under this storage root "
                                  f"(dataset {version}); was it trained against another root?")
    cohort = {"vcf": storage.uri(monitor["cohort_vcf"]), "patient_dir": storage.uri(monitor["patient_dir"])}
    for key, uri in cohort.items():
        if not storage.exists(uri):
            raise InputError(uri, f"does not exist (monitor.{'cohort_vcf' if key == 'vcf' else key} in params)")

    key = drift_key(storage, cohort, champion, monitor)
    out_uri = storage.uri("steps", "drift", key)
    started = time.time()
    if storage.is_committed(out_uri):
        log.info("drift report %s is already committed: reusing it", out_uri)
    else:
        with storage.step_output(out_uri) as output:
            report, png = compute_drift(spark, storage, output, champion, upstream, cohort, monitor,
                                        settings.checked_pseudonym_key())  # weak keys refused (decision 0018)
            output.write_json("report.json", report)
            storage.write_bytes(output.path("drift_report.png"), png)
            output.write_json("inputs.json", {
                "step": "drift", "key": key, "git_commit": args.git_commit, "storage_root": args.storage_root,
                "cohort": cohort, "upstream": upstream, "champion": _champion_public(champion),
                "monitor": monitor, "seconds": round(time.time() - started, 1)})
        log.info("drift committed %s in %.1f s", out_uri, time.time() - started)
    report = json.loads(storage.read_text(f"{out_uri}/report.json"))
    png = storage.read_bytes(f"{out_uri}/drift_report.png")
    run_id = log_drift_run(report, png, out_uri, monitor, run_id=args.run_id, git_commit=args.git_commit,
                           settings=settings)
    return {"drift_detected": report["drift_detected"], "mlflow_run_id": run_id, "report_uri": out_uri}


def champion_of(monitor: dict, tracking_uri: str) -> dict:
    """The champion model version of ``<prefix>_<target>``, its run, params and feature spec."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from genoflow.errors import InputError
    from genoflow.features.spec import FeatureSpec
    from genoflow.registry import TAG_DATASET_VERSION, TAG_RUN_KEY, model_name

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    name = model_name(monitor["model_name_prefix"], monitor["target"])
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        raise InputError(f"models:/{name}@champion", "no champion to monitor yet: run genomic_risk_training "
                                                      "first") from None
    run = client.get_run(version.run_id)
    tags = run.data.tags
    if TAG_DATASET_VERSION not in tags:
        raise InputError(f"runs:/{version.run_id}", f"has no {TAG_DATASET_VERSION} tag: not a genoflow run")
    params = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/params.json")
    spec = FeatureSpec.from_json(json.dumps(mlflow.artifacts.load_dict(f"runs:/{version.run_id}/feature_spec.json")))
    return {"model_name": name, "version": str(version.version), "run_id": version.run_id,
            "model_uri": f"models:/{name}/{version.version}", "dataset_version": tags[TAG_DATASET_VERSION],
            "run_key": tags.get(TAG_RUN_KEY), "target": monitor["target"], "params": params, "spec": spec}


def _champion_public(champion: dict) -> dict:
    return {k: v for k, v in champion.items() if k not in ("params", "spec")}


def drift_key(storage, cohort: dict, champion: dict, monitor: dict) -> str:
    """Content address of one drift report: the cohort files' identity, the champion run, the settings.

    The files' identity is their Hadoop status (length, modification time, and for folders file
    count and total size), so replacing a batch in place gives a new report.
    """
    identity = {name: storage.identity(uri) for name, uri in cohort.items()}
    canonical = json.dumps({"cohort": identity, "champion": champion["run_id"],
                            "monitor": {k: monitor[k] for k in _KEYED}}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- the statistics


def compute_drift(spark, storage, output, champion: dict, upstream: dict, cohort: dict, monitor: dict,
                  pseudonym_key: str) -> tuple[dict, bytes]:
    """Run the comparison, write the batch tables and per-variant statistics; return (report, png)."""
    import numpy as np

    from genoflow.genotypes import block_budget, size_parquet_reader
    from genoflow.monitoring import drift
    from genoflow.pipeline import preprocess as pp
    from genoflow.pseudonym import pseudonym_order

    p = champion["params"]["preprocess"]
    spec = champion["spec"]
    vcf_uri, patient_uri = cohort["vcf"], cohort["patient_dir"]

    # The batch, through the preprocess code paths with the champion's preprocess params.
    header = pp.read_vcf_header(spark, vcf_uri)
    study = pp.load_study(spark, storage, champion["params"], header.samples, vcf_uri, patient_uri=patient_uri)
    reference = pp._optional(storage, p, "reference_fasta", pp.read_reference)
    genes = pp._optional(storage, p, "annotations_gff", pp.read_genes_file)
    budget = block_budget(champion["params"])
    parsed_uri = output.path("parsed-before-order")
    pp.ingest_vcf(spark, vcf_uri, header, parsed_uri, reference=reference, genes=genes, p=p, budget=budget)
    size_parquet_reader(spark, len(header.samples), budget)
    # The batch's tables, like preprocess's, hold the samples sorted by pseudonym (decision 0018).
    order = pseudonym_order(header.samples, pseudonym_key)
    pp.reorder_dosages(spark.read.parquet(parsed_uri), np.asarray(order)).write.parquet(output.path("genotypes"))
    storage.delete(parsed_uri)
    new_genotypes = spark.read.parquet(output.path("genotypes"))
    if new_genotypes.limit(1).count() == 0:
        from genoflow.errors import InputError

        raise InputError(vcf_uri, "no variant records after the header")
    sample_qc = pp.compute_sample_qc(new_genotypes, len(header.samples))
    read_qc = pp.load_read_qc(spark, patient_uri)
    samples = pp.build_sample_table([header.samples[i] for i in order], study, sample_qc, read_qc, p, pseudonym_key)
    spark.createDataFrame(samples).coalesce(1).write.parquet(output.path("samples"))
    new_kept = samples[samples["sample_qc_pass"]].reset_index(drop=True)
    log.info("batch: %d samples, %d pass QC", len(samples), len(new_kept))

    # The champion's training data.
    ref_samples = spark.read.parquet(f"{upstream['preprocess']}/samples").toPandas()
    table = spark.read.parquet(f"{upstream['features']}/table").toPandas()
    train = table[table["split"] == "train"]
    ref_index = ref_samples.set_index("pid").loc[train["pid"], "sample_index"].to_numpy()
    new_index = new_kept["sample_index"].to_numpy()

    # Allele frequencies of every training QC-passing variant.
    size_parquet_reader(spark, max(len(ref_samples), len(header.samples)), budget)  # the wider of the two tables
    ref_genotypes = spark.read.parquet(f"{upstream['preprocess']}/genotypes").filter("qc_pass")
    counts = _allele_counts(spark, ref_genotypes, new_genotypes, ref_index, new_index)
    shift = drift.allele_frequency_shift(counts["ref_ac"], counts["ref_an"], counts["new_ac"], counts["new_an"])
    af = counts.assign(**{k: v for k, v in shift.items()})
    af_summary = drift.summarise_af_shift(shift, counts["ref_an"].to_numpy(), counts["new_an"].to_numpy(),
                                          alpha=float(monitor["alpha"]))
    af_summary["n_training_variants_missing_in_batch"] = int((counts["new_an"] == 0).sum())
    spark.createDataFrame(af).coalesce(1).write.parquet(output.path("af_shift"))

    # Model inputs: the new patients' observed values vs the training split's, both computed from
    # raw values by the champion's spec, as the model API computes them. (The feature table holds
    # cross-fitted polygenic scores for training patients, which no new patient gets.)
    ref_raw, ref_inputs = _model_inputs(spark, ref_genotypes,
                                        ref_samples.set_index("pid").loc[train["pid"]].reset_index(), spec)
    raw, inputs = _model_inputs(spark, new_genotypes, new_kept, spec)
    bins = int(monitor["psi_bins"])
    psi = {}
    for column in spec.names:
        observed = _observed(raw, inputs, column)
        psi[column] = (drift.population_stability_index(_observed(ref_raw, ref_inputs, column), observed, bins)
                       if np.isfinite(observed).any() else None)
    observed_psi = {k: v for k, v in psi.items() if v is not None}
    max_feature = max(observed_psi, key=observed_psi.get) if observed_psi else None

    # Scores of the champion: the held-out test split vs the batch.
    model = _load_model(champion["model_uri"])
    test = table[table["split"] == "test"]
    ref_scores = _score(spark, model, test[spec.names])
    new_scores = _score(spark, model, inputs)
    score = drift.score_drift(ref_scores, new_scores, n_bins=int(monitor["score_psi_bins"]))
    labels = new_kept[champion["target"]].to_numpy(dtype=float)
    batch_auc = _auc(new_scores, labels)

    summary = {"af": af_summary, "max_feature_psi": observed_psi[max_feature] if max_feature else None,
               "max_psi_feature": max_feature, "score": score}
    thresholds = {k: float(monitor[k]) for k in _THRESHOLDS}
    detected, reasons = drift.drift_decision(summary, thresholds)
    top = af.sort_values("chi2", ascending=False).head(20)
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cohort": {**cohort, "n_samples": len(samples), "n_samples_pass_qc": len(new_kept),
                   "n_variants_in_batch": int(new_genotypes.count())},
        "champion": _champion_public(champion),
        "reference": {"n_training_patients": len(train), "n_held_out_patients": len(test),
                      "preprocess": upstream["preprocess"], "features": upstream["features"]},
        "allele_frequency": af_summary,
        "top_variants": json.loads(top[["contig", "pos", "ref", "alt", "gene", "af_ref", "af_new", "delta",
                                        "chi2", "p", "fst"]].to_json(orient="records")),
        "feature_psi": psi,
        "max_feature_psi": summary["max_feature_psi"],
        "max_psi_feature": max_feature,
        "score": score,
        "batch_auc_roc": batch_auc,
        "thresholds": {"alpha": float(monitor["alpha"]), **thresholds, "psi_bins": bins,
                       "score_psi_bins": int(monitor["score_psi_bins"])},
        "drift_detected": detected,
        "reasons": reasons,
    }
    png = _plot(af, psi, ref_scores, new_scores, score, af_summary, monitor, cohort, champion, detected)
    return report, png


def _allele_counts(spark, reference, batch, ref_index, new_index):
    """Per training variant: ALT and called-allele counts among training patients and new patients."""
    import numpy as np

    keys = ["contig", "pos", "ref", "alt"]
    joined = (reference.select(*keys, "gene", reference["dosages"].alias("ref_dosages"))
              .join(batch.select(*keys, batch["dosages"].alias("new_dosages")), keys, "left"))
    payload = spark.sparkContext.broadcast((np.asarray(ref_index, np.int64), np.asarray(new_index, np.int64)))

    def count(batches):
        import pandas as pd

        from genoflow.genotypes import stack_dosages
        from genoflow.monitoring.drift import allele_counts

        ref_idx, new_idx = payload.value
        for frame in batches:
            if frame.empty:
                continue
            ref_ac, ref_an = allele_counts(stack_dosages(frame["ref_dosages"], ref_idx))
            present = frame["new_dosages"].notna().to_numpy()
            new_ac = np.zeros(len(frame), np.int64)
            new_an = np.zeros(len(frame), np.int64)
            if present.any():
                new_ac[present], new_an[present] = allele_counts(
                    stack_dosages(frame.loc[present, "new_dosages"], new_idx))
            yield pd.DataFrame({**{k: frame[k] for k in (*keys, "gene")}, "ref_ac": ref_ac, "ref_an": ref_an,
                                "new_ac": new_ac, "new_an": new_an})

    schema = ("contig string, pos long, ref string, alt string, gene string, "
              "ref_ac long, ref_an long, new_ac long, new_an long")
    from genoflow.genotypes import arrow_batch_conf
    from genoflow.spark import session_conf

    # Each row carries both cohorts' packed dosages (one byte per sample, each unpacked once more).
    width = int(np.max(ref_index, initial=0)) + 1 + int(np.max(new_index, initial=0)) + 1
    with session_conf(spark, arrow_batch_conf(width, 2)):
        counted = joined.mapInPandas(count, schema).toPandas()
    return counted.sort_values(["contig", "pos", "ref", "alt"], ignore_index=True)


def _model_inputs(spark, genotypes, patients, spec):
    """The raw values of the spec's inputs, and the model inputs the spec computes from them (genotype
    scores included), as the model API computes them."""
    raw, scores = _raw_features(spark, genotypes, patients, spec)
    return raw, _frame(spec.transform(raw, scores), spec.names)


def _observed(raw: dict, inputs, column: str):
    """A model input as observed, float64: its raw value where the spec reads one (NaN where missing),
    else the score computed from the dosages."""
    import numpy as np

    return np.asarray(raw[column] if column in raw else inputs[column], dtype=float)


def _raw_features(spark, batch, patients, spec):
    """The patients' raw values of the spec's inputs (missing dosages / read QC are NaN), and their
    genotype scores (None without score columns).

    Only the selected variants' dosages come to the driver; the scores are computed in Spark (their
    variants, every pruned one for the PCs, times the patients would not fit it at 100,000 patients).
    """
    import numpy as np

    from genoflow.features.learning import score_blocks
    from genoflow.genotypes import unpack_dosages, variant_label

    raw = {c: patients[c].to_numpy() for c in spec.covariate_names if c in patients}
    for column in spec.read_qc:
        raw[column] = (patients[column].to_numpy(dtype=float) if column in patients
                       else np.full(len(patients), np.nan))
    index = patients["sample_index"].to_numpy()
    for column in spec.variant_columns:
        raw[column] = np.full(len(patients), np.nan)
    if spec.variants:
        wanted = spark.createDataFrame([(v["contig"], int(v["pos"]), v["ref"], v["alt"]) for v in spec.variants],
                                       "contig string, pos long, ref string, alt string")
        for r in batch.join(wanted, ["contig", "pos", "ref", "alt"]).select(
                "contig", "pos", "ref", "alt", "dosages").collect():
            dosage = unpack_dosages(r.dosages)[index].astype(float)
            raw[variant_label(r.contig, r.pos, r.ref, r.alt)] = np.where(dosage < 0, np.nan, dosage)
    if not spec.score_blocks:
        return raw, None
    values = score_blocks(spark, batch, index, spec.score_blocks)  # a variant absent from the batch adds 0
    return raw, np.column_stack([values[id(block)] for block in spec.score_blocks])


def _frame(matrix, names):
    import pandas as pd

    return pd.DataFrame(matrix, columns=names)


def _load_model(model_uri: str):
    import mlflow.spark

    return mlflow.spark.load_model(model_uri)


def _score(spark, model, features):
    """P(label = 1) of each row of ``features`` (a pandas frame of the model's input columns)."""
    from pyspark.ml.functions import vector_to_array

    if features.empty:
        return features.index.to_numpy(dtype=float)[:0]
    frame = spark.createDataFrame(features.astype(float).reset_index(drop=True))
    scored = model.transform(frame).select(vector_to_array("probability")[1].alias("score"))
    return scored.toPandas()["score"].to_numpy(dtype=float)


def _auc(scores, labels) -> float | None:
    """AUC-ROC of the labelled patients (sklearn); None without both classes."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(labels)
    y = labels[ok].astype(bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(scores)[ok]))


def _plot(af, psi, ref_scores, new_scores, score, af_summary, monitor, cohort, champion, detected) -> bytes:
    from genoflow.monitoring.plots import plot_drift_report

    batch = cohort["vcf"].rstrip("/").rsplit("/", 2)[-2]
    title = (f"Drift of batch '{batch}' vs {champion['model_name']} v{champion['version']} training data: "
             f"{'DRIFT DETECTED' if detected else 'no drift'}  (Fst {af_summary['fst']:.4f}, "
             f"{af_summary['n_significant']}/{af_summary['n_variants']} variants significant)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "drift_report.png")
        plot_drift_report(af, psi, ref_scores, new_scores, path=path, title=title,
                          p_threshold=af_summary["p_threshold"], psi_threshold=float(monitor["psi_threshold"]),
                          score=score)
        with open(path, "rb") as handle:
            return handle.read()


# --------------------------------------------------------------------------- MLflow


def find_drift_run(airflow_run_id: str, experiment: str, tracking_uri: str | None = None):
    """The latest finished drift run tagged with ``airflow_run_id`` (None when there is none)."""
    import mlflow

    from genoflow.config import Settings
    from genoflow.registry.tracking import filter_literal

    mlflow.set_tracking_uri(tracking_uri or Settings().mlflow_tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = mlflow.search_runs([exp.experiment_id], output_format="list", max_results=1,
                              order_by=["attributes.start_time DESC"],
                              filter_string=(f"tags.`{TAG_AIRFLOW_RUN_ID}` = {filter_literal(airflow_run_id)} "
                                             "and attributes.status = 'FINISHED'"))
    return runs[0] if runs else None


def log_drift_run(report: dict, png: bytes, report_uri: str, monitor: dict, *, run_id: str, git_commit: str,
                  settings) -> str:
    """One MLflow run in ``monitor.experiment``: metrics, thresholds, the report and its plot."""
    import mlflow

    from genoflow.registry import TAG_DATASET_VERSION, TAG_GIT_COMMIT, ensure_experiment

    experiment_id = ensure_experiment(settings.mlflow_tracking_uri, monitor["experiment"],
                                      settings.mlflow_artifact_root)
    af, score, champion = report["allele_frequency"], report["score"], report["champion"]
    batch = report["cohort"]["vcf"].rstrip("/").rsplit("/", 2)[-2]
    tags = {TAG_AIRFLOW_RUN_ID: run_id, TAG_DRIFT_REPORT: report_uri, TAG_COHORT: report["cohort"]["vcf"],
            TAG_MONITORED_MODEL: champion["model_name"], TAG_MONITORED_VERSION: champion["version"],
            TAG_MONITORED_RUN: champion["run_id"], TAG_DATASET_VERSION: champion["dataset_version"],
            TAG_GIT_COMMIT: git_commit, "genoflow.drift_detected": str(report["drift_detected"]).lower(),
            "genoflow.drift_reasons": "; ".join(report["reasons"]) or "none"}
    metrics = {
        "drift_detected": float(report["drift_detected"]),
        "max_af_shift": af["max_abs_af_shift"], "mean_af_shift": af["mean_abs_af_shift"],
        "n_variants_compared": af["n_variants"], "n_variants_significant": af["n_significant"],
        "fraction_variants_significant": af["fraction_significant"], "fst": af["fst"], "mean_chi2": af["mean_chi2"],
        "max_psi": report["max_feature_psi"] if report["max_feature_psi"] is not None else 0.0,
        "score_psi": score["psi"], "score_ks": score["ks"], "score_ks_p": score["ks_p"],
        "n_samples": report["cohort"]["n_samples"], "n_samples_pass_qc": report["cohort"]["n_samples_pass_qc"],
    }
    if report.get("batch_auc_roc") is not None:
        metrics["batch_auc_roc"] = report["batch_auc_roc"]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"drift-{batch}", tags=tags) as run:
        mlflow.log_params({f"monitor.{k}": v for k, v in report["thresholds"].items()})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(report, "drift_report.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "drift_report.png")
            with open(path, "wb") as handle:
                handle.write(png)
            mlflow.log_artifact(path)
    log.info("drift run %s: drift_detected=%s %s", run.info.run_id, report["drift_detected"], report["reasons"])
    return run.info.run_id

"""The drift monitor's Spark computation: the batch through preprocess's code paths, then allele
frequencies, model-input PSI and score drift against the champion's training data (see
:mod:`genoflow.monitoring.job` for the whole check). The statistics themselves are
:mod:`genoflow.monitoring.drift`'s; this module moves the data to them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time

__all__ = ["compute_drift", "drift_key", "batch_name", "champion_public"]

log = logging.getLogger("genoflow")

# Settings that change what the drift step computes (the rest only say where and when).
_KEYED = ("cohort_vcf", "patient_dir", "target", "model_name_prefix", "alpha", "min_significant_fraction",
          "max_fst", "psi_bins", "score_psi_bins", "psi_threshold", "score_psi_threshold")
_THRESHOLDS = ("min_significant_fraction", "max_fst", "psi_threshold", "score_psi_threshold")


def batch_name(cohort_vcf: str) -> str:
    """The batch's folder name (``incoming/<batch>/cohort.vcf.gz``), for titles and run names."""
    return cohort_vcf.rstrip("/").rsplit("/", 2)[-2]


def champion_public(champion: dict) -> dict:
    """The champion without its params and feature spec (for reports and inputs.json)."""
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


def compute_drift(spark, storage, output, champion: dict, upstream: dict, cohort: dict, monitor: dict,
                  pseudonym_key: str) -> tuple[dict, bytes]:
    """Run the comparison, write the batch tables and per-variant statistics; return (report, png)."""
    import numpy as np

    from genoflow.genotypes import block_budget, size_parquet_reader
    from genoflow.monitoring import drift
    from genoflow.pipeline import preprocess as pp
    from genoflow.pseudonym import pseudonym_order
    from genoflow.storage.parts import write_driver_table

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
    write_driver_table(spark, samples, output.path("samples"))
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
    write_driver_table(spark, af, output.path("af_shift"))

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
        "champion": champion_public(champion),
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
    """AUC-ROC of the labelled patients (`genoflow.evaluation.metrics.auc_roc`); None without both classes."""
    import numpy as np

    from genoflow.evaluation.metrics import auc_roc

    ok = np.isfinite(labels)
    auc = auc_roc(labels[ok], np.asarray(scores)[ok])
    return None if np.isnan(auc) else auc


def _plot(af, psi, ref_scores, new_scores, score, af_summary, monitor, cohort, champion, detected) -> bytes:
    from genoflow.monitoring.plots import plot_drift_report

    batch = batch_name(cohort["vcf"])
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

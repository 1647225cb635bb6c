"""features: split by patient, scan the training split, build one sample-major feature table.

The split is drawn first, from pseudonyms and the stratifying label only; every statistic that
looks at labels (the association scans that pick the top variants, imputation values) is
computed on training patients alone, so nothing learnt from labels has seen a test patient.

Writes ``association/<target>/`` (per-variant statistics, all QC-passing variants),
``table/`` (the feature table: pid, split, targets, covariates, read QC, dosages) and
``features.json`` (the feature columns of each target and where they came from).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from genoflow.genotypes import stack_dosages, unpack_dosages, variant_label

__all__ = ["run_features", "split_samples", "association_scan", "ASSOCIATION_SCHEMA_DDL"]

log = logging.getLogger(__name__)

ASSOCIATION_SCHEMA_DDL = (
    "contig string, pos long, ref string, alt string, gene string, maf double, "
    "beta double, se double, chi2 double, p double, n long"
)


def run_features(spark, preprocess_uri: str, output, params: dict) -> dict:
    """Run the features step on a committed preprocess output, writing into ``output``."""
    f = params["features"]
    targets = list(params["train"]["targets"])
    samples = spark.read.parquet(f"{preprocess_uri}/samples").toPandas()  # one row per patient
    samples = split_samples(samples, f)
    train = samples[samples["split"] == "train"]

    genotypes = spark.read.parquet(f"{preprocess_uri}/genotypes").filter("qc_pass")
    covariates = covariate_matrix(samples, f["covariates"])
    selected: dict[str, list[tuple]] = {}
    for target in targets:
        labelled = train[train[target].notna()]
        scan = association_scan(
            spark, genotypes,
            sample_index=labelled["sample_index"].to_numpy(),
            y=labelled[target].to_numpy(dtype=float),
            covariates=covariates[labelled.index.to_numpy()],
        )
        scan.write.parquet(output.path(f"association/{target}"))
        scan = spark.read.parquet(output.path(f"association/{target}"))
        top = scan.orderBy("p", "contig", "pos").limit(int(f["top_k"]))
        selected[target] = [tuple(r) for r in top.select("contig", "pos", "ref", "alt", "gene", "p").collect()]
        log.info("%s: top variant %s", target, selected[target][:1])

    table, specs = build_feature_table(spark, genotypes, samples, selected, f)
    spark.createDataFrame(table).coalesce(1).write.parquet(output.path("table"))
    meta = {
        "targets": {t: {"features": specs[t].names, "spec": json.loads(specs[t].to_json())} for t in targets},
        "n_train": int((samples["split"] == "train").sum()),
        "n_test": int((samples["split"] == "test").sum()),
    }
    output.write_json("features.json", meta)
    return {k: meta[k] for k in ("n_train", "n_test")}


def split_samples(samples, f: dict):
    """Samples passing QC with a ``split`` column ('train'/'test'), stratified on disease status."""
    from genoflow.features.split import stratified_split

    kept = samples[samples["sample_qc_pass"]].reset_index(drop=True)
    is_test = stratified_split(
        kept["pid"].tolist(), kept["disease_status"].to_numpy(),
        test_fraction=float(f["test_fraction"]), seed=int(f["split_seed"]),
    )
    kept["split"] = np.where(is_test, "test", "train")
    return kept


def covariate_matrix(samples, names: list[str]) -> np.ndarray:
    """Numeric covariates (sex as 0/1 for F/M), shape (n_samples, len(names)) float64."""
    from genoflow.features.spec import encode_sex

    columns = [encode_sex(samples[name]) if name == "sex" else np.asarray(samples[name], dtype=float)
               for name in names]
    return np.column_stack(columns) if columns else np.empty((len(samples), 0))


def association_scan(spark, genotypes, *, sample_index: np.ndarray, y: np.ndarray, covariates: np.ndarray):
    """Covariate-adjusted logistic score test of every variant on the given samples only.

    Parameters
    ----------
    genotypes : DataFrame
        Genotype table rows (see :mod:`genoflow.genotypes`).
    sample_index : (n,) int
        Columns of the packed dosages to use (the training patients).
    y : (n,) float
        0/1 labels of those samples, same order.
    covariates : (n, c) float
        Covariates of those samples, same order (an intercept is added).

    Returns
    -------
    DataFrame with ``ASSOCIATION_SCHEMA_DDL`` columns, one row per variant.
    """
    from genoflow.features.association import fit_null_logistic

    null = fit_null_logistic(y, _standardise(covariates))
    payload = spark.sparkContext.broadcast((null, np.asarray(sample_index, dtype=np.int64)))

    def score(batches):
        import pandas as pd

        from genoflow.features.association import score_test_block

        null_model, index = payload.value
        for batch in batches:
            if batch.empty:
                continue
            dosages = stack_dosages(batch["dosages"])[:, index]
            stats = score_test_block(null_model, dosages)
            yield pd.DataFrame({
                "contig": batch["contig"], "pos": batch["pos"], "ref": batch["ref"], "alt": batch["alt"],
                "gene": batch["gene"], "maf": batch["maf"],
                "beta": stats["beta"], "se": stats["se"], "chi2": stats["chi2"], "p": stats["p"],
                "n": np.asarray(stats["n"], dtype=np.int64),
            })

    cols = ["contig", "pos", "ref", "alt", "gene", "maf", "dosages"]
    return genotypes.select(*cols).mapInPandas(score, ASSOCIATION_SCHEMA_DDL)


def _standardise(x: np.ndarray) -> np.ndarray:
    """Centre and scale each covariate; drop constant ones (e.g. one sex only), which carry nothing."""
    sd = x.std(axis=0)
    keep = sd > 0
    return (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]


def build_feature_table(spark, genotypes, samples, selected: dict[str, list[tuple]], f: dict):
    """The sample-major table and the feature spec of each target.

    Only the selected variants (top-K per target) travel to the driver: K rows of packed dosages,
    never the cohort. Values become features through :class:`FeatureSpec` (the code the model API
    runs too); missing dosages and read QC take training-split means.
    """
    import pandas as pd

    from genoflow.features.spec import FeatureSpec

    keys = sorted({v[:4] for rows in selected.values() for v in rows})
    wanted = spark.createDataFrame(keys, "contig string, pos long, ref string, alt string")
    rows = genotypes.join(wanted, ["contig", "pos", "ref", "alt"]).select(
        "contig", "pos", "ref", "alt", "dosages").collect()
    index = samples["sample_index"].to_numpy()
    raw = {col: samples[col].to_numpy() for col in ("age", "sex", *f["read_qc"]) if col in samples}
    for r in rows:
        raw[variant_label(r.contig, r.pos, r.ref, r.alt)] = unpack_dosages(r.dosages)[index].astype(float)

    variants = {v[:4]: dict(zip(("contig", "pos", "ref", "alt", "gene", "train_p"), v, strict=True))
                for rows_ in selected.values() for v in rows_}
    clinical = [c for c in f["covariates"] if c in ("age", "sex")]
    read_qc = [c for c in f["read_qc"] if c in samples]
    union = FeatureSpec(clinical, read_qc, [variants[k] for k in keys])
    union.fit_fill(raw, is_train=(samples["split"] == "train").to_numpy())
    table = pd.DataFrame(union.transform(raw), columns=union.names, index=samples.index)
    table.insert(0, "pid", samples["pid"])
    table.insert(1, "split", samples["split"])
    table.insert(2, "disease_status", samples["disease_status"].astype(float))
    table.insert(3, "treatment_response", samples["treatment_response"].astype("Float64").astype(float))
    specs = {t: union.subset([variants[v[:4]] for v in selected[t]]) for t in selected}
    return table, specs

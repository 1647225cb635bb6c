"""features: split by patient, ancestry PCs, scan the training split, build one sample-major table.

The split is drawn first, from pseudonyms and the stratifying label only; every statistic that
looks at labels (the association scans that pick the top variants, clumping and polygenic-score
weights, the burden genes, imputation values) is computed on training patients alone, so nothing
learnt from labels has seen a test patient. With ``prs_folds`` >= 2 the training patients' own
polygenic scores are cross-fitted too (each fold scored with weights learnt on the other folds), so
that cross-validation inside the training split is honest (decision 0008). Ancestry PCA (LD pruning
like plink2 --indep-pairwise, then plink2 --pca's standardisation) uses every patient's genotypes but
no label.

Steps: prune + PCA (Gram matrix accumulated in the executors) -> per target, logistic regression
of every QC-passing variant with clinical covariates + the first PCs (genoflow.stats, plink2 --glm)
-> top-K variants, clumped P+T polygenic scores, top burden genes -> one linear pass per score
block for every patient's PCs / scores / burdens (the weights are saved in each target's
FeatureSpec, so the model API projects a new patient the same way).

Writes ``association/<target>/`` (per-variant statistics, all QC-passing variants),
``association_folds/<target>/<fold>/`` (with ``prs_folds``: the scans behind the cross-fitted scores),
``plots/<target>/manhattan.png`` and ``qq.png``, ``table/`` (the feature table: pid, split,
targets, covariates, read QC, PCs, polygenic scores, burdens, dosages) and ``features.json`` (the
feature columns and spec of each target, lambda_GC, the PCA eigenvalues).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np

from genoflow.features.burden import rare_gene_variants
from genoflow.features.scores import burden_block, burden_name
from genoflow.genotypes import unpack_dosages, variant_label

__all__ = ["run_features", "split_samples", "association_scan", "ancestry_components", "clumped_index",
           "top_variants", "polygenic_scores", "out_of_fold_prs", "top_burden_genes", "ASSOCIATION_SCHEMA_DDL"]

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
    is_train = (samples["split"] == "train").to_numpy()
    everyone = samples["sample_index"].to_numpy()

    genotypes = spark.read.parquet(f"{preprocess_uri}/genotypes").filter("qc_pass").cache()
    ancestry = ancestry_components(spark, genotypes, everyone, f)  # unsupervised: every patient, no labels
    covariates = np.column_stack([covariate_matrix(samples, f["covariates"]),
                                  ancestry["scores"][:, : int(f["pca_covariates"])]])
    rare = rare_gene_variants(genotypes, max_maf=float(f["burden_max_maf"]),
                              min_variants=int(f["burden_min_variants"]))
    all_genes = sorted(rare["gene"].unique())
    burden_all = burden_block(rare, all_genes, prefix="burden")
    burden_values = _block_scores(spark, genotypes, everyone, burden_all)

    selected: dict[str, list[tuple]] = {}
    blocks = [ancestry["block"]] if ancestry["block"].names else []
    out_of_fold: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(PRS block) -> (rows, cross-fitted values)
    columns, summary = {}, {}
    for target in targets:
        labelled = train_rows(samples, target)
        null = _null_model(samples, labelled, target, covariates)
        scan = association_scan(genotypes, sample_index=samples.loc[labelled, "sample_index"].to_numpy(),
                                y=samples.loc[labelled, target].to_numpy(dtype=float), covariates=covariates[labelled])
        scan.write.parquet(output.path(f"association/{target}"))
        scan = spark.read.parquet(output.path(f"association/{target}"))
        index = clumped_index(scan, genotypes, samples.loc[is_train, "sample_index"].to_numpy(), f)
        selected[target] = top_variants(scan, index, f)
        prs = polygenic_scores(index, f, target)
        genes = top_burden_genes(null, burden_values[labelled], all_genes, int(f["burden_top_k"]))
        if prs.names:
            blocks.append(prs)
        if prs.names and int(f.get("prs_folds", 0) or 0) >= 2:
            out_of_fold[id(prs)] = out_of_fold_prs(spark, genotypes, samples, labelled, covariates, f, target,
                                                   output)
        columns[target] = [*ancestry["block"].names, *prs.names, *[burden_name(g) for g in genes]]
        summary[target] = {**association_summary(scan, output, target, selected[target]),
                           "n_clumped_index_variants": len(prs.variants), "burden_genes": genes}
        log.info("%s: top variant %s, %s", target, selected[target][:1], summary[target])

    chosen_genes = sorted({g for t in targets for g in summary[t]["burden_genes"]})
    burden = burden_all.subset_names([burden_name(g) for g in chosen_genes]) if chosen_genes else None
    scores = [(block, _block_scores(spark, genotypes, everyone, block)) for block in blocks]
    for block, values in scores:
        if id(block) in out_of_fold:
            rows, cross_fitted = out_of_fold[id(block)]
            values[rows] = cross_fitted
    if burden is not None:
        scores.append((burden, burden_values[:, [all_genes.index(g) for g in chosen_genes]]))
    table, specs = build_feature_table(spark, genotypes, samples, selected, f, scores, columns)
    spark.createDataFrame(table).coalesce(1).write.parquet(output.path("table"))
    meta = {
        "targets": {t: {"features": specs[t].names, "spec": json.loads(specs[t].to_json()), **summary[t]}
                    for t in targets},
        "pca": {"eigenvalues": ancestry["block"].meta["eigenvalues"], "n_pruned_variants": ancestry["n_variants"]},
        "n_train": int(is_train.sum()),
        "n_test": int((~is_train).sum()),
    }
    output.write_json("features.json", meta)
    genotypes.unpersist()
    return {"n_train": meta["n_train"], "n_test": meta["n_test"], "n_pruned_variants": ancestry["n_variants"],
            **{f"lambda_gc.{t}": summary[t]["lambda_gc"] for t in targets}}


def train_rows(samples, target: str) -> np.ndarray:
    """Row positions of the training patients with a label for ``target``."""
    return np.flatnonzero(((samples["split"] == "train") & samples[target].notna()).to_numpy())


def _null_model(samples, rows: np.ndarray, target: str, covariates: np.ndarray):
    from genoflow.features.association import fit_null_logistic

    return fit_null_logistic(samples.loc[rows, target].to_numpy(dtype=float), _standardise(covariates[rows]))


def ancestry_components(spark, genotypes, sample_index: np.ndarray, f: dict) -> dict:
    """LD-prune (plink2 --indep-pairwise), then PCA on the pruned variants (plink2 --pca), in Spark.

    Returns the PC score block (loadings + allele frequencies, so a new patient is projected),
    the samples' scores (n, k) and the number of pruned variants.
    """
    from genoflow.features.ld import prune_contigs
    from genoflow.features.pca import pca_from_gram, spark_gram, spark_loadings
    from genoflow.features.scores import ScoreBlock, pca_block

    k = min(int(f["pca_components"]), len(sample_index) - 1)
    if k <= 0:  # PCA switched off
        return {"block": ScoreBlock("pca", [], [], [], [], [], {"eigenvalues": []}),
                "scores": np.empty((len(sample_index), 0)), "n_variants": 0}
    pruned = prune_contigs(genotypes, sample_index=sample_index, window=int(f["prune_window"]),
                           step=int(f["prune_step"]), r2=float(f["prune_r2"]), window_kb=bool(f["prune_window_kb"]))
    kept = genotypes.drop("alt_af").join(pruned, ["contig", "pos", "ref", "alt"]).cache()
    gram, m = spark_gram(kept, sample_index)
    pca = pca_from_gram(gram, m, k)
    rows = spark_loadings(kept, sample_index, pca).toPandas().sort_values(["contig", "pos", "ref", "alt"],
                                                                          ignore_index=True)
    kept.unpersist()
    block = pca_block(rows, pca.eigenvalues, [f"pc{i + 1}" for i in range(k)])
    log.info("PCA: %d pruned variants, eigenvalues %s", m, np.round(pca.eigenvalues, 3).tolist())
    return {"block": block, "scores": pca.scores, "n_variants": int(m)}


# Clumping threshold when no polygenic score sets one (the index variants still pick the top K).
_CLUMP_P1_WITHOUT_SCORES = 0.05


def clumped_index(scan, genotypes, train_index: np.ndarray, f: dict):
    """The training-split scan clumped like plink --clump (LD on training patients): one index
    variant per clump, with p <= the largest score threshold, as pandas (contig, pos, ref, alt, gene,
    alt_af, beta, p), in genome order."""
    from genoflow.features.prs import clump_contigs

    p1 = max((float(t) for t in f["prs_thresholds"]), default=_CLUMP_P1_WITHOUT_SCORES)
    index = clump_contigs(scan.filter(f"p <= {p1!r}"), genotypes, sample_index=train_index,
                          p1=p1, p2=float(f["clump_p2"]), r2=float(f["clump_r2"]), kb=float(f["clump_kb"]))
    keys = ["contig", "pos", "ref", "alt"]
    rows = index.join(genotypes.select(*keys, "gene", "alt_af"), keys)
    return rows.toPandas().sort_values(["contig", "pos", "ref", "alt"], ignore_index=True)


def top_variants(scan, index, f: dict) -> list[tuple]:
    """The K variants that become model features: (contig, pos, ref, alt, gene, p), smallest p first.

    With ``top_k_independent`` (the default) they are the K strongest clump index variants, one per
    LD clump; otherwise the K smallest p-values, which around a strong locus are mostly its LD proxies
    (on the three-population cohort the 40 smallest fell in 4 loci).
    """
    k = int(f["top_k"])
    if not f.get("top_k_independent", True):
        top = scan.orderBy("p", "contig", "pos").limit(k).select("contig", "pos", "ref", "alt", "gene", "p")
        return [tuple(r) for r in top.collect()]
    top = index.sort_values(["p", "contig", "pos"], kind="stable").head(k)
    return [(str(r.contig), int(r.pos), str(r.ref), str(r.alt), None if r.gene is None else str(r.gene), float(r.p))
            for r in top.itertuples(index=False)]


def polygenic_scores(index, f: dict, target: str):
    """P+T scores at each threshold from the clumped training-split scan (:func:`clumped_index`)."""
    from genoflow.features.scores import prs_block

    thresholds = sorted(float(t) for t in f["prs_thresholds"])
    # Switched off (no thresholds): an empty block, which reads no variant.
    return prs_block(index if thresholds else index.iloc[:0], thresholds, f"prs_{target}")


def out_of_fold_prs(spark, genotypes, samples, labelled: np.ndarray, covariates: np.ndarray, f: dict,
                    target: str, output) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted polygenic scores of the labelled training patients: (their rows, their scores).

    A score computed from a scan of the same patients carries their own labels (the scan's betas
    were fitted to them), so a model trained on it learns that echo and cross-validates far above
    what it reaches on new patients. Each of ``prs_folds`` folds of the training patients is scored
    with weights from a scan, clumping and thresholds of the other folds alone, as a test patient is
    scored with weights from the whole training split (``prs_folds`` >= 2).
    """
    from genoflow.features.split import stratified_folds

    k = int(f["prs_folds"])
    folds = stratified_folds(samples.loc[labelled, "pid"].tolist(), samples.loc[labelled, target].to_numpy(),
                             k=k, seed=int(f["split_seed"]))
    values = None
    for fold in range(k):
        fit, scored = labelled[folds != fold], labelled[folds == fold]
        path = output.path(f"association_folds/{target}/{fold}")
        association_scan(genotypes, sample_index=samples.loc[fit, "sample_index"].to_numpy(),
                         y=samples.loc[fit, target].to_numpy(dtype=float),
                         covariates=covariates[fit]).write.parquet(path)
        block = polygenic_scores(clumped_index(spark.read.parquet(path), genotypes,
                                               samples.loc[fit, "sample_index"].to_numpy(), f), f, target)
        fold_values = _block_scores(spark, genotypes, samples.loc[scored, "sample_index"].to_numpy(), block)
        if values is None:
            values = np.empty((len(labelled), fold_values.shape[1]))
        values[folds == fold] = fold_values
    return labelled, values


def top_burden_genes(null, burdens: np.ndarray, genes: list[str], k: int) -> list[str]:
    """The ``k`` genes whose burden (training rows) is most associated with the trait (p < 1)."""
    from genoflow.features.burden import score_test_values

    if not genes or k <= 0:
        return []
    p = score_test_values(null, burdens.T)
    order = sorted(range(len(genes)), key=lambda i: (p[i], genes[i]))
    return [genes[i] for i in order[:k] if p[i] < 1.0]


def association_summary(scan, output, target: str, selected: list[tuple]) -> dict:
    """Genomic inflation of the scan, and its Manhattan and QQ plots written beside the results
    (``plots/<target>/manhattan.png``, ``qq.png``)."""
    from genoflow.reporting.stats import genomic_inflation
    from genoflow.stats.plots import write_association_plots

    frame = scan.select("contig", "pos", "p").toPandas()  # one row of three numbers per variant
    write_association_plots(frame, output.storage.write_bytes, output.path(f"plots/{target}"),
                            title=f"{target}: logistic regression, training split, PCs as covariates",
                            selected={(c, p) for c, p, *_ in selected})
    return {"lambda_gc": round(genomic_inflation(frame["p"].to_numpy()), 4)}


def _block_scores(spark, genotypes, sample_index: np.ndarray, block) -> np.ndarray:
    """Every sample's scores of one block (offset included), computed in the executors."""
    import pandas as pd

    from genoflow.features.scores import spark_scores

    if not block.variants:
        return np.tile(np.asarray(block.offset, dtype=np.float64), (len(sample_index), 1))
    weights = spark.createDataFrame(pd.DataFrame({
        "contig": [v[0] for v in block.variants], "pos": [int(v[1]) for v in block.variants],
        "ref": [v[2] for v in block.variants], "alt": [v[3] for v in block.variants],
        "block_af": block.alt_freq, "weights": block.weights}),
        "contig string, pos long, ref string, alt string, block_af double, weights array<double>")
    rows = genotypes.select("contig", "pos", "ref", "alt", "dosages").join(weights, ["contig", "pos", "ref", "alt"])
    partial = spark_scores(rows.withColumnRenamed("block_af", "alt_af"), sample_index, len(block.names))
    return partial + np.asarray(block.offset, dtype=np.float64)


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


def association_scan(genotypes, *, sample_index: np.ndarray, y: np.ndarray, covariates: np.ndarray):
    """Logistic regression of the trait on each variant with covariates, on the given samples only.

    ``y ~ 1 + covariates + dosage`` per variant by IRLS with Firth fallback, like ``plink2 --glm``
    (:func:`genoflow.stats.spark_glm.glm_scan`, block-vectorised in the executors).

    Parameters
    ----------
    genotypes : DataFrame
        Genotype table rows (see :mod:`genoflow.genotypes`).
    sample_index : (n,) int
        Columns of the packed dosages to use (the training patients).
    y : (n,) float
        0/1 labels of those samples, same order.
    covariates : (n, c) float
        Covariates of those samples, same order (an intercept is added; constant ones are dropped).

    Returns
    -------
    DataFrame with ``ASSOCIATION_SCHEMA_DDL`` columns, one row per variant: ``beta`` the per-ALT
    log odds ratio, ``chi2`` the squared Wald z, ``maf`` over the tested samples, ``n`` the samples
    called; NaN statistics where plink2 writes NA (a constant variant, one collinear with the covariates).
    """
    from pyspark.sql import functions as F

    from genoflow.stats.spark_glm import glm_scan

    scan = glm_scan(genotypes, y, _standardise(covariates), family="logistic", sample_index=sample_index,
                    key_columns=("contig", "pos", "ref", "alt", "gene"))
    return scan.select("contig", "pos", "ref", "alt", "gene",
                       F.least(F.col("alt_freq"), 1 - F.col("alt_freq")).alias("maf"), "beta", "se",
                       (F.col("stat") * F.col("stat")).alias("chi2"), "p", F.col("n_obs").alias("n"))


def _standardise(x: np.ndarray) -> np.ndarray:
    """Centre and scale each covariate; drop constant ones (e.g. one sex only), which carry nothing."""
    sd = x.std(axis=0)
    keep = sd > 0
    return (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]


def build_feature_table(spark, genotypes, samples, selected: dict[str, list[tuple]], f: dict,
                        scores: list[tuple], columns: dict[str, list[str]]):
    """The sample-major table and the feature spec of each target.

    Only the selected variants (top-K per target) travel to the driver: K rows of packed dosages,
    never the cohort. The genotype scores (PCs, polygenic scores, burdens) arrive computed by the
    executors, with the weights the spec keeps. Values become features through :class:`FeatureSpec`
    (the code the model API runs too); missing dosages and read QC take training-split means.
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
    blocks = [asdict(block) for block, _ in scores]
    union = FeatureSpec(clinical, read_qc, [variants[k] for k in keys], scores=blocks)
    union.fit_fill(raw, is_train=(samples["split"] == "train").to_numpy())
    values = np.column_stack([v for _, v in scores]) if scores else np.empty((len(samples), 0))
    table = pd.DataFrame(union.transform(raw, genotype_scores=values), columns=union.names, index=samples.index)
    table.insert(0, "pid", samples["pid"])
    table.insert(1, "split", samples["split"])
    table.insert(2, "disease_status", samples["disease_status"].astype(float))
    table.insert(3, "treatment_response", samples["treatment_response"].astype("Float64").astype(float))
    specs = {t: union.subset([variants[v[:4]] for v in selected[t]], columns[t]) for t in selected}
    return table, specs

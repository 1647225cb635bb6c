"""features: split by patient, ancestry PCs, what labels teach learnt per learning set, one table per set.

The split is drawn first, from pseudonyms (stratified on the first binary target); every statistic
that looks at labels (the association scans that pick the top variants, clumping and polygenic-score
weights, the burden genes, imputation values) is computed on training patients alone, so nothing
learnt from labels has seen a test patient. Nested cross-validation (decision 0011): the same
statistics are learnt again for each of ``train.cv_folds`` folds on the other folds' patients only
(:mod:`genoflow.features.learning`), and each fold's features are written as their own table, so the
train step's CV estimate predicts the held-out result. With ``prs_folds`` >= 2 a set's own patients'
polygenic scores are cross-fitted (decision 0008). Ancestry PCA (LD pruning like plink2
--indep-pairwise, then plink2 --pca's standardisation) uses every patient's genotypes but no label.

Writes ``association/<target>/`` (the final scan: per-variant statistics, all QC-passing variants),
``scans/<target>/`` (every scan of the target, ``scan`` 0 the final one),
``plots/<target>/manhattan.png`` and ``qq.png``, ``table/`` (the final feature table: pid, split,
targets, then every target's feature columns), ``folds/<target>/<k>/`` (fold k's table: pid,
``role`` fit|validate, the target, the fold's feature columns) and ``features.json`` (each target's
type, feature columns and spec, and each fold's; lambda_GC; the PCA eigenvalues).
"""
from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np

from genoflow.features.burden import rare_gene_variants
from genoflow.features.learning import (
    FINAL,
    LearningSet,
    Learnt,
    cross_fitted_prs,
    learn_target,
    learning_sets,
    score_blocks,
    standardise,
)
from genoflow.features.scores import burden_block, burden_name
from genoflow.genotypes import BLOCK_BYTES, block_budget, size_parquet_reader, unpack_dosages, validate, variant_label
from genoflow.storage.parts import write_driver_table

__all__ = ["run_features", "split_samples", "association_scan", "ancestry_components", "train_rows",
           "ASSOCIATION_SCHEMA_DDL"]

log = logging.getLogger(__name__)

ASSOCIATION_SCHEMA_DDL = (
    "contig string, pos long, ref string, alt string, gene string, maf double, "
    "beta double, se double, chi2 double, p double, n long"
)


@dataclasses.dataclass
class TargetFeatures:
    """One target's learning sets, what each learnt, and each set's score values (every sample)."""

    name: str
    kind: str  # binary | quantitative
    sets: list[LearningSet]
    learnt: list[Learnt]
    prs: list[np.ndarray]  # per set: (n_samples, n_prs) polygenic scores, cross-fitted for its fit rows


def run_features(spark, preprocess_uri: str, output, params: dict) -> dict:
    """Run the features step on a committed preprocess output, writing into ``output``."""
    from genoflow.genotypes import arrow_batch_conf
    from genoflow.spark import map_in_order, session_conf
    from genoflow.storage.parts import ParquetFolder
    from genoflow.study import targets as study_targets

    f = params["features"]
    kinds = study_targets(params)
    samples = spark.read.parquet(f"{preprocess_uri}/samples").toPandas()  # one row per patient
    samples = split_samples(samples, f, params)
    is_train = (samples["split"] == "train").to_numpy()
    everyone = samples["sample_index"].to_numpy()

    budget = block_budget(params)
    size_parquet_reader(spark, len(samples), budget)
    genotypes = spark.read.parquet(f"{preprocess_uri}/genotypes")
    validate(genotypes, source=f"{preprocess_uri}/genotypes")  # the schema only: a clear stop before any job
    genotypes = genotypes.filter("qc_pass").cache()
    # The association scans read the same rows' files themselves (decision 0032); the other passes use the cache.
    scanned = ParquetFolder.of(spark, f"{preprocess_uri}/genotypes", keep="qc_pass") or genotypes
    ancestry = ancestry_components(spark, genotypes, everyone, f, budget)  # unsupervised: every patient, no labels
    base = base_spec(samples, f, params, is_train)
    raw = raw_values(samples, base)
    covariates = np.column_stack([covariate_matrix(samples, base.covariates),
                                  ancestry["scores"][:, : int(f["pca_covariates"])]])
    rare = rare_gene_variants(genotypes, max_maf=float(f["burden_max_maf"]),
                              min_variants=int(f["burden_min_variants"]))
    all_genes = sorted(rare["gene"].unique())
    burden_all = burden_block(rare, all_genes, prefix="burden")
    burden_values = score_blocks(spark, genotypes, everyone, [burden_all], budget)[id(burden_all)]

    def learn(target_kind: tuple[str, str]) -> TargetFeatures:
        return learn_features(spark, genotypes, samples, *target_kind, covariates, burden_values, all_genes, f,
                              int(params["train"]["cv_folds"]), output, budget=budget, scanned=scanned)

    # train.parallelism targets at once: a target's passes are many short Spark jobs, so two overlap on
    # the cores one leaves idle. Their scans size Arrow batches alike; the setting stays for all of them,
    # so that one target's end does not restore the default under another's running scan.
    with session_conf(spark, arrow_batch_conf(len(samples), 1, budget)):
        learnt = dict(zip(kinds, map_in_order(learn, list(kinds.items()),
                                              workers=int(params["train"].get("parallelism", 1))), strict=True))
    summary = {}
    for target, kind in kinds.items():
        final = learnt[target].learnt[0]
        summary[target] = {**association_summary(spark.read.parquet(output.path(f"association/{target}")), output,
                                                 target, final.selected, kind),
                           "type": kind, "n_clumped_index_variants": final.n_index,
                           "clump_ld_samples": final.n_ld_samples, "burden_genes": final.genes}
        log.info("%s: top variant %s, %s", target, final.selected[:1], summary[target])

    raw.update(selected_dosages(spark, genotypes, samples, learnt.values()))
    blocks = Blocks(ancestry, burden_all, all_genes, burden_values)
    table, specs = final_table(samples, base, raw, blocks, learnt)
    write_driver_table(spark, table, output.path("table"))
    folds = {t: write_fold_tables(spark, samples, base, raw, blocks, tf, output) for t, tf in learnt.items()}
    meta = {
        "targets": {t: {"features": specs[t].names, "spec": json.loads(specs[t].to_json()), "folds": folds[t],
                        **summary[t]} for t in kinds},
        "pca": {"eigenvalues": ancestry["block"].meta["eigenvalues"], "n_pruned_variants": ancestry["n_variants"],
                "method": ancestry["method"], "prune_ld_samples": ancestry["ld_samples"]},
        "n_train": int(is_train.sum()),
        "n_test": int((~is_train).sum()),
    }
    output.write_json("features.json", meta)
    genotypes.unpersist()
    return {"n_train": meta["n_train"], "n_test": meta["n_test"], "n_pruned_variants": ancestry["n_variants"],
            **{f"lambda_gc.{t}": summary[t]["lambda_gc"] for t in kinds}}


def learn_features(spark, genotypes, samples, target: str, kind: str, covariates, burden_values, all_genes,
                   f: dict, cv_folds: int, output, *, budget: int | None = None, scanned=None) -> TargetFeatures:
    """Every learning set of ``target`` (final + CV folds), learnt in a few Spark passes; writes the scans
    and the final one as ``association/<target>``. ``scanned``: the same rows for the association scans
    to read (a :class:`~genoflow.storage.parts.ParquetFolder`), default ``genotypes``."""
    binary = kind == "binary"
    sets = learning_sets(samples, train_rows(samples, target), target, binary, f, cv_folds)
    budget = budget or block_budget(None)
    learnt, scans = learn_target(spark, genotypes, samples, sets, target, binary, covariates, burden_values,
                                 all_genes, f, output.path(f"scans/{target}"), budget, scanned=scanned)
    scans.filter("scan = 0").drop("scan").select(
        "contig", "pos", "ref", "alt", "gene", "n_obs", "alt_freq", "beta", "se", "stat", "p"
    ).transform(_association_columns).write.parquet(output.path(f"association/{target}"))
    blocks = [b for one in learnt for b in (one.prs, *one.inner_prs)]
    values = score_blocks(spark, genotypes, samples["sample_index"].to_numpy(), blocks, budget)
    prs = [cross_fitted_prs(ls, one, values) for ls, one in zip(sets, learnt, strict=True)]
    return TargetFeatures(target, kind, sets, learnt, prs)


def _association_columns(scan):
    from pyspark.sql import functions as F

    return scan.select("contig", "pos", "ref", "alt", "gene",
                       F.least(F.col("alt_freq"), 1 - F.col("alt_freq")).alias("maf"), "beta", "se",
                       (F.col("stat") * F.col("stat")).alias("chi2"), "p", F.col("n_obs").alias("n"))


def train_rows(samples, target: str) -> np.ndarray:
    """Row positions of the training patients with a label for ``target``."""
    return np.flatnonzero(((samples["split"] == "train") & samples[target].notna()).to_numpy())


def ancestry_components(spark, genotypes, sample_index: np.ndarray, f: dict, budget: int = BLOCK_BYTES) -> dict:
    """LD-prune (plink2 --indep-pairwise), then PCA on the pruned variants (plink2 --pca), in Spark.

    ``f["pca_method"]``: ``exact`` (the samples x samples matrix), ``randomized`` (block Krylov, like
    plink2 --pca approx) or ``auto`` (by the number of samples, decision 0014).
    Returns the PC score block (loadings + allele frequencies, so a new patient is projected),
    the samples' scores (n, k), the number of pruned variants and the method that ran.
    """
    from genoflow.features.ld import ld_samples, prune_contigs
    from genoflow.features.pca import choose_method, collect_loadings, pca_from_gram, spark_gram, spark_randomized_pca
    from genoflow.features.scores import ScoreBlock, pca_block
    from genoflow.genotypes import arrow_batch_conf
    from genoflow.spark import session_conf

    k = min(int(f["pca_components"]), len(sample_index) - 1)
    if k <= 0:  # PCA switched off
        return {"block": ScoreBlock("pca", [], [], [], [], [], {"eigenvalues": []}),
                "scores": np.empty((len(sample_index), 0)), "n_variants": 0, "method": None, "ld_samples": 0}
    ld = ld_samples(sample_index, f)  # r² on at most ld_max_samples patients; MAF and PCA on every one
    log.info("LD pruning: r² on %d of %d patients", len(ld), len(sample_index))
    pruned = prune_contigs(genotypes, sample_index=sample_index, window=int(f["prune_window"]),
                           step=int(f["prune_step"]), r2=float(f["prune_r2"]), window_kb=bool(f["prune_window_kb"]),
                           ld_sample_index=ld)
    kept = genotypes.drop("alt_af").join(pruned, ["contig", "pos", "ref", "alt"]).cache()
    # The lazy prune runs here, so its Arrow batches are sized around this action.
    with session_conf(spark, arrow_batch_conf(len(sample_index), 1, budget)):
        kept.count()
    method = choose_method(f.get("pca_method", "auto"), len(sample_index))
    if method == "exact":
        gram, m = spark_gram(kept, sample_index, budget)
        pca = pca_from_gram(gram, m, k)
    else:
        pca = spark_randomized_pca(kept, sample_index, k, budget=budget)  # fixed seed: reruns give the same PCs
    rows = collect_loadings(kept, sample_index, pca, budget)
    kept.unpersist()
    block = pca_block(rows, pca.eigenvalues, [f"pc{i + 1}" for i in range(k)])
    log.info("PCA (%s, %d samples): %d pruned variants, eigenvalues %s", method, len(sample_index),
             pca.n_variants, np.round(pca.eigenvalues, 3).tolist())
    return {"block": block, "scores": pca.scores, "n_variants": int(pca.n_variants), "method": method,
            "ld_samples": len(ld)}


def association_summary(scan, output, target: str, selected: list[tuple], kind: str = "binary") -> dict:
    """Genomic inflation of the scan, and its Manhattan and QQ plots written beside the results
    (``plots/<target>/manhattan.png``, ``qq.png``)."""
    from genoflow.reporting.stats import genomic_inflation
    from genoflow.stats.plots import write_association_plots

    frame = scan.select("contig", "pos", "p").toPandas()  # one row of three numbers per variant
    model = "logistic" if kind == "binary" else "linear"
    write_association_plots(frame, output.storage.write_bytes, output.path(f"plots/{target}"),
                            title=f"{target}: {model} regression, training split, PCs as covariates",
                            selected={(c, p) for c, p, *_ in selected})
    return {"lambda_gc": round(genomic_inflation(frame["p"].to_numpy()), 4)}


# --- feature tables -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Blocks:
    """The genotype scores shared by every learning set: ancestry PCs and every gene's burden."""

    ancestry: dict
    burden: object  # ScoreBlock of every gene
    genes: list[str]
    burden_values: np.ndarray  # (n_samples, n_genes)

    def burden_subset(self, genes: list[str]):
        return (self.burden.subset_names([burden_name(g) for g in genes]),
                self.burden_values[:, [self.genes.index(g) for g in genes]])


def base_spec(samples, f: dict, params: dict, is_train: np.ndarray):
    """The spec's patient columns: the study covariates (encoded against training reference levels,
    :func:`genoflow.features.spec.fit_covariates`) and the read-QC columns that have values, with fill
    values from the training patients."""
    import pandas as pd

    from genoflow.features.spec import FeatureSpec, fit_covariates

    def has_values(col: str) -> bool:
        return col in samples and pd.to_numeric(samples.loc[is_train, col], errors="coerce").notna().any()

    study = params["study"]
    covariates = fit_covariates(samples, list(f["covariates"]), list(study.get("categorical") or []), is_train,
                                study.get("missing_covariates", "drop"))
    spec = FeatureSpec(covariates, [c for c in f["read_qc"] if has_values(c)], [])
    return spec.fit_fill(raw_values(samples, spec), is_train)


def raw_values(samples, spec) -> dict[str, np.ndarray]:
    """The sample table's columns a spec reads (covariates, read QC), every sample."""
    return {col: samples[col].to_numpy() for col in (*spec.covariate_names, *spec.read_qc)}


def selected_dosages(spark, genotypes, samples, targets) -> dict[str, np.ndarray]:
    """Every sample's dosages of every variant any learning set selected: K rows per set, never the cohort."""
    keys = sorted({v[:4] for tf in targets for one in tf.learnt for v in one.selected})
    if not keys:
        return {}
    wanted = spark.createDataFrame(keys, "contig string, pos long, ref string, alt string")
    rows = genotypes.join(wanted, ["contig", "pos", "ref", "alt"]).select(
        "contig", "pos", "ref", "alt", "dosages").collect()
    index = samples["sample_index"].to_numpy()
    return {variant_label(r.contig, r.pos, r.ref, r.alt): unpack_dosages(r.dosages)[index].astype(float)
            for r in rows}


def _variant_dicts(selected: list[tuple]) -> list[dict]:
    return [dict(zip(("contig", "pos", "ref", "alt", "gene", "train_p"), v, strict=True)) for v in selected]


def set_spec(base, raw: dict, blocks: Blocks, tf: TargetFeatures, s: int):
    """Learning set ``s`` of one target: its spec (fill values from its fit rows) and its genotype
    score values (every sample, in the spec's score-column order)."""
    learnt = tf.learnt[s]
    parts = []
    if blocks.ancestry["block"].names:
        parts.append((blocks.ancestry["block"], blocks.ancestry["scores"]))
    if learnt.prs.names:
        parts.append((learnt.prs, tf.prs[s]))
    if learnt.genes:
        parts.append(blocks.burden_subset(learnt.genes))
    spec = dataclasses.replace(base, variants=_variant_dicts(learnt.selected), fill=dict(base.fill),
                               scores=[dataclasses.asdict(block) for block, _ in parts])
    n = len(blocks.burden_values)
    fit = np.zeros(n, dtype=bool)
    fit[tf.sets[s].fit] = True
    spec.fit_fill(raw, is_train=fit)
    values = np.column_stack([v for _, v in parts]) if parts else np.empty((n, 0))
    return spec, values


def _rows(raw: dict, rows: np.ndarray) -> dict:
    return {col: values[rows] for col, values in raw.items()}


def final_table(samples, base, raw: dict, blocks: Blocks, targets: dict[str, TargetFeatures]):
    """The sample-major table of every patient (the final sets' features of every target) and each
    target's spec. Values become features through :class:`FeatureSpec` (the code the model API runs
    too); missing dosages and read QC take the training patients' means."""
    import pandas as pd

    columns, union_parts, variants = {}, [], {}
    if blocks.ancestry["block"].names:
        union_parts.append((blocks.ancestry["block"], blocks.ancestry["scores"]))
    for target, tf in targets.items():
        final = tf.learnt[0]
        if final.prs.names:
            union_parts.append((final.prs, tf.prs[0]))
        variants.update({v[:4]: d for v, d in zip(final.selected, _variant_dicts(final.selected), strict=True)})
        columns[target] = [*blocks.ancestry["block"].names, *final.prs.names,
                           *[burden_name(g) for g in final.genes]]
    genes = sorted({g for tf in targets.values() for g in tf.learnt[0].genes})
    if genes:
        union_parts.append(blocks.burden_subset(genes))
    union = dataclasses.replace(base, variants=[variants[k] for k in sorted(variants)], fill=dict(base.fill),
                                scores=[dataclasses.asdict(block) for block, _ in union_parts])
    union.fit_fill(raw, is_train=(samples["split"] == "train").to_numpy())
    values = np.column_stack([v for _, v in union_parts]) if union_parts else np.empty((len(samples), 0))
    table = pd.DataFrame(union.transform(raw, genotype_scores=values), columns=union.names, index=samples.index)
    table.insert(0, "pid", samples["pid"])
    table.insert(1, "split", samples["split"])
    for position, target in enumerate(targets, start=2):
        table.insert(position, target, pd.to_numeric(samples[target], errors="coerce").astype(float))
    specs = {t: union.subset([variants[v[:4]] for v in tf.learnt[0].selected], columns[t])
             for t, tf in targets.items()}
    return table, specs


def write_fold_tables(spark, samples, base, raw: dict, blocks: Blocks, tf: TargetFeatures, output) -> list[dict]:
    """Each CV fold's table (its labelled training patients, ``role`` fit or validate, its own features)
    at ``folds/<target>/<k>/``; returns each fold's feature columns and spec for features.json."""
    import pandas as pd

    folds = []
    for s, ls in enumerate(tf.sets):
        if ls.name == FINAL:
            continue
        spec, values = set_spec(base, raw, blocks, tf, s)
        rows = ls.scored
        table = pd.DataFrame(spec.transform(_rows(raw, rows), genotype_scores=values[rows]), columns=spec.names)
        table.insert(0, "pid", samples["pid"].to_numpy()[rows])
        table.insert(1, "role", np.where(np.isin(rows, ls.fit), "fit", "validate"))
        table.insert(2, tf.name, pd.to_numeric(samples[tf.name], errors="coerce").to_numpy(dtype=float)[rows])
        path = output.path(f"folds/{tf.name}/{ls.name}")
        write_driver_table(spark, table, path)
        folds.append({"name": ls.name, "path": f"folds/{tf.name}/{ls.name}", "features": spec.names,
                      "spec": json.loads(spec.to_json()), "n_fit": len(ls.fit), "n_validate": len(ls.validate)})
    return folds


def association_scan(genotypes, *, sample_index: np.ndarray, y: np.ndarray, covariates: np.ndarray,
                     family: str = "logistic"):
    """Regression of the trait on each variant with covariates, on the given samples only.

    ``y ~ 1 + covariates + dosage`` per variant (logistic by IRLS with Firth fallback, or linear),
    like ``plink2 --glm`` (:func:`genoflow.stats.spark_glm.glm_scan`, block-vectorised in the executors).

    Parameters
    ----------
    genotypes : DataFrame
        Genotype table rows (see :mod:`genoflow.genotypes`).
    sample_index : (n,) int
        Columns of the packed dosages to use (the training patients).
    y : (n,) float
        The trait of those samples (0/1 for logistic), same order.
    covariates : (n, c) float
        Covariates of those samples, same order (an intercept is added; constant ones are dropped).

    Returns
    -------
    DataFrame with ``ASSOCIATION_SCHEMA_DDL`` columns, one row per variant: ``beta`` the per-ALT
    effect, ``chi2`` the squared Wald statistic, ``maf`` over the tested samples, ``n`` the samples
    called; NaN statistics where plink2 writes NA (a constant variant, one collinear with the covariates).
    """
    from genoflow.stats.spark_glm import glm_scan

    scan = glm_scan(genotypes, y, standardise(covariates), family=family, sample_index=sample_index,
                    key_columns=("contig", "pos", "ref", "alt", "gene"))
    return _association_columns(scan)


def split_samples(samples, f: dict, params: dict):
    """Samples passing QC (and, with ``study.missing_covariates: drop``, having every covariate) with a
    ``split`` column ('train'/'test'), stratified on the first binary target (unlabelled patients form
    their own stratum); with no binary target, one stratum."""
    from genoflow.features.split import stratified_split
    from genoflow.study import binary_targets

    kept = samples[samples["sample_qc_pass"]]
    covariates = [c for c in f["covariates"] if c in kept]
    if params["study"].get("missing_covariates", "drop") == "drop" and covariates:
        kept = kept[kept[covariates].notna().all(axis=1)]
    kept = kept.reset_index(drop=True)
    binary = binary_targets(params)
    strata = (kept[binary[0]].fillna(-1.0).to_numpy() if binary else np.zeros(len(kept)))
    is_test = stratified_split(kept["pid"].tolist(), strata,
                               test_fraction=float(f["test_fraction"]), seed=int(f["split_seed"]))
    kept["split"] = np.where(is_test, "test", "train")
    return kept


def covariate_matrix(samples, encoding: list[dict]) -> np.ndarray:
    """The study covariates encoded as ``encoding`` says (:func:`genoflow.features.spec.fit_covariates`:
    numeric as they are, categorical one-hot against the reference level), shape (n_samples, n_columns)."""
    from genoflow.features.spec import encode_covariates

    return encode_covariates(samples, encoding)

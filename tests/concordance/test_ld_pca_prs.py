"""LD pruning, PCA, clumping and polygenic scores against plink2 / plink 1.9 on the concordance cohort.

The variant set is chosen once here (autosomal, call rate >= 95 %, MAF >= 5 %, as plink2 --geno /
--maf would) and handed to plink with --extract, so both sides start from the same variants.
genoflow's side runs through the Spark wrappers the features job uses (in-process local Spark).

Tolerances: pruning and clumping are discrete, so their variant sets must be equal. PCA: plink2 and
genoflow standardise alike but eigenvectors have no sign and nearly equal eigenvalues mix, so each of
the top 5 PCs must have |Pearson r| >= 0.99 with plink2's; the randomized method likewise with
``plink2 --pca approx`` on a cohort of 3,000 (both block Krylov; decision 0014), and its eigenvalues
equal approx's.
Scores are sums of the same products: r >= 0.999, and equal to plink2's printed precision
(6 significant digits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.features.ld import indep_pairwise, prune_contigs
from genoflow.features.pca import collect_loadings, pca_from_gram, spark_gram, spark_randomized_pca
from genoflow.features.prs import clump, clump_contigs
from genoflow.features.scores import pca_block, prs_block, spark_scores
from genoflow.genotypes import pack_dosages
from tests.concordance.cohort import run_plink2

PRUNE = {"window": 50, "step": 5, "r2": 0.2}
CLUMP = {"p1": 0.01, "p2": 0.05, "r2": 0.2, "kb": 100}
THRESHOLDS = [1e-4, 1e-3, 0.01]


@pytest.fixture(scope="module")
def qc_variants(concordance_cohort):
    """Indices of the variants both sides use, and every variant's ALT frequency."""
    return _qc(concordance_cohort)


@pytest.fixture(scope="module")
def workdir(concordance_cohort, qc_variants, tmp_path_factory):
    path = tmp_path_factory.mktemp("ld-pca-prs")
    keep, _ = qc_variants
    (path / "qc.snplist").write_text("\n".join(concordance_cohort.variants["id"].to_numpy()[keep]) + "\n")
    return path


@pytest.fixture(scope="module")
def table(spark, concordance_cohort, qc_variants):
    """The QC-passing variants as genotype-table rows in Spark (contig, pos, ref, alt, alt_af, dosages)."""
    keep, af = qc_variants
    v = concordance_cohort.variants.iloc[keep]
    frame = pd.DataFrame({"contig": v["contig"].to_numpy(), "pos": v["pos"].to_numpy(dtype=np.int64),
                          "ref": v["ref"].to_numpy(), "alt": v["alt"].to_numpy(), "alt_af": af[keep],
                          "dosages": [pack_dosages(row) for row in concordance_cohort.dosages[keep]]})
    return spark.createDataFrame(frame).repartition(3).cache()


def _ids(frame) -> set[str]:
    return set(frame["contig"] + ":" + frame["pos"].astype(str) + ":" + frame["ref"] + ":" + frame["alt"])


@pytest.fixture(scope="module")
def pruned(table, concordance_cohort):
    n = len(concordance_cohort.samples)
    return prune_contigs(table, sample_index=np.arange(n), **PRUNE).toPandas()


def test_prune__equals_plink2_indep_pairwise(concordance_cohort, workdir, pruned):
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--extract", "qc.snplist", "--indep-pairwise",
               PRUNE["window"], PRUNE["step"], PRUNE["r2"], "--out", "prune", cwd=workdir)
    expected = set((workdir / "prune.prune.in").read_text().split())
    assert 50 < len(expected) < len(concordance_cohort.variants)
    assert _ids(pruned) == expected


def test_prune__kb_window_equals_plink2(concordance_cohort, qc_variants, workdir):
    keep, _ = qc_variants
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--extract", "qc.snplist", "--indep-pairwise",
               "20kb", 1, 0.3, "--out", "prune_kb", cwd=workdir)
    v = concordance_cohort.variants.iloc[keep]
    mine = set()
    for contig in v["contig"].unique():
        rows = np.flatnonzero(v["contig"].to_numpy() == contig)
        kept = indep_pairwise(concordance_cohort.dosages[keep[rows]], v["pos"].to_numpy()[rows],
                              window=20, step=1, r2=0.3, window_kb=True)
        mine |= set(v["id"].to_numpy()[rows][kept])
    assert mine == set((workdir / "prune_kb.prune.in").read_text().split())


def test_pca__top5_match_plink2_pca(spark, concordance_cohort, workdir, table, pruned):
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--extract", "prune.prune.in", "--pca", 5,
               "--out", "pca", cwd=workdir)
    expected = pd.read_csv(workdir / "pca.eigenvec", sep="\t")
    assert expected["#IID"].tolist() == concordance_cohort.samples["iid"].tolist()

    n = len(concordance_cohort.samples)
    kept = table.join(spark.createDataFrame(pruned[["contig", "pos", "ref", "alt"]]), ["contig", "pos", "ref", "alt"])
    gram, m = spark_gram(kept, np.arange(n))
    assert m == len(pruned)
    pca = pca_from_gram(gram, m, 5)
    for k in range(5):
        r = np.corrcoef(pca.scores[:, k], expected[f"PC{k + 1}"])[0, 1]
        assert abs(r) >= 0.99, (k, r)
    # The populations separate on PC1-2 (a check that the cohort is structured, so the test has teeth).
    pops = concordance_cohort.samples["population"].to_numpy()
    centroids = np.array([pca.scores[pops == p, :2].mean(axis=0) for p in ("A", "B", "C")])
    assert np.linalg.norm(centroids[0] - centroids[1]) > 1.0

    # Projection through the loadings reproduces every sample's scores (what serving computes).
    block = pca_block(collect_loadings(kept, np.arange(n), pca), pca.eigenvalues, [f"pc{k + 1}" for k in range(5)])
    block_rows = spark.createDataFrame(pd.DataFrame({
        "contig": [v[0] for v in block.variants], "pos": [v[1] for v in block.variants],
        "ref": [v[2] for v in block.variants], "alt": [v[3] for v in block.variants],
        "weights": block.weights}))
    projected = spark_scores(kept.join(block_rows, ["contig", "pos", "ref", "alt"]), np.arange(n), 5)
    np.testing.assert_allclose(projected, pca.scores, atol=1e-9)


def _qc(cohort) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the autosomal variants with call rate >= 95 % and MAF >= 5 %, and every variant's ALT frequency."""
    called = cohort.dosages >= 0
    af = np.where(called, cohort.dosages, 0).sum(axis=1) / (2.0 * called.sum(axis=1))
    return np.flatnonzero(cohort.autosomal & (called.mean(axis=1) >= 0.95) & (np.minimum(af, 1 - af) >= 0.05)), af


def test_randomized_pca__top5_match_plink2_pca_approx(spark, tmp_path_factory):
    """On a cohort of 3,000 samples (plink2 recommends approx above 5,000; this one is simulated in ~15 s).
    Both sides use plink2's pruned set (the pruning itself is compared above)."""
    from tests.concordance.cohort import make_concordance_cohort

    cohort = make_concordance_cohort(tmp_path_factory.mktemp("approx-cohort"), n_per_population=1000)
    workdir = tmp_path_factory.mktemp("pca-approx")
    keep, af = _qc(cohort)
    ids = cohort.variants["id"].to_numpy()
    (workdir / "qc.snplist").write_text("\n".join(ids[keep]) + "\n")
    run_plink2("--pfile", cohort.pfile_prefix, "--extract", "qc.snplist", "--indep-pairwise", PRUNE["window"],
               PRUNE["step"], PRUNE["r2"], "--out", "prune", cwd=workdir)
    run_plink2("--pfile", cohort.pfile_prefix, "--extract", "prune.prune.in", "--pca", 5, "approx",
               "--out", "pca_approx", cwd=workdir)
    expected = pd.read_csv(workdir / "pca_approx.eigenvec", sep="\t")
    assert expected["#IID"].tolist() == cohort.samples["iid"].tolist()

    kept = keep[np.isin(ids[keep], (workdir / "prune.prune.in").read_text().split())]
    assert len(kept) > 150  # more than the 150 columns of the Krylov basis: an approximation, not a full basis
    rows = pd.DataFrame({"alt_af": af[kept], "dosages": [pack_dosages(row) for row in cohort.dosages[kept]]})
    n = len(cohort.samples)
    pca = spark_randomized_pca(spark.createDataFrame(rows).repartition(3), np.arange(n), 5)
    assert pca.n_variants == len(kept)
    for k in range(5):
        r = np.corrcoef(pca.scores[:, k], expected[f"PC{k + 1}"])[0, 1]
        assert abs(r) >= 0.99, (k, r)
    np.testing.assert_allclose(pca.eigenvalues, np.loadtxt(workdir / "pca_approx.eigenval"), rtol=1e-3)


@pytest.fixture(scope="module")
def glm(concordance_cohort, workdir):
    """plink2 --glm of CC on the QC variants (sex + age covariates): p-values for both clumpers."""
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--extract", "qc.snplist", "--pheno",
               concordance_cohort.pheno_file, "--pheno-name", "CC", "--covar", concordance_cohort.covar_file,
               "--glm", "hide-covar", "--out", "assoc", cwd=workdir)
    out = pd.read_csv(workdir / "assoc.CC.glm.logistic.hybrid", sep="\t")
    out = out[out["TEST"] == "ADD"].dropna(subset=["P"])
    out["beta"] = np.log(out["OR"]) * np.where(out["A1"] == out["ALT"], 1.0, -1.0)  # per ALT allele
    return out


@pytest.fixture(scope="module")
def plink_clumped(concordance_cohort, workdir, glm):
    """plink 1.9 --clump of the glm results with CLUMP: its index SNPs (SNP, P), smallest P first."""
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--extract", "qc.snplist", "--make-bed", "--out", "bed",
               cwd=workdir)
    glm[["ID", "P"]].to_csv(workdir / "assoc.txt", sep="\t", index=False)
    run_plink2("--bfile", "bed", "--clump", "assoc.txt", "--clump-snp-field", "ID", "--clump-field", "P",
               "--clump-p1", CLUMP["p1"], "--clump-p2", CLUMP["p2"], "--clump-r2", CLUMP["r2"],
               "--clump-kb", CLUMP["kb"], "--out", "clump", cwd=workdir, executable="plink1.9")
    return pd.read_csv(workdir / "clump.clumped", sep=r"\s+").sort_values("P", kind="stable", ignore_index=True)


def _scan(spark, glm, **columns):
    """The glm results as a genoflow association scan (contig, pos, ref, alt, beta, p, and ``columns``)."""
    return spark.createDataFrame(pd.DataFrame({
        "contig": glm["#CHROM"].astype(str).to_numpy(), "pos": glm["POS"].to_numpy(dtype=np.int64),
        "ref": glm["REF"].to_numpy(), "alt": glm["ALT"].to_numpy(), **columns, "beta": glm["beta"].to_numpy(),
        "p": glm["P"].to_numpy(dtype=float)}))


def test_clump__index_variants_equal_plink19_clump(spark, concordance_cohort, glm, table, plink_clumped):
    expected = set(plink_clumped["SNP"])
    assert len(expected) >= 3
    n = len(concordance_cohort.samples)
    index = clump_contigs(_scan(spark, glm), table, sample_index=np.arange(n), **CLUMP).toPandas()
    assert _ids(index) == expected


def test_top_variants__are_the_strongest_plink19_clump_index_variants(spark, concordance_cohort, glm, table,
                                                                      plink_clumped):
    """top_k_independent: the model's K variants are plink's K smallest-p clump index SNPs, one per
    LD clump; without it, the K smallest p-values, which share clumps."""
    from pyspark.sql import functions as F

    from genoflow.features.learning import clumped_index, top_variants

    k = 3
    assert len(plink_clumped) > k
    scan = _scan(spark, glm, gene="")
    f = {"prs_thresholds": [CLUMP["p1"]], "clump_p2": CLUMP["p2"], "clump_r2": CLUMP["r2"], "clump_kb": CLUMP["kb"],
         "top_k": k}
    index = clumped_index(scan, table.withColumn("gene", F.lit("")), np.arange(len(concordance_cohort.samples)), f)
    chosen = top_variants(scan, index, f)
    keys = zip(glm["#CHROM"].astype(str), glm["POS"], glm["REF"], glm["ALT"], strict=True)
    by_id = dict(zip(keys, glm["ID"], strict=True))
    assert [by_id[key[:4]] for key in chosen] == plink_clumped["SNP"].head(k).tolist()
    smallest = top_variants(scan, index, {**f, "top_k_independent": False})
    assert [p for *_, p in smallest] == sorted(glm["P"])[:k]
    assert smallest != chosen  # the cohort's strongest signals have LD proxies, or this showed nothing


def test_clump__kernel_edge_cases():
    """Hand-checkable: two perfectly linked variants clump; a distant or unlinked one stays an index."""
    g = np.array([[0, 1, 2, 1, 0, 2], [0, 1, 2, 1, 0, 2], [2, 1, 0, 0, 1, 2], [0, 1, 2, 1, 0, 2]], dtype=np.int8)
    is_index, size = clump(np.array([1e-6, 1e-3, 1e-4, 1e-5]), np.array([100, 200, 300, 900_000]), g,
                           p1=0.01, p2=0.01, r2=0.5, kb=250)
    assert is_index.tolist() == [True, False, True, True] and size.tolist() == [2, 0, 1, 1]


def test_score__equals_plink2_score_sums(spark, concordance_cohort, workdir, glm, table):
    index = glm.nsmallest(40, "P").copy()
    rows = table.join(spark.createDataFrame(pd.DataFrame({
        "contig": index["#CHROM"].astype(str).to_numpy(), "pos": index["POS"].to_numpy(dtype=np.int64),
        "ref": index["REF"].to_numpy(), "alt": index["ALT"].to_numpy(), "beta": index["beta"].to_numpy(),
        "p": index["P"].to_numpy(dtype=float)})), ["contig", "pos", "ref", "alt"]).toPandas()
    block = prs_block(rows, THRESHOLDS, "prs")
    n = len(concordance_cohort.samples)
    weights = spark.createDataFrame(pd.DataFrame({
        "contig": rows["contig"], "pos": rows["pos"], "ref": rows["ref"], "alt": rows["alt"],
        "weights": block.weights}))
    ours = np.asarray(block.offset) + spark_scores(table.join(weights, ["contig", "pos", "ref", "alt"]),
                                                   np.arange(n), len(THRESHOLDS))

    score_file = rows.assign(ID=rows["contig"] + ":" + rows["pos"].astype(str) + ":" + rows["ref"] + ":" + rows["alt"])
    for t in THRESHOLDS:
        score_file[f"T{t:g}"] = np.where(rows["p"] <= t, rows["beta"], 0.0)
    score_file[["ID", "alt", *[f"T{t:g}" for t in THRESHOLDS]]].to_csv(workdir / "weights.txt", sep="\t",
                                                                         index=False)
    run_plink2("--pfile", concordance_cohort.pfile_prefix, "--score", "weights.txt", 1, 2, "header-read",
               "cols=+scoresums", "--score-col-nums", f"3-{2 + len(THRESHOLDS)}", "--out", "score", cwd=workdir)
    plink = pd.read_csv(workdir / "score.sscore", sep="\t")
    assert plink["#IID"].tolist() == concordance_cohort.samples["iid"].tolist()
    for k, t in enumerate(THRESHOLDS):
        expected = plink[f"T{t:g}_SUM"].to_numpy()
        assert np.count_nonzero(block.arrays()[1][:, k]) > 0
        assert np.corrcoef(ours[:, k], expected)[0, 1] >= 0.999
        np.testing.assert_allclose(ours[:, k], expected, rtol=1e-5, atol=1e-5)  # plink2 prints 6 digits

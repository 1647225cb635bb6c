"""The plink2 polygenic-score baseline: clumping + thresholding (C+T) with ancestry PCs, on a given split.

The standard recipe, run with plink2 (plink 1.9 for clumping: this plink2 build has no --clump):

1. the training patients are split again, 80 % for the GWAS and 20 % to tune (``stratified_split``);
2. ancestry: LD-pruned common variants, ``--pca 10 allele-wts`` on the GWAS patients, projected on
   everyone with ``--score ... variance-standardize``;
3. GWAS on the GWAS patients: ``--glm`` logistic (Firth fallback), covariates age, sex, PC1-10,
   with the cohort's variant QC thresholds (genoflow's ``preprocess`` params as ``--geno/--maf/--hwe``);
4. clumping (r2 0.1, 250 kb) on the GWAS patients, then ``--score`` at p-value thresholds
   (``--q-score-range``);
5. the threshold whose score has the best AUC on the tuning patients is kept; a logistic model of
   disease on [score, age, sex, PC1-10] is fitted on the tuning patients;
6. both are scored on the held-out (test) patients: the score alone and the full model.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from genoflow.features.split import stratified_split

__all__ = ["plink_prs_baseline", "P_THRESHOLDS"]

P_THRESHOLDS = (5e-8, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
N_PCS = 10


def plink_prs_baseline(run, pfile: str, pheno: pd.DataFrame, train_ids: list[str], test_ids: list[str],
                       work: Path, threads: int, qc: list[str]) -> dict:
    """Held-out AUCs of the C+T baseline.

    ``run(name, argv)`` runs a command (and times it); ``pheno`` has columns IID, disease (0/1),
    age, male (0/1) for every patient in ``train_ids`` and ``test_ids``; ``qc`` the plink2 variant
    QC flags of the GWAS.
    """
    work.mkdir(parents=True, exist_ok=True)
    plink = ["plink2", "--pfile", pfile, "--threads", str(threads)]
    train = pheno.set_index("IID").loc[train_ids].reset_index()
    is_tune = stratified_split(train["IID"].tolist(), train["disease"].to_numpy(), test_fraction=0.2, seed=7)
    gwas_ids, tune_ids = train["IID"][~is_tune].tolist(), train["IID"][is_tune].tolist()
    keep = _write_ids(work / "gwas.keep", gwas_ids)

    run("plink2 prune", plink + ["--keep", keep, "--maf", "0.05", "--geno", "0.05",
                                 "--indep-pairwise", "200", "50", "0.2", "--out", str(work / "prune")])
    pruned = str(work / "prune.prune.in")
    run("plink2 pca", plink + ["--keep", keep, "--extract", pruned, "--freq", "counts",
                               "--pca", str(N_PCS), "allele-wts", "--out", str(work / "pca")])
    pcs = _project_pcs(run, plink, pruned, work)

    covar = pheno[["IID", "age", "male"]].merge(pcs, on="IID")
    covar.rename(columns={"IID": "#IID"}).to_csv(work / "covar.tsv", sep="\t", index=False)
    pheno_file = work / "pheno.tsv"
    pheno.assign(disease=pheno["disease"] + 1)[["IID", "disease"]].rename(columns={"IID": "#IID"}).to_csv(
        pheno_file, sep="\t", index=False)  # plink's case/control coding: 1 control, 2 case
    run("plink2 gwas", plink + ["--keep", keep, "--pheno", str(pheno_file), "--pheno-name", "disease",
                                "--covar", str(work / "covar.tsv"), "--covar-variance-standardize",
                                "--glm", "hide-covar", *qc, "--out", str(work / "gwas")])
    gwas = _read_glm(work / "gwas")

    run("plink2 bed for clumping", plink + ["--keep", keep, "--extract", _write_ids(work / "tested.txt", gwas["ID"]),
                                            "--make-bed", "--out", str(work / "gwas_bed")])
    gwas[["ID", "P"]].rename(columns={"ID": "SNP"}).to_csv(work / "assoc.txt", sep="\t", index=False)
    run("plink1.9 clump", ["plink1.9", "--bfile", str(work / "gwas_bed"), "--clump", str(work / "assoc.txt"),
                           "--clump-p1", "1", "--clump-p2", "1", "--clump-r2", "0.1", "--clump-kb", "250",
                           "--threads", str(threads), "--out", str(work / "clump")])
    index_snps = pd.read_csv(work / "clump.clumped", sep=r"\s+")["SNP"]
    clumped = gwas[gwas["ID"].isin(set(index_snps))]
    scores = _scores_at_thresholds(run, plink, clumped, work)

    return _evaluate(scores, covar, pheno, tune_ids, test_ids, n_gwas=len(gwas_ids), n_clumped=len(clumped),
                     n_tested=len(gwas))


def _write_ids(path: Path, ids) -> str:
    path.write_text("".join(f"{i}\n" for i in ids))
    return str(path)


def _project_pcs(run, plink, pruned: str, work: Path) -> pd.DataFrame:
    """PC1-10 of every patient: the GWAS patients' allele weights applied to all (plink2's recipe)."""
    header = (work / "pca.eigenvec.allele").open().readline().lstrip("#").split()
    id_col, a1_col, pc1_col = header.index("ID") + 1, header.index("A1") + 1, header.index("PC1") + 1
    run("plink2 pc projection", plink + [
        "--extract", pruned, "--read-freq", str(work / "pca.acount"),
        "--score", str(work / "pca.eigenvec.allele"), str(id_col), str(a1_col), "header-read",
        "no-mean-imputation", "variance-standardize",
        "--score-col-nums", f"{pc1_col}-{pc1_col + N_PCS - 1}", "--out", str(work / "pcs")])
    sscore = pd.read_csv(work / "pcs.sscore", sep="\t").rename(columns={"#IID": "IID"})
    cols = [c for c in sscore.columns if c.endswith("_AVG")][-N_PCS:]
    return sscore[["IID", *cols]].rename(columns=dict(zip(cols, [f"PC{i}" for i in range(1, N_PCS + 1)],
                                                          strict=True)))


def _read_glm(prefix: Path) -> pd.DataFrame:
    (path,) = glob.glob(f"{prefix}.disease.glm.logistic*")
    gwas = pd.read_csv(path, sep="\t")
    gwas = gwas[gwas["P"].notna() & gwas["OR"].notna() & (gwas["OR"] > 0)].copy()
    gwas["BETA"] = np.log(gwas["OR"])
    return gwas


def _scores_at_thresholds(run, plink, clumped: pd.DataFrame, work: Path) -> dict[str, pd.DataFrame]:
    clumped[["ID", "A1", "BETA"]].to_csv(work / "weights.tsv", sep="\t", index=False)
    clumped[["ID", "P"]].to_csv(work / "pvalues.tsv", sep="\t", index=False)
    ranges = [(f"p{t:g}", t) for t in P_THRESHOLDS if (clumped["P"] <= t).any()]
    (work / "ranges.txt").write_text("".join(f"{name} 0 {t:g}\n" for name, t in ranges))
    for old in glob.glob(str(work / "score.*.sscore")):
        os.remove(old)
    run("plink2 score", plink + ["--score", str(work / "weights.tsv"), "1", "2", "3", "header",
                                 "--q-score-range", str(work / "ranges.txt"), str(work / "pvalues.tsv"), "header",
                                 "--out", str(work / "score")])
    scores = {}
    for name, _ in ranges:
        sscore = pd.read_csv(work / f"score.{name}.sscore", sep="\t").rename(columns={"#IID": "IID"})
        avg = [c for c in sscore.columns if c.endswith("_AVG")][0]
        scores[name] = sscore[["IID", avg]].rename(columns={avg: "prs"})
    return scores


def _evaluate(scores, covar, pheno, tune_ids, test_ids, **counts) -> dict:
    label = pheno.set_index("IID")["disease"]
    best_name, best_auc = None, -1.0
    for name, frame in scores.items():
        prs = frame.set_index("IID")["prs"]
        auc = roc_auc_score(label.loc[tune_ids], prs.loc[tune_ids])
        if auc > best_auc:
            best_name, best_auc = name, auc
    table = covar.merge(scores[best_name], on="IID").set_index("IID")
    columns = ["prs", "age", "male", *[f"PC{i}" for i in range(1, N_PCS + 1)]]
    x_tune, x_test = table.loc[tune_ids, columns].to_numpy(), table.loc[test_ids, columns].to_numpy()
    mean, sd = x_tune.mean(axis=0), x_tune.std(axis=0) + 1e-12
    model = LogisticRegression(max_iter=1000).fit((x_tune - mean) / sd, label.loc[tune_ids])
    full = model.predict_proba((x_test - mean) / sd)[:, 1]
    return {
        "threshold": best_name, "tune_auc_prs": round(best_auc, 4), **counts,
        "n_tune": len(tune_ids), "n_test": len(test_ids),
        "test_auc_prs": round(float(roc_auc_score(label.loc[test_ids], table.loc[test_ids, "prs"])), 4),
        "test_auc_prs_covariates": round(float(roc_auc_score(label.loc[test_ids], full)), 4),
    }

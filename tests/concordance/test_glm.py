"""genoflow.stats (linear and logistic regression, Firth fallback) against ``plink2 --glm``.

Both read the same cohort, phenotypes and covariates (sex, age and four principal components that
plink2 ``--pca`` computed). plink2 runs with ``omit-ref`` (effects per ALT allele, like genoflow),
``hide-covar`` and ``--covar-variance-standardize``. plink2 fits logistic models in single
precision, so -log10 p values agree to ~1e-2 at the extremes rather than to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.stats import genomic_inflation, glm_block, prepare_glm
from tests.concordance.cohort import run_plink2

pytestmark = pytest.mark.integration  # ~20 s on 2 busy cores (plink2 --pca + both scans)

TRAITS = {"linear": ("qt", "QT.glm.linear"), "logistic": ("cc", "CC.glm.logistic.hybrid")}


@pytest.fixture(scope="module")
def plink2_glm(concordance_cohort, tmp_path_factory):
    """plink2 --glm results of both traits, and the covariate table it used (one row per sample)."""
    cohort = concordance_cohort
    work = tmp_path_factory.mktemp("plink2-glm")
    run_plink2("--pfile", cohort.pfile_prefix, "--chr", "1-3", "--maf", "0.05", "--pca", "4", "--out", "pca",
               cwd=work)
    pcs = pd.read_csv(work / "pca.eigenvec", sep="\t").rename(columns={"#IID": "IID"})
    covar = pd.read_csv(cohort.covar_file, sep="\t").rename(columns={"#IID": "IID"}).merge(pcs, on="IID")
    covar.rename(columns={"IID": "#IID"}).to_csv(work / "covar.txt", sep="\t", index=False)
    run_plink2("--pfile", cohort.pfile_prefix, "--chr", "1-3", "--pheno", cohort.pheno_file,
               "--covar", "covar.txt", "--covar-variance-standardize",
               "--glm", "omit-ref", "hide-covar", "cols=+a1freq,+beta,+firth", "--out", "glm", cwd=work)
    results = {family: pd.read_csv(work / f"glm.{suffix}", sep="\t") for family, (_, suffix) in TRAITS.items()}
    return results, covar


@pytest.mark.parametrize("family", ["linear", "logistic"])
def test_glm_block__concordant_with_plink2(concordance_cohort, plink2_glm, family):
    cohort = concordance_cohort
    results, covar = plink2_glm
    trait = TRAITS[family][0]
    samples = cohort.samples.merge(covar, left_on="iid", right_on="IID", validate="1:1")
    assert samples["iid"].tolist() == cohort.samples["iid"].tolist()
    tested = samples[trait].notna().to_numpy()
    covariates = samples[["SEX", "AGE", "PC1", "PC2", "PC3", "PC4"]].to_numpy()[tested]
    auto = cohort.autosomal

    null = prepare_glm(samples[trait].to_numpy()[tested], covariates, family=family)
    ours = pd.DataFrame(glm_block(null, cohort.dosages[auto][:, tested]))
    ours["ID"] = cohort.variants["id"].to_numpy()[auto]
    both = results[family].merge(ours, on="ID", validate="1:1")
    assert len(both) == auto.sum()

    # The same variants are untestable (plink2 NA: constant, VIF), with the same sample counts.
    np.testing.assert_array_equal(both["P"].isna(), both["p"].isna())
    np.testing.assert_array_equal(both["OBS_CT"], both["n_obs"])
    np.testing.assert_allclose(both["A1_FREQ"], both["alt_freq"], atol=1e-6)
    if family == "logistic":
        # Firth where plink2 used Firth (its firth-fallback), e.g. singletons seen in cases only.
        np.testing.assert_array_equal(both["FIRTH?"] == "Y", both["firth"])
        assert both["firth"].sum() > 50

    tested_common = both["p"].notna() & (np.minimum(both["alt_freq"], 1 - both["alt_freq"]) >= 0.01)
    common = both[tested_common]
    assert len(common) > 1000
    r = np.corrcoef(-np.log10(common["P"]), common["neglog10_p"])[0, 1]
    assert r >= 0.999, f"{family}: Pearson r of -log10 p = {r:.6f}"
    # Effects too (plink2 single precision for logistic: 1e-3).
    np.testing.assert_allclose(common["beta"], common["BETA"], atol=1e-3 if family == "logistic" else 1e-5)
    assert genomic_inflation(common["p"]) == pytest.approx(genomic_inflation(common["P"]), rel=1e-3)
    # Both rank the same variant first.
    assert common.loc[common["neglog10_p"].idxmax(), "ID"] == common.loc[common["P"].idxmin(), "ID"]

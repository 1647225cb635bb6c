"""genoflow's cohort QC against plink2 (--mind/--geno/--hwe/--maf, --het) and plink 1.9 (--check-sex).

The surviving sample and variant sets must be IDENTICAL, on the concordance cohort (three
populations, injected missingness, HWE violations, heterozygosity outliers, two sex swaps, an X
chromosome). F coefficients agree to plink's printed precision (6 significant digits for --het, 4
decimals for --check-sex). Heterozygosity outliers are genoflow's rule (mean +- k SD of F) applied to
plink2's F and to genoflow's: the same samples must come out.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from genoflow.genotypes import pack_dosages
from genoflow.qc.plink_qc import QcThresholds, het_outliers, plink_qc
from tests.concordance.cohort import run_plink2

pytestmark = pytest.mark.integration  # plink2 + plink 1.9 runs and whole-cohort QC: ~10 s per case

THRESHOLDS = [
    QcThresholds(min_call_rate=0.95, min_maf=0.01, min_hwe_p=1e-6, max_sample_missingness=0.05, max_het_sd=3.0),
    QcThresholds(min_call_rate=0.9, min_maf=0.05, min_hwe_p=1e-4, max_sample_missingness=0.1, max_het_sd=4.0,
                 hwe_midp=True),
    QcThresholds(min_call_rate=0.98, min_maf=0.001, min_hwe_p=1e-3, max_sample_missingness=0.02, max_het_sd=3.0,
                 hwe_keep_fewhet=True),
]


def _plink_flags(t: QcThresholds) -> list[str]:
    modifiers = [m for m, on in (("midp", t.hwe_midp), ("keep-fewhet", t.hwe_keep_fewhet)) if on]
    hwe = ["--hwe", repr(t.min_hwe_p), *modifiers]
    return ["--mind", repr(t.max_sample_missingness), "--geno", repr(round(1 - t.min_call_rate, 12)),
            *hwe, "--maf", repr(t.min_maf)]


def _plink_qc(cohort, t: QcThresholds, work):
    """plink2 filters + --het, then plink 1.9 --check-sex on what survived: (samples, variants, het, sexcheck)."""
    run_plink2("--pfile", cohort.pfile_prefix, *_plink_flags(t), "--het", "--make-bed", "--out", "qc", cwd=work)
    run_plink2("--bfile", "qc", "--check-sex", "--out", "sex", cwd=work, executable="plink1.9")
    samples = pd.read_csv(work / "qc.fam", sep=r"\s+", header=None)[1].tolist()
    variants = pd.read_csv(work / "qc.bim", sep="\t", header=None)[1].tolist()
    het = pd.read_csv(work / "qc.het", sep="\t").set_index("#IID")
    sexcheck = pd.read_csv(work / "sex.sexcheck", sep=r"\s+").set_index("IID")
    return samples, variants, het, sexcheck


def _assert_concordant(cohort, ours: dict, plink, t: QcThresholds):
    samples, variants, het, sexcheck = plink
    iid = cohort.samples["iid"].to_numpy()
    ids = cohort.variants["id"].to_numpy()
    assert sorted(iid[ours["mind_pass"]]) == sorted(samples)
    assert sorted(ids[ours["variant_pass"]]) == sorted(variants)
    kept = iid[ours["mind_pass"]]
    het_f = pd.Series(ours["het_f"], index=iid)[kept]
    np.testing.assert_allclose(het_f.to_numpy(), het.loc[kept, "F"].to_numpy(), rtol=1e-5, atol=1e-5)
    plink_outliers = set(kept[het_outliers(het.loc[kept, "F"].to_numpy(), t.max_het_sd)])
    assert set(iid[ours["het_outlier"]]) == plink_outliers
    sex_f = pd.Series(ours["sex_f"], index=iid)[kept]
    np.testing.assert_allclose(sex_f.to_numpy(), sexcheck.loc[kept, "F"].to_numpy(), atol=1e-4)
    assert set(iid[ours["sex_problem"]]) == set(sexcheck.index[sexcheck["STATUS"] == "PROBLEM"])


@pytest.mark.parametrize("t", THRESHOLDS, ids=["defaults", "midp", "keep-fewhet"])
def test_plink_qc__identical_to_plink2_and_plink19(concordance_cohort, tmp_path, t):
    cohort = concordance_cohort
    ours = plink_qc(cohort.dosages, cohort.variants["contig"], (cohort.samples["sex"] == 1).to_numpy(), t)
    _assert_concordant(cohort, ours, _plink_qc(cohort, t, tmp_path), t)
    # The injected problems are what the filters catch (so the comparison is not vacuous).
    samples = cohort.samples
    assert (~ours["mind_pass"]).sum() >= 3
    injected = (samples["het_excess"] | samples["het_deficit"]).to_numpy()
    assert ours["het_outlier"][injected].all()
    assert set(samples["iid"][samples["sex_swapped"]]) <= set(samples["iid"][ours["sex_problem"]])
    failed = set(cohort.variants["id"][~ours["variant_pass"]])
    assert set(cohort.hwe_violators) & failed


@pytest.mark.parametrize("source", ["dataframe", "files"])
def test_spark_cohort_qc__identical_to_plink2_and_plink19(concordance_cohort, spark, tmp_path, source):
    """The Spark passes preprocess runs (run_cohort_qc), on the cohort as a genotype table: read and written
    through Spark, and by the tasks themselves (decision 0032)."""
    from genoflow.pipeline.preprocess import run_cohort_qc
    from genoflow.storage.parts import ParquetFolder

    cohort = concordance_cohort
    t = THRESHOLDS[0]
    table = cohort.variants.assign(
        call_rate=np.nan, alt_af=np.nan, maf=np.nan, hwe_p=np.nan, qc_pass=False,
        dosages=[pack_dosages(row) for row in cohort.dosages])
    parsed = spark.createDataFrame(table).repartition(3)
    if source == "files":
        parsed.write.parquet((tmp_path / "parsed").as_uri())
        parsed = ParquetFolder.of(spark, (tmp_path / "parsed").as_uri())
    # The study's only column run_cohort_qc reads: sex (F/M) by sample id.
    study = SimpleNamespace(sex=pd.Series(np.where(cohort.samples["sex"].to_numpy() == 1, "M", "F"),
                                          index=cohort.samples["iid"].tolist()))
    params = {"min_call_rate": t.min_call_rate, "min_maf": t.min_maf, "min_hwe_p": t.min_hwe_p,
              "max_sample_missingness": t.max_sample_missingness, "max_het_sd": t.max_het_sd}
    uri = (tmp_path / "genotypes").as_uri()
    sample_qc, counts = run_cohort_qc(parsed, uri, cohort.samples["iid"].tolist(), study, params)
    written = spark.read.parquet(uri).select("id", "qc_pass").toPandas()
    ours = {**sample_qc, "variant_pass": written.set_index("id").loc[cohort.variants["id"], "qc_pass"].to_numpy()}
    _assert_concordant(cohort, ours, _plink_qc(cohort, t, tmp_path), t)
    assert counts["n_variants"] == len(cohort.variants)
    assert counts["n_variants_pass_qc"] == ours["variant_pass"].sum()
    assert counts["n_samples_fail_missingness"] == (~sample_qc["mind_pass"]).sum()

"""The concordance cohort itself: plink2 reads the same genotypes, sexes and phenotypes as the arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.concordance.cohort import run_plink2


def test_concordance_cohort__plink2_reads_the_same_genotypes(concordance_cohort, tmp_path):
    cohort = concordance_cohort
    run_plink2("--pfile", cohort.pfile_prefix, "--export", "A", "--out", "export", cwd=tmp_path)
    raw = pd.read_csv(tmp_path / "export.raw", sep="\t")
    assert raw["IID"].tolist() == cohort.samples["iid"].tolist()
    # Each .raw column is <ID>_<counted allele>; plink2 counts REF here, so turn the counts into ALT counts.
    counted_allele = raw.columns[6:].str.rsplit("_", n=1).str[1].to_numpy()
    assert (counted_allele == cohort.variants["ref"].to_numpy()).all()
    alt_count = 2 - raw.iloc[:, 6:].to_numpy(dtype=float).T
    missing = cohort.dosages < 0
    np.testing.assert_array_equal(np.isnan(alt_count), missing)
    np.testing.assert_array_equal(alt_count[~missing], cohort.dosages[~missing])
    psam = pd.read_csv(cohort.pfile_prefix.with_suffix(".psam"), sep="\t")
    assert psam["SEX"].tolist() == cohort.samples["sex"].tolist()


def test_concordance_cohort__qc_is_not_trivial(concordance_cohort):
    cohort = concordance_cohort
    samples = cohort.samples
    assert samples["high_missing"].sum() == 6 and samples["sex_swapped"].sum() == 2
    assert len(cohort.hwe_violators) == 16 and len(cohort.high_missing_variants) == 12
    assert set(samples["population"]) == {"A", "B", "C"}
    assert 0.2 < samples["cc"].mean() < 0.8 and samples["qt"].isna().sum() == 5
    assert (cohort.dosages == -1).any() and set(np.unique(cohort.dosages)) == {-1, 0, 1, 2}

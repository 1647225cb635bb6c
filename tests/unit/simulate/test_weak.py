"""Tests of the weak-effect two-stratum cohort (genoflow.simulate.weak) on a 2,000 x 1 Mb cohort (~3 s)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genoflow.simulate.weak import STRATA, make_weak_effect_cohort

N = 2_000


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("weak")
    summary = make_weak_effect_cohort(root, n_patients=N, reads_per_patient=2, case_rates=(0.5, 0.25))
    truth = json.loads((root / "truth" / "truth.json").read_text())
    paths = sorted((root / "raw" / "patient_data").glob("*/clinical_data.csv"))
    clinical = pd.concat(pd.read_csv(path) for path in paths)
    return root, summary, truth, clinical.reset_index(drop=True)


def _dosages(root, loci) -> np.ndarray:
    """(patients, loci) alt-allele counts of the truth's loci, read back from the VCF the pipeline reads."""
    from Bio import bgzf

    wanted = {locus["pos"]: j for j, locus in enumerate(loci)}
    out = np.zeros((N, len(loci)))
    with bgzf.open(str(root / "raw" / "cohort.vcf.gz"), "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if int(fields[1]) in wanted:
                calls = [gt.replace(".", "0") for gt in fields[9:]]
                out[:, wanted[int(fields[1])]] = [int(gt[0]) + int(gt[2]) for gt in calls]
    return out


@pytest.mark.slow  # simulates a cohort (seconds)
def test_make_weak_effect_cohort__strata_and_their_case_rates(cohort):
    _, summary, truth, clinical = cohort
    assert summary["strata"] == {"north": N // 2, "south": N // 2}
    assert list(clinical["stratum"].unique()) == list(STRATA)
    rates = clinical.groupby("stratum")["disease_status"].mean()
    # Binomial SD of a rate from 1,000 patients is ~0.016: 4 SD.
    assert abs(rates["north"] - 0.5) < 0.064 and abs(rates["south"] - 0.25) < 0.064
    assert set(truth["strata"].values()) == set(STRATA)


@pytest.mark.slow  # simulates a cohort (seconds)
def test_make_weak_effect_cohort__odds_ratios_recovered_by_logistic_regression(cohort):
    root, _, truth, clinical = cohort
    loci = truth["traits"]["disease_status"]["causal_variants"]
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([_dosages(root, loci), clinical["stratum"] == "south"]).astype(float)
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(x, clinical["disease_status"])
    estimate = fit.coef_[0][:len(loci)]
    true = np.log([locus["odds_ratio_per_alt_allele"] for locus in loci])
    # One cohort's estimates scatter (SE of a log OR here 0.07-0.12, found by redrawing the phenotype on these
    # genotypes): each within ~4 SE, their mean (SE ~0.05) within 3.
    np.testing.assert_allclose(estimate, true, atol=0.45)
    assert abs(estimate.mean() - true.mean()) < 0.15, (estimate, true)
    assert 0.55 < truth["oracle_auc_disease"] < 0.75  # weak: that is the point


@pytest.mark.slow  # simulates a cohort (seconds)
def test_make_weak_effect_cohort__ldl_betas_recovered_and_missing_cells_empty(cohort):
    root, _, truth, clinical = cohort
    loci = truth["traits"]["ldl"]["causal_variants"]
    known = clinical["ldl"].notna().to_numpy()
    assert 0 < (~known).sum() < 0.06 * N  # ldl_missing_rate 0.02, written as empty cells
    x = np.column_stack([np.ones(N), _dosages(root, loci), clinical["stratum"] == "south"]).astype(float)[known]
    coef = np.linalg.lstsq(x, clinical["ldl"].to_numpy()[known], rcond=None)[0]
    true = np.array([3.2, *(locus["beta_per_alt_allele"] for locus in loci), 0.3])
    # SE of a beta from ~1,960 patients, noise SD 0.6, MAF >= 0.1: at most ~0.035 (the intercept's more).
    np.testing.assert_allclose(coef, true, atol=0.12)


@pytest.mark.slow  # simulates a cohort (seconds)
def test_make_weak_effect_cohort__same_seed_same_bytes(cohort, tmp_path):
    root, *_ = cohort
    make_weak_effect_cohort(tmp_path, n_patients=N, reads_per_patient=2, case_rates=(0.5, 0.25))
    for rel in ("raw/cohort.vcf.gz", "raw/patient_data/PT01999/clinical_data.csv", "truth/truth.json"):
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes(), rel


@pytest.mark.parametrize("bad", [{"odds_ratios": ()}, {"case_rates": (0.5, 1.0)}, {"ldl_noise_sd": 0.0},
                                 {"n_patients": 3}, {"odds_ratios": (1.3,) * 10_000}])
def test_make_weak_effect_cohort__bad_parameters_name_themselves(tmp_path, bad):
    with pytest.raises(ValueError, match="make_weak_effect_cohort: "):
        make_weak_effect_cohort(tmp_path, **{"n_patients": 40, "sequence_length": 100_000, **bad})

"""Tests of the three-population (stdpopsim OutOfAfrica_3G09) cohort on a tiny cohort (60 x 200 kb)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from Bio import bgzf

from genoflow.evaluation.metrics import auc_roc
from genoflow.simulate.ooa import POPULATIONS, make_ooa_cohort

N, L = 60, 200_000


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("ooa")
    summary = make_ooa_cohort(root, n_patients=N, sequence_length=L, seed=3, n_causal=5, reads_per_patient=10,
                              heritability=0.2, population_shift={"YRI": 0.8, "CEU": 0.0, "CHB": -0.8})
    truth = json.loads((root / "truth" / "truth.json").read_text())
    return root, summary, truth


def _vcf_rows(path):
    with bgzf.open(str(path), "rt") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("##")]
    return lines[0][9:], lines[1:]


def test_make_ooa_cohort__three_populations_in_vcf_order(cohort):
    root, summary, truth = cohort
    samples, rows = _vcf_rows(root / "raw" / "cohort.vcf.gz")
    assert summary["populations"] == {"YRI": 20, "CEU": 20, "CHB": 20}
    assert [truth["populations"][s] for s in samples] == ["YRI"] * 20 + ["CEU"] * 20 + ["CHB"] * 20
    assert len(rows) == summary["n_variants"] > 100
    assert truth["model"]["demographic_model"] == "OutOfAfrica_3G09"


def test_make_ooa_cohort__populations_differ_in_allele_frequency(cohort):
    root, _, _ = cohort
    _, rows = _vcf_rows(root / "raw" / "cohort.vcf.gz")
    alt = np.array([[gt.count("1") for gt in row[9:]] for row in rows], dtype=float)
    af = np.stack([alt[:, k * 20:(k + 1) * 20].mean(axis=1) / 2 for k in range(3)])
    # African vs non-African drift after the out-of-Africa bottleneck: clearly different spectra.
    assert np.abs(af[0] - af[1]).mean() > 0.05


def test_make_ooa_cohort__population_shift_is_in_the_truth_and_the_oracle(cohort):
    _, summary, truth = cohort
    assert truth["population_shift"] == {"YRI": 0.8, "CEU": 0.0, "CHB": -0.8}
    status = {}
    for pid in truth["patients"]:
        status.setdefault(truth["populations"][pid], []).append(truth["patients"][pid]["liability_disease"])
    mean = {p: np.mean(v) for p, v in status.items()}
    assert mean["YRI"] > mean["CEU"] > mean["CHB"]  # 0.8 SD apart by construction
    genetic = np.array([v["genetic_value_disease"] for v in truth["patients"].values()])
    liability = np.array([v["liability_disease"] for v in truth["patients"].values()])
    assert summary["oracle_auc_disease"] > auc_roc(liability > np.quantile(liability, 0.7), genetic)


def test_make_ooa_cohort__rejects_unknown_population(tmp_path):
    with pytest.raises(ValueError, match="unknown population"):
        make_ooa_cohort(tmp_path, n_patients=9, sequence_length=10_000, population_shift={"ASW": 0.1})
    assert sorted(POPULATIONS) == ["CEU", "CHB", "YRI"]

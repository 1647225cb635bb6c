"""The whole training DAG on a real public cohort nobody here made (issue 13, decision 0011).

Bioconductor snpStats' ``for.exercise``: 1,000 subjects (500 cases, 500 controls) x 28,501 SNPs of
chromosome 10 built from HapMap CEU and JPT+CHB haplotypes, a few weak causal loci, and case rates that
differ between the two strata. ``scripts/public-cohort.sh`` writes it as a study folder: a VCF, the
phenotype in a plink ``.fam``, the stratum in a plink ``.covar``; no FASTA, GFF, FASTQ, age or sex. The
study is described in params only; nothing is invented.

Asserted: the run succeeds; QC keeps exactly plink2's variants on the same thresholds; the nested CV AUC
lies inside the held-out AUC's 95% CI (the old pipeline cross-validated at 0.82 and scored 0.51); the gate
crowns a model only when it beats the covariates-only baseline, and otherwise says why.
"""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.integration.outcomes import mlflow_client
from tests.project import make_project_from_raw, trigger

pytestmark = pytest.mark.integration  # Rscript + plink2 conversion (~5 s), then a whole DAG run on 1,000 x 28,501

MODEL = "genoflow_cc"
STUDY = {
    "preprocess": {"reference_fasta": None, "annotations_gff": None},
    "study": {"phenotypes": "raw/forexercise.fam", "covariates_file": "raw/forexercise.covar",
              "targets": {"cc": "binary"}, "categorical": ["stratum"]},
    "features": {"covariates": ["stratum"], "read_qc": []},
    # One family keeps the run short; it is the family that was promoted at chance level before.
    "train": {"models": ["logistic_regression"]},
}


@pytest.fixture(scope="module")
def forexercise(tmp_path_factory):
    out = tmp_path_factory.mktemp("forexercise")
    subprocess.run([str(REPO / "scripts" / "public-cohort.sh"), str(out)], check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, forexercise):
    project = make_project_from_raw(tmp_path_factory.mktemp("real-cohort"), forexercise / "raw", STUDY)
    log = trigger(project)
    return project, log


def _plink2_qc_variants(vcf, params: dict, work) -> set[str]:
    """plink2's surviving variant ids with genoflow's thresholds (--mind first, then --geno/--hwe/--maf)."""
    p = params["preprocess"]
    subprocess.run(["plink2", "--vcf", str(vcf), "--mind", repr(p["max_sample_missingness"]),
                    "--geno", repr(round(1 - p["min_call_rate"], 12)), "--hwe", repr(p["min_hwe_p"]),
                    "--maf", repr(p["min_maf"]), "--write-snplist", "--out", str(work / "qc")],
                   check=True, capture_output=True, text=True)
    return set((work / "qc.snplist").read_text().split())


def test_real_cohort__qc_keeps_plink2s_variants(real_run, forexercise, tmp_path):
    import yaml

    project, _ = real_run
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    genotypes = pd.read_parquet(next((project.root / "data" / "steps").glob("preprocess/*/genotypes")),
                                columns=["id", "qc_pass"])
    assert len(genotypes) == 28_501
    ours = set(genotypes.loc[genotypes["qc_pass"], "id"])
    plink = _plink2_qc_variants(forexercise / "raw" / "cohort.vcf.gz", params, tmp_path)
    assert 20_000 < len(plink) < 28_501  # the filters did something, and not everything
    assert ours == plink, (len(ours - plink), len(plink - ours))


def _candidate(client):
    """The newest registered version of the cc model and its run's metrics."""
    versions = client.search_model_versions(f"name = '{MODEL}'")
    newest = max(versions, key=lambda v: int(v.version))
    return newest, client.get_run(newest.run_id).data.metrics


def test_real_cohort__cv_auc_inside_held_out_ci(real_run):
    _, metrics = _candidate(mlflow_client(real_run[0]))
    low, high = metrics["test_auc_roc_ci_low"], metrics["test_auc_roc_ci_high"]
    assert low < metrics["test_auc_roc"] < high
    assert low <= metrics["cv_auc_roc"] <= high, metrics


def test_real_cohort__gate_crowns_only_a_model_that_beats_the_covariates_baseline(real_run):
    from genoflow.registry.tracking import GATE_P_VS_BASELINE, TAG_PROMOTION, TAG_PROMOTION_REASON

    client = mlflow_client(real_run[0])
    version, metrics = _candidate(client)
    version = client.get_model_version(MODEL, version.version)  # search results carry no aliases
    crowned = "champion" in version.aliases
    # The first run has no champion to beat, so the baseline alone decides (promote.max_p_vs_baseline 0.05).
    assert crowned == (metrics[GATE_P_VS_BASELINE] < 0.05), (metrics, version.tags)
    assert version.tags[TAG_PROMOTION] == ("champion" if crowned else "kept challenger")
    if not crowned:
        assert version.tags.get(TAG_PROMOTION_REASON), version.tags


def test_real_cohort__covariates_baseline_logged(real_run):
    """The gate's reference exists: a covariates-only run on the same split (stratum + PCs), never a candidate."""
    client = mlflow_client(real_run[0])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`genoflow.baseline` = 'covariates' and tags.`genoflow.target` = 'cc'")
    assert runs, "no covariates-only baseline run for target cc"
    assert 0.0 < runs[0].data.metrics["test_auc_roc"] < 1.0

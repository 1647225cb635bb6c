"""The report's statistics against hand values, and the page built from small synthetic inputs."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genoflow.reporting import stats as rstats
from genoflow.reporting.html import SECTIONS, build_report_html


def test_genomic_inflation__hand_values():
    # chi-squares 0.5, 1, 2 -> median 1 -> lambda = 1 / 0.454936 = 2.19811
    p = stats.chi2.sf([0.5, 1.0, 2.0], df=1)
    assert rstats.genomic_inflation(p) == pytest.approx(2.198109, abs=1e-6)
    assert rstats.genomic_inflation([0.5]) == pytest.approx(1.0)  # p = 0.5 is the null median
    assert rstats.genomic_inflation([0.5, np.nan]) == pytest.approx(1.0)
    assert np.isnan(rstats.genomic_inflation([]))
    null = np.random.default_rng(0).uniform(size=20_000)
    assert rstats.genomic_inflation(null) == pytest.approx(1.0, abs=0.03)


def test_calibration_bins_and_wilson_interval():
    bins = rstats.calibration_bins([0.4, 0.1, 0.3, 0.2], [1, 0, 1, 0], n_bins=2)
    assert bins["predicted"].tolist() == pytest.approx([0.15, 0.35])
    assert bins["observed"].tolist() == [0.0, 1.0] and bins["n"].tolist() == [2, 2]
    lo, hi = rstats.wilson_interval(0.5, 10)  # 5/10: (0.2366, 0.7634)
    assert (float(lo), float(hi)) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def _inputs(lam_chi2_median: float = 2 * rstats.CHI2_1_MEDIAN) -> dict:
    rng = np.random.default_rng(1)
    n_var = 201
    chi2 = np.sort(rng.chisquare(1, n_var))
    chi2[n_var // 2] = lam_chi2_median  # the median of the sorted chi-squares, whatever the draw
    chi2[: n_var // 2] = np.minimum(chi2[: n_var // 2], lam_chi2_median * 0.99)
    chi2[n_var // 2 + 1:] = np.maximum(chi2[n_var // 2 + 1:], lam_chi2_median * 1.01)
    association = pd.DataFrame({
        "contig": "chr22", "pos": np.arange(1, n_var + 1) * 1000, "ref": "A", "alt": "G",
        "gene": "", "maf": 0.2, "beta": 0.1, "se": 0.05, "p": stats.chi2.sf(rng.permutation(chi2), df=1)})
    association.loc[association["p"].idxmin(), "gene"] = "<script>GF01"  # a hostile name in the top table
    n = 60
    samples = pd.DataFrame({
        "pid": [f"P{i:016x}" for i in range(n)], "age": rng.integers(20, 80, n), "sex": rng.choice(["F", "M"], n),
        "disease_status": rng.integers(0, 2, n), "treatment_response": pd.array(rng.integers(0, 2, n), "Int64"),
        "stratum": rng.choice(["pop1", "<i>pop2"], n),  # a hostile categorical level
        "missingness": rng.uniform(0, 0.01, n), "het_outlier": [True] + [False] * (n - 1),
        "sample_qc_pass": [False] + [True] * (n - 1), "n_reads": 50, "mean_phred": rng.normal(33, 0.3, n),
        "gc_fraction": rng.normal(0.41, 0.01, n), "n_rate": rng.uniform(0, 0.002, n)})
    labels = rng.integers(0, 2, 30).astype(float)
    scores = pd.concat([pd.DataFrame({"pid": samples["pid"][:30], "target": "disease_status", "family": fam,
                                      "run_id": run, "label": labels,
                                      "score": np.clip(labels * shift + rng.uniform(0, 0.6, 30), 0, 1)})
                        for fam, run, shift in (("logistic_regression", "run-lr", 0.4), ("gbt", "run-gbt", 0.2),
                                                ("logistic_regression", "run-cov", 0.1))])
    common = {"target": "disease_status", "type": "binary", "baseline": None, "cv_metric": "cv_auc_roc",
              "test_n": 30, "test_prevalence": 0.4}
    models = [{**common, "family": "logistic_regression", "run_id": "run-lr", "cv_auc_roc": 0.81,
               "cv_auc_roc_sd": 0.03, "test_auc_roc": 0.79, "test_auc_roc_ci_low": 0.62, "test_auc_roc_ci_high": 0.96,
               "test_auc_pr": 0.61, "test_brier": 0.19, "test_calibration_slope": 0.87,
               "test_calibration_intercept": -0.1, "best_params": {"regParam": 0.01}},
              {**common, "family": "gbt", "run_id": "run-gbt", "cv_auc_roc": 0.77,
               "test_auc_roc": 0.71, "test_auc_pr": 0.52, "best_params": {"maxDepth": 2}},
              {**common, "family": "logistic_regression", "baseline": "covariates", "run_id": "run-cov",
               "cv_auc_roc": 0.58, "test_auc_roc": 0.55, "test_auc_roc_ci_low": 0.34, "test_auc_roc_ci_high": 0.76,
               "best_params": {}}]
    return {
        "run": {"run_key": "abc123", "dataset_version": "d78f51b.dir", "git_commit": "0123456789abcdef",
                "storage_root": "file:///tmp/x", "created": "2026-01-01 00:00 UTC"},
        "params": {"promote": {"metric": "test_auc_roc", "min_improvement": 0.005, "max_p_vs_baseline": 0.05}},
        "qc_summary": {"n_samples": n, "n_samples_pass_qc": n - 1, "n_variants": 300, "n_variants_pass_qc": n_var,
                       "n_samples_with_reads": n,
                       "thresholds": {"min_call_rate": 0.95, "min_maf": 0.01, "min_hwe_p": 1e-6,
                                      "max_sample_missingness": 0.05, "max_het_sd": 4.0}},
        "variant_qc": {"n": 300, "fail_call_rate": 3, "fail_maf": 95, "fail_hwe": 1, "n_pass": n_var},
        "samples": samples,
        "split": {"n_train": 29, "n_test": 30},
        "association": {"disease_status": association},
        "selected": {"disease_status": [{"contig": "chr22", "pos": 1000, "ref": "A", "alt": "G"}]},
        "metrics": {"models": models, "candidates": {"disease_status": "run-lr"},
                    "gates": {"disease_status": {"baseline": "run-cov", "gate_p_vs_baseline": 0.012,
                                                 "genoflow.gate.champion_version": "1",
                                                 "gate_champion_delta": -0.01}}},
        "scores": scores,
        "registry": {"disease_status": {"model_name": "genoflow_disease_status", "versions": [
            {"version": "2", "run_id": "run-lr", "aliases": ["challenger"], "promotion": "kept challenger",
             "reason": "test_auc_roc 0.7900 vs the champion's 0.8000: margin -0.0100 < 0.005",
             "metric_value": 0.79, "family": "logistic_regression"},
            {"version": "1", "run_id": "run-old", "aliases": ["champion"], "promotion": "champion",
             "reason": "no champion yet", "metric_value": 0.80, "family": "gbt"}]}},
    }


@pytest.fixture(scope="module")
def page() -> str:
    return build_report_html(_inputs())


def test_page__has_every_section_with_its_heading(page):
    for key, heading in SECTIONS.items():
        assert f'<section id="{key}"><h2>{heading}</h2>' in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_page__lambda_matches_the_hand_value(page):
    # median chi-square = 2 x 0.4549 by construction -> lambda_GC = 2.000
    assert "lambda_GC = 2.000" in page
    assert "lambda_GC of the association scan: 2.000" in page


def test_page__self_contained_figures(page):
    images = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert len(images) == 5  # Manhattan, QQ, ROC, PR, calibration
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script" not in page  # the hostile gene name is escaped
    assert "&lt;script&gt;GF01" in page
    assert "&lt;i&gt;pop2" in page and "<i>" not in page  # a covariate level is text too


def test_page__numbers_and_decisions(page):
    assert "Held-out AUC-ROC <b>0.790</b>" in page
    assert "v2: kept challenger" in page
    assert "margin -0.0100 &lt; 0.005" in page
    assert '<tr class="hl"><td>logistic_regression ★</td>' in page  # the candidate row
    assert "1,000" in page  # positions with thousands separators
    assert ">fail" not in page and ">95<" in page  # the MAF filter count


def test_page__without_registry_or_reads():
    inputs = _inputs()
    inputs["registry"] = {}
    inputs["samples"] = inputs["samples"].drop(columns=["n_reads", "mean_phred", "gc_fraction", "n_rate"])
    page = build_report_html(inputs)
    assert "not registered" in page and "No registered versions" in page and "No read QC" in page


def test_page__cis_baselines_and_the_gate(page):
    assert "(95% CI 0.620–0.960) on 30 test patients" in page
    assert "Baseline covariates: held-out AUC-ROC 0.550 (0.340–0.760)" in page
    assert "0.810 ± 0.030" in page  # the CV metric beside the held-out one
    assert '<tr class="base"><td>baseline: covariates</td>' in page
    assert ("Gate: vs the covariates-only baseline, one-sided p = 0.012 (paired DeLong test); vs champion v1 on the "
            "same held-out patients -0.0100 AUC-ROC.") in page
    assert "p &lt; 0.05" in page and "0.87 / -0.10" in page
    assert "<td>stratum</td><td></td><td class=\"num\">categorical</td>" in page  # a study column, any name
    assert "<td>missingness</td>" not in page


def test_page__study_columns_with_their_roles_from_study_json():
    inputs = _inputs()
    inputs["study"] = {"columns": {"disease_status": {"role": "target"}, "stratum": {"role": "covariate"}}}
    page = build_report_html(inputs)
    assert "<td>disease_status</td><td>target</td>" in page and "<td>stratum</td><td>covariate</td>" in page
    assert "<td>age</td>" not in page  # not a column of this study


def test_page__quantitative_target():
    inputs = _inputs()
    inputs["metrics"] = {"candidates": {"ldl": "run-q"}, "gates": {"ldl": {"gate_p_vs_baseline": 0.3}}, "models": [
        {"target": "ldl", "type": "quantitative", "family": "linear_regression", "baseline": None, "run_id": "run-q",
         "cv_metric": "cv_r2", "cv_r2": 0.21, "test_r2": 0.18, "test_r2_ci_low": 0.09, "test_r2_ci_high": 0.27,
         "test_rmse": 1.25, "test_rmse_ci_low": 1.1, "test_rmse_ci_high": 1.4, "test_n": 30}]}
    inputs["registry"] = {}
    page = build_report_html(inputs)
    assert "Held-out R^2 <b>0.180</b> (95% CI 0.090–0.270)" in page and "RMSE 1.250 (1.100–1.400)" in page
    assert "paired test of squared errors" in page and "no champion to compare with" in page
    assert len(re.findall(r"<img", page)) == 0  # no association results given, no ROC for a quantitative target


HOSTILE = "<script>alert(1)</script>"


def test_page__a_hostile_value_is_text_wherever_it_is_shown():
    """Every string a cohort, a run or the registry supplies goes through autoescape, table cells included."""
    inputs = _inputs()
    inputs["association"]["disease_status"].loc[:, "gene"] = HOSTILE  # every gene cell of the top table
    inputs["samples"] = inputs["samples"].rename(columns={"stratum": HOSTILE})  # a study column's name
    inputs["samples"][HOSTILE] = inputs["samples"][HOSTILE].replace("pop1", HOSTILE)  # and its level
    inputs["run"].update(run_key=HOSTILE, dataset_version=HOSTILE, git_commit=HOSTILE, created=HOSTILE)
    inputs["metrics"]["models"][0]["best_params"] = {HOSTILE: HOSTILE}
    versions = inputs["registry"]["disease_status"]["versions"]
    inputs["registry"]["disease_status"]["model_name"] = HOSTILE
    versions[0].update(reason=HOSTILE, promotion=HOSTILE, family=HOSTILE)
    page = build_report_html(inputs)
    assert "<script" not in page and "alert(1)</" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert page.count("&lt;script&gt;alert(1)") >= 10  # shown, as text, in the summary, tables and registry
    for shown in (f"<title>genoflow report {escaped}</title>", f"<code>{escaped}</code>",  # run key, data version
                  f"<td>{escaped}</td>", f"<td>{escaped}={escaped}</td>", f"<h3>{escaped}</h3>"):  # cells, model name
        assert shown in page


def test_template__travels_in_the_py_files_zip(tmp_path):
    """The report job's driver imports genoflow from the --py-files zip: the page template must load from it."""
    import subprocess
    import sys

    from genoflow.packaging import build_py_files
    from genoflow.reporting.html import _template_text

    archive = build_py_files(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from genoflow.reporting import html; "
            "assert html.__file__.startswith(sys.argv[1]), html.__file__; sys.stdout.write(html._template_text())")
    out = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, check=True)
    assert out.stdout == _template_text() and "{%- macro table" in out.stdout

"""One self-contained HTML page per training run: QC, association, models, baselines and the gate.

:func:`build_report_html` takes plain inputs (dicts and pandas frames read from the committed step
outputs and the MLflow registry; see :mod:`genoflow.reporting.job`), turns them into display values
here and renders ``templates/report.html.j2`` (a package file) with Jinja2, autoescaped, so a hostile
gene name or covariate level is shown as text. Inline CSS, figures as base64 PNGs, no external
asset: the page opens anywhere (a browser, an MLflow artifact view, an e-mail attachment).

``inputs["metrics"]`` is evaluate's ``metrics.json``: ``models`` (each with ``target``, ``type``
binary|quantitative, ``family``, ``baseline`` covariates|prs|None, ``run_id``, ``cv_metric`` and
its value and ``_sd``, ``best_params`` and the held-out ``test_*`` numbers of
:mod:`genoflow.evaluation.metrics`), ``candidates`` (target -> run id) and ``gates`` (target -> the
gate's evidence).
"""

from __future__ import annotations

import base64
import math

import numpy as np

from genoflow.reporting import plots
from genoflow.reporting.stats import genomic_inflation

__all__ = ["build_report_html", "SECTIONS"]

SECTIONS = {
    "summary": "Summary",
    "qc": "Data and quality control",
    "association": "Association scans",
    "models": "Models on held-out patients",
    "promotion": "Registry and promotion",
    "about": "How to read this report",
}
TEMPLATE = "report.html.j2"  # in genoflow/reporting/templates/
METRIC_LABEL = {"binary": "AUC-ROC", "quantitative": "R^2"}
HELD_OUT = {"binary": "test_auc_roc", "quantitative": "test_r2"}
READ_QC = ("n_reads", "mean_length", "mean_phred", "q30_fraction", "gc_fraction", "n_rate")
# Without preprocess's study.json: every sample-table column but the ids, sample QC and read QC is a study column.
NOT_STUDY = {"sample_index", "pid", "missingness", "het_rate", "het_outlier", "het_f", "sex_f", "sex_problem",
             "sample_qc_pass", *READ_QC}


# --------------------------------------------------------------------------- formatting


def fmt_int(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(value):,}"


def fmt_float(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.{digits}f}"


def fmt_p(value) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def fmt_pct(value, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def fmt_ci(m: dict, key: str) -> str:
    low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
    return "–" if low is None or high is None else f"{fmt_float(low)}–{fmt_float(high)}"


def _png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- the page


def _template_text() -> str:
    """The page's Jinja2 source, read through importlib.resources so it loads from the --py-files zip too."""
    from importlib.resources import files

    return files("genoflow.reporting").joinpath("templates").joinpath(TEMPLATE).read_text(encoding="utf-8")


def build_report_html(inputs: dict) -> str:
    """The report page (see the module docstring for ``inputs``)."""
    import jinja2

    targets = list(inputs["metrics"]["candidates"])
    lambdas = {t: genomic_inflation(inputs["association"][t]["p"]) for t in targets if t in inputs["association"]}
    gate = inputs["params"].get("promote", {})
    run = inputs["run"]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.from_string(_template_text()).render(
        sections=SECTIONS,
        run={**run, "git_commit": str(run.get("git_commit", "unknown"))[:12], "created": run.get("created", ""),
             "storage_root": run.get("storage_root", "")},
        targets=[_summary(inputs, t, lambdas.get(t)) for t in targets],
        qc=_qc(inputs), association=[_association(inputs, t, lambdas.get(t)) for t in targets],
        models=[_models(inputs, t) for t in targets], promotion=[_promotion(inputs, t) for t in targets],
        gate={"max_p": gate.get("max_p_vs_baseline", 0.05), "min_improvement": gate.get("min_improvement")},
    )


def _own(inputs: dict, target: str) -> list[dict]:
    """A target's models: contenders by CV metric, then the baselines."""
    own = [m for m in inputs["metrics"]["models"] if m["target"] == target]
    return sorted(own, key=lambda m: (m.get("baseline") is not None, m.get("baseline") or "",
                                      -(m.get(m.get("cv_metric", "cv_auc_roc")) or -math.inf)))


def _kind(models: list[dict]) -> str:
    return next((m.get("type") for m in models if m.get("type")), "binary")


def _cv(m: dict) -> str:
    key = m.get("cv_metric", "cv_auc_roc")
    sd = m.get(f"{key}_sd")
    return fmt_float(m.get(key)) + (f" ± {fmt_float(sd)}" if sd is not None else "")


def _this_run_version(inputs: dict, target: str) -> dict | None:
    candidate = inputs["metrics"]["candidates"].get(target)
    versions = inputs.get("registry", {}).get(target, {}).get("versions", [])
    return next((v for v in versions if v["run_id"] == candidate), None)


def _summary(inputs: dict, target: str, lam) -> dict:
    own = _own(inputs, target)
    kind = _kind(own)
    run_id = inputs["metrics"]["candidates"].get(target)
    cand = next((m for m in own if m["run_id"] == run_id), None)
    version = _this_run_version(inputs, target)
    if version is None:
        decision = {"label": "not registered", "kind": "warn",
                    "reason": "promote_champion has not registered this run's candidate (yet)."}
    else:
        promoted = version.get("promotion") == "champion"
        decision = {"label": f"v{version['version']}: {'champion' if promoted else 'kept challenger'}",
                    "kind": "ok" if promoted else "info", "reason": version.get("reason") or ""}
    metric = HELD_OUT[kind]
    out = {"name": target, "kind": kind, "metric_label": METRIC_LABEL[kind], "lambda_gc": fmt_float(lam),
           "decision": decision, "candidate": None, "baselines": [], "gate": _gate_text(inputs, target, kind)}
    if cand is None:
        return out
    out["candidate"] = {
        "family": cand["family"], "cv": _cv(cand), "held_out": fmt_float(cand.get(metric)), "ci": fmt_ci(cand, metric),
        "n": fmt_int(cand.get("test_n")), "auc_pr": fmt_float(cand.get("test_auc_pr")),
        "prevalence": fmt_pct(cand.get("test_prevalence")), "brier": fmt_float(cand.get("test_brier")),
        "rmse": fmt_float(cand.get("test_rmse")), "rmse_ci": fmt_ci(cand, "test_rmse")}
    out["baselines"] = [{"baseline": m["baseline"], "held_out": fmt_float(m.get(metric)), "ci": fmt_ci(m, metric)}
                        for m in own if m.get("baseline")]
    return out


def _gate_text(inputs: dict, target: str, kind: str) -> str:
    from genoflow.registry.tracking import GATE_CHAMPION_DELTA, GATE_P_VS_BASELINE, TAG_GATE_CHAMPION

    gate = (inputs["metrics"].get("gates") or {}).get(target)
    if not gate:
        return "The gate's numbers were not logged for this run."
    test = "paired DeLong test" if kind == "binary" else "paired test of squared errors"
    text = f"Gate: vs the covariates-only baseline, one-sided p = {fmt_p(gate.get(GATE_P_VS_BASELINE))} ({test})"
    if gate.get(GATE_CHAMPION_DELTA) is None:
        return text + "; no champion to compare with."
    return (text + f"; vs champion v{gate.get(TAG_GATE_CHAMPION)} on the same held-out patients "
            f"{gate[GATE_CHAMPION_DELTA]:+.4f} {METRIC_LABEL[kind]}.")


def _qc(inputs: dict) -> dict:
    qc, samples = inputs["qc_summary"], inputs["samples"]
    th, vq = qc.get("thresholds", {}), inputs.get("variant_qc") or {}
    n_var, n = qc["n_variants"], len(samples)
    variant_rows = [
        ["variants in the VCF (biallelic rows)", fmt_int(n_var), ""],
        [f"call rate < {fmt_float(th.get('min_call_rate'), 2)}", fmt_int(vq.get("fail_call_rate")),
         "too many missing genotypes"],
        [f"MAF < {th.get('min_maf')}", fmt_int(vq.get("fail_maf")), "too rare to test with this cohort"],
        [f"HWE p < {th.get('min_hwe_p')}", fmt_int(vq.get("fail_hwe")), "genotype calling problems"],
        ["pass variant QC", fmt_int(qc["n_variants_pass_qc"]), fmt_pct(qc["n_variants_pass_qc"] / n_var if n_var
                                                                        else None)],
    ]
    miss_fail = int((samples["missingness"] > float(th.get("max_sample_missingness", 1.0))).sum())
    sample_rows = [
        ["samples (VCF columns, each with study data)", fmt_int(n), ""],
        [f"missingness > {th.get('max_sample_missingness')}", fmt_int(miss_fail), ""],
        [f"heterozygosity outliers (> {th.get('max_het_sd')} SD)", fmt_int(samples["het_outlier"].sum()),
         "contamination or inbreeding"],
        ["pass sample QC", fmt_int(qc["n_samples_pass_qc"]), fmt_pct(qc["n_samples_pass_qc"] / n if n else None)],
        ["with sequencing reads (FASTQ)", fmt_int(qc.get("n_samples_with_reads")), ""],
    ]
    return {"n_samples": fmt_int(qc["n_samples"]), "n_samples_pass": fmt_int(qc["n_samples_pass_qc"]),
            "n_variants": fmt_int(n_var), "n_variants_pass": fmt_int(qc["n_variants_pass_qc"]),
            "n_train": fmt_int(inputs["split"].get("n_train")), "n_test": fmt_int(inputs["split"].get("n_test")),
            "variant_rows": variant_rows, "sample_rows": sample_rows,
            "study_rows": _study_rows(samples, (inputs.get("study") or {}).get("columns")),
            "read_rows": _read_rows(samples)}


def _study_rows(samples, columns: dict | None) -> list[list[str]]:
    """One row per study column (``study.json``'s, with its role; else the sample table's non-QC
    columns): numbers as mean ± SD and range, categories as level shares; missing values counted."""
    import pandas as pd

    rows = []
    names = [c for c in columns if c in samples] if columns else [c for c in samples.columns if c not in NOT_STUDY]
    for col in names:
        values, role = samples[col], (columns or {}).get(col, {}).get("role", "")
        missing = fmt_int(values.isna().sum())
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            v = values.astype(float).dropna()
            rows.append([col, role, f"{fmt_float(v.mean(), 2)} ± {fmt_float(v.std(), 2)}",
                         f"{fmt_float(v.min(), 2)} to {fmt_float(v.max(), 2)}", missing])
        else:
            shares = values.dropna().astype(str).value_counts(normalize=True).head(8)
            rows.append([col, role, "categorical", ", ".join(f"{k} {fmt_pct(v)}" for k, v in shares.items()),
                         missing])
    return rows


def _read_rows(samples) -> list[list[str]]:
    rows = []
    for col in (c for c in READ_QC if c in samples):
        v = samples[col].astype(float).dropna()
        if v.empty:
            continue
        digits = 4 if col == "n_rate" else 3
        rows.append([col, fmt_int(len(v)), fmt_float(v.mean(), digits), fmt_float(v.median(), digits),
                     fmt_float(v.min(), digits), fmt_float(v.max(), digits)])
    return rows


def _association(inputs: dict, target: str, lam) -> dict:
    assoc = inputs["association"].get(target)
    if assoc is None or assoc.empty:
        return {"target": target, "rows": []}
    selected = {(v["contig"], int(v["pos"])) for v in inputs.get("selected", {}).get(target, [])}
    verdict = ("no sign of inflation" if lam < 1.05 else "mild inflation" if lam < 1.10
               else "inflated: expected when a targeted region carries real signal in linkage "
                    "disequilibrium; otherwise suspect structure or relatedness")
    top = assoc.sort_values("p").head(10)
    return {
        "target": target, "n": fmt_int(len(assoc)), "lambda_gc": fmt_float(lam), "verdict": verdict,
        "n_bonferroni": fmt_int((assoc["p"] < 0.05 / len(assoc)).sum()),
        "manhattan": _png(plots.manhattan_png(assoc, title=f"{target}: covariate-adjusted test", selected=selected)),
        "qq": _png(plots.qq_png(assoc["p"].to_numpy(), title=f"{target}: QQ plot")),
        "rows": [[r.contig, fmt_int(r.pos), r.gene or "–", fmt_float(r.maf), fmt_float(r.beta), fmt_float(r.se),
                  fmt_p(r.p)] for r in top.itertuples()],
    }


def _models(inputs: dict, target: str) -> dict:
    own = _own(inputs, target)
    kind = _kind(own)
    candidate = inputs["metrics"]["candidates"].get(target)

    def name(m):
        return f"baseline: {m['baseline']}" if m.get("baseline") else m["family"] + (" ★" if m["run_id"] == candidate
                                                                                       else "")

    params = [", ".join(f"{k}={v}" for k, v in sorted((m.get("best_params") or {}).items())) for m in own]
    if kind == "binary":
        headers = ["model", "CV AUC-ROC (± SD)", "held-out AUC-ROC", "95% CI", "AUC-PR", "Brier",
                   "calibration slope / intercept", "test patients", "best params", "MLflow run"]
        rows = [[name(m), _cv(m), fmt_float(m.get("test_auc_roc")), fmt_ci(m, "test_auc_roc"),
                 fmt_float(m.get("test_auc_pr")), fmt_float(m.get("test_brier")),
                 _calibration(m),
                 fmt_int(m.get("test_n")), p, m["run_id"][:8]] for m, p in zip(own, params, strict=True)]
        num = (1, 2, 4, 5, 7)
    else:
        headers = ["model", "CV R^2 (± SD)", "held-out R^2", "95% CI", "RMSE", "95% CI", "test patients",
                   "best params", "MLflow run"]
        rows = [[name(m), _cv(m), fmt_float(m.get("test_r2")), fmt_ci(m, "test_r2"), fmt_float(m.get("test_rmse")),
                 fmt_ci(m, "test_rmse"), fmt_int(m.get("test_n")), p, m["run_id"][:8]]
                for m, p in zip(own, params, strict=True)]
        num = (1, 2, 4, 6)
    out = {"target": target, "headers": headers, "rows": rows, "num": num,
           "highlight": [m["run_id"] == candidate for m in own], "muted": [bool(m.get("baseline")) for m in own],
           "figures": [], "note": ""}
    if kind == "binary":
        out.update(_binary_figures(inputs, target, own, candidate))
    return out


def _calibration(m: dict) -> str:
    return f"{fmt_float(m.get('test_calibration_slope'), 2)} / {fmt_float(m.get('test_calibration_intercept'), 2)}"


def _binary_figures(inputs: dict, target: str, own: list[dict], candidate: str | None) -> dict:
    """ROC and PR curves of every model, calibration of the candidate."""
    from genoflow.evaluation.metrics import roc_points

    scores = inputs["scores"]
    target_scores = scores[scores["target"] == target]
    if target_scores.empty:
        return {}
    curves = []
    for m in own:
        s = target_scores[target_scores["run_id"] == m["run_id"]]
        if s.empty:
            continue
        fpr, tpr = roc_points(s["label"].to_numpy(), s["score"].to_numpy())
        curves.append({"label": f"baseline: {m['baseline']}" if m.get("baseline") else m["family"],
                       "family": m["family"], "fpr": fpr, "tpr": tpr, "auc": m.get("test_auc_roc", float("nan")),
                       "auc_pr": m.get("test_auc_pr", float("nan")), "scores": s["score"].to_numpy(),
                       "labels": s["label"].to_numpy(), "highlight": m["run_id"] == candidate})
    cand = target_scores[target_scores["run_id"] == candidate]
    prevalence = float((cand if not cand.empty else target_scores)["label"].mean())
    figures = [{"src": _png(plots.roc_png(curves, title=f"{target}: ROC (held-out)")), "alt": "ROC"},
               {"src": _png(plots.pr_png(curves, prevalence=prevalence, title=f"{target}: precision-recall")),
                "alt": "PR"}]
    if cand.empty:
        return {"figures": figures}
    m = next(m for m in own if m["run_id"] == candidate)
    figures.append({"src": _png(plots.calibration_png(cand["score"].to_numpy(), cand["label"].to_numpy(),
                                                      title=f"{target}: calibration ({m['family']})")),
                    "alt": "calibration"})
    note = (f"Candidate calibration: mean predicted risk {fmt_float(cand['score'].mean())} vs observed "
            f"{fmt_float(prevalence)}; Brier score {fmt_float(m.get('test_brier'))} (a constant prediction at the "
            f"prevalence scores {fmt_float(prevalence * (1 - prevalence))}).")
    return {"figures": figures, "note": note}


def _promotion(inputs: dict, target: str) -> dict:
    kind = _kind(_own(inputs, target))
    metric = inputs["params"].get("promote", {}).get("metric", "test_auc_roc") if kind == "binary" else "test_r2"
    reg = inputs.get("registry", {}).get(target) or {}
    versions = reg.get("versions") or []
    candidate = inputs["metrics"]["candidates"].get(target)
    rows = [[f"v{v['version']}", ", ".join(v.get("aliases") or []) or "–", v.get("family") or "–",
             fmt_float(v.get("metric_value")), v.get("promotion") or "–", v.get("reason") or "", v["run_id"][:8]]
            for v in versions]
    return {"model_name": reg.get("model_name", target), "metric": metric, "rows": rows,
            "highlight": [v["run_id"] == candidate for v in versions]}

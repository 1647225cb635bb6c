"""One self-contained HTML page per training run: QC, association, models and the promotion decision.

:func:`build_report_html` takes plain inputs (dicts and pandas frames read from the committed step
outputs and the MLflow registry; see :mod:`genoflow.reporting.job`) and returns the page: inline
CSS, figures as base64 PNGs, no external asset, so it opens anywhere (a browser, an MLflow
artifact view, an e-mail attachment).
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np

from genoflow.reporting import plots
from genoflow.reporting.stats import brier_score, genomic_inflation

__all__ = ["build_report_html", "SECTIONS"]

SECTIONS = {
    "summary": "Summary",
    "qc": "Data and quality control",
    "association": "Association scans",
    "models": "Models on held-out patients",
    "promotion": "Registry and promotion",
    "about": "How to read this report",
}

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2733;margin:0;background:#f4f6f8}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.25em;border-bottom:2px solid #1f4e79;padding-bottom:4px;margin-top:36px}
h3{font-size:1.05em;margin:22px 0 6px}p.lead{color:#4a5867;margin-top:0}.note{color:#4a5867;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.9em}th,td{border:1px solid #d5dbe1;padding:4px 9px}
th{background:#eef2f6;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hl td{background:#fff6d9;font-weight:600}.figs{display:flex;flex-wrap:wrap;gap:10px}
.figs img{border:1px solid #e1e6eb;max-width:100%}img.wide{width:100%}.figs.three img{width:calc(33.3% - 10px)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600}
.ok{background:#d9f2e0;color:#17603a}.warn{background:#fde9c8;color:#8a5300}.info{background:#e3ecf7;color:#1f4e79}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d5dbe1;border-radius:6px;padding:10px 14px;min-width:300px;flex:1}
.card h3{margin-top:0}code{background:#eef2f6;padding:0 4px;border-radius:3px;font-size:.9em}
nav a{margin-right:14px}
"""


# --------------------------------------------------------------------------- formatting


def _e(value) -> str:
    return html.escape(str(value))


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


def _table(headers: list[str], rows: list[list], *, numeric: set[int] = frozenset(), highlight=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>" for j, c in enumerate(row))
        body.append(f'<tr class="hl">{cells}</tr>' if highlight and highlight(i) else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str, wide: bool = False) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img{" class=wide" if wide else ""} alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{_e(text)}</span>'


# --------------------------------------------------------------------------- sections


def build_report_html(inputs: dict) -> str:
    """The report page (see the module docstring for ``inputs``)."""
    run = inputs["run"]
    targets = list(inputs["params"]["train"]["targets"])
    lambdas = {t: genomic_inflation(inputs["association"][t]["p"]) for t in targets if t in inputs["association"]}
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>genoflow report {_e(run['run_key'])}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Training report — run <code>{_e(run['run_key'])}</code></h1>",
        f'<p class="lead">Dataset version <code>{_e(run["dataset_version"])}</code> · code '
        f'<code>{_e(str(run.get("git_commit", "unknown"))[:12])}</code> · built {_e(run.get("created", ""))}</p>',
        "<nav>" + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in SECTIONS.items()) + "</nav>",
        _summary(inputs, targets, lambdas),
        _qc(inputs),
        _association(inputs, targets, lambdas),
        _models(inputs, targets),
        _promotion(inputs, targets),
        _about(inputs),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _section(key: str, body: str, lead: str = "") -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{key}"><h2>{_e(SECTIONS[key])}</h2>{lead_html}{body}</section>'


def _candidate(inputs: dict, target: str) -> dict | None:
    run_id = inputs["metrics"]["candidates"].get(target)
    return next((m for m in inputs["metrics"]["models"] if m["run_id"] == run_id), None)


def _this_run_version(inputs: dict, target: str) -> dict | None:
    candidate = inputs["metrics"]["candidates"].get(target)
    versions = inputs.get("registry", {}).get(target, {}).get("versions", [])
    return next((v for v in versions if v["run_id"] == candidate), None)


def _summary(inputs: dict, targets: list[str], lambdas: dict) -> str:
    qc = inputs["qc_summary"]
    cards = []
    for target in targets:
        cand = _candidate(inputs, target)
        version = _this_run_version(inputs, target)
        if version is None:
            decision = _badge("not registered", "warn")
            reason = "promote_champion has not registered this run's candidate (yet)."
        else:
            promoted = version.get("promotion") == "champion"
            decision = _badge(f"v{version['version']}: {'champion' if promoted else 'kept challenger'}",
                              "ok" if promoted else "info")
            reason = _e(version.get("reason") or "")
        if cand is None:
            cards.append(f'<div class=card><h3>{_e(target)}</h3><p>No candidate model.</p></div>')
            continue
        cards.append(
            f'<div class=card><h3>{_e(target)}</h3>'
            f'<p>Candidate: <b>{_e(cand["family"])}</b> (best cross-validated AUC {fmt_float(cand["cv_auc_roc"])})'
            f'<br>Held-out AUC-ROC <b>{fmt_float(cand.get("test_auc_roc"))}</b>, AUC-PR '
            f'<b>{fmt_float(cand.get("test_auc_pr"))}</b> on {fmt_int(cand.get("n_test"))} test patients '
            f'(prevalence {fmt_pct(cand.get("test_prevalence"))})'
            f'<br>lambda_GC of the association scan: {fmt_float(lambdas.get(target))}</p>'
            f'<p>{decision} {reason}</p></div>')
    body = (f'<p>{fmt_int(qc["n_samples"])} patients ({fmt_int(qc["n_samples_pass_qc"])} pass sample QC) and '
            f'{fmt_int(qc["n_variants"])} variants ({fmt_int(qc["n_variants_pass_qc"])} pass variant QC); '
            f'{fmt_int(inputs["split"].get("n_train"))} training and {fmt_int(inputs["split"].get("n_test"))} '
            f'held-out patients.</p><div class=cards>{"".join(cards)}</div>')
    return _section("summary", body)


def _qc(inputs: dict) -> str:
    qc = inputs["qc_summary"]
    th = qc.get("thresholds", {})
    samples = inputs["samples"]
    vq = inputs.get("variant_qc") or {}
    n_var = qc["n_variants"]
    variant_rows = [
        ["variants in the VCF (biallelic rows)", fmt_int(n_var), ""],
        [f"call rate &lt; {fmt_float(th.get('min_call_rate'), 2)}", fmt_int(vq.get("fail_call_rate")),
         "too many missing genotypes"],
        [f"MAF &lt; {th.get('min_maf')}", fmt_int(vq.get("fail_maf")), "too rare to test with this cohort"],
        [f"HWE p &lt; {th.get('min_hwe_p')}", fmt_int(vq.get("fail_hwe")), "genotype calling problems"],
        ["<b>pass variant QC</b>", f"<b>{fmt_int(qc['n_variants_pass_qc'])}</b>",
         fmt_pct(qc["n_variants_pass_qc"] / n_var if n_var else None)],
    ]
    n = len(samples)
    miss_fail = int((samples["missingness"] > float(th.get("max_sample_missingness", 1.0))).sum())
    het = int(samples["het_outlier"].sum())
    sample_rows = [
        ["samples (VCF columns, each with clinical data)", fmt_int(n), ""],
        [f"missingness &gt; {th.get('max_sample_missingness')}", fmt_int(miss_fail), ""],
        [f"heterozygosity outliers (&gt; {th.get('max_het_sd')} SD)", fmt_int(het),
         "contamination or inbreeding"],
        ["<b>pass sample QC</b>", f"<b>{fmt_int(qc['n_samples_pass_qc'])}</b>",
         fmt_pct(qc["n_samples_pass_qc"] / n if n else None)],
        ["with sequencing reads (FASTQ)", fmt_int(qc.get("n_samples_with_reads")), ""],
    ]
    clinical_rows = [
        ["age (years)", f"{fmt_float(samples['age'].mean(), 1)} ± {fmt_float(samples['age'].std(), 1)}",
         f"{fmt_int(samples['age'].min())}–{fmt_int(samples['age'].max())}"],
        ["male", fmt_pct((samples["sex"] == "M").mean()), ""],
        ["disease_status = 1", fmt_pct(samples["disease_status"].mean()), ""],
        ["treatment_response = 1", fmt_pct(samples["treatment_response"].astype(float).mean()),
         f"{fmt_int(samples['treatment_response'].isna().sum())} unknown"],
    ]
    read_cols = [c for c in ("n_reads", "mean_length", "mean_phred", "q30_fraction", "gc_fraction", "n_rate")
                 if c in samples]
    read_rows = []
    for col in read_cols:
        v = samples[col].astype(float).dropna()
        if v.empty:
            continue
        digits = 4 if col == "n_rate" else 3
        read_rows.append([col, fmt_int(len(v)), fmt_float(v.mean(), digits), fmt_float(v.median(), digits),
                          fmt_float(v.min(), digits), fmt_float(v.max(), digits)])
    body = (
        "<h3>Variants</h3><p class=note>Variant QC as plink2 <code>--geno</code>, <code>--maf</code>, "
        "<code>--hwe</code> (a variant can fail several filters).</p>"
        + _table(["filter", "variants", ""], variant_rows, numeric={1})
        + "<h3>Samples</h3><p class=note>Only samples passing QC are split, scanned and modelled.</p>"
        + _table(["filter", "samples", ""], sample_rows, numeric={1})
        + "<h3>Clinical covariates</h3>" + _table(["", "value", ""], clinical_rows, numeric={1})
        + ("<h3>Read QC (Biopython, per patient FASTQ)</h3><p class=note>Mean per-patient values; "
           "<code>q30_fraction</code> is the share of bases with Phred ≥ 30.</p>"
           + _table(["metric", "patients", "mean", "median", "min", "max"], read_rows, numeric={1, 2, 3, 4, 5})
           if read_rows else "<p class=note>No read QC: the cohort has no FASTQ files.</p>")
    )
    return _section("qc", body, "What went in: the cohort after the preprocess step's checks.")


def _association(inputs: dict, targets: list[str], lambdas: dict) -> str:
    blocks = []
    for target in targets:
        assoc = inputs["association"].get(target)
        if assoc is None or assoc.empty:
            blocks.append(f"<h3>{_e(target)}</h3><p>No association results.</p>")
            continue
        selected = {(v["contig"], int(v["pos"])) for v in inputs.get("selected", {}).get(target, [])}
        lam = lambdas[target]
        verdict = ("no sign of inflation" if lam < 1.05 else "mild inflation" if lam < 1.10
                   else "inflated: expected when a targeted region carries real signal in linkage "
                        "disequilibrium; otherwise suspect structure or relatedness")
        top = assoc.sort_values("p").head(10)
        rows = [[_e(r.contig), fmt_int(r.pos), _e(r.gene or "–"), fmt_float(r.maf), fmt_float(r.beta),
                 fmt_float(r.se), fmt_p(r.p)] for r in top.itertuples()]
        blocks.append(
            f"<h3>{_e(target)}</h3>"
            f"<p>{fmt_int(len(assoc))} variants tested on training patients; genomic inflation "
            f"<b>lambda_GC = {fmt_float(lam)}</b> ({verdict}); "
            f"{fmt_int((assoc['p'] < 0.05 / len(assoc)).sum())} pass Bonferroni.</p>"
            + _img(plots.manhattan_png(assoc, title=f"{target}: covariate-adjusted score test",
                                       selected=selected), f"Manhattan plot, {target}", wide=True)
            + '<div class="figs">' + _img(plots.qq_png(assoc["p"].to_numpy(), title=f"{target}: QQ plot"),
                                          f"QQ plot, {target}")
            + "<div><p class=note>Top 10 variants (beta: log-odds per ALT allele).</p>"
            + _table(["contig", "pos", "gene", "MAF", "beta", "SE", "p"], rows, numeric={1, 3, 4, 5, 6})
            + "</div></div>")
    lead = ("Each QC-passing variant tested against the target on training patients only (logistic score test "
            "adjusted for the covariates); the top-K become model features.")
    return _section("association", "".join(blocks), lead)


def _models(inputs: dict, targets: list[str]) -> str:
    from genoflow.pipeline.evaluate import roc_points

    models, scores = inputs["metrics"]["models"], inputs["scores"]
    blocks = []
    for target in targets:
        own = sorted([m for m in models if m["target"] == target], key=lambda m: -m["cv_auc_roc"])
        candidate = inputs["metrics"]["candidates"].get(target)
        rows = [[_e(m["family"]) + (" ★" if m["run_id"] == candidate else ""), fmt_float(m["cv_auc_roc"]),
                 fmt_float(m.get("test_auc_roc")), fmt_float(m.get("test_auc_pr")), fmt_int(m.get("n_test")),
                 _e(", ".join(f"{k}={v}" for k, v in sorted((m.get("best_params") or {}).items()))),
                 f"<code>{_e(m['run_id'][:8])}</code>"] for m in own]
        table = _table(["model", "CV AUC-ROC", "held-out AUC-ROC", "held-out AUC-PR", "test patients",
                        "best params", "MLflow run"], rows, numeric={1, 2, 3, 4},
                       highlight=lambda i, own=own, c=candidate: own[i]["run_id"] == c)
        figs = ""
        target_scores = scores[scores["target"] == target]
        if not target_scores.empty:
            curves = []
            for m in own:
                s = target_scores[target_scores["run_id"] == m["run_id"]]
                if s.empty:
                    continue
                fpr, tpr = roc_points(s["score"].to_numpy(), s["label"].to_numpy())
                curves.append({"label": m["family"], "family": m["family"], "fpr": fpr, "tpr": tpr,
                               "auc": m.get("test_auc_roc", float("nan")), "auc_pr": m.get("test_auc_pr", float("nan")),
                               "scores": s["score"].to_numpy(), "labels": s["label"].to_numpy(),
                               "highlight": m["run_id"] == candidate})
            cand = target_scores[target_scores["run_id"] == candidate]
            prevalence = float(cand["label"].mean()) if not cand.empty else float(target_scores["label"].mean())
            figs = ('<div class="figs three">' + _img(plots.roc_png(curves, title=f"{target}: ROC (held-out)"), "ROC")
                    + _img(plots.pr_png(curves, prevalence=prevalence, title=f"{target}: precision-recall"), "PR"))
            if not cand.empty:
                family = next(m["family"] for m in own if m["run_id"] == candidate)
                figs += _img(plots.calibration_png(cand["score"].to_numpy(), cand["label"].to_numpy(),
                                                   title=f"{target}: calibration ({family})"), "calibration")
                figs += "</div>"
                figs += (f"<p class=note>Candidate calibration: mean predicted risk "
                         f"{fmt_float(cand['score'].mean())} vs observed {fmt_float(prevalence)}; Brier score "
                         f"{fmt_float(brier_score(cand['score'], cand['label']))} (a constant prediction at the "
                         f"prevalence scores {fmt_float(prevalence * (1 - prevalence))}).</p>")
            else:
                figs += "</div>"
        blocks.append(f"<h3>{_e(target)}</h3>{table}{figs}")
    lead = ("Every model family, cross-validated on the training split; ★ marks the candidate, picked by CV AUC "
            "(the held-out patients never choose a model, so their numbers are an honest estimate).")
    return _section("models", "".join(blocks), lead)


def _promotion(inputs: dict, targets: list[str]) -> str:
    metric = inputs["params"].get("promote", {}).get("metric", "test_auc_roc")
    margin = inputs["params"].get("promote", {}).get("min_improvement")
    blocks = []
    for target in targets:
        reg = inputs.get("registry", {}).get(target)
        if not reg or not reg.get("versions"):
            blocks.append(f"<h3>{_e(target)}</h3><p>No registered versions.</p>")
            continue
        candidate = inputs["metrics"]["candidates"].get(target)
        versions = reg["versions"]
        rows = [[f"v{_e(v['version'])}", _e(", ".join(v.get("aliases") or []) or "–"), _e(v.get("family") or "–"),
                 fmt_float(v.get("metric_value")), _e(v.get("promotion") or "–"), _e(v.get("reason") or ""),
                 f"<code>{_e(v['run_id'][:8])}</code>"] for v in versions]
        blocks.append(
            f"<h3>{_e(reg['model_name'])}</h3>"
            + _table(["version", "aliases", "model", metric, "decision", "reason", "run"], rows, numeric={3},
                     highlight=lambda i, versions=versions, c=candidate: versions[i]["run_id"] == c))
    lead = (f"The candidate is registered and aliased <code>challenger</code>; it becomes <code>champion</code> only "
            f"if there is none or its <code>{_e(metric)}</code> beats the champion's by at least {_e(margin)}. "
            "The highlighted row is this run's candidate; decisions are the tags on each model version.")
    return _section("promotion", "".join(blocks), lead)


def _about(inputs: dict) -> str:
    run = inputs["run"]
    items = [
        "<b>lambda_GC</b>: median association chi-square over its null median (0.455). Genome-wide, ~1 means "
        "the test is calibrated and &gt; 1.1 suggests population structure or relatedness the covariates do "
        "not absorb. In a targeted region, variants share genealogies: lambda is noisy (few independent "
        "tests) and true causal signal spreads through linkage disequilibrium and raises it.",
        "<b>AUC-ROC</b>: probability a random case scores above a random control (0.5 = chance). "
        "<b>AUC-PR</b>: average precision; compare it with the prevalence, its chance level.",
        "<b>Calibration</b>: patients grouped by predicted risk; points on the diagonal mean a predicted 30% "
        "risk comes true 30% of the time. Few held-out patients make the bins noisy (bars: 95% intervals).",
        "Patients appear only as keyed pseudonyms; the raw cohort is versioned by DVC "
        f"(<code>{_e(run['dataset_version'])}</code>) and every number here is in the step outputs under "
        f"<code>{_e(run.get('storage_root', ''))}/steps/</code> and in MLflow.",
    ]
    return _section("about", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")

"""The report page's Jinja2 template (autoescaped: every value a cohort or a registry supplies is text).

A Python string rather than a ``.html`` file beside it: the report job runs under spark-submit with
the library shipped as a zip of ``.py`` files only (`genoflow.packaging`), so a data file would not
travel with it.
"""

from __future__ import annotations

__all__ = ["CSS", "REPORT"]

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2733;margin:0;background:#f4f6f8}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}
h2{font-size:1.25em;border-bottom:2px solid #1f4e79;padding-bottom:4px;margin-top:36px}
h3{font-size:1.05em;margin:22px 0 6px}p.lead{color:#4a5867;margin-top:0}.note{color:#4a5867;font-size:.9em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.9em}th,td{border:1px solid #d5dbe1;padding:4px 9px}
th{background:#eef2f6;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hl td{background:#fff6d9;font-weight:600}tr.base td{color:#4a5867;font-style:italic}
.figs{display:flex;flex-wrap:wrap;gap:10px}
.figs img{border:1px solid #e1e6eb;max-width:100%}img.wide{width:100%}.figs.three img{width:calc(33.3% - 10px)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.85em;font-weight:600}
.ok{background:#d9f2e0;color:#17603a}.warn{background:#fde9c8;color:#8a5300}.info{background:#e3ecf7;color:#1f4e79}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d5dbe1;border-radius:6px;padding:10px 14px;min-width:300px;flex:1}
.card h3{margin-top:0}code{background:#eef2f6;padding:0 4px;border-radius:3px;font-size:.9em}
nav a{margin-right:14px}
"""

# Macros: a table of rows of cells (``num`` marks right-aligned columns), an inline PNG.
REPORT = """\
{%- macro table(headers, rows, num=(), highlight=None, muted=None) -%}
<table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{%- for row in rows %}<tr{% if highlight and highlight[loop.index0] %} class="hl"
{%- elif muted and muted[loop.index0] %} class="base"{% endif %}>
{%- for cell in row %}<td{% if loop.index0 in num %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{%- endfor %}</tbody></table>
{%- endmacro -%}
{%- macro img(src, alt, wide=False) -%}
<img{% if wide %} class=wide{% endif %} alt="{{ alt }}" src="data:image/png;base64,{{ src }}">
{%- endmacro -%}
<!DOCTYPE html><html lang=en><head><meta charset=utf-8>
<title>genoflow report {{ run.run_key }}</title><style>{{ css | safe }}</style></head><body><main>
<h1>Training report — run <code>{{ run.run_key }}</code></h1>
<p class="lead">Dataset version <code>{{ run.dataset_version }}</code> · code <code>{{ run.git_commit }}</code> · \
built {{ run.created }}</p>
<nav>{% for key, title in sections.items() %}<a href="#{{ key }}">{{ title }}</a>{% endfor %}</nav>

<section id="summary"><h2>{{ sections.summary }}</h2>
<p>{{ qc.n_samples }} patients ({{ qc.n_samples_pass }} pass sample QC) and {{ qc.n_variants }} variants \
({{ qc.n_variants_pass }} pass variant QC); {{ qc.n_train }} training and {{ qc.n_test }} held-out patients.</p>
<div class=cards>
{%- for t in targets %}<div class=card><h3>{{ t.name }}</h3>
{%- if not t.candidate %}<p>No candidate model.</p>
{%- else %}<p>Candidate: <b>{{ t.candidate.family }}</b> ({{ t.kind }}; best cross-validated {{ t.metric_label }} \
{{ t.candidate.cv }})<br>Held-out {{ t.metric_label }} <b>{{ t.candidate.held_out }}</b> (95% CI \
{{ t.candidate.ci }}) on {{ t.candidate.n }} test patients
{%- if t.kind == "binary" %}; AUC-PR {{ t.candidate.auc_pr }} (prevalence {{ t.candidate.prevalence }}), \
Brier {{ t.candidate.brier }}{% else %}; RMSE {{ t.candidate.rmse }} ({{ t.candidate.rmse_ci }}){% endif %}
{%- for b in t.baselines %}<br>Baseline {{ b.baseline }}: held-out {{ t.metric_label }} {{ b.held_out }} \
({{ b.ci }}){% endfor %}
<br>lambda_GC of the association scan: {{ t.lambda_gc }}</p>
<p><span class="badge {{ t.decision.kind }}">{{ t.decision.label }}</span> {{ t.decision.reason }}</p>
<p class=note>{{ t.gate }}</p>{% endif %}</div>
{%- endfor %}</div></section>

<section id="qc"><h2>{{ sections.qc }}</h2><p class="lead">What went in: the cohort after the preprocess step's \
checks.</p>
<h3>Variants</h3><p class=note>Variant QC as plink2 <code>--geno</code>, <code>--maf</code>, <code>--hwe</code> \
(a variant can fail several filters).</p>
{{ table(["filter", "variants", ""], qc.variant_rows, num=(1,)) }}
<h3>Samples</h3><p class=note>Only samples passing QC are split, scanned and modelled.</p>
{{ table(["filter", "samples", ""], qc.sample_rows, num=(1,)) }}
<h3>Study columns</h3>
{%- if qc.study_rows %}{{ table(["column", "role", "values", "range or levels", "missing"], qc.study_rows,
                               num=(2, 4)) }}
{%- else %}<p class=note>No study columns in the sample table.</p>{% endif %}
{%- if qc.read_rows %}<h3>Read QC (Biopython, per patient FASTQ)</h3><p class=note>Mean per-patient values; \
<code>q30_fraction</code> is the share of bases with Phred ≥ 30.</p>
{{ table(["metric", "patients", "mean", "median", "min", "max"], qc.read_rows, num=(1, 2, 3, 4, 5)) }}
{%- else %}<p class=note>No read QC: the cohort has no FASTQ files.</p>{% endif %}
</section>

<section id="association"><h2>{{ sections.association }}</h2><p class="lead">Each QC-passing variant tested \
against the target on training patients only (regression adjusted for the covariates); the top-K become model \
features.</p>
{%- for a in association %}<h3>{{ a.target }}</h3>
{%- if not a.rows %}<p>No association results.</p>
{%- else %}<p>{{ a.n }} variants tested on training patients; genomic inflation <b>lambda_GC = {{ a.lambda_gc }}</b> \
({{ a.verdict }}); {{ a.n_bonferroni }} pass Bonferroni.</p>
{{ img(a.manhattan, "Manhattan plot, " ~ a.target, wide=True) }}
<div class="figs">{{ img(a.qq, "QQ plot, " ~ a.target) }}<div><p class=note>Top 10 variants (beta: effect per ALT \
allele).</p>{{ table(["contig", "pos", "gene", "MAF", "beta", "SE", "p"], a.rows, num=(1, 3, 4, 5, 6)) }}</div></div>
{%- endif %}{% endfor %}</section>

<section id="models"><h2>{{ sections.models }}</h2><p class="lead">Every model family, cross-validated on the \
training split (nested: every label-driven feature refit inside each fold); ★ marks the candidate, picked by its CV \
metric (the held-out patients never choose a model, so their numbers are an honest estimate). The two baselines \
(covariates only, polygenic score only) are trained on the same split and folds.</p>
{%- for m in models %}<h3>{{ m.target }}</h3>
{{ table(m.headers, m.rows, num=m.num, highlight=m.highlight, muted=m.muted) }}
{%- if m.figures %}<div class="figs three">{% for f in m.figures %}{{ img(f.src, f.alt) }}{% endfor %}</div>{% endif %}
{%- if m.note %}<p class=note>{{ m.note }}</p>{% endif %}
{%- endfor %}</section>

<section id="promotion"><h2>{{ sections.promotion }}</h2><p class="lead">The candidate is registered and aliased \
<code>challenger</code>; it becomes <code>champion</code> only if it beats the covariates-only baseline on the \
held-out patients (one-sided paired test, p &lt; {{ gate.max_p }}) and, when there is a champion, beats it by at \
least {{ gate.min_improvement }} on the same patients. The highlighted row is this run's candidate; decisions are \
the tags on each model version.</p>
{%- for p in promotion %}<h3>{{ p.model_name }}</h3>
{%- if not p.rows %}<p>No registered versions.</p>
{%- else %}{{ table(["version", "aliases", "model", p.metric, "decision", "reason", "run"], p.rows, num=(3,),
                    highlight=p.highlight) }}{% endif %}
{%- endfor %}</section>

<section id="about"><h2>{{ sections.about }}</h2><ul>
<li><b>lambda_GC</b>: median association chi-square over its null median (0.455). Genome-wide, ~1 means the test is \
calibrated and &gt; 1.1 suggests population structure or relatedness the covariates do not absorb. In a targeted \
region, variants share genealogies: lambda is noisy (few independent tests) and true causal signal spreads through \
linkage disequilibrium and raises it.</li>
<li><b>AUC-ROC</b>: probability a random case scores above a random control (0.5 = chance); its 95% CI is DeLong's. \
<b>AUC-PR</b>: average precision; compare it with the prevalence, its chance level. <b>Brier</b>: mean squared \
error of the predicted risk (a constant prediction at the prevalence p scores p(1 - p)).</li>
<li><b>Calibration</b>: patients grouped by predicted risk; points on the diagonal mean a predicted 30% risk comes \
true 30% of the time. The slope of a logistic recalibration is 1 for a calibrated model, below 1 when predictions \
are too extreme. Few held-out patients make the bins noisy (bars: 95% intervals).</li>
<li><b>R^2, RMSE</b> (quantitative targets): with 95% bootstrap intervals over the held-out patients.</li>
<li>Patients appear only as keyed pseudonyms; the raw cohort is versioned by DVC (<code>{{ run.dataset_version }}\
</code>) and every number here is in the step outputs under <code>{{ run.storage_root }}/steps/</code> and in \
MLflow.</li>
</ul></section>
</main></body></html>
"""

"""BENCHMARKS.md's genomics tables, written from bench/results/genomics.json (bench/genomics.py).

Pure formatting: numbers in, Markdown out, so ``bench/genomics.py --render-only`` rewrites the page
without running a tool. :func:`write_benchmarks_md` replaces one generated block of the page and is
shared by bench/biobank.py.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["render", "write_benchmarks_md", "ratio", "MARK_START", "MARK_END"]

MARK_START, MARK_END = "<!-- genomics-bench:start (written by bench/genomics.py) -->", "<!-- genomics-bench:end -->"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def _cpu(label: str, r: dict) -> float | None:
    """CPU seconds, None where they were not counted (results from before the process tree was
    sampled, when rusage alone missed Hail's JVM, never reaped by its parent)."""
    return r["cpu_s"] if r.get("cpu_counted", not label.startswith("Hail")) else None


def _per(count: float, cpu_s: float | None, unit: float) -> str:
    """Throughput per CPU second ('-' when unknown or < 0.1 CPU s, too little to divide by)."""
    suffix = " M" if unit == 1e6 else ""
    return f"{count / cpu_s / unit:,.2f}{suffix}" if cpu_s and cpu_s >= 0.1 else "-"


def _cpu_ratio(n_a: float, cpu_a: float | None, n_b: float, cpu_b: float | None) -> str:
    ok = cpu_a and cpu_b and cpu_a >= 0.1 and cpu_b >= 0.1
    return f"{(n_a / cpu_a) / (n_b / cpu_b):.2f}x" if ok else "n/a"


def render(results: dict, cohort_order=()) -> str:
    """The generated block of BENCHMARKS.md: the machine, each cohort (``cohort_order`` first, then the
    others by name), each tool's fixed cost and throughput, and the scaling runs."""
    m = results["machine"]
    out = [f"Machine: {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB, shared with other work (load "
           "averages below: 1-minute, at the start and the end of each cohort's run). Tools: "
           + "; ".join(f"{k}: {v}" for k, v in results["versions"].items()) + ".", ""]
    for name in [*cohort_order, *sorted(set(results["cohorts"]) - set(cohort_order))]:
        if name in results["cohorts"]:
            out += _render_cohort(results["cohorts"][name])
    # The line through the smallest and the largest cohort measured: the farther apart, the less noise in the slope.
    largest = next((name for name in ("ooa8k", "ooa") if name in results["cohorts"]), "ooa")
    out += _render_marginal(results["cohorts"], large=largest)
    if results.get("scaling"):
        out += _render_scaling(results["scaling"])
    return "\n".join(out)


def _render_marginal(cohorts: dict, small: str = "demo", large: str = "ooa") -> list[str]:
    """Each tool's time as a line through its two cohorts' points: the fixed cost (intercept) and
    the throughput past it (slope), by wall and CPU time, where both cohorts ran the tool."""
    if not (small in cohorts and large in cohorts):
        return []
    a, b = cohorts[small], cohorts[large]
    out = [f"### Past the fixed cost: each tool's line through `{small}` and `{large}`", "",
           "A process's time is split into a fixed part (start-up, planning; the line's intercept at 0 genotypes) and "
           "the throughput past it (the slope): what decides the time of a large cohort. Association work is "
           "counted in variants tested x samples.", "",
           "| step | tool | fixed s (wall) | M per s (wall) | fixed CPU s | M per CPU-s | genoflow vs this (wall) "
           "| genoflow vs this (CPU) |", "|---|---|---|---|---|---|---|---|"]
    steps = (("ingest", "genoflow VCF->Parquet", lambda c, r: c["n_samples"] * c["n_variants"]),
             ("assoc", "genoflow association_scan", lambda c, r: c["n_samples"] * r["n_variants"]))
    for part, ours, work in steps:
        lines = {}
        for label in a.get(part, {}):
            ra, rb = a[part][label], b.get(part, {}).get(label)
            if rb is None:
                continue
            wa, wb = work(a, ra), work(b, rb)
            cpu_counted = _cpu(label, ra) and _cpu(label, rb)
            lines[label] = {"wall_s": _line(wa, ra["wall_s"], wb, rb["wall_s"]),
                            "cpu_s": _line(wa, ra["cpu_s"], wb, rb["cpu_s"]) if cpu_counted else None}
        mine = lines.get(ours)
        for label, line in lines.items():
            wall, cpu = line["wall_s"], line["cpu_s"]
            out.append(f"| {part} | {label} | {_fmt(wall, 0)} | {_fmt(wall, 1)} | {_fmt(cpu, 0)} | {_fmt(cpu, 1)} | "
                       f"{_slope_ratio(mine, line, 'wall_s')} | {_slope_ratio(mine, line, 'cpu_s')} |")
    return out + [""]


def _line(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float] | None:
    """(intercept s, throughput in millions per s) of the line through two (work, seconds) points."""
    if x1 <= x0 or y1 <= y0:
        return None
    per_unit = (y1 - y0) / (x1 - x0)
    return y0 - x0 * per_unit, 1e-6 / per_unit


def _fmt(line, i: int) -> str:
    return "-" if line is None else f"{line[i]:,.1f}"


def _slope_ratio(mine, theirs, key: str) -> str:
    ok = mine and theirs and mine.get(key) and theirs.get(key)
    return f"{mine[key][1] / theirs[key][1]:.2f}x" if ok else "n/a"


def _when(r: dict) -> str:
    return (f"run {r['started']} to {r['finished']} UTC, load average {r['load_average'][0]} -> "
            f"{r['load_average'][1]}")


def _render_cohort(c: dict) -> list[str]:
    gt = c["n_samples"] * c["n_variants"]
    out = [f"### Cohort `{c['cohort']}`: {c['n_samples']:,} samples x {c['n_variants']:,} variants "
           f"({gt / 1e6:,.0f} M genotypes, VCF.gz {c['vcf_mb']} MB), {c['cores']} cores", ""]
    return out + _render_ingest(c, gt) + _render_assoc(c) + _render_quality(c.get("quality")) + [""]


def _render_ingest(c: dict, gt: int) -> list[str]:
    if not c.get("ingest"):
        return []
    base = c["ingest"].get("genoflow VCF->Parquet", {"wall_s": 0, "cpu_s": 0})  # 0: not measured (yet)
    first = next(iter(c["ingest"].values()))
    out = [f"Ingest (VCF.gz -> each tool's own format; {_when(first)}). Ratios are genoflow VCF->Parquet's "
           "throughput over the row's, by wall time and by CPU time:", "",
           "| tool | wall s | CPU s | peak RSS MB | genotypes/s | genotypes/CPU-s | genoflow vs this (wall) "
           "| genoflow vs this (CPU) |", "|---|---|---|---|---|---|---|---|"]
    for label, r in c["ingest"].items():
        cpu = _cpu(label, r)
        out.append(f"| {label} | {r['wall_s']} | {cpu if cpu else 'n/a'} | {r['peak_rss_mb']:,} | "
                   f"{gt / r['wall_s'] / 1e6:,.2f} M | {_per(gt, cpu, 1e6)} | {ratio(r['wall_s'], base['wall_s'])} "
                   f"| {_cpu_ratio(gt, base['cpu_s'], gt, cpu)} |")
    return out + [""]


def _render_assoc(c: dict) -> list[str]:
    if not c.get("assoc"):
        return []
    base = c["assoc"].get("genoflow association_scan", {"n_variants": 0, "wall_s": 1, "cpu_s": 0})
    qc = c.get("qc", {"min_call_rate": 0.95, "min_maf": 0.01, "min_hwe_p": 1e-6})
    out = [f"Association (logistic regression per variant, covariates age + sex; variant QC call rate >= "
           f"{qc['min_call_rate']:g}, MAF >= {qc['min_maf']:g}, HWE p >= {qc['min_hwe_p']:g} in each tool; "
           f"{_when(next(iter(c['assoc'].values())))}). Ratios as above, genoflow's variants/s over the row's:", "",
           "| tool | variants tested | wall s | CPU s | peak RSS MB | variants/s | variants/CPU-s "
           "| genoflow vs this (wall) | genoflow vs this (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, r in c["assoc"].items():
        n, cpu = r["n_variants"], _cpu(label, r)
        out.append(f"| {label} | {n:,} | {r['wall_s']} | {cpu if cpu else 'n/a'} | {r['peak_rss_mb']:,} | "
                   f"{n / r['wall_s']:,.0f} | {_per(n, cpu, 1)} | "
                   f"{ratio(base['n_variants'] / base['wall_s'], n / r['wall_s'])} | "
                   f"{_cpu_ratio(base['n_variants'], base['cpu_s'], n, cpu)} |")
    return out + [""]


def _render_quality(q: dict | None) -> list[str]:
    if not q:
        return []
    prs, best, oracle = q["plink2_prs"], q["genoflow_best"], q["oracle_test_auc"]
    out = [f"Model quality, disease_status, held-out patients (n_train {q['n_train']}, n_test {q['n_test']}; "
           f"{_when(q)}):", "", "| model | nested CV AUC | test AUC-ROC (95% CI) | vs oracle |", "|---|---|---|---|",
           f"| genoflow best model (picked by CV AUC: {best['family']}) | {best['cv_auc_roc']} "
           f"± {best.get('cv_auc_roc_sd', '-')} | {_ci(best)} | {ratio(best['test_auc_roc'], oracle)} |"]
    for family, auc in q["genoflow_models"].items():
        out.append(f"| genoflow {family} | | {auc} | {ratio(auc, oracle)} |")
    for name, b in q.get("genoflow_baselines", {}).items():
        out.append(f"| genoflow baseline: {name} only | | {_ci(b)} | {ratio(b['test_auc_roc'], oracle)} |")
    gate = q.get("gate_p_vs_baseline")
    return out + [
        f"| plink2 C+T score alone ({prs['threshold']}, {prs['n_clumped']:,} clumped variants) | | "
        f"{prs['test_auc_prs']} | {ratio(prs['test_auc_prs'], oracle)} |",
        f"| plink2 C+T score + age + sex + 10 PCs | | {prs['test_auc_prs_covariates']} | "
        f"{ratio(prs['test_auc_prs_covariates'], oracle)} |",
        f"| oracle (simulated truth: genetic value + clinical + population effects) | | {oracle} | 1.00x |",
        "", f"Gate: the candidate vs the covariates-only baseline on the held-out patients, paired DeLong one-sided "
        f"p = {gate if gate is None else f'{gate:.3g}'} ({'passes' if gate is not None and gate < 0.05 else 'fails'}"
        " at 0.05).", "", f"genoflow steps (wall s): {q['genoflow_step_wall_s']}.", ""]


def _ci(m: dict) -> str:
    if "auc_roc_ci_low" not in m:
        return str(m["test_auc_roc"])
    return f"{m['test_auc_roc']} ({m['auc_roc_ci_low']}-{m['auc_roc_ci_high']})"


def _render_scaling(scaling: dict) -> list[str]:
    rows = scaling["rows"]
    out = ["### Growth with samples x variants and with cores (genoflow and plink2)", "", f"({_when(scaling)})", "",
           "| cohort | samples | variants | cores | genoflow VCF->Parquet wall s | CPU s | genoflow M genotypes/s | "
           "genoflow association s | plink2 --make-pgen s | plink2 --glm s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['cohort']} | {r['n_samples']:,} | {r['n_variants']:,} | {r['cores']} | "
                   f"{r['genoflow_ingest_s']} | {r.get('genoflow_ingest_cpu_s', '-')} | "
                   f"{r['genoflow_ingest_gt_per_s'] / 1e6:.2f} | "
                   f"{r.get('genoflow_assoc_s', '-')} | {r['plink_ingest_s']} | "
                   f"{r.get('plink_glm_s', '-')} |")
    return out + [""]


def write_benchmarks_md(text: str, path: Path, marks: tuple[str, str] = (MARK_START, MARK_END),
                        heading: str = "## Genomics: genoflow vs plink2, bcftools, Hail (bench/genomics.py)") -> None:
    """Replace the generated block of BENCHMARKS.md between ``marks`` (appended under ``heading`` the first time)."""
    start, end = marks
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + f"\n\n{heading}\n\n" + block + "\n"
    path.write_text(doc)

"""The `biobank` bench cohort: 100,000 patients through the whole training DAG (issue 14), measured per process.

The cohort is :func:`genoflow.simulate.biobank.make_biobank_cohort` (stdpopsim OutOfAfrica_3G09, one
phenotype table, no per-patient folders or reads) with a GRCh38-sized reference whose chr20 carries
its REF bases; both are built once and cached under ``.genoflow/bench/cohorts/``. The jobs run as
the DAG runs them (spark-submit, ``local[cores]``): preprocess without the reference, preprocess
with it (what the reference costs), then features, train, evaluate. plink2 runs on the same VCF
under the same sampler: ``--make-pgen``, ``--pca approx 10``, ``--glm`` with age + sex + 10 PCs.

Every command's process tree is sampled with psutil every 0.2 s; each process is classified by its
command line (the driver JVM, which in local mode is also the executor; the job's Python driver;
``pyspark.daemon`` and the Python workers it forks; plink2), keeping each class's peak (summed over
its live processes) and each process's peak. Forked workers share pages with the daemon until they
write them, so the summed RSS overstates; the per-process peaks are the numbers to hold against
the targets. Results go to bench/results/biobank.json and the ``## Biobank scale`` block of
BENCHMARKS.md. Not a test: nothing asserts.

    python bench/biobank.py [--patients 100000] [--length 1000000] [--skip-plink]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
from genomics import (  # bench/ is the script's folder, so its sibling imports as a top-level module
    REPO,
    BenchError,
    Tools,
    _bench_line,
    _children,
    _load,
    _now,
    machine,
    say,
    tool_versions,
    warm_kernels,
    write_benchmarks_md,
)

RESULTS = REPO / "bench" / "results" / "biobank.json"
GENOMICS_RESULTS = REPO / "bench" / "results" / "genomics.json"
MARKS = ("<!-- biobank-bench:start (written by bench/biobank.py) -->", "<!-- biobank-bench:end -->")
HEADING = "## Biobank scale: 10^5 patients through the training DAG (bench/biobank.py)"
SAMPLE_S = 0.2
REFERENCE = "reference/GRCh38-like.fa.gz"  # under the cohort root (the storage root of the jobs)
# The ooa cohorts' HWE threshold: pooled populations fail HWE at 1e-6 (the Wahlund effect).
MIN_HWE_P = 1e-50
TARGETS = {"cost_ratio": 1.5, "driver_mb": 4096, "worker_mb": 1536, "reference_mb": 500, "reference_s": 10}
BASELINE = "ooa8k"
DRIVER = "driver JVM (local mode: also the executor)"


# --------------------------------------------------------------------------- sampling


def measure_tree(argv: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``argv`` to completion: wall s, CPU s, and peak RSS per process class and per process.

    CPU s as :func:`genomics.measure` counts it: ``wait4`` rusage or, when larger, the sum of every
    process's last sampled CPU (Spark's Python workers are never reaped by our child).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    peak_total, classes, procs = 0, {}, {}
    with log.open("w") as out:
        proc = psutil.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_total = max(peak_total, _sample([proc, *_children(proc)], classes, procs))
            time.sleep(SAMPLE_S)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    result = {"wall_s": round(wall, 2),
              "cpu_s": round(max(usage.ru_utime + usage.ru_stime, sum(p["cpu_s"] for p in procs.values())), 1),
              "peak_rss_mb": _mb(peak_total), "exit_code": code,
              "classes": {name: {"peak_sum_mb": _mb(c["sum"]), "peak_one_mb": _mb(c["one"]),
                                 "processes": len(c["pids"])} for name, c in sorted(classes.items())},
              "processes": sorted(({"pid": pid, "class": p["class"], "peak_rss_mb": _mb(p["rss"]),
                                    "cpu_s": round(p["cpu_s"], 1)} for pid, p in procs.items()),
                                  key=lambda p: -p["peak_rss_mb"])[:12],
              **_bench_line(log)}
    if code != 0:
        lines = log.read_text(errors="replace").splitlines(keepends=True)
        result["log_tail"] = "".join(lines[-25:])
        result["errors"] = _error_lines(lines)
        kept = log.with_name(f"failed-{log.stem}-{time.strftime('%Y%m%d-%H%M')}.log")
        shutil.copyfile(log, kept)  # the next run writes the same log
        result["log"] = str(kept)
    return result


def _error_lines(lines: list[str], most: int = 6) -> list[str]:
    """The distinct causes a failed job's log names (Java's 'Caused by:', Python's exceptions), first first."""
    found: list[str] = []
    for line in lines:
        text = line.strip()
        if (text.startswith("Caused by:") or "Error:" in text or "Exception:" in text) and text[:300] not in found:
            found.append(text[:300])
    return found[:most]


def _sample(tree: list, classes: dict, procs: dict) -> int:
    """One sample of the live tree into the per-class and per-process peaks; the tree's total RSS."""
    now: dict[str, int] = {}
    total = 0
    for p in tree:
        try:
            with p.oneshot():
                if not p.cmdline():  # exiting (a zombie has no command line): its last sample stands
                    continue
                rss, times, name = p.memory_info().rss, p.cpu_times(), classify(p)
        except psutil.Error:
            continue
        total += rss
        now[name] = now.get(name, 0) + rss
        seen = procs.setdefault(p.pid, {"class": name, "rss": 0, "cpu_s": 0.0})
        seen.update(cpu_s=times.user + times.system, rss=max(seen["rss"], rss), **{"class": name})
        c = classes.setdefault(name, {"sum": 0, "one": 0, "pids": set()})
        c["one"] = max(c["one"], rss)
        c["pids"].add(p.pid)
    for name, rss in now.items():
        classes[name]["sum"] = max(classes[name]["sum"], rss)
    return total


def classify(p: psutil.Process) -> str:
    """The role of a process of a spark-submit or plink2 tree, from its command line (and its parent's)."""
    cmd, exe = " ".join(p.cmdline()), p.name()
    if exe.startswith("plink"):
        return "plink2"
    if "pyspark.daemon" in cmd:
        parent = p.parent()
        return "python worker" if parent and "pyspark.daemon" in " ".join(parent.cmdline()) else "pyspark.daemon"
    # spark-submit (bash) execs spark-class, which runs a short java launcher and then execs the driver JVM;
    # the launchers' command lines name SparkSubmit and the job's script too, so they are tested first.
    if "org.apache.spark.launcher.Main" in cmd or "bin/spark-submit" in cmd or "bin/spark-class" in cmd:
        return "spark-submit launcher"
    if "SparkSubmit" in cmd:
        return "driver JVM (local mode: also the executor)"
    if exe.startswith("python") and ("/jobs/" in cmd or "/bench/" in cmd):
        return "python driver"
    return "other"


def _mb(n: int) -> int:
    return round(n / 2**20)


# --------------------------------------------------------------------------- cohort


def biobank_cohort(work: Path, n: int, length: int) -> tuple[Path, dict]:
    """The cohort and its reference, generated once per (patients, length) and reused; and the summary."""
    from genoflow.simulate.biobank import make_biobank_cohort, reference_for_cohort

    root = work / "cohorts" / f"biobank-{n}x{length / 1e6:g}Mb"
    stamp = root / "cohort.json"
    spec = {"kind": "biobank", "n_patients": n, "sequence_length": length}
    if not (stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec):
        say(f"simulating cohort {root.name}")
        started = time.perf_counter()
        summary = make_biobank_cohort(root, n_patients=n, sequence_length=length, progress=True)
        summary["generate_s"] = round(time.perf_counter() - started, 1)
        stamp.write_text(json.dumps({"spec": spec, "summary": summary}, indent=1, default=str))
    say("GRCh38-sized reference (built once per cohort)")
    reference_for_cohort(root, root / REFERENCE)
    summary = json.loads(stamp.read_text())["summary"]
    ref_stamp = json.loads((root / f"{REFERENCE}.json").read_text())
    summary["reference"] = {"build_s": ref_stamp["build_s"],
                            "fa_gz_mb": round((root / REFERENCE).stat().st_size / 2**20, 1),
                            "contigs": sum(1 for _ in open(root / f"{REFERENCE}.fai"))}
    return root, summary


def biobank_tools(root: Path, work: Path, cores: int, driver_memory: str, reference: bool,
                  spark_conf: dict | None = None) -> Tools:
    """genomics.Tools on the cohort's study: one phenotype table, no GFF or reads; the reference or none."""
    tools = Tools(root, work, cores, None, driver_memory, MIN_HWE_P)
    tools.params["spark"].update(spark_conf or {})
    tools.params["study"]["phenotypes"] = "raw/phenotypes.csv"
    tools.params["preprocess"]["annotations_gff"] = None
    tools.params["preprocess"]["reference_fasta"] = REFERENCE if reference else None
    return tools


# --------------------------------------------------------------------------- runs


def run_step(tools: Tools, step: str, log_name: str) -> dict:
    shutil.rmtree(tools.step_dir(step), ignore_errors=True)  # a fresh run, not "already committed"
    result = measure_tree(tools.job(step), tools.work / "logs" / f"{log_name}.log", tools.env)
    summary = tools.step_dir(step) / "qc_summary.json"
    if step == "preprocess" and summary.exists():  # what QC kept, and whether the REF check ran
        qc = json.loads(summary.read_text())
        result["qc"] = {k: qc.get(k) for k in ("n_variants_pass_qc", "n_samples_pass_qc", "n_vcf_splits", "skipped")}
    return result


def source_state() -> dict:
    """The commit measured and the files others had changed but not committed (the jobs run the working tree)."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO).stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": [f for f in dirty if f.startswith("src/")
                                                                            or f.startswith("jobs/")]}


def run_genoflow(root: Path, work: Path, cores: int, driver_memory: str, result: dict, save) -> None:
    """preprocess without and with the reference, then features, train, evaluate on the one that succeeded."""
    steps = result.setdefault("genoflow", {})
    plain = biobank_tools(root, work, cores, driver_memory, False, result["spark_conf"])
    with_ref = biobank_tools(root, work, cores, driver_memory, True, result["spark_conf"])
    order = (("preprocess (no reference)", plain), ("preprocess (GRCh38-sized reference)", with_ref))
    for label, tools in order[::-1] if result.get("reference_first") else order:
        say(f"genoflow {label}")
        steps[label] = run_step(tools, "preprocess", label.split()[0] + ("_ref" if tools is with_ref else ""))
        save()
    if result.get("preprocess_only"):
        return
    downstream = with_ref if steps["preprocess (GRCh38-sized reference)"]["exit_code"] == 0 else plain
    result["downstream_of"] = "with reference" if downstream is with_ref else "without reference"
    for step in ("features", "train", "evaluate"):
        if steps.get(f"preprocess ({'GRCh38-sized reference' if downstream is with_ref else 'no reference'})",
                     {}).get("exit_code") != 0:
            break
        say(f"genoflow {step}")
        steps[step] = run_step(downstream, step, step)
        save()
        if steps[step]["exit_code"] != 0:
            break
    if steps.get("evaluate", {}).get("exit_code") == 0:
        result["quality"] = _quality(downstream)
        save()


def _quality(tools: Tools) -> dict:
    metrics = json.loads((tools.step_dir("evaluate") / "metrics.json").read_text())
    disease = [m for m in metrics["models"] if m["target"] == "disease_status"]
    best = next(m for m in disease if m["run_id"] == metrics["candidates"]["disease_status"])
    return {"candidate": best["family"], "test_auc_roc": round(best["test_auc_roc"], 4),
            "cv_auc_roc": round(best["cv_auc_roc"], 4),
            "models": {m.get("baseline") or m["family"]: round(m["test_auc_roc"], 4) for m in disease}}


def run_plink(root: Path, work: Path, cores: int, result: dict, save) -> None:
    """plink2 --make-pgen, --pca approx 10, --glm (age + sex + PCs) on the same VCF, under the same sampler."""
    out = work / "plink"
    out.mkdir(parents=True, exist_ok=True)
    steps = result.setdefault("plink2", {})
    qc = ["--geno", "0.05", "--maf", "0.01", "--hwe", f"{MIN_HWE_P:g}"]
    pheno = pd.read_csv(root / "raw" / "phenotypes.csv")
    covar = out / "covar.tsv"
    commands = {
        "plink2 --make-pgen": ["--vcf", str(root / "raw" / "cohort.vcf.gz"), "--make-pgen",
                               "--set-all-var-ids", "@:#:$r:$a", "--out", str(out / "cohort")],
        "plink2 --pca approx 10": ["--pfile", str(out / "cohort"), *qc, "--pca", "approx", "10",
                                   "--out", str(out / "pca")],
        "plink2 --glm (age, sex, 10 PCs)": ["--pfile", str(out / "cohort"), "--pheno", str(covar),
                                            "--pheno-name", "disease", "--covar", str(covar),
                                            "--covar-name", "age,male,PC1-PC10", "--covar-variance-standardize",
                                            "--glm", "hide-covar", *qc, "--out", str(out / "assoc")],
    }
    for label, args in commands.items():
        if label.startswith("plink2 --glm"):
            _plink_covariates(pheno, out / "pca.eigenvec", covar)
        say(label)
        log = work / "logs" / f"plink_{label.split()[1][2:]}.log"
        steps[label] = measure_tree(["plink2", *args, "--threads", str(cores)], log)
        save()
        if steps[label]["exit_code"] != 0:
            break


def _plink_covariates(pheno: pd.DataFrame, eigenvec: Path, path: Path) -> None:
    """One table: plink's case/control coding (1 control, 2 case), age, male, the 10 PCs."""
    pcs = pd.read_csv(eigenvec, sep="\t").rename(columns={"#IID": "IID", "#FID": "FID"})
    table = pd.DataFrame({"IID": pheno["patient_id"], "disease": pheno["disease_status"] + 1,
                          "age": pheno["age"], "male": (pheno["sex"] == "M").astype(int)})
    table.merge(pcs[["IID", *[f"PC{i}" for i in range(1, 11)]]], on="IID").rename(
        columns={"IID": "#IID"}).to_csv(path, sep="\t", index=False)


# --------------------------------------------------------------------------- targets and rendering


def targets(result: dict, baseline: dict | None) -> list[dict]:
    """Each of issue 14's targets: the measured value, the limit, met or not."""
    rows = []
    g = result.get("genoflow", {})
    genotypes = result["n_samples"] * result["n_variants"] / 1e9
    for step, r in g.items():
        if r.get("exit_code") != 0:
            continue
        name = "preprocess" if step.startswith("preprocess") else step
        base = (baseline or {}).get(name)
        key = "cpu_s" if base and base.get("cpu_s") else "wall_s"
        mine = r[key] / genotypes
        if base:
            theirs = base[key] / base["genotypes_g"]
            rows.append({"target": f"{step}: {key[:-2]} s per 10^9 genotypes <= 1.5x {BASELINE}'s",
                         "value": f"{mine:,.1f} vs {theirs:,.1f} ({mine / theirs:.2f}x)",
                         "met": mine / theirs <= TARGETS["cost_ratio"]})
        driver = r["classes"].get("driver JVM (local mode: also the executor)", {}).get("peak_one_mb")
        rows.append({"target": f"{step}: driver JVM peak RSS <= 4 GB", "value": f"{driver} MB",
                     "met": driver is not None and driver <= TARGETS["driver_mb"]})
        worker = max([r["classes"].get(c, {}).get("peak_one_mb", 0) for c in ("python worker", "pyspark.daemon")])
        rows.append({"target": f"{step}: each Python worker peak RSS <= 1.5 GB",
                     "value": f"{worker} MB" if worker else "no Python workers", "met": worker <= TARGETS["worker_mb"]})
    plain, ref = g.get("preprocess (no reference)"), g.get("preprocess (GRCh38-sized reference)")
    if plain and ref:
        ok = ref["exit_code"] == 0
        mb, s = ref["peak_rss_mb"] - plain["peak_rss_mb"], ref["wall_s"] - plain["wall_s"]
        rows.append({"target": "the reference adds < 500 MB (peak RSS of the tree) to preprocess",
                     "value": f"{mb:+,} MB" if ok else f"failed (exit {ref['exit_code']})",
                     "met": ok and mb < TARGETS["reference_mb"]})
        cpu = ref["cpu_s"] - plain["cpu_s"]  # on a shared machine wall time also measures the queue for the cores
        rows.append({"target": "the reference adds < 10 s (wall) to preprocess",
                     "value": f"{s:+.1f} s wall ({cpu:+.1f} CPU s)" if ok else "n/a",
                     "met": ok and s < TARGETS["reference_s"]})
    return rows


def baseline_costs() -> dict | None:
    """``ooa8k``'s step times from bench/results/genomics.json (preprocess with CPU; the others wall only)."""
    if not GENOMICS_RESULTS.exists():
        return None
    c = json.loads(GENOMICS_RESULTS.read_text())["cohorts"].get(BASELINE)
    if not c:
        return None
    gt = c["n_samples"] * c["n_variants"] / 1e9
    pre = c["ingest"]["genoflow preprocess job"]
    out = {"preprocess": {"wall_s": pre["wall_s"], "cpu_s": pre["cpu_s"], "genotypes_g": gt}}
    for step, wall in c.get("quality", {}).get("genoflow_step_wall_s", {}).items():
        out[step] = {"wall_s": wall, "genotypes_g": gt}
    return out | {"source": f"bench/results/genomics.json, {c.get('started', '?')}"}


def render(results: dict) -> str:
    r = results["biobank"]
    gt = r["n_samples"] * r["n_variants"]
    s, src = r["cohort"], r.get("source", {})
    out = [f"Cohort `{r['cohort_name']}`: {r['n_samples']:,} patients x {r['n_variants']:,} SNVs of chr20 "
           f"({gt / 1e9:.2f} G genotypes; VCF.gz {r['vcf_mb']:,} MB; simulated in {s.get('generate_s', '?')} s), "
           f"reference {s['reference']['contigs']} contigs, 3.1 Gbp, bgzip {s['reference']['fa_gz_mb']:,} MB "
           f"(built in {s['reference']['build_s']} s); {r['cores']} cores, driver memory {r['driver_memory']}; "
           f"run {r['started']} to {r.get('finished', '?')} UTC, load average {r['load_average']}; "
           f"commit {src.get('commit', '?')} plus {len(src.get('uncommitted', []))} uncommitted src/jobs files of "
           "engineers working in the same checkout meanwhile (listed in the JSON).", "",
           "| step | exit | wall s | CPU s | CPU s / 10^9 genotypes | tree peak MB | driver JVM MB | "
           "python driver MB | pyspark.daemon MB | largest Python worker MB (workers) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for tool in ("genoflow", "plink2"):
        for step, m in r.get(tool, {}).items():
            c = m["classes"]
            workers = c.get("python worker", {})
            out.append(f"| {step if tool == 'plink2' else 'genoflow ' + step} | {m['exit_code']} | {m['wall_s']} | "
                       f"{m['cpu_s']} | {m['cpu_s'] / (gt / 1e9):,.1f} | {m['peak_rss_mb']:,} | "
                       f"{_one(c, 'driver JVM (local mode: also the executor)')} | {_one(c, 'python driver')} | "
                       f"{_one(c, 'pyspark.daemon')} | {workers.get('peak_one_mb', '-')} "
                       f"({workers.get('processes', 0)}) |")
    conf = r.get("spark_conf") or {}
    if max(x for x in r["load_average"] if x is not None) > 1.5 * r["cores"]:
        out += ["", f"The machine was shared with other jobs (load average {r['load_average'][0]} at the start, "
                f"{r['load_average'][1]} at the end, on {r['cores']} cores): wall times include the queue for the "
                "cores; CPU s is the number to compare."]
    if conf:
        out += ["", f"Spark conf over params.yaml for this run: {conf}."]
    if "spark.sql.parquet.columnarReaderBatchSize" in conf:
        out[-1] += (" Spark's vectorized Parquet reader fills batches of 4,096 rows by default, whatever their size: "
                    f"4,096 x {r['n_samples']:,} bytes of packed dosages is {4096 * r['n_samples'] / 2**20:,.0f} MB "
                    "per batch and task, which the earlier run's 3 GB heap could not hold (below); the batch here "
                    "is rows_per_block(n_samples, 1) rows, the byte rule genoflow's own blocks follow.")
    if r.get("plink2"):
        out += ["", "plink2 ran after genoflow with --threads = cores and its default --memory (half the machine's "
                "RAM): --make-pgen's peak RSS is that reservation filled as a work area, not a need of the cohort."]
    if r.get("plink2_note"):
        out += ["", r["plink2_note"]]
    again = r.get("reference_resample")
    if again:
        ref, plain = again["preprocess (GRCh38-sized reference)"], again["preprocess (no reference)"]
        out += ["", f"A second sample ({again['started']} UTC, `--preprocess-only`, the reference run first): with the "
                f"reference {ref['wall_s']} s wall / {ref['cpu_s']} CPU s / tree peak {ref['peak_rss_mb']:,} MB "
                f"(driver JVM {_one(ref['classes'], DRIVER)} MB), without {plain['wall_s']} s / {plain['cpu_s']} CPU s "
                f"/ {plain['peak_rss_mb']:,} MB (driver JVM {_one(plain['classes'], DRIVER)} MB): the reference adds "
                f"{ref['peak_rss_mb'] - plain['peak_rss_mb']:+,} MB and {ref['cpu_s'] - plain['cpu_s']:+.1f} CPU s; "
                f"the wall difference ({ref['wall_s'] - plain['wall_s']:+.1f} s) is the shared machine's noise."]
    qc = next((m["qc"] for m in r.get("genoflow", {}).values() if m.get("qc")), None)
    if qc:
        out += ["", f"Variant QC kept {qc['n_variants_pass_qc']:,} of {r['n_variants']:,} SNVs (MAF >= 0.01, call rate "
                f">= 0.95, HWE p >= {MIN_HWE_P:g}: at 10^5 patients most simulated SNVs are rare), "
                f"{qc['n_samples_pass_qc']:,} patients; {qc['n_vcf_splits']} VCF splits. Features, train and evaluate "
                "work on the kept variants, preprocess on all of them."]
    out += ["", f"Targets (issue 14; the `{BASELINE}` costs are {r.get('baseline', {}).get('source', 'absent')}: "
            "preprocess by CPU s, features/train/evaluate by wall s, the only numbers stored for them):", "",
            "| target | measured | met |", "|---|---|---|"]
    out += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in r.get("targets", [])]
    q = r.get("quality")
    if q:
        out += ["", f"Model (disease_status, held-out patients): candidate {q['candidate']}, test AUC "
                f"{q['test_auc_roc']} (nested CV {q['cv_auc_roc']}), oracle AUC on all patients "
                f"{s.get('oracle_auc_disease')}; every model: {q['models']}."]
    for f in r.get("earlier_failures", []):
        out += ["", f"Earlier run ({f['started']} UTC, driver memory {f['driver_memory']}, extra Spark conf "
                f"{f['spark_conf'] or 'none'}): `{f['step']}` failed (exit {f['exit_code']}) after {f['wall_s']} s, "
                f"driver JVM at {f['driver_jvm_mb']} MB; its log ({_relative(f['log'])}) names:", "",
                *[f"    {e}" for e in _causes(f["errors"])]]
    for tool in ("genoflow", "plink2"):
        for step, m in r.get(tool, {}).items():
            if m["exit_code"] != 0:
                out += ["", f"`{step}` failed (exit {m['exit_code']}); the log's tail:", "", "```",
                        m.get("log_tail", "").rstrip()[-3000:], "```"]
    return "\n".join(out)


def earlier_failures(path: Path, cohort_name: str) -> list[dict]:
    """The failed steps of the previous run of this cohort (and those it carried), kept as findings."""
    if not path.exists():
        return []
    before = json.loads(path.read_text()).get("biobank", {})
    if before.get("cohort_name") != cohort_name:
        return []
    found = list(before.get("earlier_failures", []))
    for tool in ("genoflow", "plink2"):
        for step, m in before.get(tool, {}).items():
            if m.get("exit_code") != 0:
                causes = m.get("errors") or _error_lines(Path(m["log"]).read_text(errors="replace").splitlines()
                                                          if Path(m.get("log", "/nonexistent")).exists() else [])
                found.append({"step": step, "exit_code": m["exit_code"], "started": before.get("started"),
                              "driver_memory": before.get("driver_memory"), "spark_conf": before.get("spark_conf", {}),
                              "wall_s": m["wall_s"], "peak_rss_mb": m["peak_rss_mb"],
                              "driver_jvm_mb": _one(m["classes"], "driver JVM (local mode: also the executor)"),
                              "errors": causes, "log": m.get("log")})
    return found


def _causes(errors: list[str]) -> list[str]:
    """The root causes (Java's 'Caused by:' lines) of a failure, else its first errors."""
    return [e for e in errors if e.startswith("Caused by:")][:3] or errors[:2]


def _relative(path: str | None) -> str:
    return os.path.relpath(path, REPO) if path else "not kept"


def _one(classes: dict, name: str):
    return classes.get(name, {}).get("peak_one_mb", "-")


def save(results: dict, args) -> None:
    r = results["biobank"]
    r["targets"] = targets(r, r.get("baseline"))
    r.update(finished=_now(), load_average=[r["load_average"][0], _load()])
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    write_benchmarks_md(render(results), args.benchmarks_md, marks=MARKS, heading=HEADING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1_000_000, help="simulated region on chr20, bp")
    parser.add_argument("--cores", type=int, default=2, help="local[N] / --threads N")
    parser.add_argument("--driver-memory", default="3g", help="spark.driver.memory (the driver JVM's heap)")
    parser.add_argument("--skip-plink", action="store_true")
    parser.add_argument("--preprocess-only", action="store_true",
                        help="only the two preprocess runs, with the reference first (a second sample of its cost; "
                             "--merge-resample puts it beside a full run's results)")
    parser.add_argument("--merge-resample", type=Path, help="a --preprocess-only results file to add to --results")
    parser.add_argument("--plink-only", action="store_true", help="only plink2 (its own --results file)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="over params.yaml's spark section (recorded with the results)")
    parser.add_argument("--work", type=Path, default=REPO / ".genoflow" / "bench")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--benchmarks-md", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--render-only", action="store_true", help="rewrite BENCHMARKS.md from the results")
    args = parser.parse_args(argv)
    if args.render_only or args.merge_resample:
        results = json.loads(args.results.read_text())
        if args.merge_resample:
            again = json.loads(args.merge_resample.read_text())["biobank"]
            results["biobank"]["reference_resample"] = {**again["genoflow"], "started": again["started"]}
            args.results.write_text(json.dumps(results, indent=1) + "\n")
        results["biobank"]["targets"] = targets(results["biobank"], results["biobank"].get("baseline"))
        write_benchmarks_md(render(results), args.benchmarks_md, marks=MARKS, heading=HEADING)
        return 0
    for tool in ("plink2", "bgzip", "samtools"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not on PATH: run `make bench-deps` (Debian packages)")
    work = args.work.resolve()
    root, summary = biobank_cohort(work, args.patients, args.length)
    warm_kernels()
    results = {"machine": machine(), "versions": tool_versions(None), "biobank": {
        "cohort_name": root.name, "n_samples": summary["n_patients"], "n_variants": summary["n_variants"],
        "cohort": summary, "vcf_mb": round((root / "raw" / "cohort.vcf.gz").stat().st_size / 2**20, 1),
        "cores": args.cores, "driver_memory": args.driver_memory, "baseline": baseline_costs(),
        "spark_conf": dict(item.split("=", 1) for item in args.spark_conf),
        "earlier_failures": earlier_failures(args.results, root.name),
        "source": source_state(), "started": _now(), "load_average": [_load(), None]}}
    run_work = work / "runs" / root.name
    results["biobank"].update(preprocess_only=args.preprocess_only, reference_first=args.preprocess_only)
    if args.plink_only:  # e.g. beside a long genoflow run, into its own --results file
        results["biobank"]["plink_only"] = True
    else:
        run_genoflow(root, run_work, args.cores, args.driver_memory, results["biobank"], lambda: save(results, args))
    if not (args.skip_plink or args.preprocess_only):
        run_plink(root, run_work, args.cores, results["biobank"], lambda: save(results, args))
    save(results, args)
    say(f"results: {args.results}; tables: {args.benchmarks_md}")
    failed = [s for tool in ("genoflow", "plink2") for s, m in results["biobank"].get(tool, {}).items()
              if m["exit_code"] != 0]
    if failed:
        raise BenchError(f"failed: {failed} (their log tails are in {args.results})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

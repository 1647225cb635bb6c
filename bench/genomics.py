"""genoflow vs plink2, bcftools and Hail on the same files, machine and cores, in one run (`make bench`).

For each cohort (simulated once, cached under .genoflow/bench/cohorts/):

- ingest, genotypes/s: genoflow's preprocess job (spark-submit jobs/preprocess.py) and its VCF ->
  Parquet part alone (bench/genoflow_ingest.py), ``plink2 --make-pgen``, ``bcftools view -Ob`` and
  Hail ``import_vcf(...).write(...)``, all from the same cohort.vcf.gz;
- association, variants/s: genoflow's association scan (bench/genoflow_assoc.py, the features
  step's function), ``plink2 --glm`` and Hail ``logistic_regression_rows``; same trait, same
  covariates (age, sex), same QC thresholds;
- model quality on the held-out patients (``--quality``): genoflow's features/train/evaluate jobs
  vs a plink2 C+T polygenic score on the same split (bench/plink_prs.py) vs the simulation's oracle.

Every command is timed as a whole process (wall seconds, peak RSS summed over its process tree,
CPU seconds). Results go to bench/results/genomics.json and the generated block of
BENCHMARKS.md. Not a test: nothing asserts on times.

    python bench/genomics.py --cohorts demo,ooa --scaling small --hail-python .genoflow/bench/hail-venv/bin/python
    python bench/genomics.py --cohorts large --cores 16 --scaling large   # a 16-core machine
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

# The tables (bench/biobank.py imports write_benchmarks_md from here).
from render import render, write_benchmarks_md

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "genomics.json"
JAVA17 = "/usr/lib/jvm/java-17-openjdk-amd64"

# name -> generator and size. "demo" is `make demo`'s cohort; "ooa" the three-population cohort;
# "large" is sized for a 16-core machine: ~9x the genotypes of "ooa" (~3.4 G; simulating it holds the
# 16,000 x ~420k haplotype matrix, ~7 GB, plus the same again for dosages: give it >= 32 GB).
COHORTS = {
    "tiny": {"kind": "ooa", "n_patients": 300, "sequence_length": 1_000_000},  # a smoke run of the harness
    "demo": {"kind": "demo", "n_patients": 1000, "sequence_length": 2_000_000},
    # Pooled over three populations, HWE tests flag real variants (the Wahlund effect: at 1e-6, 83 % of
    # the sites and 20 of the 50 causal variants fail); every tool gets this cohort's relaxed threshold.
    "ooa": {"kind": "ooa", "n_patients": 2000, "sequence_length": 10_000_000, "min_hwe_p": 1e-50},
    "large": {"kind": "ooa", "n_patients": 8000, "sequence_length": 20_000_000, "min_hwe_p": 1e-50},
    # The largest the 2-core, 24 GB development machine simulates (~2.1 G genotypes, 5.9x "ooa"): where
    # the fixed cost of a Spark job stops deciding the ratios.
    "ooa8k": {"kind": "ooa", "n_patients": 8000, "sequence_length": 10_000_000, "min_hwe_p": 1e-50},
}
# Growth with samples x variants and with cores: (patients, contig length) points, each at these cores.
SCALING = {
    "small": {"points": [(500, 2_500_000), (1000, 5_000_000)], "cores": [1, 2], "assoc": False},
    "large": {"points": [(2000, 10_000_000), (4000, 10_000_000), (8000, 10_000_000), (8000, 20_000_000)],
              "cores": [1, 2, 4, 8, 16], "assoc": True},
}


# Over params.yaml: only the trait the comparison is about (the treatment_response models would double
# the train step), and no Spark UI (its port hunting is noise).
BENCH_PARAMS = {"spark": {"spark.ui.enabled": "false"}}
BENCH_TARGETS = {"disease_status": "binary"}  # replaces study.targets (a merge would keep the others)


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- measuring


def measure(argv: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``argv`` to completion: wall s, CPU s, peak RSS MB.

    CPU s is the process's own plus its descendants' (``wait4`` rusage, or the sum of every
    process's last sampled CPU when larger: Spark's Python workers and Hail's JVM are not reaped by
    their parents), the number to read on a machine shared with other work, where wall time also
    measures the queue for the cores. Peak RSS is summed over the live process tree (psutil, sampled
    every 0.1 s), so a Spark job's JVM and Python workers count together.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    peak = 0
    seen_cpu: dict[int, float] = {}  # last CPU s seen of every descendant (some are never reaped by us)
    with log.open("w") as out:
        proc = psutil.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = 0
            for p in [proc, *_children(proc)]:
                try:
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    seen_cpu[p.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, rss)
            time.sleep(0.1)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise BenchError(f"{' '.join(argv[:3])} ... failed (exit {code}); log {log}:\n{tail}")
    # rusage counts the process and the descendants it reaped. Spark's Python workers are forked by a
    # daemon that does not wait for them, so the sum of every process's last sampled CPU (short by at
    # most one 0.1 s sample each) is taken where it is larger.
    cpu = max(usage.ru_utime + usage.ru_stime, sum(seen_cpu.values()))
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 1), "cpu_counted": True,
            "peak_rss_mb": round(peak / 2**20), **_bench_line(log)}


def _children(proc) -> list:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _bench_line(log: Path) -> dict:
    """The ``BENCH {json}`` line a driver script printed, if any."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    return {}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cohorts


def cohort_dir(work: Path, name: str, spec: dict) -> Path:
    """The simulated cohort (raw/ + truth/), generated once per spec and reused."""
    root = work / "cohorts" / name
    stamp = root / "cohort.json"
    spec = {k: spec[k] for k in ("kind", "n_patients", "sequence_length")}  # what the simulation depends on
    if stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec:
        return root
    say(f"simulating cohort {name}: {spec}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    started = time.perf_counter()
    if spec["kind"] == "demo":
        from genoflow.simulate.cohort import make_demo_cohort

        summary = make_demo_cohort(root, n_patients=spec["n_patients"], sequence_length=spec["sequence_length"])
    else:
        from genoflow.simulate.ooa import make_ooa_cohort

        summary = make_ooa_cohort(root, n_patients=spec["n_patients"], sequence_length=spec["sequence_length"])
    summary["generate_s"] = round(time.perf_counter() - started, 1)
    stamp.write_text(json.dumps({"spec": spec, "summary": summary}, indent=1, default=str))
    return root


def cohort_summary(root: Path) -> dict:
    return json.loads((root / "cohort.json").read_text())["summary"]


def clinical_table(root: Path) -> pd.DataFrame:
    """IID, disease (0/1), age, male (0/1) of every patient, from the clinical CSVs."""
    rows = [pd.read_csv(f) for f in sorted(glob.glob(str(root / "raw" / "patient_data" / "*" / "clinical_data.csv")))]
    table = pd.concat(rows, ignore_index=True)
    return pd.DataFrame({"IID": table["patient_id"], "disease": table["disease_status"].astype(int),
                         "age": table["age"].astype(float), "male": (table["sex"] == "M").astype(int)})


# --------------------------------------------------------------------------- tools


class Tools:
    """The commands of one cohort at one core count, sharing a work folder."""

    def __init__(self, root: Path, work: Path, cores: int, hail_python: str | None, driver_memory: str,
                 min_hwe_p: float | None = None):
        from genoflow.config import Settings, load_params, merge_params

        self.root, self.work, self.cores, self.hail_python = root, work, cores, hail_python
        self.vcf = str(root / "raw" / "cohort.vcf.gz")
        self.params = merge_params(load_params(REPO / "params.yaml"), BENCH_PARAMS)
        self.params["study"]["targets"] = dict(BENCH_TARGETS)
        self.params["spark"]["spark.driver.memory"] = driver_memory
        if min_hwe_p is not None:
            self.params["preprocess"]["min_hwe_p"] = min_hwe_p
        p = self.params["preprocess"]
        self.qc = {"min_call_rate": float(p["min_call_rate"]), "min_maf": float(p["min_maf"]),
                   "min_hwe_p": float(p["min_hwe_p"])}
        # The same variant QC as plink2 flags (--geno is the missing rate).
        self.plink_qc = ["--geno", f"{1 - self.qc['min_call_rate']:g}", "--maf", f"{self.qc['min_maf']:g}",
                         "--hwe", f"{self.qc['min_hwe_p']:g}"]
        self.settings = Settings({"GENOFLOW_HOME": str(REPO)})
        self.dataset_version = f"bench-{work.name}"  # runs in other work folders keep their own steps
        self.env = _genoflow_env(work)
        work.mkdir(parents=True, exist_ok=True)

    # genoflow ------------------------------------------------------------------------------
    def spark_submit(self, script: str, *args: str) -> list[str]:
        from genoflow.spark_submit import spark_conf

        conf = [item for k, v in spark_conf(self.settings, self.params).items() for item in ("--conf", f"{k}={v}")]
        return [str(Path(sys.executable).parent / "spark-submit"), "--master", f"local[{self.cores}]", *conf,
                str(REPO / script), *args]

    def job(self, step: str) -> list[str]:
        return self.spark_submit(f"jobs/{step}.py", "--storage-root", self.root.as_uri(),
                                 "--dataset-version", self.dataset_version, "--params-json", json.dumps(self.params))

    def step_dir(self, step: str) -> Path:
        from genoflow.pipeline.runner import step_uri

        return Path(step_uri(str(self.root), step, self.dataset_version, self.params))

    def genoflow_preprocess(self) -> dict:
        shutil.rmtree(self.step_dir("preprocess"), ignore_errors=True)  # a fresh run, not "already committed"
        return measure(self.job("preprocess"), self.work / "logs" / "genoflow_preprocess.log", self.env)

    def genoflow_ingest(self) -> dict:
        out = self.work / "genoflow_genotypes.parquet"
        shutil.rmtree(out, ignore_errors=True)
        argv = self.spark_submit("bench/genoflow_ingest.py", "--storage-root", self.root.as_uri(),
                                 "--out", out.as_uri(), "--params-json", json.dumps(self.params))
        return measure(argv, self.work / "logs" / "genoflow_ingest.log", self.env)

    def genoflow_assoc(self) -> dict:
        out = self.work / "genoflow_assoc.parquet"
        shutil.rmtree(out, ignore_errors=True)
        if (self.step_dir("preprocess") / "_SUCCESS").exists():
            source = ["--preprocess", self.step_dir("preprocess").as_uri()]
        else:  # no preprocess output: the VCF->Parquet table and a sample table from the clinical CSVs
            source = ["--genotypes", (self.work / "genoflow_genotypes.parquet").as_uri(),
                      "--samples", self._sample_table().as_uri()]
        argv = self.spark_submit("bench/genoflow_assoc.py", *source,
                                 "--out", out.as_uri(), "--target", "disease_status", "--covariates", "age,sex")
        return measure(argv, self.work / "logs" / "genoflow_assoc.log", self.env)

    def _sample_table(self) -> Path:
        """Every patient as a QC-passing sample, in VCF order (the simulated VCF lists PT... in order)."""
        pheno = clinical_table(self.root)
        path = self.work / "samples.parquet"
        pd.DataFrame({"sample_index": range(len(pheno)), "sample_qc_pass": True,
                      "disease_status": pheno["disease"], "age": pheno["age"],
                      "sex": pheno["male"].map({1: "M", 0: "F"})}).to_parquet(path)
        return path

    def genoflow_pipeline(self) -> dict:
        """features, train, evaluate on the committed preprocess output (timed, for information)."""
        times = {}
        for step in ("features", "train", "evaluate"):
            shutil.rmtree(self.step_dir(step), ignore_errors=True)
            times[step] = measure(self.job(step), self.work / "logs" / f"genoflow_{step}.log", self.env)
        return times

    # peers ----------------------------------------------------------------------------------
    def plink_ingest(self) -> dict:
        out = self.work / "plink" / "cohort"
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = ["plink2", "--vcf", self.vcf, "--make-pgen", "--set-all-var-ids", "@:#:$r:$a",
                "--new-id-max-allele-len", "100", "--threads", str(self.cores), "--out", str(out)]
        result = measure(argv, self.work / "logs" / "plink_make_pgen.log")
        result["n_variants"] = _count_lines(f"{out}.pvar", skip_prefix="#")
        return result

    def bcftools_ingest(self) -> dict:
        # bcftools' --threads are extra compression threads: main thread + (cores - 1) = cores.
        argv = ["bcftools", "view", "--threads", str(max(self.cores - 1, 0)), "-Ob", "-o",
                str(self.work / "cohort.bcf"), self.vcf]
        return measure(argv, self.work / "logs" / "bcftools_view.log")

    def hail(self, *args: str, log: str) -> dict:
        if not self.hail_python:
            raise BenchError("no --hail-python")
        tmp = self.work / "hail" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_PYTHON",
                                                                 "PYSPARK_DRIVER_PYTHON")}
        env.update(JAVA_HOME=JAVA17, PYSPARK_PYTHON=self.hail_python, SPARK_LOCAL_IP="127.0.0.1",
                   PATH=f"{JAVA17}/bin:{env.get('PATH', '')}")
        argv = [self.hail_python, str(REPO / "bench" / "hail_bench.py"), *args, "--cores", str(self.cores),
                "--tmp", str(tmp)]
        # pyspark starts Hail's JVM as a child it never reaps: measure() counts it from its samples.
        return measure(argv, self.work / "logs" / log, env)

    def hail_ingest(self) -> dict:
        return self.hail("ingest", self.vcf, str(self.work / "hail" / "cohort.mt"), log="hail_import_vcf.log")

    def plink_assoc(self, pheno: pd.DataFrame) -> dict:
        pheno_file = self.work / "plink" / "pheno.tsv"
        pheno.assign(disease=pheno["disease"] + 1).rename(columns={"IID": "#IID"}).to_csv(
            pheno_file, sep="\t", index=False)  # plink's case/control coding: 1 control, 2 case
        out = self.work / "plink" / "assoc"
        argv = ["plink2", "--pfile", str(self.work / "plink" / "cohort"), "--pheno", str(pheno_file),
                "--pheno-name", "disease", "--covar", str(pheno_file), "--covar-name", "age,male",
                "--covar-variance-standardize", "--glm", "hide-covar", *self.plink_qc,
                "--threads", str(self.cores), "--out", str(out)]
        result = measure(argv, self.work / "logs" / "plink_glm.log")
        (path,) = glob.glob(f"{out}.disease.glm.logistic*")
        result["n_variants"] = _count_lines(path, skip_prefix="#")
        return result

    def hail_assoc(self, pheno: pd.DataFrame) -> dict:
        pheno_file = self.work / "hail" / "pheno.tsv"
        pheno_file.parent.mkdir(parents=True, exist_ok=True)
        pheno.rename(columns={"male": "sex"}).to_csv(pheno_file, sep="\t", index=False)
        return self.hail("assoc", str(self.work / "hail" / "cohort.mt"), str(pheno_file),
                         str(self.work / "hail" / "assoc.ht"), "--qc", json.dumps(self.qc),
                         log="hail_logistic_regression_rows.log")


def _genoflow_env(work: Path) -> dict:
    env = dict(os.environ)
    python = sys.executable
    env.update(GENOFLOW_HOME=str(REPO), PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python,
               SPARK_LOCAL_IP="127.0.0.1", PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               GENOFLOW_ARTIFACT_ROOT=(work / "mlartifacts").as_uri(),
               GENOFLOW_ALLOW_DEMO_KEY="1",  # simulated cohorts: the demo pseudonym key is fine (decision 0018)
               PATH=os.pathsep.join([str(Path(python).parent), env.get("PATH", "")]))
    return env


def _count_lines(path, skip_prefix: str) -> int:
    with open(path) as handle:
        return sum(1 for line in handle if not line.startswith(skip_prefix))


# --------------------------------------------------------------------------- runs


def run_cohort(name: str, root: Path, work: Path, cores: int, hail_python: str | None, quality: bool,
               driver_memory: str, parts: frozenset = frozenset({"ingest", "assoc"}), save=None) -> dict:
    """Every tool on one cohort, one after the other (nothing else of ours runs meanwhile).

    ``parts`` without "ingest" still runs what the others read (genoflow preprocess, plink2 pgen).
    ``save(result)`` is called after every tool, so a long run keeps what it measured so far.
    """
    save = save or (lambda result: None)
    tools = Tools(root, work, cores, hail_python, driver_memory, COHORTS[name].get("min_hwe_p"))
    summary = cohort_summary(root)
    n_samples, n_variants = summary["n_patients"], summary["n_variants"]
    genotypes = n_samples * n_variants
    pheno = clinical_table(root)
    result = {"cohort": name, "n_samples": n_samples, "n_variants": n_variants, "cores": cores, "qc": tools.qc,
              "vcf_mb": round(os.path.getsize(tools.vcf) / 2**20, 1), "ingest": {}, "assoc": {}}
    ingest = [("plink2 --make-pgen", tools.plink_ingest), ("bcftools view -Ob", tools.bcftools_ingest),
              ("genoflow VCF->Parquet", tools.genoflow_ingest)]
    if hail_python:
        ingest.append(("Hail import_vcf().write()", tools.hail_ingest))
    ingest.append(("genoflow preprocess job", tools.genoflow_preprocess))
    if "ingest" not in parts:
        ingest = [row for row in ingest if row[0] in ("genoflow preprocess job", "plink2 --make-pgen")]
    for label, fn in ingest:
        say(f"{name}: ingest: {label}")
        r = fn()
        r["genotypes_per_s"] = round(genotypes / r["wall_s"])
        result.setdefault("ingest" if "ingest" in parts else "setup", {})[label] = r
        save(result)
    assoc = [("plink2 --glm", lambda: tools.plink_assoc(pheno)), ("genoflow association_scan", tools.genoflow_assoc)]
    if hail_python:
        assoc.append(("Hail logistic_regression_rows", lambda: tools.hail_assoc(pheno)))
    for label, fn in assoc if "assoc" in parts else []:
        say(f"{name}: association: {label}")
        r = fn()
        r["variants_per_s"] = round(r["n_variants"] / r["wall_s"], 1)
        result["assoc"][label] = r
        save(result)
    if quality:
        say(f"{name}: model quality (genoflow features/train/evaluate, plink2 C+T)")
        result["quality"] = model_quality(tools, root, pheno)
    return result


def model_quality(tools: Tools, root: Path, pheno: pd.DataFrame) -> dict:
    from plink_prs import plink_prs_baseline
    from sklearn.metrics import roc_auc_score

    steps = tools.genoflow_pipeline()
    metrics = json.loads((tools.step_dir("evaluate") / "metrics.json").read_text())
    disease = [m for m in metrics["models"] if m["target"] == "disease_status"]
    candidate = next(m for m in disease if m["run_id"] == metrics["candidates"]["disease_status"])
    train_ids, test_ids = _split_ids(tools, pheno["IID"].tolist())

    def run(label: str, argv: list[str]) -> dict:
        return measure(argv, tools.work / "logs" / f"prs_{label.replace(' ', '_')}.log")

    prs = plink_prs_baseline(run, str(tools.work / "plink" / "cohort"), pheno, train_ids, test_ids,
                             tools.work / "prs", tools.cores, tools.plink_qc)
    oracle = _oracle_score(root, pheno).loc[test_ids]
    labels = pheno.set_index("IID").loc[test_ids, "disease"]
    baselines = {m["baseline"]: m for m in disease if m.get("baseline")}
    gate = metrics.get("gates", {}).get("disease_status", {})
    return {
        "n_train": len(train_ids), "n_test": len(test_ids),
        "genoflow_best": {"family": candidate["family"], **_auc_with_ci(candidate),
                          "cv_auc_roc": round(candidate["cv_auc_roc"], 4),
                          "cv_auc_roc_sd": round(candidate.get("cv_auc_roc_sd", float("nan")), 4)},
        "genoflow_models": {m["family"]: round(m["test_auc_roc"], 4) for m in disease if not m.get("baseline")},
        "genoflow_baselines": {name: _auc_with_ci(m) for name, m in baselines.items()},
        "gate_p_vs_baseline": gate.get("gate_p_vs_baseline"),
        "genoflow_step_wall_s": {k: v["wall_s"] for k, v in steps.items()},
        "plink2_prs": prs,
        "oracle_test_auc": round(float(roc_auc_score(labels, oracle)), 4),
    }


def _auc_with_ci(model: dict) -> dict:
    return {k: round(model[f"test_{k}"], 4) for k in ("auc_roc", "auc_roc_ci_low", "auc_roc_ci_high")
            if f"test_{k}" in model} | {"test_auc_roc": round(model["test_auc_roc"], 4)}


def _split_ids(tools: Tools, raw_ids: list[str]) -> tuple[list[str], list[str]]:
    """Raw patient ids of genoflow's own train/test split (its feature table holds pseudonyms)."""
    from genoflow.pseudonym import pseudonymise

    table = pd.read_parquet(tools.step_dir("features") / "table", columns=["pid", "split"])
    raw_of = {pseudonymise(i, tools.settings.pseudonym_key): i for i in raw_ids}
    split = dict(zip(table["pid"].map(raw_of), table["split"], strict=True))
    return ([i for i in raw_ids if split.get(i) == "train"], [i for i in raw_ids if split.get(i) == "test"])


def _oracle_score(root: Path, pheno: pd.DataFrame) -> pd.Series:
    """The simulation's expected liability: genetic value + age/sex effects (+ population shift)."""
    from genoflow.simulate import traits as sim

    truth = json.loads((root / "truth" / "truth.json").read_text())
    p = pheno.set_index("IID")
    genetic = pd.Series({i: v["genetic_value_disease"] for i, v in truth["patients"].items()})
    clinical = sim._DISEASE_AGE_EFFECT * (p["age"] - sim._AGE_MEAN) + sim._DISEASE_MALE_EFFECT * p["male"]
    shift = pd.Series(0.0, index=p.index)
    if "populations" in truth:
        shift = pd.Series({i: truth["population_shift"][pop] for i, pop in truth["populations"].items()})
    return genetic.loc[p.index] + clinical + shift.loc[p.index]


def _scaling_cohort(n: int, length: int) -> tuple[str, dict]:
    return f"ooa-{n}x{length / 1e6:g}Mb", {"kind": "ooa", "n_patients": n, "sequence_length": length}


def run_scaling(preset: str, work: Path, driver_memory: str, save=None) -> list[dict]:
    """genoflow and plink2 (ingest, + association in "large") at each (patients, length) point and core count."""
    rows = []
    save = save or (lambda rows: None)
    for n, length in SCALING[preset]["points"]:
        name, spec = _scaling_cohort(n, length)
        root = cohort_dir(work, name, spec)
        summary = cohort_summary(root)
        genotypes = n * summary["n_variants"]
        pheno = clinical_table(root)
        cores_list, with_assoc = SCALING[preset]["cores"], SCALING[preset]["assoc"]
        hwe = COHORTS["ooa"]["min_hwe_p"]
        if with_assoc:  # the association scan reads a preprocess output: one, at the most cores, serves all
            Tools(root, work / "runs" / name / "preprocess", max(cores_list), None, driver_memory,
                  hwe).genoflow_preprocess()
        for cores in cores_list:
            say(f"scaling {name} on {cores} core(s)")
            tools = Tools(root, work / "runs" / name / f"c{cores}", cores, None, driver_memory, hwe)
            row = {"cohort": name, "n_samples": n, "n_variants": summary["n_variants"], "cores": cores}
            ingest = tools.genoflow_ingest()
            row["genoflow_ingest_s"], row["genoflow_ingest_cpu_s"] = ingest["wall_s"], ingest["cpu_s"]
            row["plink_ingest_s"] = tools.plink_ingest()["wall_s"]
            if with_assoc:
                row["genoflow_assoc_s"] = tools.genoflow_assoc()["wall_s"]
                row["plink_glm_s"] = tools.plink_assoc(pheno)["wall_s"]
            row["genoflow_ingest_gt_per_s"] = round(genotypes / row["genoflow_ingest_s"])
            rows.append(row)
            save(rows)
    return rows


# --------------------------------------------------------------------------- report


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "logical_cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def tool_versions(hail_python: str | None) -> dict:
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unavailable"

    versions = {"plink2": first_line(["plink2", "--version"]), "plink1.9": first_line(["plink1.9", "--version"]),
                "bcftools": first_line(["bcftools", "--version"])}
    if hail_python:
        versions["hail"] = first_line([hail_python, "-c", "import hail, pyspark; print('hail', hail.__version__, "
                                       "'/ pyspark', pyspark.__version__)"])
    import pyspark

    versions["genoflow spark"] = f"pyspark {pyspark.__version__}"
    return versions


def warm_kernels() -> None:
    """Compile genoflow's numba kernels into their on-disk cache before anything is timed.

    A kernel compiles once per machine and source version (seconds), then every process loads it.
    After a change to a kernel, the first cohort timed would otherwise pay the compilation in each
    Spark worker, in its fixed cost. Runs the VCF decoder, variant QC and the logistic scan on small
    blocks of the types the jobs pass.
    """
    import pyarrow as pa

    from genoflow.genotypes import dosage_matrix
    from genoflow.io.vcf import decode_vcf_block
    from genoflow.qc.variant_qc import variant_qc
    from genoflow.stats.glm import glm_block, prepare_glm

    rng = np.random.default_rng(0)
    calls = rng.integers(0, 2, size=(8, 40, 2))
    lines = ["\t".join(["1", str(100 + i), ".", "A", "G", ".", "PASS", ".", "GT",
                         *(f"{a}|{b}" for a, b in row)]) for i, row in enumerate(calls)]
    table = decode_vcf_block(pa.array(lines, type=pa.large_string()), n_samples=40, source="warm-up",
                             first_line_number=1, with_line_numbers=True, with_call_stats=True).table
    variant_qc(dosage_matrix(table.column("dosages"), 40))
    y = rng.integers(0, 2, size=200).astype(float)
    glm_block(prepare_glm(y, rng.normal(size=(200, 2)), family="logistic"),
              rng.integers(-1, 3, size=(16, 200)).astype(np.int8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", default="demo,ooa", help=f"comma-separated, of {sorted(COHORTS)}")
    parser.add_argument("--quality", default="demo,ooa", help="cohorts whose model quality is measured too")
    parser.add_argument("--scaling", default="small", choices=[*SCALING, "none"])
    parser.add_argument("--cores", type=int, default=2, help="local[N] / --threads N for every tool")
    parser.add_argument("--driver-memory", default="4g", help="Spark driver memory (genoflow and Hail)")
    parser.add_argument("--hail-python", default=None, help="python of Hail's virtual environment (none: no Hail)")
    parser.add_argument("--work", type=Path, default=REPO / ".genoflow" / "bench")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--benchmarks-md", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--generate-only", action="store_true", help="simulate the cohorts and stop")
    parser.add_argument("--parts", default="ingest,assoc", help="of ingest, assoc (--quality adds model quality)")
    parser.add_argument("--merge", type=Path, action="append", default=[],
                        help="also take the cohort parts (ingest, assoc, quality) of this results file")
    parser.add_argument("--render-only", action="store_true", help="rewrite BENCHMARKS.md from the results")
    parser.add_argument("--fresh", action="store_true",
                        help="drop earlier results (default: keep the rows of cohorts not run now)")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    names = [n for n in args.cohorts.split(",") if n]
    unknown = sorted(set(names) - set(COHORTS))
    if unknown:
        parser.error(f"--cohorts: unknown {unknown}; choose from {sorted(COHORTS)}")
    for tool in ("plink2", "plink1.9", "bcftools"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not on PATH: run `make bench-deps` (Debian packages)")

    if args.render_only or args.merge:
        results = _previous(args.results)
        for other in args.merge:
            _merge(results, json.loads(other.read_text()))
        _save(results, args)
        return 0
    roots = {name: cohort_dir(args.work, name, COHORTS[name]) for name in names}
    if args.generate_only:
        if args.scaling != "none":
            for n, length in SCALING[args.scaling]["points"]:
                cohort_dir(args.work, *_scaling_cohort(n, length))
        return 0
    warm_kernels()
    results = _previous(args.results) if not args.fresh else {"cohorts": {}}
    results.update(machine=machine(), versions=tool_versions(args.hail_python))
    quality = set(args.quality.split(","))
    for name, root in roots.items():
        with _stamped() as stamp:
            def save(partial, stamp=stamp, name=name):
                _merge(results, {"cohorts": {name: {**partial, **stamp, "finished": _now(),
                                                    "load_average": [stamp["load_average"][0], _load()]}}})
                _save(results, args)

            result = run_cohort(name, root, args.work / "runs" / name, args.cores, args.hail_python,
                                name in quality, args.driver_memory, frozenset(args.parts.split(",")), save)
        _merge(results, {"cohorts": {name: {**result, **stamp}}})
        _save(results, args)
    if args.scaling != "none":
        with _stamped() as stamp:
            def save_rows(rows, stamp=stamp):
                results["scaling"] = {"preset": args.scaling, "rows": rows, **stamp, "finished": _now(),
                                      "load_average": [stamp["load_average"][0], _load()]}
                _save(results, args)

            rows = run_scaling(args.scaling, args.work, args.driver_memory, save_rows)
        results["scaling"] = {"preset": args.scaling, "rows": rows, **stamp}
        _save(results, args)
    say(f"results: {args.results}; tables: {args.benchmarks_md}")
    return 0


def _previous(path: Path) -> dict:
    """Earlier results, so a run of some cohorts keeps the others' rows (each row says when it ran)."""
    if path.exists():
        previous = json.loads(path.read_text())
        if isinstance(previous.get("cohorts"), dict):
            return previous
    return {"cohorts": {}}


def _merge(results: dict, other: dict) -> None:
    """Cohort by cohort, the parts ``other`` measured replace ours (each part keeps its run stamp)."""
    for name, entry in other.get("cohorts", {}).items():
        stamp = {k: entry[k] for k in ("started", "finished", "load_average") if k in entry}
        mine = results["cohorts"].setdefault(name, {k: v for k, v in entry.items()
                                                    if k not in ("ingest", "assoc", "quality")})
        mine.setdefault("ingest", {})
        mine.setdefault("assoc", {})
        for part in ("ingest", "assoc"):
            for label, row in entry.get(part, {}).items():
                mine[part][label] = {**row, **stamp}
        if entry.get("quality"):
            mine["quality"] = {**entry["quality"], **stamp}
    for key in ("machine", "scaling"):
        if key in other:
            results[key] = other[key]
    results["versions"] = {**results.get("versions", {}), **other.get("versions", {})}


@contextlib.contextmanager
def _stamped():
    stamp = {"started": _now(), "load_average": [_load(), None]}
    yield stamp
    stamp["finished"] = _now()
    stamp["load_average"][1] = _load()


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _save(results: dict, args) -> None:
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    write_benchmarks_md(render(results, COHORTS), args.benchmarks_md)


if __name__ == "__main__":
    sys.exit(main())

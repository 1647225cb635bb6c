"""The data scientist's loop (issue 17): the demo DAG run as ``make demo`` runs it, every step recomputed,
against the same work done by plink2 + scikit-learn on the same files (`make bench-demo`).

- The DAG: ``airflow dags test genomic_risk_training`` on the demo cohort (``data/raw``, ``make
  demo-data``), with a fresh storage root (so every step computes), its own MLflow store and
  Airflow home under ``.genoflow/bench/demo-loop/``. From the task log: each task's wall, its
  ``execute()`` (the work the operator does; for Spark tasks the spark-submit process and what the
  operator does before it), the spark-submit process wall, and the step's own
  ``committed ... in N s``.
- Ratios: (a) the DAG wall (the whole ``airflow dags test`` process); (b) orchestration overhead:
  DAG wall / the sum of the tasks' ``execute()``; also DAG wall / the sum of the steps' committed
  work (what each Spark step spends past its fixed cost); (c) DAG wall / the peers' wall on the same
  files: ``plink2 --make-pgen``, ``--glm`` and ``--pca`` (as bench/genomics.py runs them, same QC)
  and scikit-learn's six grid searches (the train step's targets x model families, its grid, 3-fold
  CV) on the features step's table.
- The per-task fixed cost: a preprocess whose output is committed (session, params, storage check,
  exit), spark-submitted as the operator submits it, timed as a process tree (wall and CPU);
  ``--variant`` adds Spark conf variants to alternate with (e.g. ``ui-on:spark.ui.enabled=true``).

Results: bench/results/demo_loop.json and BENCHMARKS.md's "Demo DAG loop" block. Not a test.

    python bench/demo_loop.py                       # everything (about 5 min on 2 cores)
    python bench/demo_loop.py --only fixed-cost --runs 4 --variant ui-on:spark.ui.enabled=true
    python bench/demo_loop.py --render-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import psutil
from genomics import REPO, BenchError, Tools, clinical_table, machine, measure, say
from render import write_benchmarks_md

RESULTS = REPO / "bench" / "results" / "demo_loop.json"
WORK = REPO / ".genoflow" / "bench" / "demo-loop"
DEMO_RAW = REPO / "data" / "raw"
DAG_ID = "genomic_risk_training"
MARKS = ("<!-- demo-loop-bench:start (written by bench/demo_loop.py) -->", "<!-- demo-loop-bench:end -->")
HEADING = "## Demo DAG loop (issue 17, bench/demo_loop.py)"
TARGETS = {"dag_wall_s": 120, "orchestration_overhead": 1.15, "fixed_cost_cpu_s": 3.0}
PCS = 10  # features.pca_components of params.yaml


# --------------------------------------------------------------------------- the DAG


def dag_env(work: Path, root: Path) -> dict:
    """`make demo`'s environment (the Makefile's exports), with this run's storage root, MLflow and Airflow home."""
    python = sys.executable
    env = dict(os.environ)
    env.update(GENOFLOW_HOME=str(REPO), AIRFLOW_HOME=str(work / "airflow"),
               AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"), AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="False",
               AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type":"spark","host":"local[*]"}',
               PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python, SPARK_LOCAL_IP="127.0.0.1",
               PATH=os.pathsep.join([str(Path(python).parent), env.get("PATH", "")]),
               GENOFLOW_ALLOW_DEMO_KEY="1",  # the simulated demo cohort (decision 0018)
               GENOFLOW_STORAGE_ROOT=root.as_uri(),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               GENOFLOW_ARTIFACT_ROOT=(work / "mlartifacts").as_uri())
    return env


def fresh_root(work: Path) -> Path:
    """A storage root holding a copy of the demo cohort and no step outputs: every step computes."""
    if not (DEMO_RAW / "cohort.vcf.gz").exists():
        raise BenchError(f"{DEMO_RAW}/cohort.vcf.gz does not exist: run `make demo-data` first")
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(DEMO_RAW, root / "raw")
    return root


def run_dag(work: Path, root: Path) -> dict:
    env = dag_env(work, root)
    if not (work / "airflow" / "airflow.db").exists():
        say("airflow db migrate (once, for the bench's Airflow home)")
        subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    log = work / "logs" / "dag.log"
    say(f"airflow dags test {DAG_ID} (storage root {root})")
    with StepCpu(root.as_uri()) as step_cpu:
        process = measure(["airflow", "dags", "test", DAG_ID], log, env)
    tasks = parse_task_log(log.read_text(errors="replace"))
    for task in tasks:
        task["cpu_s"] = step_cpu.cpu_s.get(STEP_OF_TASK.get(task["task"], ""))
    return {"process": process, "tasks": tasks}


STEP_OF_TASK = {"align_reads": "align", "call_genotypes": "call", "preprocess_cohort": "preprocess",
                "build_features": "features", "train_models": "train", "evaluate_models": "evaluate",
                "build_report": "report"}


class StepCpu(threading.Thread):
    """CPU s of each Spark step's process tree (the SparkSubmit JVM, the Python driver, the worker daemon
    and the workers it forks), sampled every 0.3 s while the DAG runs: on a shared machine the steadier
    number than wall. A step's spark-submit is found by this run's storage root in its command line."""

    def __init__(self, root_uri: str):
        super().__init__(daemon=True)
        self.root_uri, self.cpu_s, self._seen, self._done = root_uri, {}, {}, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.3):
            for proc in psutil.process_iter(["cmdline"]):
                cmdline = proc.info["cmdline"] or []
                step = next((Path(a).stem for a in cmdline if a.startswith(str(REPO / "jobs"))), None)
                if step and self.root_uri in cmdline and proc.name() == "java":
                    self._sample(step, proc)

    def _sample(self, step: str, proc: psutil.Process) -> None:
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return
        for p in tree:
            try:
                times = p.cpu_times()
                self._seen.setdefault(step, {})[p.pid] = times.user + times.system
            except psutil.Error:
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
        self.cpu_s = {step: round(sum(pids.values()), 1) for step, pids in self._seen.items()}


_TS = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z"
_EVENTS = {
    "start": re.compile(_TS + r".*\[DAG TEST\] starting task_id=(\S+)"),
    "end": re.compile(_TS + r".*\[DAG TEST\] end task task_id=(\S+)"),
    "pre_end": re.compile(_TS + r".*::endgroup::"),
    "submit": re.compile(_TS + r".*Spark-Submit cmd:"),
    "post": re.compile(_TS + r".*::group::Post Execute"),
    "committed": re.compile(_TS + r".*genoflow: (\w+) committed \S+ in ([\d.]+) s"),
}


def parse_task_log(text: str) -> list[dict]:
    """Per task, from ``airflow dags test``'s log: wall (start to end), execute() (pre-execute's end to
    post-execute), the spark-submit process (its command line to post-execute), the step's committed work."""
    tasks, current = [], None
    for line in text.splitlines():
        for kind, pattern in _EVENTS.items():
            match = pattern.match(line)
            if not match:
                continue
            at = dt.datetime.fromisoformat(match.group(1)).timestamp()
            if kind == "start":
                current = {"task": match.group(2), "start": at}
                tasks.append(current)
            elif current is None:
                continue
            elif kind == "pre_end" and "execute_start" not in current:
                current["execute_start"] = at
            elif kind == "submit":
                current["submit_start"] = at
            elif kind == "post":
                current["execute_end"] = at
            elif kind == "committed":
                current["committed_s"] = float(match.group(3))
            elif kind == "end":
                current["end"] = at
            break
    return [_task_times(t) for t in tasks]


def _task_times(t: dict) -> dict:
    def span(a: str, b: str) -> float | None:
        return round(t[b] - t[a], 2) if a in t and b in t else None

    return {"task": t["task"], "wall_s": span("start", "end"), "execute_s": span("execute_start", "execute_end"),
            "spark_submit_s": span("submit_start", "execute_end"), "committed_s": t.get("committed_s")}


# --------------------------------------------------------------------------- the peers


def run_peers(root: Path, work: Path, cores: int) -> dict:
    """plink2 (make-pgen, glm, pca) on the cohort's VCF and scikit-learn on the DAG's features table."""
    tools = Tools(root, work / "peers", cores, hail_python=None, driver_memory="2g")
    say("plink2 --make-pgen, --glm, --pca")
    peers = {"plink2 --make-pgen": tools.plink_ingest(), "plink2 --glm": tools.plink_assoc(clinical_table(root))}
    argv = ["plink2", "--pfile", str(tools.work / "plink" / "cohort"), *tools.plink_qc, "--pca", str(PCS),
            "--threads", str(cores), "--out", str(tools.work / "plink" / "pca")]
    peers["plink2 --pca"] = measure(argv, tools.work / "logs" / "plink_pca.log")
    (features,) = (root / "steps" / "features").iterdir()
    say("scikit-learn: the train step's six grid searches on the features table")
    peers["scikit-learn grid searches"] = measure(
        [sys.executable, __file__, "--sklearn", str(features), "--cores", str(cores)],
        tools.work / "logs" / "sklearn.log")
    return peers


def sklearn_grid_searches(features: Path, cores: int) -> dict:
    """The train step's grid searches in scikit-learn: each target x model family, params.yaml's grid
    mapped to the same hyperparameters, 3-fold stratified CV on the training patients, AUC, refit;
    held-out AUC for a sanity check. Printed as a ``BENCH`` line."""
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from genoflow.config import load_params

    train = load_params(REPO / "params.yaml")["train"]
    grid = train["grid"]
    families = {  # MLlib's names -> scikit-learn's (regParam is a penalty, C its inverse)
        "logistic_regression": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                                {"logisticregression__C": [1 / r for r in grid["logistic_regression"]["regParam"]]}),
        "random_forest": (RandomForestClassifier(random_state=train["seed"]),
                          {"n_estimators": grid["random_forest"]["numTrees"],
                           "max_depth": grid["random_forest"]["maxDepth"]}),
        "gbt": (GradientBoostingClassifier(random_state=train["seed"]),
                {"n_estimators": grid["gbt"]["maxIter"], "max_depth": grid["gbt"]["maxDepth"]}),
    }
    table = pd.read_parquet(features / "table")
    meta = json.loads((features / "features.json").read_text())
    results = []
    for target, spec in meta["targets"].items():
        rows = table.dropna(subset=[target])
        fit, test = rows[rows["split"] == "train"], rows[rows["split"] == "test"]
        for family in train["models"]:
            estimator, param_grid = families[family]
            search = GridSearchCV(estimator, param_grid, scoring="roc_auc", n_jobs=cores, refit=True,
                                  cv=StratifiedKFold(train["cv_folds"], shuffle=True, random_state=train["seed"]))
            search.fit(fit[spec["features"]].to_numpy(), fit[target].to_numpy())
            auc = roc_auc_score(test[target], search.predict_proba(test[spec["features"]].to_numpy())[:, 1])
            results.append({"target": target, "family": family, "cv_auc": round(search.best_score_, 3),
                            "test_auc": round(auc, 3)})
    return {"models": results}


# --------------------------------------------------------------------------- the per-task fixed cost


def fixed_cost(root: Path, work: Path, runs: int, variants: dict[str, dict]) -> dict:
    """A preprocess whose output is committed, spark-submitted as GenoflowSparkSubmitOperator does
    (spark_conf with the run's params, the connection's local[*], and so no py-files zip: a local
    master's jobs import the installed genoflow, decision 0036), ``runs`` times per variant, variants
    alternating; medians and ranges of wall and CPU s."""
    from genoflow.config import Settings
    from genoflow.spark_submit import spark_conf

    (committed,) = (root / "steps" / "preprocess").iterdir()
    inputs = json.loads((committed / "inputs.json").read_text())
    settings = Settings({**os.environ, "GENOFLOW_HOME": str(REPO)})
    env = dag_env(work, root)
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(runs):
        for name, extra in variants.items():
            params = {**inputs["params"], "spark": {**inputs["params"].get("spark", {}), **extra}}
            resolved = spark_conf(settings, params, master="local[*]")
            conf = [x for kv in resolved.items() for x in ("--conf", "=".join(kv))]
            argv = ["spark-submit", "--master", "local[*]", *conf, str(REPO / "jobs" / "preprocess.py"),
                    "--storage-root", inputs["storage_root"], "--dataset-version", inputs["dataset_version"],
                    "--params-json", json.dumps(inputs["params"])]
            result = measure(argv, work / "logs" / f"noop-{name}-{i}.log", env)
            if "already committed" not in (work / "logs" / f"noop-{name}-{i}.log").read_text():
                raise BenchError(f"the no-op preprocess computed instead (log {work}/logs/noop-{name}-{i}.log)")
            samples[name].append(result)
            say(f"no-op preprocess [{name}] {i + 1}/{runs}: {result['wall_s']} s wall, {result['cpu_s']} s CPU")
    return {name: _summary(rows) for name, rows in samples.items()}


def _summary(rows: list[dict]) -> dict:
    out = {"runs": len(rows)}
    for key in ("wall_s", "cpu_s"):
        values = [r[key] for r in rows]
        out[key] = {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}
    return out


# --------------------------------------------------------------------------- report


def ratios(dag: dict, peers: dict | None) -> dict:
    wall = dag["process"]["wall_s"]
    tasks = dag["tasks"]
    execute = sum(t["execute_s"] or 0 for t in tasks)
    committed = sum(t["committed_s"] or 0 for t in tasks)
    out = {"dag_wall_s": wall, "sum_execute_s": round(execute, 1), "sum_committed_s": round(committed, 1),
           "orchestration_overhead": round(wall / execute, 2) if execute else None,
           # spark-submit's wall past the step's committed work: the task's fixed cost (and what a step
           # does after committing, e.g. report's MLflow logging)
           "spark_task_past_work_s": _median([t["spark_submit_s"] - t["committed_s"] for t in tasks
                                              if t["spark_submit_s"] and t["committed_s"]]),
           "over_committed_work": round(wall / committed, 2) if committed else None}
    if peers:
        peer_wall, peer_cpu = (sum(p[key] for p in peers.values()) for key in ("wall_s", "cpu_s"))
        out.update(peers_wall_s=round(peer_wall, 1), over_peers=round(wall / peer_wall, 1),
                   dag_cpu_s=dag["process"]["cpu_s"], peers_cpu_s=round(peer_cpu, 1),
                   over_peers_cpu=round(dag["process"]["cpu_s"] / peer_cpu, 1))
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def render(results: dict) -> str:
    run = results["run"]
    dag, r = run["dag"], run["ratios"]
    wall = r["dag_wall_s"]
    load = run["load_average"]
    out = [f"Measured {run['finished']} UTC at commit {run['commit']}, 2 cores (local[*]), load average "
           f"{load[0]} at the start, {load[1]} at the end (1-minute; the machine is shared, so walls are noisy). "
           f"DAG: `airflow dags test {DAG_ID}` on the demo cohort, a fresh storage root (every step computes).", "",
           "| task | wall | share of DAG wall | execute() | spark-submit process | step's committed work | "
           "step's CPU |", "|---|---|---|---|---|---|---|"]
    for t in dag["tasks"]:
        out.append(f"| {t['task']} | {_s(t['wall_s'])} | {_pct(t['wall_s'], wall)} | {_s(t['execute_s'])} | "
                   f"{_s(t['spark_submit_s'])} | {_s(t['committed_s'])} | {_s(t.get('cpu_s'))} |")
    out += [f"| **DAG (`airflow dags test` process)** | **{_s(wall)}** | 100 % | {_s(r['sum_execute_s'])} | | "
            f"{_s(r['sum_committed_s'])} | {_s(dag['process']['cpu_s'])} |", "",
            "| ratio | value | target |", "|---|---|---|",
            f"| (a) DAG wall | {_s(wall)} | <= {TARGETS['dag_wall_s']} s |",
            f"| (b) orchestration overhead: DAG wall / sum of the tasks' execute() | {r['orchestration_overhead']} | "
            f"<= {TARGETS['orchestration_overhead']} |",
            f"| DAG wall / sum of the steps' committed work (adds each Spark task's fixed cost) | "
            f"{r['over_committed_work']} | |",
            f"| a Spark task's spark-submit wall past its committed work (median of the tasks) | "
            f"{_s(r.get('spark_task_past_work_s'))} | <= 3 s (fixed cost) |"]
    if "over_peers" in r:
        out.append(f"| (c) DAG wall / plink2 + scikit-learn on the same files ({_s(r['peers_wall_s'])}) | "
                   f"{r['over_peers']}x | |")
        out.append(f"| DAG CPU ({_s(r['dag_cpu_s'])}) / plink2 + scikit-learn CPU ({_s(r['peers_cpu_s'])}) | "
                   f"{r['over_peers_cpu']}x | |")
        out += ["", "| peer | wall | CPU |", "|---|---|---|"]
        out += [f"| {name} | {_s(p['wall_s'])} | {_s(p['cpu_s'])} |" for name, p in run["peers"].items()]
    if results.get("fixed_cost"):
        fc = results["fixed_cost"]
        out += ["", f"Per-task fixed cost (a committed preprocess, spark-submitted as the operator does; "
                f"{fc['measured']} UTC, load {fc['load_average'][0]}-{fc['load_average'][1]}): median wall / "
                "CPU (min-max CPU):", ""]
        out += [f"- {name}: {v['wall_s']['median']} s / {v['cpu_s']['median']} s "
                f"({v['cpu_s']['min']}-{v['cpu_s']['max']}), {v['runs']} runs" for name, v in fc["variants"].items()]
    return "\n".join(out)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def _pct(x: float | None, total: float) -> str:
    return "-" if x is None else f"{100 * x / total:.0f} %"


def _commit() -> str:
    """HEAD, and the tracked files that differ from it: the code that ran is the working tree."""
    head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--name-only"], capture_output=True, text=True)
    files = changed.stdout.split()
    return head.stdout.strip()[:80] + (f" + uncommitted changes to {', '.join(files)}" if files else "")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def _variant(text: str) -> tuple[str, dict]:
    name, _, pairs = text.partition(":")
    conf = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    if not name or not conf:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME:spark.key=value[,spark.key=value]")
    return name, conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("all", "dag", "fixed-cost"), default="all")
    parser.add_argument("--runs", type=int, default=3, help="no-op preprocess runs per variant (default 3)")
    parser.add_argument("--variant", type=_variant, action="append",
                        help="NAME:spark.key=value,... a Spark conf variant the fixed cost alternates with "
                             "(default: spark-ui-on:spark.ui.enabled=true, the default before decision 0030)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--benchmarks-md", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--sklearn", type=Path, help=argparse.SUPPRESS)  # the peer's own process
    args = parser.parse_args(argv)
    if args.sklearn:
        print("BENCH " + json.dumps(sklearn_grid_searches(args.sklearn, args.cores)), flush=True)
        return 0
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    if not args.render_only:
        args.work.mkdir(parents=True, exist_ok=True)
        root = args.work / "root"
        if args.only in ("all", "dag") or not (root / "steps" / "preprocess").exists():
            results["run"] = measure_run(args, root)
            save(results, args)
        if args.only in ("all", "fixed-cost"):
            load = [_load(), None]
            variants = {"default": {}, **dict(args.variant or [("spark-ui-on", {"spark.ui.enabled": "true"})])}
            results["fixed_cost"] = {"measured": _now(), "commit": _commit(),
                                     "variants": fixed_cost(root, args.work, args.runs, variants)}
            load[1] = _load()
            results["fixed_cost"]["load_average"] = load
    save(results, args)
    return 0


def measure_run(args, root: Path) -> dict:
    run = {"machine": machine(), "commit": _commit(), "started": _now(), "load_average": [_load(), None]}
    root = fresh_root(args.work)
    run["dag"] = run_dag(args.work, root)
    run["peers"] = run_peers(root, args.work, args.cores) if args.only == "all" else None
    run["load_average"][1] = _load()
    run["finished"] = _now()
    run["ratios"] = ratios(run["dag"], run["peers"])
    return run


def save(results: dict, args) -> None:
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    if "run" in results:
        write_benchmarks_md(render(results), args.benchmarks_md, marks=MARKS, heading=HEADING)


if __name__ == "__main__":
    sys.exit(main())

"""Fault injection: each fault lands while a step runs, the step still commits, and what it commits is
row for row the output of an undisturbed run.

Real components only: a Spark standalone master with two workers (one core each), an HDFS with two
DataNodes and replication 2, jobs submitted as the training DAG submits them (spark-submit
jobs/<step>.py with the DAG's conf and the library zip, a worker Python without genoflow). Every
run writes under its own storage root with the same dataset version and params, so its step
folders have the same keys as the undisturbed run's and their contents compare one to one.

A fault is injected when the run is seen doing the work it should disturb (the driver's REST API
shows an executor running tasks; the step's temporary folder is being written), never after a
fixed sleep, and each test asserts that the fault landed: the killed process existed and died, and
Spark's event log records the lost executor.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genoflow.config import Settings, load_params
from genoflow.pipeline.runner import step_uri
from genoflow.spark_submit import spark_conf
from tests.conftest import REPO
from tests.services import HOST, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# features kept to what the next step after preprocess needs to read and write (CI time): no clinical
# covariates (40 patients can be separated by them), no read QC, PCA, polygenic or burden features.
PARAMS = load_params(REPO / "params.yaml", {"features": {
    "top_k": 5, "covariates": [], "read_qc": [], "pca_components": 0, "pca_covariates": 0, "prs_thresholds": [],
    "burden_top_k": 0}})
VERSION = "fault-tests-v1"
WAIT_S = 240  # longest wait for a run to reach the state a fault needs (a slow CI machine)


@pytest.fixture(scope="module")
def fault_hdfs(tmp_path_factory):
    from tests.services.hdfs import running_hdfs

    with running_hdfs(tmp_path_factory.mktemp("fault-hdfs"), datanodes=2, replication=2) as service:
        yield service


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory):
    """Two workers of one core each: the job's two executors run on different workers."""
    from tests.services.spark import running_spark_cluster

    with running_spark_cluster(tmp_path_factory.mktemp("fault-spark"), workers=2, cores=1, memory="1g") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def submitter(tmp_path_factory, fault_hdfs, fault_cluster):
    """Lands a tiny cohort on the HDFS; returns a :class:`Submitter` that runs steps on the cluster."""
    from genoflow.packaging import build_py_files
    from genoflow.simulate import make_demo_cohort
    from tests.services.spark import worker_python

    cohort = tmp_path_factory.mktemp("fault-cohort")
    make_demo_cohort(cohort, n_patients=40, sequence_length=100_000, seed=5, n_causal=5, reads_per_patient=10)
    fault_hdfs.dfs("-put", "-t", "4", str(cohort / "raw"), "/cohort-raw")
    work = tmp_path_factory.mktemp("fault-runs")
    return Submitter(fault_hdfs, fault_cluster, library=build_py_files(work / "py-files"),
                     worker_python=worker_python(work / "worker-python"), work=work)


@dataclass
class Run:
    """One spark-submit of one step: its process (own process group), driver UI port and event log folder."""

    step: str
    root: str
    process: subprocess.Popen
    ui_port: int
    event_dir: Path
    log: Path

    def wait(self, timeout: float = 600) -> int:
        return self.process.wait(timeout=timeout)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def events(self) -> list[dict]:
        """Spark's event log of this run (JSON lines; ``.inprogress`` when the driver was killed)."""
        files = list(self.event_dir.iterdir())
        assert len(files) == 1, files
        return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]

    def driver_api(self, path: str) -> list | dict | None:
        """The driver's REST API (/api/v1/applications/<app><path>); None while it does not answer."""
        base = f"http://{HOST}:{self.ui_port}/api/v1/applications"
        try:
            with urllib.request.urlopen(base, timeout=5) as resp:
                apps = json.load(resp)
            if not apps:
                return None
            with urllib.request.urlopen(f"{base}/{apps[0]['id']}{path}", timeout=5) as resp:
                return json.load(resp)
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None


@dataclass
class Submitter:
    hdfs: object
    cluster: object
    library: Path
    worker_python: Path
    work: Path
    runs: list = field(default_factory=list)

    def root(self, name: str) -> str:
        """A fresh storage root holding its own copy of the cohort."""
        self.hdfs.dfs("-mkdir", "-p", f"/{name}")
        self.hdfs.dfs("-cp", "/cohort-raw", f"/{name}/raw")
        return f"{self.hdfs.uri}/{name}"

    def start(self, step: str, root: str, env: dict[str, str] | None = None) -> Run:
        """spark-submit jobs/<step>.py as the DAG's task does (its conf, the library zip), in its own process group."""
        number = len(self.runs)
        ui_port, event_dir, log = free_port(), self.work / f"events-{number}", self.work / f"run-{number}.log"
        event_dir.mkdir()
        conf = {**spark_conf(Settings(), PARAMS), "spark.executor.memory": "512m", "spark.driver.memory": "1g",
                # Observation only: the driver's REST API to see tasks running, the event log to see what Spark did.
                "spark.ui.port": str(ui_port), "spark.ui.enabled": "true", "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": event_dir.as_uri(), "spark.eventLog.rolling.enabled": "false",
                "spark.eventLog.compress": "false", "spark.hadoop.dfs.replication": "2"}
        command = ["spark-submit", "--master", self.cluster.master_url, "--name", f"genoflow-{step}",
                   "--py-files", str(self.library),
                   *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
                   str(REPO / "jobs" / f"{step}.py"), "--storage-root", root, "--dataset-version", VERSION,
                   "--params-json", json.dumps(PARAMS)]
        process_env = {**os.environ, "PYSPARK_PYTHON": str(self.worker_python), "PYSPARK_DRIVER_PYTHON": sys.executable,
                       "SPARK_LOCAL_IP": HOST, "HADOOP_CONF_DIR": str(self.hdfs.conf_dir), **(env or {})}
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=self.work, env=process_env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        run = Run(step, root, process, ui_port, event_dir, log)
        self.runs.append(run)
        return run

    def run(self, step: str, root: str, env: dict[str, str] | None = None) -> Run:
        run = self.start(step, root, env)
        assert run.wait() == 0, run.log_tail()
        return run


# --- what a run committed ---------------------------------------------------------------------------

def committed_content(spark, root: str, step: str, named_root: str | None = None) -> dict[str, str]:
    """A digest per table or file of the step's committed folder: tables by their rows (order-free),
    other files by their bytes, JSON with the storage root its inputs were read under (``named_root``,
    default ``root``) taken out."""
    from genoflow.storage import HadoopStorage

    folder = step_uri(root, step, VERSION, PARAMS)
    storage = HadoopStorage(spark, root)
    assert storage.is_committed(folder), f"{folder} is not committed"
    content = {}
    pending = [""]
    while pending:
        relative = pending.pop()
        uri = f"{folder}/{relative}".rstrip("/")
        names = [n for n in storage.list(uri) if n != "_SUCCESS"]
        if relative and any(n.endswith(".parquet") for n in names):
            content[relative] = table_digest(spark, uri)
            continue
        for name in names:
            child = f"{relative}/{name}".lstrip("/")
            if storage._fs(f"{uri}/{name}").getFileStatus(storage._path(f"{uri}/{name}")).isDirectory():
                pending.append(child)
            else:
                content[child] = file_digest(name, storage.read_bytes(f"{uri}/{name}"), named_root or root)
    return content


def file_digest(name: str, data: bytes, root: str) -> str:
    """SHA-256 of a file's bytes (a plot); of a JSON file's document with the run's storage root replaced
    (runs differ there by design) and without the seconds a step took (inputs.json)."""
    if not name.endswith(".json"):
        return hashlib.sha256(data).hexdigest()
    document = json.loads(data.decode().replace(root, "<root>"))
    if isinstance(document, dict):
        document.pop("seconds", None)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def table_digest(spark, uri: str) -> str:
    """SHA-256 of a Parquet table's schema and its sorted row hashes: equal iff the same rows."""
    from pyspark.sql import functions as F

    table = spark.read.parquet(uri)
    rows = table.select(F.sha2(F.to_json(F.struct(*table.columns)), 256).alias("h")).collect()
    digest = hashlib.sha256(table.schema.simpleString().encode())
    for row_hash in sorted(r.h for r in rows):
        digest.update(row_hash.encode())
    return f"{len(rows)} rows {digest.hexdigest()}"


@pytest.fixture(scope="module")
def undisturbed(submitter, spark) -> dict:
    """preprocess then features with no fault: their committed contents and wall times."""
    root = submitter.root("undisturbed")
    seconds = {}
    for step in ("preprocess", "features"):
        started = time.monotonic()
        submitter.run(step, root)
        seconds[step] = time.monotonic() - started
    return {"content": {step: committed_content(spark, root, step) for step in seconds}, "seconds": seconds}


# --- seeing a run at work, and processes ------------------------------------------------------------

def wait_for(what: str, condition, run: Run | None, timeout: float = WAIT_S):
    """Poll ``condition()`` until it returns something truthy; fail if ``run`` ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert run is None or run.process.poll() is None, f"the {run.step} run ended before {what}:\n{run.log_tail()}"
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout:.0f} s:\n{run.log_tail() if run else ''}")


def busy_executors(run: Run) -> list[str]:
    """Ids of the executors (not the driver) running tasks now."""
    executors = run.driver_api("/executors") or []
    return [e["id"] for e in executors if e["id"] != "driver" and e["activeTasks"] > 0]


def temp_folders(hdfs, root: str, step: str) -> list[dict]:
    """The step's temporary output folders (``<key>.tmp-<attempt>``) with their entries so far."""
    parent = step_uri(root, step, VERSION, PARAMS).split("://", 1)[1].split("/", 1)[1]
    try:
        listing = hdfs.webhdfs(f"/{parent.rsplit('/', 1)[0]}", "LISTSTATUS")["FileStatuses"]["FileStatus"]
    except urllib.error.HTTPError:  # the step folder does not exist yet
        return []
    folders = []
    for status in listing:
        if ".tmp-" in status["pathSuffix"]:
            path = f"/{parent.rsplit('/', 1)[0]}/{status['pathSuffix']}"
            entries = hdfs.webhdfs(path, "LISTSTATUS")["FileStatuses"]["FileStatus"]
            folders.append({"name": status["pathSuffix"], "entries": [e["pathSuffix"] for e in entries]})
    return folders


def committed(hdfs, root: str, step: str) -> bool:
    """Whether the step's output is committed (its folder's success marker), asked by WebHDFS."""
    folder = step_uri(root, step, VERSION, PARAMS).split("://", 1)[1].split("/", 1)[1]
    try:
        hdfs.webhdfs(f"/{folder}/_SUCCESS")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise
    return True


def writing_output(hdfs, root: str, step: str) -> list[dict]:
    """The step's temporary folders once one has a table in it (the step is writing its output)."""
    folders = temp_folders(hdfs, root, step)
    return folders if any(f["entries"] for f in folders) else []


def processes(marker: str, *more: str) -> dict[int, list[str]]:
    """{pid: command line} of the processes whose command line holds every given string."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(any(text in arg for arg in argv) for text in (marker, *more)):
            found[int(proc.name)] = argv
    return found


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill_and_confirm(pid: int, timeout: float = 30) -> None:
    """SIGKILL ``pid`` and wait until it is gone (or a zombie: dead, not yet reaped by its parent)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still runs {timeout:.0f} s after SIGKILL")


def executor_pid(run: Run, executor_id: str) -> int:
    app = run.driver_api("")
    found = processes("CoarseGrainedExecutorBackend", app["id"])
    pids = [pid for pid, argv in found.items() if argv[argv.index("--executor-id") + 1] == executor_id]
    assert len(pids) == 1, (executor_id, found)
    return pids[0]


def removed_executors(events: list[dict]) -> set[str]:
    return {e["Executor ID"] for e in events if e["Event"] == "SparkListenerExecutorRemoved"}


def executors_added(events: list[dict]) -> int:
    return sum(1 for e in events if e["Event"] == "SparkListenerExecutorAdded")


def failed_tasks(events: list[dict]) -> list[str]:
    return [e["Task End Reason"]["Reason"] for e in events
            if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] != "Success"]


def app_id(events: list[dict]) -> str:
    return next(e["App ID"] for e in events if e["Event"] == "SparkListenerApplicationStart")


def record(fault: str, recovered_by: str, seconds: float, undisturbed_seconds: float, **observed) -> None:
    """One row of BENCHMARKS.md's fault table, printed (``pytest -s``): wall time beyond the undisturbed run's."""
    row = {"recovered by": recovered_by, "extra s": round(seconds - undisturbed_seconds, 1), **observed}
    print(f"FAULT {fault}: {row}")


# --- the faults ---------------------------------------------------------------------------------------

def test_executor_killed_mid_step__spark_reruns_its_tasks_same_rows(submitter, undisturbed, spark):
    root = submitter.root("executor-killed")
    started = time.monotonic()
    run = submitter.start("preprocess", root)
    victim = wait_for("an executor running tasks", lambda: busy_executors(run), run)[0]
    pid = executor_pid(run, victim)
    kill_and_confirm(pid)
    assert run.wait() == 0, run.log_tail()
    seconds = time.monotonic() - started

    events = run.events()
    assert victim in removed_executors(events)
    assert "ExecutorLostFailure" in failed_tasks(events)  # its running task failed and was run again
    assert executors_added(events) > 2  # the master started a replacement
    assert committed_content(spark, root, "preprocess") == undisturbed["content"]["preprocess"]
    record("executor SIGKILLed mid-step", "Spark: lost executor's tasks rerun, standalone master starts a new one",
           seconds, undisturbed["seconds"]["preprocess"], failed_tasks=len(failed_tasks(events)))


def test_worker_killed_mid_step__the_other_worker_finishes_same_rows(submitter, fault_cluster, undisturbed, spark):
    root = submitter.root("worker-killed")
    started = time.monotonic()
    run = submitter.start("preprocess", root)
    extra = fault_cluster.extra_workers[-1]

    def busy_on_extra_worker() -> dict[int, str]:
        """{pid: executor id} of the executors the second worker runs, once one of them runs tasks."""
        app, busy = run.driver_api(""), busy_executors(run)
        if not app or not busy:
            return {}
        mine = {pid: argv[argv.index("--executor-id") + 1]
                for pid, argv in processes("CoarseGrainedExecutorBackend", app["id"]).items()
                if parent_pid(pid) == extra.pid}
        return mine if set(mine.values()) & set(busy) else {}

    executors = wait_for("an executor of the second worker running tasks", busy_on_extra_worker, run)
    try:
        kill_and_confirm(extra.pid)  # the worker daemon and its executors: a machine gone
        for pid in executors:
            kill_and_confirm(pid)
        extra.wait()
        assert run.wait() == 0, run.log_tail()
        seconds = time.monotonic() - started
    finally:
        # Two workers again for the next test, once the master has dropped the dead one.
        wait_for("the master to drop the killed worker", lambda: fault_cluster.alive_workers() == 1, None, 120)
        fault_cluster.add_worker()

    events = run.events()
    assert set(executors.values()) <= removed_executors(events)
    assert "ExecutorLostFailure" in failed_tasks(events)
    assert committed_content(spark, root, "preprocess") == undisturbed["content"]["preprocess"]
    record("worker (daemon + executors) SIGKILLed mid-step", "Spark: tasks rerun on the surviving worker",
           seconds, undisturbed["seconds"]["preprocess"], failed_tasks=len(failed_tasks(events)))


def test_datanode_killed_mid_write__pipeline_goes_on_same_rows(submitter, fault_hdfs, fault_cluster, undisturbed,
                                                               spark):
    root = submitter.root("datanode-killed")
    started = time.monotonic()
    run = submitter.start("preprocess", root)
    datanode = fault_hdfs.extra_datanodes[2]
    wait_for("the step writing its output", lambda: writing_output(fault_hdfs, root, "preprocess"), run)
    try:
        assert not committed(fault_hdfs, root, "preprocess")  # the kill lands before the commit
        kill_and_confirm(datanode.pid)
        datanode.wait()
        assert run.wait() == 0, run.log_tail()
        seconds = time.monotonic() - started
        assert committed_content(spark, root, "preprocess") == undisturbed["content"]["preprocess"]
    finally:
        fault_hdfs.start_datanode(2)  # its blocks come back with it
    # The HDFS clients (driver, executors) saw the DataNode go: a write pipeline recovered without it,
    # or a new block was placed elsewhere.
    clients = run.log.read_text(errors="replace") + fault_cluster.executor_logs(app_id(run.events()))
    assert "Error Recovery for" in clients or "Excluding datanode" in clients
    record("DataNode SIGKILLed mid-write (2 DataNodes, replication 2)",
           "HDFS client: write pipeline goes on with the live DataNode; reads use the other replica",
           seconds, undisturbed["seconds"]["preprocess"])


def test_job_sigkilled_mid_step__retry_commits_same_rows(submitter, fault_hdfs, undisturbed, spark):
    """The process tree of the Airflow task's spark-submit SIGKILLed (nothing of it can clean up), then
    the retry: the same command with the try number Airflow exports incremented."""
    root = submitter.root("job-killed")
    airflow = {"AIRFLOW_CTX_DAG_RUN_ID": "manual__2026-01-01T00:00:00+00:00"}
    started = time.monotonic()
    run = submitter.start("preprocess", root, env={**airflow, "AIRFLOW_CTX_TRY_NUMBER": "1"})
    left = wait_for("the step writing its output", lambda: writing_output(fault_hdfs, root, "preprocess"), run)
    assert not committed(fault_hdfs, root, "preprocess")
    os.killpg(run.process.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    assert [f["name"] for f in temp_folders(fault_hdfs, root, "preprocess")] == [f["name"] for f in left]

    submitter.run("preprocess", root, env={**airflow, "AIRFLOW_CTX_TRY_NUMBER": "2"})
    seconds = time.monotonic() - started
    assert temp_folders(fault_hdfs, root, "preprocess") == []  # the killed try's half-written folder is gone
    assert committed_content(spark, root, "preprocess") == undisturbed["content"]["preprocess"]
    record("job (spark-submit process group) SIGKILLed mid-step",
           "retry (try 2) removes try 1's temporary folder and reruns the step", seconds,
           undisturbed["seconds"]["preprocess"])


def test_namenode_restarted_between_steps__next_step_same_rows(submitter, fault_hdfs, undisturbed, spark):
    """preprocess committed (the undisturbed run's folder, copied: CI time), the NameNode restarted, then
    features reads it and commits through the restarted NameNode."""
    root = submitter.root("namenode-restarted")
    fault_hdfs.dfs("-cp", "/undisturbed/steps", "/namenode-restarted/steps")
    fault_hdfs.dfs("-rm", "-r", "/namenode-restarted/steps/features")
    before = fault_hdfs.namenode_pid()
    started = time.monotonic()
    fault_hdfs.restart_namenode()
    restart_seconds = time.monotonic() - started
    assert fault_hdfs.namenode_pid() != before
    submitter.run("features", root)
    seconds = time.monotonic() - started
    assert committed_content(spark, root, "features") == undisturbed["content"]["features"]
    # The copied preprocess output still names the undisturbed root it was read under.
    named = root.replace("namenode-restarted", "undisturbed")
    assert committed_content(spark, root, "preprocess", named) == undisturbed["content"]["preprocess"]
    record("NameNode restarted between steps", "NameNode reloads fsimage + edits, DataNodes re-register; "
           "the next job's client connects to it", seconds, undisturbed["seconds"]["features"],
           restart_s=round(restart_seconds, 1))

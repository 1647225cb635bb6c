"""Load test: the genoflow model API vs ``mlflow models serve`` on the same champion and inputs.

Not a test. Both servers run as subprocesses on loopback; this process is the client (httpx, a
thread pool of keep-alive connections, a fixed number of requests: it stops by itself). Prints a
markdown table (p50/p99 latency seen by the client, requests/s) for BENCHMARKS.md.

Run (with a registry whose champion has ``portable_model.json``, e.g. after ``make demo``)::

    python bench/serving_load.py [--tracking-uri sqlite:///.genoflow/mlflow.db] [--requests 2000]
        [--concurrency 1 8] [--mlflow-requests 200] [--skip-mlflow]

Inputs: ``--patients`` synthetic patients drawn from the champion's feature spec (ages 30-80, both
sexes, dosages ~ Binomial(2, training mean / 2)); our API gets their raw JSON, MLflow's server the
same patients' feature rows (``dataframe_split`` of the spec's columns, what its Spark pyfunc takes).
MLflow's server answers the Spark model's ``prediction`` column (a 0/1 label), not the risk.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

API_KEY = "bench-key"


@dataclass
class Result:
    server: str
    endpoint: str
    concurrency: int
    latencies: np.ndarray  # seconds, one per request
    errors: int
    wall: float

    def row(self) -> str:
        ms = self.latencies * 1000
        return (f"| {self.server} | {self.endpoint} | {self.concurrency} | {len(ms)} | {self.errors} | "
                f"{np.percentile(ms, 50):.2f} | {np.percentile(ms, 99):.2f} | {len(ms) / self.wall:.0f} |")


def main(argv: list[str] | None = None) -> int:
    from genoflow.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=Settings().mlflow_tracking_uri)
    parser.add_argument("--target", default="disease_status")
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario against our API")
    parser.add_argument("--mlflow-requests", type=int, default=200, help="requests per scenario against MLflow's")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--patients", type=int, default=200, help="distinct synthetic patients, cycled")
    parser.add_argument("--batch", type=int, default=100, help="patients per /predict/batch request (0: skip)")
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args(argv)

    name = f"genoflow_{args.target}"
    spec, version = champion_spec(args.tracking_uri, name)
    patients = synthetic_patients(spec, args.patients, seed=0)
    bodies = [{"target": args.target, **p} for p in patients]
    matrix = spec.transform(frame_of(spec, patients))
    split = [{"dataframe_split": {"columns": spec.names, "data": [row.tolist()]}} for row in matrix]
    bin_dir = str(Path(sys.executable).parent)  # MLflow's server execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": args.tracking_uri, "PYTHONUNBUFFERED": "1",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}

    results = [in_process(args.tracking_uri, name, args.target, bodies, n=args.requests)]
    port = free_port()
    api_env = {**env, "GENOFLOW_API_KEYS": API_KEY, "GENOFLOW_SERVING_POLL_SECONDS": "0",
               "GENOFLOW_SERVING_TARGETS": args.target}
    with server([sys.executable, "-m", "genoflow.serving", "--port", str(port), "--log-level", "warning"],
                api_env, f"http://127.0.0.1:{port}/ready") as url:
        for c in args.concurrency:
            results.append(load("genoflow API", url, "/predict", bodies, args.requests, c, {"X-API-Key": API_KEY}))
        if args.batch:
            batches = [{"target": args.target, "patients": [patients[(i + j) % len(patients)]
                                                            for j in range(args.batch)]} for i in range(20)]
            results.append(load("genoflow API", url, f"/predict/batch ({args.batch} patients)", batches,
                                max(args.requests // args.batch, 20), 1, {"X-API-Key": API_KEY}))
    if not args.skip_mlflow:
        port = free_port()
        command = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion",
                   "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
        with server(command, env, f"http://127.0.0.1:{port}/ping", start_timeout=600) as url:
            for c in args.concurrency:
                results.append(load("mlflow models serve (Spark pyfunc)", url, "/invocations", split,
                                    args.mlflow_requests, c, {}))

    print(f"\n{name} v{version} ({len(spec.names)} features), {os.cpu_count()} CPUs, client and servers on "
          "one machine; latency as the client sees it (loopback HTTP included)\n")
    print("| server | endpoint | concurrency | requests | errors | p50 ms | p99 ms | requests/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(r.row())
    return 0


# --- inputs ----------------------------------------------------------------------------------------


def champion_spec(tracking_uri: str, name: str):
    from mlflow import MlflowClient

    from genoflow.features.spec import FeatureSpec

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version_by_alias(name, "champion")
    with tempfile.TemporaryDirectory() as tmp:
        spec = json.loads(Path(client.download_artifacts(version.run_id, "feature_spec.json", tmp)).read_text())
    return FeatureSpec(**spec), version.version


def synthetic_patients(spec, n: int, seed: int) -> list[dict]:
    """Raw values a client would send: covariates and contig:pos:ref:alt dosages."""
    rng = np.random.default_rng(seed)
    patients = []
    for _ in range(n):
        covariates = {"age": int(rng.integers(30, 81)), "sex": str(rng.choice(["F", "M"]))}
        for name in spec.read_qc:
            covariates[name] = float(spec.fill.get(name, 0.0) * rng.uniform(0.95, 1.05))
        genotypes = {}
        for v, column in zip(spec.variants, spec.variant_columns, strict=True):
            p = min(max(spec.fill.get(column, 0.5) / 2, 0.0), 1.0)
            genotypes[f"{v['contig']}:{v['pos']}:{v['ref']}:{v['alt']}"] = int(rng.binomial(2, p))
        patients.append({"covariates": covariates, "genotypes": genotypes})
    return patients


def frame_of(spec, patients: list[dict]) -> dict[str, list]:
    from genoflow.serving.patients import variant_column

    frame = {name: [] for name in spec.names}
    for p in patients:
        for name in [*spec.covariate_names, *spec.read_qc]:
            frame[name].append(p["covariates"].get(name))
        calls = {variant_column(k): d for k, d in p["genotypes"].items()}
        for column in spec.variant_columns:
            frame[column].append(calls.get(column, np.nan))
    return frame


# --- servers and load ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict, ready_url: str, start_timeout: float = 180):
    """Start a server in its own process group, yield its base URL once ``ready_url`` answers 200,
    stop the group after (MLflow's server runs its workers as child processes)."""
    import httpx

    log = tempfile.NamedTemporaryFile("w+", prefix="genoflow-bench-", suffix=".log", delete=False)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command[:3])} exited {process.returncode}; log: {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command[:3])} not ready after {start_timeout} s; log: {log.name}")
            try:
                if httpx.get(ready_url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield ready_url.rsplit("/", 1)[0]
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load(label: str, url: str, endpoint: str, bodies: list[dict], n: int, concurrency: int,
         headers: dict) -> Result:
    """``n`` POSTs of ``bodies`` (cycled) from ``concurrency`` keep-alive connections."""
    import httpx

    path = endpoint.split(" ")[0]
    payloads = [json.dumps(b).encode() for b in bodies]
    headers = {**headers, "Content-Type": "application/json"}
    clients = [httpx.Client(base_url=url, timeout=60, headers=headers) for _ in range(concurrency)]
    for i, client in enumerate(clients):  # warm each connection (and the server's first-call paths)
        for j in range(5):
            client.post(path, content=payloads[(i + j) % len(payloads)])
    latencies = np.empty(n)
    failed = np.zeros(n, dtype=bool)

    def worker(k: int) -> None:  # connection k sends requests k, k + c, k + 2c, ...
        client = clients[k]
        for i in range(k, n, concurrency):
            start = time.perf_counter()
            response = client.post(path, content=payloads[i % len(payloads)])
            latencies[i] = time.perf_counter() - start
            failed[i] = response.status_code != 200

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    wall = time.perf_counter() - started
    for client in clients:
        client.close()
    return Result(label, endpoint, concurrency, latencies, int(failed.sum()), wall)


def in_process(tracking_uri: str, name: str, target: str, bodies: list[dict], n: int) -> Result:
    """The hot path without HTTP: input checks + FeatureSpec.transform + numpy scoring."""
    from genoflow.serving.patients import PatientValues
    from genoflow.serving.scoring import predict_one
    from genoflow.serving.sources import MlflowSource

    model = MlflowSource(tracking_uri).load(target, name, "champion")
    patients = [PatientValues(b["covariates"], b["genotypes"]) for b in bodies]
    latencies = np.empty(n)
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        predict_one(model, patients[i % len(patients)], ignore_unknown=False)
        latencies[i] = time.perf_counter() - t
    return Result(f"in-process ({model.model.kind})", "predict_one()", 1, latencies, 0,
                  time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(main())

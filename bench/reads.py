"""Reads to genotypes (issue 15): genoflow's align and call jobs vs minimap2, samtools and bcftools on the same reads.

The cohort is :func:`genoflow.simulate.reads.make_reads_cohort`: a targeted panel (by default 20 patients,
200 kb of a 1 Mb reference, 30x paired 2 x 150 bp), simulated once per size and cached under
``.genoflow/bench/cohorts/``, with its truth (``truth/target_genotypes.vcf.gz``).

- peer, as bcftools users run it: ``minimap2 -x sr -d ref.mmi`` once; per patient
  ``minimap2 -ax sr -t <cores> -R @RG... ref.mmi R1 R2 | samtools sort`` and ``samtools index``; then one
  joint ``bcftools mpileup -f ref.fa -a AD,DP -Ou *.bam | bcftools call -m -v -Oz``;
- genoflow: ``spark-submit jobs/align.py`` then ``jobs/call.py`` (``local[<cores>]``), as the DAG runs them,
  with the minimap2 index step output removed first so both sides build their index.

Each process's CPU seconds come from ``wait4`` (minimap2 and samtools sort apart inside their pipe), the
Spark jobs' from their sampled process tree (bench/genomics.py's ``measure``); wall seconds are the stage's.
On a machine shared with other work, CPU seconds are the numbers to compare. Accuracy: SNV genotype
precision, recall and F1 against the truth, counted as hap.py counts them
(:func:`genoflow.reads.accuracy.genotype_accuracy`). ``--growth`` adds panels of 10 and 40 patients
at 30x and 20 patients at 10x; a straight line through the 30x points gives each tool's fixed cost and its
cost per read past it. Results go to bench/results/reads.json. Not a test: nothing asserts on times.

    python bench/reads.py [--patients 20] [--coverage 30] [--panel 200000] [--cores 2] [--growth]
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

import numpy as np
from biobank import source_state
from genomics import (  # bench/ is the script's folder, so its sibling imports as a top-level module
    REPO,
    BenchError,
    Tools,
    _load,
    _now,
    machine,
    measure,
    say,
)

RESULTS = REPO / "bench" / "results" / "reads.json"
GROWTH = [(10, 30.0), (40, 30.0), (20, 10.0)]  # (patients, coverage) besides the main run
STAGES = ("align", "call")


# --------------------------------------------------------------------------- cohorts


def reads_cohort(work: Path, n_patients: int, coverage: float, panel: int) -> tuple[Path, dict]:
    """The simulated panel (raw/ + truth/), generated once per size and reused."""
    from genoflow.simulate.reads import make_reads_cohort

    # "flanks": reads reach past the panel (simulate.reads.sequenced_span); older caches are simulated again.
    spec = {"n_patients": n_patients, "coverage": coverage, "panel_length": panel, "reads": "flanks"}
    root = work / "cohorts" / f"reads-{n_patients}p-{coverage:g}x-{panel // 1000}kb"
    stamp = root / "cohort.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec:
        return root, json.loads(stamp.read_text())["summary"]
    say(f"simulating {root.name}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    started = time.perf_counter()
    summary = make_reads_cohort(root, **{k: v for k, v in spec.items() if k != "reads"})
    summary["generate_s"] = round(time.perf_counter() - started, 1)
    summary["n_reads"] = sum(_fastq_records(p) for p in sorted((root / "raw" / "patient_data").glob("*/*.fastq.gz")))
    stamp.write_text(json.dumps({"spec": spec, "summary": summary}, indent=1, default=str))
    return root, summary


def _fastq_records(path: Path) -> int:
    out = subprocess.run(f"zcat '{path}' | wc -l", shell=True, capture_output=True, text=True, check=True)
    return int(out.stdout) // 4


# --------------------------------------------------------------------------- measuring


def timed_pipe(stages: list[list[str]], log: Path) -> dict:
    """Run ``stages`` as one shell-like pipe: the whole pipe's wall seconds and each process's CPU seconds.

    Every process is reaped with ``wait4``, so its own rusage (user + system) is known apart from the
    others': minimap2's CPU apart from samtools sort's, mpileup's apart from call's.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    procs, upstream = [], None
    with log.open("w") as err:
        for i, argv in enumerate(stages):
            last = i == len(stages) - 1
            proc = subprocess.Popen(argv, stdin=upstream, stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                                    stderr=err, cwd=REPO)
            if upstream is not None:
                upstream.close()  # the next process owns the read end now: a dead reader stops the writer
            upstream = proc.stdout
            procs.append(proc)
        cpu, codes = {}, []
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            codes.append(proc.returncode)
            name = Path(proc.args[0]).name + (f" {proc.args[1]}" if proc.args[0] == "bcftools" else "")
            cpu[name] = round(cpu.get(name, 0.0) + usage.ru_utime + usage.ru_stime, 2)
    if any(codes):
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise BenchError(f"{' | '.join(a[0] for a in stages)} failed (exit {codes}); log {log}:\n{tail}")
    return {"wall_s": round(time.perf_counter() - started, 2), "cpu_s": round(sum(cpu.values()), 2), "cpu": cpu}


def _add(total: dict, part: dict) -> dict:
    """Sum of two timings of :func:`timed_pipe`'s shape."""
    cpu = dict(total.get("cpu", {}))
    for name, seconds in part["cpu"].items():
        cpu[name] = round(cpu.get(name, 0.0) + seconds, 2)
    return {"wall_s": round(total.get("wall_s", 0.0) + part["wall_s"], 2),
            "cpu_s": round(total.get("cpu_s", 0.0) + part["cpu_s"], 2), "cpu": cpu}


# --------------------------------------------------------------------------- the two pipelines


def run_peer(root: Path, work: Path, cores: int) -> dict:
    """minimap2 | samtools sort, samtools index per patient, then one joint bcftools mpileup | call."""
    ref = root / "raw" / "reference_genome" / "genome_sequence.fasta"
    peer = work / "peer"
    shutil.rmtree(peer, ignore_errors=True)
    peer.mkdir(parents=True)
    logs = work / "logs"
    index = timed_pipe([["minimap2", "-x", "sr", "-d", str(peer / "ref.mmi"), str(ref)]], logs / "minimap2_index.log")
    align: dict = {}
    bams = []
    for folder in sorted((root / "raw" / "patient_data").iterdir()):
        pid, bam = folder.name, peer / f"{folder.name}.bam"
        fastqs = sorted(str(p) for p in folder.glob("*.fastq.gz"))  # R1, R2 (or the single-end file)
        rg = f"@RG\\tID:{pid}\\tSM:{pid}"
        part = timed_pipe([["minimap2", "-ax", "sr", "-t", str(cores), "-R", rg, str(peer / "ref.mmi"), *fastqs],
                           ["samtools", "sort", "-o", str(bam), "-"]], logs / f"peer_align_{pid}.log")
        part = _add(part, timed_pipe([["samtools", "index", str(bam)]], logs / f"peer_index_{pid}.log"))
        align = _add(align, part)
        bams.append(str(bam))
    vcf = peer / "peer.vcf.gz"
    call = timed_pipe([["bcftools", "mpileup", "-f", str(ref), "-a", "AD,DP", "-Ou", *bams],
                       ["bcftools", "call", "-m", "-v", "-Oz", "-o", str(vcf)]], logs / "peer_call.log")
    subprocess.run(["bcftools", "index", "-t", str(vcf)], check=True)
    return {"index": index, "align": align, "call": call, "vcf": str(vcf)}


def run_genoflow(root: Path, work: Path, cores: int, driver_memory: str) -> dict:
    """The align and call jobs through spark-submit, each a fresh run (its step output and the index removed)."""
    tools = Tools(root, work / "genoflow", cores, None, driver_memory)
    # The reads path on its own: no sample-swap check against the cohort VCF (bcftools does none).
    tools.params["preprocess"].update(input="reads", vcf=None)
    shutil.rmtree(root / "steps" / "reads_index", ignore_errors=True)
    out = {}
    for step in STAGES:
        shutil.rmtree(tools.step_dir(step), ignore_errors=True)
        out[step] = measure(tools.job(step), work / "logs" / f"genoflow_{step}.log", tools.env)
    out["mapping"] = _mapping_totals(tools.step_dir("align") / "mapping.json")
    calling = json.loads((tools.step_dir("call") / "calling.json").read_text())
    out["calling"] = {k: v for k, v in calling.items() if k not in ("sample_names", "concordance_with_vcf")}
    out["vcf"] = str(tools.step_dir("call") / "cohort.vcf.gz")
    return out


def _mapping_totals(path: Path) -> dict:
    """The align step's per-patient counts summed over the cohort, and the lowest mapping rate."""
    patients = json.loads(path.read_text())
    patients = patients.get("patients", patients)
    totals = {key: sum(p[key] for p in patients.values()) for key in ("reads", "mapped", "kept", "duplicates")}
    return {**totals, "lowest_mapping_rate": min(p["mapping_rate"] for p in patients.values())}


def accuracy(truth_vcf: str, called_vcf: str, region: dict) -> dict:
    """SNV genotype precision, recall and F1 of ``called_vcf`` against the truth (hap.py's genotype match).

    Only inside the target ``region``: the reads also cover a flank on each side, where the truth lists nothing.
    """
    try:
        from genoflow.reads.accuracy import genotype_accuracy
    except ImportError as err:  # written beside this bench (issue 15): the run still records its times
        return {"error": f"genoflow.reads.accuracy unavailable: {err}"}
    full = genotype_accuracy(truth_vcf, called_vcf, region=f"{region['contig']}:{region['start']}-{region['end']}")
    per_sample = {sample: row["f1"] for sample, row in full.get("per_sample", {}).items()}
    return {**{k: v for k, v in full.items() if k not in ("per_sample", "samples")}, "f1_per_sample": per_sample}


# --------------------------------------------------------------------------- one panel


def run_panel(work: Path, n_patients: int, coverage: float, panel: int, cores: int, driver_memory: str,
              skip_genoflow: bool) -> dict:
    root, summary = reads_cohort(work, n_patients, coverage, panel)
    run_work = work / "runs" / root.name
    n_reads = summary["n_reads"]
    result = {"cohort": root.name, "n_patients": n_patients, "coverage": coverage, "panel_bp": panel,
              "n_reads": n_reads, "paired": True, "read_length": 150, "cores": cores,
              "target_region": summary["target_region"], "load_average": [_load(), None], "started": _now()}
    say(f"{root.name}: peer (minimap2, samtools, bcftools) on {n_reads:,} reads")
    result["peer"] = run_peer(root, run_work, cores)
    truth, region = summary["paths"]["truth_vcf"], summary["target_region"]
    result["peer"]["accuracy"] = accuracy(truth, result["peer"]["vcf"], region)
    if not skip_genoflow:
        say(f"{root.name}: genoflow align and call")
        try:
            result["genoflow"] = run_genoflow(root, run_work, cores, driver_memory)
            result["genoflow"]["accuracy"] = accuracy(truth, result["genoflow"]["vcf"], region)
        except BenchError as err:
            result["genoflow"] = {"error": str(err)}
    result["load_average"][1] = _load()
    result["throughput"] = throughput(result)
    return result


def throughput(result: dict) -> dict:
    """Reads per wall second per core and per CPU second of each stage, and genoflow / peer ratios (> 1: faster)."""
    n, cores = result["n_reads"], result["cores"]
    peer = result["peer"]
    stages = {"peer": {"align": _merge(peer["index"], peer["align"]), "call": peer["call"],
                       "minimap2_only": {"wall_s": None, "cpu_s": peer["align"]["cpu"].get("minimap2")}}}
    gf = result.get("genoflow", {})
    if "align" in gf:
        stages["genoflow"] = {"align": gf["align"], "call": gf["call"]}
    out = {}
    for tool, parts in stages.items():
        parts = {**parts, "total": _merge(parts["align"], parts["call"])} if "call" in parts else parts
        out[tool] = {stage: {"reads_per_s_per_core": _rate(n, t["wall_s"], cores),
                             "reads_per_cpu_s": _rate(n, t["cpu_s"]), "wall_s": t["wall_s"], "cpu_s": t["cpu_s"]}
                     for stage, t in parts.items()}
    if "genoflow" in out:
        out["genoflow_over_peer"] = {
            stage: {"wall": _ratio(out["peer"][stage]["wall_s"], out["genoflow"][stage]["wall_s"]),
                    "cpu": _ratio(out["peer"][stage]["cpu_s"], out["genoflow"][stage]["cpu_s"])}
            for stage in (*STAGES, "total")}
        out["genoflow_over_peer"]["align_cpu_vs_minimap2_alone"] = _ratio(
            out["peer"]["minimap2_only"]["cpu_s"], out["genoflow"]["align"]["cpu_s"])
    return out


def _merge(a: dict, b: dict) -> dict:
    return {"wall_s": round(a["wall_s"] + b["wall_s"], 2), "cpu_s": round(a["cpu_s"] + b["cpu_s"], 2)}


def _rate(n: int, seconds: float | None, cores: int = 1) -> float | None:
    return round(n / seconds / cores, 1) if seconds else None


def _ratio(peer_s: float | None, genoflow_s: float | None) -> float | None:
    """Throughput of genoflow over the peer's on the same reads: peer seconds / genoflow seconds."""
    return round(peer_s / genoflow_s, 3) if peer_s and genoflow_s else None


def growth_fit(runs: list[dict], coverage: float) -> dict:
    """Seconds = fixed + per_read * reads through the runs at ``coverage``: each tool's and stage's line (CPU s)."""
    points = sorted((r for r in runs if r["coverage"] == coverage), key=lambda r: r["n_reads"])
    if len(points) < 2:
        return {}
    reads = np.array([r["n_reads"] for r in points], dtype=float)
    fit = {"coverage": coverage, "n_reads": reads.astype(int).tolist()}
    for tool in ("peer", "genoflow"):
        for stage in (*STAGES, "total"):
            cpu = [r["throughput"].get(tool, {}).get(stage, {}).get("cpu_s") for r in points]
            if None in cpu:
                continue
            per_read, fixed = np.polyfit(reads, np.array(cpu), 1)
            fit[f"{tool}_{stage}"] = {"fixed_cpu_s": round(float(fixed), 2),
                                      "reads_per_cpu_s_past_fixed": round(1.0 / per_read, 1) if per_read > 0 else None}
    for stage in (*STAGES, "total"):
        g, p = fit.get(f"genoflow_{stage}"), fit.get(f"peer_{stage}")
        if g and p and g["reads_per_cpu_s_past_fixed"] and p["reads_per_cpu_s_past_fixed"]:
            fit[f"genoflow_over_peer_{stage}_past_fixed"] = round(
                g["reads_per_cpu_s_past_fixed"] / p["reads_per_cpu_s_past_fixed"], 3)
    return fit


# --------------------------------------------------------------------------- main


def tool_versions() -> dict:
    def first_line(argv):
        out = subprocess.run(argv, capture_output=True, text=True, errors="replace")
        return (out.stdout or out.stderr).strip().splitlines()[0]

    import mappy
    import pyspark

    return {"minimap2": first_line(["minimap2", "--version"]), "samtools": first_line(["samtools", "--version"]),
            "bcftools": first_line(["bcftools", "--version"]), "mappy": mappy.__version__,
            "pyspark": pyspark.__version__}


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--coverage", type=float, default=30.0)
    parser.add_argument("--panel", type=int, default=200_000, help="targeted region, bp (of a 1 Mb reference)")
    parser.add_argument("--cores", type=int, default=2, help="local[N] / minimap2 -t N")
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory")
    parser.add_argument("--growth", action="store_true", help=f"also the (patients, coverage) panels {GROWTH}")
    parser.add_argument("--skip-genoflow", action="store_true", help="the peer only")
    parser.add_argument("--work", type=Path, default=REPO / ".genoflow" / "bench")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for tool in ("minimap2", "samtools", "bcftools"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not on PATH (Debian packages minimap2, samtools, bcftools)")
    work = args.work.resolve() / "reads"
    results = {"machine": machine(), "versions": tool_versions(), "source": source_state(), "started": _now(),
               "cores": args.cores, "runs": []}
    panels = [(args.patients, args.coverage), *(GROWTH if args.growth else [])]
    for n_patients, coverage in panels:
        run = run_panel(work, n_patients, coverage, args.panel, args.cores, args.driver_memory, args.skip_genoflow)
        results["runs"].append(run)
        results["growth"] = growth_fit(results["runs"], args.coverage)
        save(results, args.results)
        say(f"{run['cohort']}: {json.dumps(run['throughput'].get('genoflow_over_peer', {}))}")
    say(f"results: {args.results}")
    failed = [r["cohort"] for r in results["runs"] if "error" in r.get("genoflow", {})]
    if failed:
        raise BenchError(f"genoflow failed on {failed} (the error is in {args.results})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

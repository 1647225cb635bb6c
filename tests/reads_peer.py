"""Helpers of the reads tests: the jobs' entry point on a cohort, a committed step's folder, and the peer pipeline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def run_steps(root: Path, params: dict, *steps: str) -> int:
    """Run ``steps`` in order through the jobs' entry point on the cohort under ``root``; the first failing exit."""
    from genoflow.pipeline.runner import main

    for step in steps:
        rc = main(step, ["--storage-root", root.as_uri(), "--dataset-version", "test",
                         "--params-json", json.dumps(params)])
        if rc:
            return rc
    return 0


def step_dir(root: Path, step: str) -> Path:
    (folder,) = [p for p in (root / "steps" / step).iterdir() if ".tmp-" not in p.name]
    return folder


def bcftools_calls(root: Path, work: Path) -> Path:
    """The peer pipeline on the same reads, as bcftools users run it (one joint mpileup over every BAM)."""
    ref = root / "raw" / "reference_genome" / "genome_sequence.fasta"
    work.mkdir(parents=True, exist_ok=True)
    bams = []
    for folder in sorted((root / "raw" / "patient_data").iterdir()):
        fastqs = sorted(str(p) for p in folder.glob("*.fastq.gz"))
        bam = work / f"{folder.name}.bam"
        sam = subprocess.run(["minimap2", "-ax", "sr", "-R", f"@RG\\tID:{folder.name}\\tSM:{folder.name}", str(ref),
                              *fastqs], check=True, capture_output=True).stdout
        subprocess.run(["samtools", "sort", "-o", str(bam), "-"], input=sam, check=True, capture_output=True)
        bams.append(str(bam))
    vcf = work / "peer.vcf.gz"
    pileup = subprocess.run(["bcftools", "mpileup", "-f", str(ref), "-a", "AD,DP", "-Ou", *bams], check=True,
                            capture_output=True).stdout
    subprocess.run(["bcftools", "call", "-m", "-v", "-Oz", "-o", str(vcf)], input=pileup, check=True,
                   capture_output=True)
    return vcf

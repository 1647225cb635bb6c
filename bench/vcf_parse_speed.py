"""Micro-benchmark: genotypes/s of `genoflow.io.vcf.parse_vcf_records` on synthetic chunks.

Not a test. Run: ``python bench/vcf_parse_speed.py [--samples 2000] [--lines 2000] [--repeat 5]``.
Prints the best-of-``repeat`` throughput for a GT-only diploid chunk (the fast path), a
``GT:DP:GQ`` chunk and a chunk with 5 % haploid/multi-digit calls (the general path).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genoflow.io.vcf import parse_vcf_records


def make_chunk(n_lines: int, n_samples: int, kind: str, seed: int = 0) -> list[str]:
    """Synthetic VCF data lines: ``kind`` is ``gt``, ``gt_dp_gq`` or ``mixed``."""
    rng = np.random.default_rng(seed)
    calls = np.array(["0/0", "0/1", "1/1", "0|1", "1|0", "./."])
    weights = np.array([0.55, 0.2, 0.1, 0.06, 0.06, 0.03])
    picked = calls[rng.choice(len(calls), size=(n_lines, n_samples), p=weights)]
    if kind == "gt_dp_gq":
        dp = rng.integers(0, 60, size=(n_lines, n_samples)).astype(str)
        picked = np.char.add(np.char.add(picked, ":"), np.char.add(dp, ":99"))
    elif kind == "mixed":
        odd = rng.random((n_lines, n_samples)) < 0.05
        picked = np.where(odd, "1", picked)
    fmt = {"gt": "GT", "gt_dp_gq": "GT:DP:GQ", "mixed": "GT"}[kind]
    fixed = "chr1\t{pos}\trs{i}\tA\tG\t50\tPASS\t.\t" + fmt
    return [fixed.format(pos=1000 + i, i=i) + "\t" + "\t".join(row) for i, row in enumerate(picked)]


def genotypes_per_second(lines: list[str], n_samples: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        parse_vcf_records(lines, n_samples=n_samples, source="synthetic.vcf", first_line_number=1)
        best = min(best, time.perf_counter() - start)
    return len(lines) * n_samples / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for kind in ("gt", "gt_dp_gq", "mixed"):
        lines = make_chunk(args.lines, args.samples, kind)
        rate = genotypes_per_second(lines, args.samples, args.repeat)
        print(f"{kind:>9}: {args.lines} lines x {args.samples} samples: {rate / 1e6:8.1f} M genotypes/s")


if __name__ == "__main__":
    main()

"""A pair's clipped second read projects onto the reference as the minimap2 CLI aligns it.

mappy reports R2's query span on its reverse complement (minimap2 maps FR pairs so); read as sequenced,
the clip sits at the other end. Found by the simulator's tests: 75 of 91 projected bases were wrong.
"""

from __future__ import annotations

import random
import subprocess

import mappy

from genoflow.reads.align import project, query_span


def test_clipped_mate2__bases_and_cigar_match_the_minimap2_cli(tmp_path):
    rng = random.Random(1)
    ref = "".join(rng.choice("ACGT") for _ in range(5000))
    fasta = tmp_path / "ref.fa"
    fasta.write_text(f">r\n{ref}\n")
    reverse = str.maketrans("ACGT", "TGCA")
    fragment = ref[1000:1400]
    read1 = fragment[:150]
    read2 = fragment.translate(reverse)[::-1][:130] + "".join(rng.choice("ACGT") for _ in range(20))  # 3' junk
    hits = {hit.read_num: hit for hit in mappy.Aligner(str(fasta), preset="sr").map(read1, read2)}
    hit = hits[2]
    bases, _, cigar = project(read2.encode(), bytes([30]) * len(read2), hit, query_span(hit, len(read2), 2))
    assert bases.decode() == ref[hit.r_st:hit.r_en]
    for mate, read in ((1, read1), (2, read2)):
        (tmp_path / f"r{mate}.fq").write_text(f"@p\n{read}\n+\n{'I' * len(read)}\n")
    sam = subprocess.run(["minimap2", "-ax", "sr", str(fasta), str(tmp_path / "r1.fq"), str(tmp_path / "r2.fq")],
                         capture_output=True, text=True, check=True).stdout
    records = [line.split("\t") for line in sam.splitlines() if not line.startswith("@")]
    (record,) = [fields for fields in records if int(fields[1]) & 128]  # the second read of the pair
    assert (int(record[3]) - 1, record[5]) == (hit.r_st, cigar)

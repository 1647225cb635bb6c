"""The .tbi index built from record offsets, against htslib's own (``tabix -p vcf``) on the same file.

The VCF is written with :func:`bgzf_compress` and indexed from the offsets it gives; htslib indexes a copy by
reading it. Long REF alleles make records span 16 kb windows and bins above the bottom level; random
genotypes keep the text from compressing to nothing, so bins span more than 64 KiB and are kept apart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from genoflow.io.tabix import (
    BGZF_BLOCK_SIZE,
    TBI_MAX_POS,
    TabixIndexer,
    bgzf_compress,
    gzip_members,
    read_tabix_index,
    reg2bin,
    tabix_index,
    virtual_offsets,
)
from genoflow.pipeline.vcf_ingest import BGZF_EOF
from tests.conftest import require_tool

pytestmark = pytest.mark.slow  # runs htslib's tabix and bcftools as the reference


@pytest.fixture(autouse=True, scope="module")
def _htslib():
    require_tool("tabix", "bcftools")

CONTIGS = (("chr1", 12_000, 60_000_000), ("chr2", 2_000, 3_000_000), ("chrX", 3, 1_000))
N_SAMPLES = 30


def _records(seed: int = 1):
    """VCF record lines and their (contig, beg0, end0), sorted by contig then position."""
    rng = np.random.default_rng(seed)
    lines, coords = [], []
    for contig, n, length in CONTIGS:
        for pos in np.sort(rng.integers(1, length, n)).tolist():
            ref_len = 1 if rng.random() < 0.97 else int(rng.integers(2, 40_000))
            calls = "\t".join(rng.choice(["0/0", "0/1", "1/1"], N_SAMPLES))
            lines.append(f"{contig}\t{pos}\t.\t{'A' * ref_len}\tG\t.\t.\t.\tGT\t{calls}\n".encode())
            coords.append((contig, pos - 1, pos - 1 + ref_len))
    return lines, coords


def _header() -> bytes:
    contigs = "".join(f"##contig=<ID={name},length={length}>\n" for name, _, length in CONTIGS)
    samples = "\t".join(f"S{i}" for i in range(N_SAMPLES))
    return (f"##fileformat=VCFv4.3\n{contigs}##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
            f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}\n").encode()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """(folder, record lines, coords, virtual offsets): ours.vcf.gz with our .tbi, htslib.vcf.gz with htslib's."""
    folder = tmp_path_factory.mktemp("tabix")
    lines, coords = _records()
    header = _header()
    data = header + b"".join(lines)
    ends = len(header) + np.cumsum([len(line) for line in lines])
    starts = ends - [len(line) for line in lines]
    compressed, blocks = bgzf_compress(data)
    vstart, vend = virtual_offsets(starts, blocks, len(data)), virtual_offsets(ends, blocks, len(data))
    for name in ("ours", "htslib"):
        (folder / f"{name}.vcf.gz").write_bytes(compressed + BGZF_EOF)
    names, beg, end = zip(*coords, strict=True)
    (folder / "ours.vcf.gz.tbi").write_bytes(tabix_index(names, beg, end, vstart, vend))
    subprocess.run(["tabix", "-p", "vcf", str(folder / "htslib.vcf.gz")], check=True)
    return folder, lines, coords, (vstart, vend)


def _index(path: Path) -> dict:
    return read_tabix_index(path.read_bytes())


def test_tabix_index__same_index_as_htslib(indexed):
    folder = indexed[0]
    ours, theirs = _index(folder / "ours.vcf.gz.tbi"), _index(folder / "htslib.vcf.gz.tbi")
    assert ours["header"] == theirs["header"] == {"format": 2, "col_seq": 1, "col_beg": 2, "col_end": 0,
                                                  "meta": ord("#"), "skip": 0}
    assert ours["names"] == theirs["names"] == ["chr1", "chr2", "chrX"]
    assert ours["n_no_coor"] == theirs["n_no_coor"] == 0
    for mine, htslib in zip(ours["refs"], theirs["refs"], strict=True):
        assert mine["bins"] == htslib["bins"]  # every bin, its chunks, and the pseudo-bin 37450
        assert mine["linear"] == htslib["linear"]
    # the test data reach the cases that matter: bins above the bottom level, bins merged into their parent
    chr1 = ours["refs"][0]["bins"]
    assert any(b < 4681 for b in chr1) and any(len(chunks) > 1 for chunks in chr1.values())
    assert chr1[37450][1] == (12_000, 0)
    # and byte for byte, once decompressed (htslib's bin order is its hash table's; zlib builds differ)
    assert gzip_members((folder / "ours.vcf.gz.tbi").read_bytes()) == gzip_members(
        (folder / "htslib.vcf.gz.tbi").read_bytes())


def _tabix(path: Path, region: str) -> list[bytes]:
    out = subprocess.run(["tabix", str(path), region], check=True, capture_output=True)
    return out.stdout.splitlines(keepends=True)


def test_tabix_index__region_queries_match_htslib_and_the_records(indexed):
    folder, lines, coords, _ = indexed
    rng = np.random.default_rng(7)
    for _ in range(60):
        contig, _, length = CONTIGS[rng.choice(3, p=[0.6, 0.3, 0.1])]
        lo = int(rng.integers(1, length))
        hi = lo + int(rng.choice([0, 50, 20_000, 400_000]))
        region = f"{contig}:{lo}-{hi}"
        expected = [line for line, (c, beg, end) in zip(lines, coords, strict=True)
                    if c == contig and beg < hi and end >= lo]  # 1-based closed region vs [beg, end)
        assert _tabix(folder / "ours.vcf.gz", region) == expected, region
        assert _tabix(folder / "htslib.vcf.gz", region) == expected, region
    assert len(_tabix(folder / "ours.vcf.gz", "chrX")) == 3


def test_tabix_index__bcftools_regions_and_listing(indexed):
    folder = indexed[0]
    listed = subprocess.run(["tabix", "-l", str(folder / "ours.vcf.gz")], check=True, capture_output=True, text=True)
    assert listed.stdout.split() == ["chr1", "chr2", "chrX"]
    view = subprocess.run(["bcftools", "view", "-H", "-r", "chr2:1000000-2000000,chrX", str(folder / "ours.vcf.gz")],
                          check=True, capture_output=True, text=True)
    expected = [c for c, beg, end in indexed[2]
                if (c == "chr2" and beg < 2_000_000 and end >= 1_000_000) or c == "chrX"]
    assert [line.split("\t")[0] for line in view.stdout.splitlines()] == expected
    assert view.stderr == ""


def test_tabix_indexer__batches_give_the_same_index(indexed):
    _, _, coords, (vstart, vend) = indexed
    names, beg, end = (np.asarray(a) for a in zip(*coords, strict=True))
    whole = tabix_index(names, beg, end, vstart, vend)
    indexer = TabixIndexer()
    for cut in np.array_split(np.arange(len(names)), 7):  # cuts inside runs of one bin and across contigs
        indexer.push(names[cut], beg[cut], end[cut], vstart[cut], vend[cut])
    assert gzip_members(indexer.to_bytes()) == gzip_members(whole)


def _reg2bin_samv1(beg: int, end: int) -> int:
    """SAMv1 section 5.3, line by line."""
    end -= 1
    for shift, first in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if beg >> shift == end >> shift:
            return first + (beg >> shift)
    return 0


def test_reg2bin__samv1_reference():
    rng = np.random.default_rng(3)
    beg = rng.integers(0, TBI_MAX_POS - 1, 2_000)
    end = np.minimum(beg + rng.choice([1, 100, 20_000, 3_000_000, 200_000_000], 2_000), TBI_MAX_POS)
    assert reg2bin(beg, end).tolist() == [_reg2bin_samv1(b, e) for b, e in zip(beg.tolist(), end.tolist(), strict=True)]
    assert reg2bin([0, 16383, 0], [1, 16385, TBI_MAX_POS]).tolist() == [4681, 585, 0]


def test_virtual_offsets__block_boundaries_point_at_the_next_block():
    data = bytes(BGZF_BLOCK_SIZE + 10)
    _, blocks = bgzf_compress(data)
    got = virtual_offsets([0, 5, BGZF_BLOCK_SIZE, BGZF_BLOCK_SIZE + 10], blocks, len(data))
    assert got.tolist() == [0, 5, int(blocks[1]) << 16, int(blocks[2]) << 16]


@pytest.mark.parametrize(("names", "beg", "problem"), [
    (["chr1", "chr2", "chr1"], [1, 1, 5], "not together"),
    (["chr1", "chr1"], [10, 5], "not sorted"),
    (["chr1"], [TBI_MAX_POS], "CSI"),
])
def test_tabix_indexer__refuses_unsorted_or_too_long(names, beg, problem):
    n = len(names)
    with pytest.raises(ValueError, match=problem):
        TabixIndexer().push(names, beg, np.asarray(beg) + 1, np.arange(n), np.arange(n) + 1)

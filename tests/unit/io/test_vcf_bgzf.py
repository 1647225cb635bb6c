"""BGZF byte ranges read from plain Python (genoflow.io.vcf.bgzf): every line read by exactly one range,
whole lines per Arrow batch, damaged blocks named by their offset. No Spark; ~1 s."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf

from genoflow.errors import InputError
from genoflow.io.vcf import bgzf as bgzf_module
from genoflow.io.vcf.bgzf import is_bgzf, line_batches, owned_text
from genoflow.storage.ranged import RangedFile


@pytest.fixture(params=["libdeflate", "zlib"], autouse=True)
def inflater(request, monkeypatch):
    """Every test with each inflater: libdeflate (where the system has it, as htslib's machines do) and zlib."""
    if request.param == "zlib":
        monkeypatch.setattr(bgzf_module, "_LIBDEFLATE", [None])
    elif bgzf_module._libdeflate() is None:
        pytest.fail("libdeflate.so.0 is not installed (Debian: libdeflate0, a dependency of bcftools)")
    return request.param


def write_bgzf(path: Path, text: bytes) -> RangedFile:
    with bgzf.BgzfWriter(str(path), "wb") as out:
        out.write(text)
    return RangedFile(str(path))


def sample_text(seed: int = 0, n_lines: int = 400) -> bytes:
    """Lines of very different lengths: some longer than a BGZF block, some empty, one without a break."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([0, 3, 50, 700, 9000, 70_000], size=n_lines, p=[0.05, 0.2, 0.3, 0.3, 0.13, 0.02])
    lines = [bytes([65 + i % 26]) * int(n) for i, n in enumerate(lengths)]
    return b"\n".join(lines) + b"\nlast line without a break"


def read_ranges(ranged: RangedFile, cuts: list[int]) -> list[bytes]:
    return [b"".join(owned_text(ranged, lo, hi, source="f")) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]


@pytest.mark.parametrize("n_ranges", [1, 2, 7, 40, 300])
def test_owned_text__ranges_share_the_lines_exactly(tmp_path, n_ranges):
    text = sample_text()
    ranged = write_bgzf(tmp_path / "f.gz", text)
    size = (tmp_path / "f.gz").stat().st_size
    cuts = sorted({0, size, *np.linspace(0, size, n_ranges + 1).astype(int).tolist()})
    pieces = read_ranges(ranged, cuts)
    assert b"".join(pieces) == text
    # Each range's text is whole lines: it ends at a line break, but for the one with the file's last line.
    nonempty = [p for p in pieces if p]
    assert all(p.endswith(b"\n") for p in nonempty[:-1])


def test_owned_text__a_line_that_ends_at_a_block_end(tmp_path):
    # BgzfWriter fills blocks of 65,536 bytes: the first line break is the first block's last byte.
    text = b"x" * 65_535 + b"\n" + b"y" * 10 + b"\n" + b"z" * 65_536 + b"\n"
    ranged = write_bgzf(tmp_path / "f.gz", text)
    size = (tmp_path / "f.gz").stat().st_size
    for cut in range(1, size, 97):
        assert b"".join(read_ranges(ranged, [0, cut, size])) == text


def test_line_batches__whole_lines_at_most_max_lines_each():
    text = b"a\n\nbb\nccc\nd"
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    batches = list(line_batches(iter(pieces), 2))
    assert [b.to_pylist() for b in batches] == [["a\n", "\n"], ["bb\n", "ccc\n"], ["d"]]
    assert list(line_batches(iter([]), 5)) == []
    firsts = list(line_batches(iter(pieces), 2, first_lines=1))
    assert [b.to_pylist() for b in firsts] == [["a\n"], ["\n", "bb\n"], ["ccc\n", "d"]]


def test_is_bgzf__tells_bgzf_from_plain_gzip(tmp_path):
    write_bgzf(tmp_path / "b.gz", b"x\n")
    assert is_bgzf((tmp_path / "b.gz").read_bytes()[:64])
    assert not is_bgzf(gzip.compress(b"x\n")[:64])


def test_owned_text__a_corrupt_block_names_its_offset(tmp_path):
    path = tmp_path / "f.gz"
    ranged = write_bgzf(path, sample_text(1))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"BGZF block at byte offset \d+ is (corrupt|truncated)"):
        read_ranges(ranged, [0, len(data)])


def test_owned_text__a_truncated_file(tmp_path):
    path = tmp_path / "f.gz"
    ranged = write_bgzf(path, sample_text(2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="is truncated"):
        read_ranges(ranged, [0, len(data) // 2])

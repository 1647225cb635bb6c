"""Tests of the reference by index (genoflow.io.reference) and the REF check (genoflow.io.fasta).

samtools is the independent reference: its ``faidx`` writes the .fai/.gzi we read and answers
``samtools faidx FILE REGION`` for the bases we fetch; Biopython's parser gives whole sequences.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest
from Bio import SeqIO

from genoflow.errors import InputError
from genoflow.io.fasta import check_ref_alleles, resolve_contig
from genoflow.io.reference import build_fai, open_reference
from genoflow.storage.ranged import RangedFile

VCF = "cohort.vcf.gz"
TEXT = ">chr1 first contig\nACGTacgtNN\nGGCC\n>chr2\nTTTTGA\n"
# Three contigs over several BGZF blocks (64 KiB each): line widths differ, one has a description,
# lower case and N runs, one is shorter than a line.
CONTIGS = [("chr1", 150_001, 60, ""), ("chr2", 70_000, 70, " the second, described"), ("chrM", 16, 60, "")]


def write_fasta(path, contigs=CONTIGS, seed=5) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    sequences, parts = {}, []
    for name, length, width, description in contigs:
        seq = "".join(rng.choice(list("ACGTNacgt"), length))
        sequences[name] = seq.upper()
        parts.append(f">{name}{description}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, length, width)))
    path.write_text("".join(parts))
    return sequences


def samtools(*args, cwd=None) -> str:
    return subprocess.run(["samtools", *map(str, args)], capture_output=True, text=True, check=True, cwd=cwd).stdout


def bgzip(plain, out) -> None:
    with open(out, "wb") as handle:
        subprocess.run(["bgzip", "-c", str(plain)], stdout=handle, check=True)
    samtools("faidx", out)  # writes out.fai and out.gzi


@pytest.fixture(scope="module")
def fastas(tmp_path_factory):
    """{'plain': path, 'bgzip': path} of the same FASTA, each with samtools' index, and the sequences."""
    folder = tmp_path_factory.mktemp("fasta")
    plain = folder / "ref.fa"
    sequences = write_fasta(plain)
    samtools("faidx", plain)
    bgzip(plain, folder / "ref.fa.gz")
    return {"plain": plain, "bgzip": folder / "ref.fa.gz"}, sequences


def copy_of(path, tmp_path, *suffixes):
    """``path`` and its index files among ``suffixes`` copied into ``tmp_path`` (mtimes kept)."""
    for suffix in ("", *suffixes):
        shutil.copy2(f"{path}{suffix}", tmp_path / f"{path.name}{suffix}")
    return tmp_path / path.name


def opened(path, **kwargs):
    return open_reference(RangedFile(str(path)), **kwargs)


# --- the index ------------------------------------------------------------------------------------


def test_build_fai__same_as_samtools_faidx(fastas):
    files, _ = fastas
    with open(files["plain"], "rb") as stream:
        assert build_fai(stream, source="ref.fa").to_text() == (files["plain"].parent / "ref.fa.fai").read_text()


def test_build_fai__crlf_lines_like_samtools(tmp_path):
    path = tmp_path / "crlf.fa"
    path.write_bytes(b">a x\r\nACGTA\r\nCG\r\n>b\r\nTT\r\n")
    samtools("faidx", path)
    with open(path, "rb") as stream:
        assert build_fai(stream, source="crlf.fa").to_text() == (tmp_path / "crlf.fa.fai").read_text()


@pytest.mark.parametrize("kind", ["plain", "bgzip"])
def test_fetch__matches_samtools_faidx_regions(fastas, kind):
    files, _ = fastas
    reference = opened(files[kind])
    assert reference.names == ("chr1", "chr2", "chrM")
    assert [reference.length(n) for n in reference] == [150_001, 70_000, 16]
    # 1-based inclusive samtools regions: line ends, a BGZF block boundary (65,280 bytes), contig ends.
    regions = [("chr1", 1, 1), ("chr1", 59, 62), ("chr1", 64_100, 66_000), ("chr1", 149_990, 150_001),
               ("chr2", 1, 70_000), ("chr2", 69_999, 70_000), ("chrM", 1, 16), ("chrM", 16, 16)]
    for name, start, end in regions:
        expected = "".join(samtools("faidx", files[kind], f"{name}:{start}-{end}").splitlines()[1:]).upper()
        assert reference.fetch(name, start - 1, end) == expected, (name, start, end)


@pytest.mark.parametrize("kind", ["plain", "bgzip"])
def test_bases__random_positions_match_biopython(fastas, kind):
    files, _ = fastas
    reference = opened(files[kind])
    with open(files["plain"]) as handle:
        parsed = {record.id: str(record.seq).upper() for record in SeqIO.parse(handle, "fasta")}
    rng = np.random.default_rng(1)
    for name, sequence in parsed.items():
        positions = rng.integers(0, len(sequence), 3000)
        got = reference.bases(name, positions).tobytes().decode()
        assert got == "".join(sequence[p] for p in positions)
        assert reference.fetch(name, 0, len(sequence)) == sequence


def test_indexed_reference__pickles_small_and_reads_where_it_lands(fastas):
    files, sequences = fastas
    reference = opened(files["bgzip"])
    reference.fetch("chr1", 0, 10)  # opens the file: the handle must not travel
    data = pickle.dumps(reference)
    assert len(data) < 4000
    assert pickle.loads(data).fetch("chr2", 100, 200) == sequences["chr2"][100:200]


def test_open_reference__missing_fai_built_once_into_the_cache(fastas, tmp_path, caplog):
    files, _ = fastas
    for kind, suffixes in (("plain", ()), ("bgzip", (".gzi",))):
        folder = tmp_path / kind
        folder.mkdir()
        fasta = copy_of(files[kind], folder, *suffixes)
        cache = tmp_path / "cache"
        with caplog.at_level("INFO", logger="genoflow.io.reference"):
            built = opened(fasta, index_cache=cache.as_uri())
        assert "indexing it once by streaming it" in caplog.text
        assert built.index.to_text() == (files[kind].parent / f"{files[kind].name}.fai").read_text()
        assert not (folder / f"{fasta.name}.fai").exists()  # the FASTA's folder is input: nothing written there
        (written,) = cache.glob(f"{fasta.name}.*.fai")
        caplog.clear()
        with caplog.at_level("INFO", logger="genoflow.io.reference"):
            again = opened(fasta, index_cache=cache.as_uri())
        assert "indexing" not in caplog.text and again.index_source.endswith(written.name)
        written.unlink()


def test_open_reference__without_cache_builds_in_memory(fastas, tmp_path):
    files, sequences = fastas
    reference = opened(copy_of(files["plain"], tmp_path))
    assert "indexed in memory" in reference.index_source and list(tmp_path.iterdir()) == [tmp_path / "ref.fa"]
    assert reference.fetch("chrM", 0, 16) == sequences["chrM"]


def test_open_reference__fai_older_than_fasta_is_rebuilt(fastas, tmp_path, caplog):
    files, _ = fastas
    fasta = copy_of(files["plain"], tmp_path, ".fai")
    fai = tmp_path / "ref.fa.fai"
    fai.write_text(fai.read_text().replace("chrM", "chrOld"))
    os.utime(fai, (os.stat(fasta).st_mtime - 100,) * 2)
    with caplog.at_level("WARNING", logger="genoflow.io.reference"):
        reference = opened(fasta, index_cache=(tmp_path / "cache").as_uri())
    assert "older than its FASTA" in caplog.text and "stale" in caplog.text
    assert "chrM" in reference and "chrOld" not in reference


def test_open_reference__fai_past_the_end_of_the_fasta_is_rebuilt(fastas, tmp_path, caplog):
    files, sequences = fastas
    fasta = copy_of(files["plain"], tmp_path, ".fai")
    fai = tmp_path / "ref.fa.fai"
    fai.write_text(fai.read_text().replace("chrM\t16\t", "chrM\t9016\t"))  # a longer chrM than the file has
    with caplog.at_level("WARNING", logger="genoflow.io.reference"):
        reference = opened(fasta)
    assert "rebuilding the index" in caplog.text
    assert reference.length("chrM") == 16 and reference.fetch("chrM", 0, 16) == sequences["chrM"]


@pytest.mark.parametrize(("edit", "contig", "problem"), [
    ((">chr2 the second", ">chr3 the second"), "chr2", "not '>chr2'"),  # same offsets, another name
    ((">chr1\n", ">chr1 xy\n", ", described\n", ", describ\n"), "chr1", "not the end of a line"),  # moved
])
def test_open_reference__index_that_disagrees_names_fasta_and_contig(fastas, tmp_path, edit, contig, problem):
    files, _ = fastas
    fasta = copy_of(files["plain"], tmp_path, ".fai")
    text = fasta.read_text()
    for old, new in zip(edit[::2], edit[1::2], strict=True):
        text = text.replace(old, new)
    fasta.write_text(text)  # as long as before
    os.utime(tmp_path / "ref.fa.fai", (os.stat(fasta).st_mtime + 100,) * 2)  # and the index still looks fresh
    with pytest.raises(InputError) as error:
        opened(fasta)
    assert error.value.source == str(fasta) and error.value.record == contig
    assert "disagrees with its index" in error.value.problem and "ref.fa.fai" in error.value.problem
    assert problem in error.value.problem


def test_open_reference__malformed_fai_names_its_line(fastas, tmp_path):
    files, _ = fastas
    fasta = copy_of(files["plain"], tmp_path, ".fai")
    fai = tmp_path / "ref.fa.fai"
    fai.write_text(fai.read_text().replace("chr2\t70000", "chr2\tseventy"))
    os.utime(fai, (os.stat(fasta).st_mtime + 100,) * 2)
    with pytest.raises(InputError) as error:
        opened(fasta)
    assert error.value.source == str(fai) and error.value.line == 2 and "non-integer" in error.value.problem


def test_open_reference__bgzip_without_gzi_says_how_to_make_one(fastas, tmp_path):
    files, _ = fastas
    fasta = copy_of(files["bgzip"], tmp_path, ".fai")
    with pytest.raises(InputError) as error:
        opened(fasta)
    assert error.value.source == str(fasta)
    assert "no .gzi index" in error.value.problem
    assert "samtools faidx ref.fa.gz" in error.value.problem and "bgzip -r ref.fa.gz" in error.value.problem


def test_open_reference__plain_gzip_is_refused(fastas, tmp_path):
    files, _ = fastas
    path = tmp_path / "ref.fa.gz"
    path.write_bytes(gzip.compress(files["plain"].read_bytes()))
    with pytest.raises(InputError, match="gzip-compressed but not bgzip"):
        opened(path)


# --- malformed FASTA (found while indexing) --------------------------------------------------------


def build_error(text: bytes) -> InputError:
    with pytest.raises(InputError) as error:
        build_fai(io.BytesIO(text), source="bad.fa")
    assert error.value.source == "bad.fa"
    return error.value


def test_build_fai__text_before_first_header():
    error = build_error(b"ACGT\n>chr1\nACGT\n")
    assert error.line == 1 and "expected a '>' header line" in error.problem


def test_build_fai__duplicate_name():
    error = build_error(b">a\nAC\n>b\nGG\n>a x\nTT\n")
    assert error.line == 5 and "duplicate sequence name 'a'" in error.problem


def test_build_fai__empty_sequence():
    error = build_error(b">a\n>b\nAC\n")
    assert error.line == 1 and "'a' is empty" in error.problem


def test_build_fai__invalid_character():
    error = build_error(b">a\nAC\n>b\nAC\nG1T\n")
    assert error.line == 5 and "invalid character '1' in sequence 'b'" in error.problem


def test_build_fai__line_lengths_differ_inside_a_sequence():
    error = build_error(b">a\nACGT\nAC\nACGT\n")
    assert error.line == 4 and error.record == "a" and "same length" in error.problem


def test_build_fai__no_sequences():
    assert "no sequences" in build_error(b"").problem


# --- contig names and the REF check ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "genome_sequence.fasta"
    path.write_text(TEXT)
    samtools("faidx", path)
    return opened(path)


def check_error(reference, contig, pos, ref, line_numbers=None) -> InputError:
    with pytest.raises(InputError) as error:
        check_ref_alleles(
            reference,
            np.array(contig, dtype=object),
            np.array(pos),
            np.array(ref, dtype=object),
            source=VCF,
            line_numbers=None if line_numbers is None else np.array(line_numbers),
        )
    assert error.value.source == VCF
    return error.value


def test_resolve_contig__exact_then_chr_prefix_either_way(small):
    assert resolve_contig("chr22", {"chr22", "22"}) == "chr22"
    assert resolve_contig("22", {"chr22"}) == "chr22"
    assert resolve_contig("chr22", {"22"}) == "22"
    assert resolve_contig("chrM", {"MT"}) == "MT"
    assert resolve_contig("MT", {"chrM"}) == "chrM"
    assert resolve_contig("chr23", {"chr22", "22"}) is None
    assert resolve_contig("1", small) == "chr1" and resolve_contig("3", small) is None


def test_check_ref_alleles__matching_single_and_multi_base(small):
    contigs, positions = ["chr1", "1", "chr2", "chr1"], [1, 3, 5, 11]
    refs = ["A", "gtac", "GA", "GGCC"]
    check_ref_alleles(small, np.array(contigs, dtype=object), np.array(positions), np.array(refs, dtype=object),
                      source=VCF)
    # The same records with one base changed are refused, each naming that record: the check compares.
    for i, wrong_base in enumerate(["C", "G", "C", "A"]):
        wrong = list(refs)
        wrong[i] = refs[i][:-1] + wrong_base
        error = check_error(small, contigs, positions, wrong, line_numbers=[10, 11, 12, 13])
        assert error.line == 10 + i and error.record == f"{contigs[i]}:{positions[i]}"


def test_check_ref_alleles__empty_input(small):
    check_ref_alleles(small, np.array([], dtype=object), np.array([], dtype=np.int64), np.array([]), source=VCF)
    # An empty batch beside a non-empty one: the empty one is accepted, the same reference still checks.
    error = check_error(small, ["chr2"], [1], ["A"])
    assert "REF is 'A' but the reference FASTA has 'T' at chr2:1" in error.problem


def test_check_ref_alleles__mismatch_names_line_record_and_both_alleles(small):
    error = check_error(small, ["chr1", "chr2"], [1, 2], ["A", "G"], line_numbers=[40, 41])
    assert error.line == 41
    assert error.record == "chr2:2"
    assert "REF is 'G' but the reference FASTA has 'T' at chr2:2" in error.problem
    assert VCF in str(error) and "line 41" in str(error)


def test_check_ref_alleles__multi_base_mismatch_in_last_base(small):
    error = check_error(small, ["chr1"], [1], ["ACGA"])
    assert error.line is None
    assert "'ACGA'" in error.problem and "'ACGT'" in error.problem


def test_check_ref_alleles__across_a_line_end(small):
    error = check_error(small, ["chr1"], [9], ["NNGA"])  # bases 9-12 are N N | G G across the line end
    assert "'NNGG' at chr1:9" in error.problem


def test_check_ref_alleles__first_record_in_input_order_across_contigs(small):
    error = check_error(small, ["chr2", "chr1", "chr1"], [1, 2, 1], ["T", "A", "C"], line_numbers=[5, 6, 7])
    assert error.line == 6


def test_check_ref_alleles__unknown_contig_names_the_index_and_lists_its_contigs(small):
    error = check_error(small, ["chr1", "chrX"], [1, 1], ["A", "A"], line_numbers=[3, 4])
    assert error.line == 4
    assert "'chrX' is not in the reference FASTA" in error.problem
    assert "genome_sequence.fasta.fai lists: chr1, chr2" in error.problem


def test_check_ref_alleles__ref_past_contig_end(small):
    error = check_error(small, ["chr2"], [5], ["GAT"])
    assert "outside contig 'chr2' (length 6)" in error.problem


@pytest.mark.parametrize("kind", ["plain", "bgzip"])
def test_check_ref_alleles__bgzip_and_plain_across_blocks(fastas, kind):
    files, sequences = fastas
    reference = opened(files[kind])
    pos = np.arange(1, 150_001, 97)
    refs = np.array([sequences["chr1"][p - 1:p + 1] for p in pos], dtype=object)
    check_ref_alleles(reference, np.full(len(pos), "chr1", dtype=object), pos, refs, source=VCF)
    refs[-7] = "A" if refs[-7][0] != "A" else "C"
    error = check_error(reference, np.full(len(pos), "1", dtype=object), pos, refs, line_numbers=np.arange(len(pos)))
    assert error.line == len(pos) - 7 and error.record == f"1:{pos[-7]}"

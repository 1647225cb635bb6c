"""Tests of genoflow.reads.align on real mappy: positions, projected bases, pairs, mapping rate, duplicates."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import pytest

from genoflow.errors import InputError
from genoflow.reads.align import align_chunk, project, run_align
from genoflow.reads.fastq_input import iter_read_chunks
from genoflow.reads.index import build_index, load_aligner
from genoflow.reads.schema import ALIGNED_READ_SCHEMA

COMPLEMENT = str.maketrans("ACGT", "TGCA")
LENGTH = 150


@dataclass
class Read:
    name: str
    sequence: str
    quality: bytes  # raw Phred
    contig: str
    start: int
    strand: int
    ref_bases: str  # expected projection
    ref_quals: bytes


def random_reference(seed: int = 11) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    return {"chr1": "".join(rng.choice(list("ACGT"), 30_000)), "chr2": "".join(rng.choice(list("ACGT"), 20_000))}


def distinct(reference: str, at: int) -> bool:
    """No base at at-1..at+1 repeats: a 1-base indel there has one alignment (no left/right shift)."""
    return len(set(reference[at - 1:at + 2])) == 3


def draw_read(rng, reference: dict[str, str], name: str, *, strand: int = 1, edits: str = "", contig: str = "chr1",
              start: int | None = None) -> Read:
    """A read of the reference with edits (s: substitution, i: 1-base insertion, d: 1-base deletion) at 40, 75,
    110 bases from its start; its expected projection on the reference and, for -1, reverse-complemented."""
    ref = reference[contig]
    while start is None or not all(distinct(ref, start + p) for p in (40, 75, 110)):
        start = int(rng.integers(200, len(ref) - 400))
    places = dict(zip((start + 40, start + 75, start + 110), edits, strict=False))
    read, projected, read_index, at = [], [], [], start
    while len(read) < LENGTH:
        edit = places.pop(at, None)
        if edit == "i":
            read.append(next(b for b in "ACGT" if b not in ref[at - 1:at + 1]))
            continue
        if edit == "d":
            projected.append("*"), read_index.append(None)
        else:
            base = ref[at] if edit is None else next(b for b in "ACGT" if b != ref[at])
            projected.append(base), read_index.append(len(read)), read.append(base)
        at += 1
    quality = bytes(rng.integers(15, 41, LENGTH).astype(np.uint8))
    ref_quals = bytes(0 if i is None else quality[i] for i in read_index)
    sequence = "".join(read)
    if strand < 0:
        sequence, quality = sequence[::-1].translate(COMPLEMENT), quality[::-1]
    return Read(name, sequence, quality, contig, start, strand, "".join(projected), ref_quals)


def to_fastq(reads: list[Read], suffix: str = "") -> bytes:
    return "".join(f"@{r.name}{suffix} x\n{r.sequence}\n+\n{bytes(q + 33 for q in r.quality).decode()}\n"
                   for r in reads).encode()


def write_fasta(path, reference: dict[str, str]) -> str:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in reference.items()))
    return str(path)


def chunk_of(reads: list[Read], mates: list[Read] | None = None, chunk_reads: int = 10_000):
    (chunk,) = iter_read_chunks(io.BytesIO(to_fastq(reads)), None if mates is None else io.BytesIO(to_fastq(mates)),
                                source_r1="r1.fq", source_r2="r2.fq", chunk_reads=chunk_reads)
    return chunk


@pytest.fixture(scope="module")
def reference():
    return random_reference()


@pytest.fixture(scope="module")
def aligner(reference, tmp_path_factory):
    return load_aligner(write_fasta(tmp_path_factory.mktemp("ref") / "ref.fa", reference), "sr")


def drawn_reads(reference, n: int = 60, seed: int = 5) -> list[Read]:
    rng = np.random.default_rng(seed)
    kinds = ["", "s", "sss", "d", "i", "sdi", "dsd"]
    return [draw_read(rng, reference, f"read{k}", strand=1 if k % 2 else -1, edits=kinds[k % len(kinds)],
                      contig="chr1" if k % 3 else "chr2") for k in range(n)]


def test_reads_map_to_their_positions_with_their_bases_projected_on_the_reference(reference, aligner):
    reads = drawn_reads(reference)
    rows, counts = align_chunk(aligner, "P1", chunk_of(reads), min_mapq=20)
    assert rows.schema == ALIGNED_READ_SCHEMA
    assert (counts.reads, counts.mapped, counts.kept) == (60, 60, 60)
    table = rows.to_pylist()
    for read, row in zip(reads, table, strict=True):
        assert (row["read_name"], row["contig"], row["start"], row["strand"]) == \
            (read.name, read.contig, read.start, read.strand), row["cigar"]
        assert row["ref_bases"].decode() == read.ref_bases, row["cigar"]
        assert row["ref_quals"] == read.ref_quals
        assert row["end"] - row["start"] == len(row["ref_bases"]) == len(row["ref_quals"])
        assert (row["mate"], row["mate_start"], row["pair_key"], row["patient"]) == (0, None, None, "P1")
        edits = "".join(op for _, op in re.findall(r"(\d+)([MIDS])", row["cigar"]) if op in "ID")
        assert edits.count("D") == read.ref_bases.count("*")
        assert edits.count("I") == len(read.sequence) - len(read.ref_bases.replace("*", ""))


def test_threads_give_the_same_rows(reference, aligner):
    chunk = chunk_of(drawn_reads(reference, n=40, seed=8))
    one, _ = align_chunk(aligner, "P1", chunk, min_mapq=20, threads=1)
    three, counts = align_chunk(aligner, "P1", chunk, min_mapq=20, threads=3)
    assert one.equals(three) and counts.kept == 40


def test_pairs_are_mapped_together_and_carry_their_mate(reference, aligner):
    rng = np.random.default_rng(9)
    firsts, seconds = [], []
    for k in range(20):
        start = int(rng.integers(200, 29_000))
        firsts.append(draw_read(rng, reference, f"pair{k}", start=start, edits="s"))
        seconds.append(draw_read(rng, reference, f"pair{k}", start=start + 250, strand=-1, edits="d"))
    (chunk,) = iter_read_chunks(io.BytesIO(to_fastq(firsts, "/1")), io.BytesIO(to_fastq(seconds, "/2")),
                                source_r1="r1.fq", source_r2="r2.fq", chunk_reads=100)
    rows, counts = align_chunk(aligner, "P2", chunk, min_mapq=20, threads=2)
    assert (counts.reads, counts.mapped, counts.kept) == (40, 40, 40)
    by_mate = {(row["read_name"], row["mate"]): row for row in rows.to_pylist()}
    for first, second in zip(firsts, seconds, strict=True):
        one, two = by_mate[first.name, 1], by_mate[second.name, 2]
        # The 5' ends: mate 1's start and mate 2's end (draw_read moves a start where an edit would be ambiguous).
        ends = sorted([(first.start, "+"), (second.start + len(second.ref_bases), "-")])
        key = "chr1:" + "".join(f"{position}{strand}" for position, strand in ends)
        score = sum(q for q in first.quality + second.quality if q >= 15)
        assert (one["pair_key"], one["pair_score"]) == (two["pair_key"], two["pair_score"]) == (key, score)
        assert (one["start"], one["strand"], one["mate_start"]) == (first.start, 1, second.start)
        assert (two["start"], two["strand"], two["mate_start"]) == (second.start, -1, first.start)
        assert two["ref_bases"].decode() == second.ref_bases and one["ref_bases"].decode() == first.ref_bases


def test_reads_of_another_genome_do_not_map(reference, aligner):
    other = random_reference(seed=99)
    rng = np.random.default_rng(4)
    reads = [draw_read(rng, other, f"x{k}") for k in range(200)]
    rows, counts = align_chunk(aligner, "P1", chunk_of(reads), min_mapq=20)
    assert counts.reads == 200 and counts.mapped <= 2 and len(rows) == counts.kept <= 2


def test_projection_of_a_soft_clipped_reverse_read():
    @dataclass
    class Hit:  # the fields of mappy.Alignment that project() reads
        strand: int
        q_st: int
        q_en: int
        cigar: list
        cigar_str: str

    bases, quals = b"AACCGGTTAC", bytes(range(10))
    # On the reverse complement GTAACCGGTT (qualities 9..0): 2 bases clipped, 3M 1I 2M 1D 1M, 1 base clipped.
    hit = Hit(strand=-1, q_st=1, q_en=8, cigar=[[3, 0], [1, 1], [2, 0], [1, 2], [1, 0]], cigar_str="3M1I2M1D1M")
    ref_bases, ref_quals, cigar = project(bases, quals, hit)
    assert cigar == "2S3M1I2M1D1M1S"
    assert (ref_bases, list(ref_quals)) == (b"AACGG*T", [7, 6, 5, 3, 2, 0, 1])


def sam_primary(sam: str) -> dict[str, tuple[str, int, str]]:
    hits = {}
    for line in sam.splitlines():
        if line.startswith("@"):
            continue
        fields = line.split("\t")
        if int(fields[1]) & 0x904 == 0:  # mapped, not secondary, not supplementary
            hits[fields[0]] = (fields[2], int(fields[3]) - 1, fields[5])
    return hits


def test_positions_and_cigars_agree_with_the_minimap2_cli(reference, aligner, tmp_path):
    rng = np.random.default_rng(12)
    reads = drawn_reads(reference, n=30, seed=13)
    # Reads that need clipping: 20 random bases on one end.
    for k in range(10):
        read = draw_read(rng, reference, f"clip{k}", strand=1 if k % 2 else -1)
        tail = "".join(rng.choice(list("ACGT"), 20))
        read.sequence = read.sequence[:130] + tail if k < 5 else tail + read.sequence[20:]
        reads.append(read)
    fasta = write_fasta(tmp_path / "ref.fa", reference)
    (tmp_path / "reads.fq").write_bytes(to_fastq(reads))
    sam = subprocess.run(["minimap2", "-ax", "sr", "-t", "1", fasta, str(tmp_path / "reads.fq")],
                         capture_output=True, text=True, check=True).stdout
    cli = sam_primary(sam)
    rows, _ = align_chunk(aligner, "P1", chunk_of(reads), min_mapq=0)
    ours = {row["read_name"]: (row["contig"], row["start"], row["cigar"]) for row in rows.to_pylist()}
    assert ours == cli and len(ours) == 40
    assert sum("S" in cigar for _, _, cigar in ours.values()) >= 8


# --------------------------------------------------------------------------------------------
# On Spark
# --------------------------------------------------------------------------------------------

PARAMS = {"preprocess": {"patient_dir": "raw/patient_data", "reference_fasta": "raw/ref.fa"},
          "reads": {"min_mapq": 20, "min_mapping_rate": 0.5}, "compute": {"chunk_reads": 7}}


def cohort(root, reference: dict[str, str]) -> dict[str, list]:
    """P1: 25 pairs, a worse copy of pair 0 (a PCR duplicate) and a pair sharing only mate 1's place;
    P2: 30 single-end reads, a copy of read 0 and one read of another genome."""
    rng = np.random.default_rng(21)
    firsts, seconds = [], []
    for k in range(25):
        start = int(rng.integers(200, 29_000))
        firsts.append(draw_read(rng, reference, f"pair{k}", start=start, edits="s"))
        seconds.append(draw_read(rng, reference, f"pair{k}", start=start + 300, strand=-1))
    for reads in (firsts, seconds):
        copy = Read(**{**reads[0].__dict__, "name": "copy0", "quality": bytes(q - 5 for q in reads[0].quality)})
        reads.insert(10, copy)
    # Not a duplicate: mate 1 where pair 0's is, mate 2 elsewhere.
    firsts.append(Read(**{**firsts[0].__dict__, "name": "near0"}))
    seconds.append(draw_read(rng, reference, "near0", start=seconds[0].start + 7, strand=-1))
    single = [draw_read(rng, reference, f"se{k}", strand=1 if k % 2 else -1) for k in range(30)]
    single.append(Read(**{**single[0].__dict__, "name": "se_copy"}))
    single.append(draw_read(rng, random_reference(seed=5), "foreign"))
    (root / "raw" / "patient_data" / "P1").mkdir(parents=True)
    (root / "raw" / "patient_data" / "P2").mkdir(parents=True)
    write_fasta(root / "raw" / "ref.fa", reference)
    (root / "raw/patient_data/P1/genome_sequence_R1.fastq.gz").write_bytes(gzip.compress(to_fastq(firsts, "/1")))
    (root / "raw/patient_data/P1/genome_sequence_R2.fastq.gz").write_bytes(gzip.compress(to_fastq(seconds, "/2")))
    (root / "raw/patient_data/P2/genome_sequence.fastq").write_bytes(to_fastq(single))
    return {"P1": firsts + seconds, "P2": single}


def test_run_align_writes_the_aligned_table_and_mapping_counts(spark, tmp_path, reference):
    from genoflow.storage import HadoopStorage

    reads = cohort(tmp_path, reference)
    storage = HadoopStorage(spark, tmp_path.as_uri())
    index_uri = storage.uri("steps/reads_index/k1/ref.mmi")
    assert build_index(storage, storage.uri("raw/ref.fa"), index_uri) == index_uri
    built = (tmp_path / "steps/reads_index/k1/ref.mmi").stat().st_mtime_ns
    build_index(storage, storage.uri("raw/ref.fa"), index_uri)  # committed: reused
    assert (tmp_path / "steps/reads_index/k1/ref.mmi").stat().st_mtime_ns == built
    with storage.step_output(storage.uri("steps/align/k2")) as output:
        counts = run_align(spark, storage, output, PARAMS, index_uri=index_uri)
    written = json.loads((tmp_path / "steps/align/k2/mapping.json").read_text())
    assert written == json.loads(json.dumps(counts))
    assert {p: (c["reads"], c["mapped"], c["kept"], c["duplicates"]) for p, c in counts.items()} == \
        {"P1": (54, 54, 54, 2), "P2": (32, 31, 31, 0)}
    assert counts["P2"]["mapping_rate"] == pytest.approx(31 / 32)
    assert counts["P1"]["fastq"][1].endswith("P1/genome_sequence_R2.fastq.gz")
    table = pq.read_table(tmp_path / "steps/align/k2/reads")
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in ALIGNED_READ_SCHEMA]
    rows = table.to_pylist()
    duplicates = pq.read_table(tmp_path / "steps/align/k2/duplicates").to_pylist()
    assert duplicates == [{"patient": "P1", "read_name": "copy0"}]
    expected = {(p, r.name, r.start, r.ref_bases) for p, rs in reads.items() for r in rs if r.name != "foreign"}
    assert {(r["patient"], r["read_name"], r["start"], r["ref_bases"].decode()) for r in rows} == expected
    assert {r["mate"] for r in rows if r["patient"] == "P2"} == {0}


def test_reads_of_the_wrong_genome_fail_the_step_naming_the_patient_and_rate(spark, tmp_path, reference):
    from genoflow.storage import HadoopStorage

    cohort(tmp_path, reference)
    rng = np.random.default_rng(3)
    foreign = [draw_read(rng, random_reference(seed=77), f"f{k}") for k in range(20)]
    (tmp_path / "raw/patient_data/P3").mkdir()
    (tmp_path / "raw/patient_data/P3/genome_sequence.fastq.gz").write_bytes(gzip.compress(to_fastq(foreign)))
    storage = HadoopStorage(spark, tmp_path.as_uri())
    index_uri = build_index(storage, storage.uri("raw/ref.fa"), storage.uri("steps/reads_index/k1/ref.mmi"))
    with pytest.raises(InputError, match=r"only 0\.0 % of patient P3's 20 reads map to .*ref\.fa") as error:
        with storage.step_output(storage.uri("steps/align/k3")) as output:
            run_align(spark, storage, output, PARAMS, index_uri=index_uri)
    assert error.value.source.endswith("P3/genome_sequence.fastq.gz") and error.value.record == "P3"
    assert not (tmp_path / "steps/align/k3").exists()
    assert [p.name for p in (tmp_path / "steps/align").iterdir()] == []


def test_a_truncated_mate_file_fails_the_step_naming_both_files_and_the_line(spark, tmp_path, reference):
    from genoflow.storage import HadoopStorage

    cohort(tmp_path, reference)
    r2 = tmp_path / "raw/patient_data/P1/genome_sequence_R2.fastq.gz"
    lines = gzip.decompress(r2.read_bytes()).splitlines(keepends=True)
    r2.write_bytes(gzip.compress(b"".join(lines[:4 * 20])))  # 20 of 27 records
    storage = HadoopStorage(spark, tmp_path.as_uri())
    index_uri = build_index(storage, storage.uri("raw/ref.fa"), storage.uri("steps/reads_index/k1/ref.mmi"))
    with pytest.raises(InputError, match=r"ends after 20 reads, but .*genome_sequence_R1.fastq.gz goes on") as error:
        with storage.step_output(storage.uri("steps/align/k4")) as output:
            run_align(spark, storage, output, PARAMS, index_uri=index_uri)
    assert error.value.source.endswith("P1/genome_sequence_R2.fastq.gz") and error.value.line == 81
    assert not (tmp_path / "steps/align/k4").exists()


def test_a_reference_minimap2_cannot_index_is_named_and_leaves_no_index(spark, tmp_path):
    from genoflow.storage import HadoopStorage

    (tmp_path / "ref.fa").write_text("this is not\na FASTA file\n")
    storage = HadoopStorage(spark, tmp_path.as_uri())
    with pytest.raises(InputError, match="minimap2 cannot index this reference") as error:
        build_index(storage, storage.uri("ref.fa"), storage.uri("index/ref.mmi"))
    assert error.value.source.endswith("/ref.fa")
    assert not (tmp_path / "index").exists()


def test_the_aligner_is_loaded_once_per_process(reference, aligner, tmp_path):
    path = write_fasta(tmp_path / "other.fa", reference)
    assert load_aligner(path, "sr") is load_aligner(path, "sr") is not aligner


@pytest.mark.integration
def test_run_align_on_hdfs_reads_the_fastqs_and_the_index_through_webhdfs(hdfs, spark, tmp_path, reference):
    """The reference, FASTQs and index on a real HDFS: the driver copies the FASTA out to index it and puts the
    index back; the tasks stream the FASTQs and copy the index once per worker through WebHDFS."""
    from genoflow.storage import HadoopStorage

    spark.sparkContext._jsc.hadoopConfiguration().set(f"dfs.namenode.http-address.{hdfs.namenode}",
                                                      f"127.0.0.1:{hdfs.http_port}")
    cohort(tmp_path, reference)
    hdfs.dfs("-mkdir", "-p", "/tests/align")
    hdfs.dfs("-put", "-f", str(tmp_path / "raw"), "/tests/align/")
    storage = HadoopStorage(spark, f"{hdfs.uri}/tests/align")
    index_uri = build_index(storage, storage.uri("raw/ref.fa"), storage.uri("steps/reads_index/k1/ref.mmi"))
    with storage.step_output(storage.uri("steps/align/k2")) as output:
        counts = run_align(spark, storage, output, PARAMS, index_uri=index_uri)
    assert {p: (c["reads"], c["mapped"], c["kept"], c["duplicates"]) for p, c in counts.items()} == \
        {"P1": (54, 54, 54, 2), "P2": (32, 31, 31, 0)}
    assert storage.list(storage.uri("steps/align/k2")) == ["_SUCCESS", "duplicates", "mapping.json", "reads"]
    assert storage.exists(index_uri)


def test_duplicate_scores_sum_qualities_of_15_and_more_and_empty_reads_score_0():
    from genoflow.reads.align import _quality_sums

    quals = np.array([20, 10, 30, 40, 15], np.uint8)
    assert _quality_sums(quals, np.array([0, 2, 2, 4, 5, 5])).tolist() == [20, 0, 70, 15, 0]
    assert _quality_sums(np.zeros(0, np.uint8), np.array([0, 0])).tolist() == [0]

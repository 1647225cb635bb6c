"""Tests of the call step's Spark part (genoflow.reads.call) on synthetic reads with known genotypes.

Reads are built directly in the aligned-read table's schema (no aligner): every 5 bp of each contig a
100 bp read of one of the sample's two haplotypes, alternately, so each position has 10 reads of
each haplotype (20x), with 1 % of bases replaced by another base at Q20 (a calibrated error rate).
bcftools (mpileup | call -m, on the same reads written as SAM) is the independent reference.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genoflow.genotypes import MISSING, pack_dosages, unpack_dosages
from genoflow.reads.call import CALLED_DDL, _mate_overlaps, run_call, sample_concordance
from genoflow.reads.schema import ALIGNED_READ_SCHEMA, DUPLICATE_SCHEMA
from genoflow.storage.hadoop import HadoopStorage
from tests.reference_fasta import indexed_reference

CONTIGS = {"chrB": 12_000, "chrA": 8_000}  # reference order is not name order
PATIENTS = ["p0", "p1", "p2", "p3", "p4"]
SAMPLES = [*PATIENTS, "p5"]  # p5 has no reads
READ_LEN, STEP, ERROR, QUAL = 100, 5, 0.01, 20
PARAMS = {"reads": {"min_mapq": 20, "min_baseq": 13, "min_alt_reads": 2, "min_qual": 20, "min_dp": 2,
                    "prior": 1.1e-3},
          "compute": {"block_mb": 4}}  # windows of ~700 bp: reads span window boundaries
NOISE_SITE = ("chrA", 4321)  # only filtered reads (MAPQ 5, duplicates) carry an ALT here


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """(reference, reads Parquet path, truth {(contig, pos1, ref, alt): dosages}, FASTA path)."""
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("call")
    sequences = {name: "".join(rng.choice(list("ACGT"), n)) for name, n in CONTIGS.items()}
    reference = indexed_reference(folder, sequences)
    truth, haplotypes = {}, {}
    for name, length in CONTIGS.items():
        seq = np.frombuffer(sequences[name].encode(), dtype=np.uint8)
        positions = np.sort(rng.choice(np.arange(READ_LEN, length - READ_LEN, 50), 10, replace=False))
        haps = {p: [seq.copy(), seq.copy()] for p in PATIENTS}
        for pos in positions.tolist():
            ref = int(seq[pos])
            alt = int(rng.choice([b for b in b"ACGT" if b != ref]))
            dosages = rng.integers(0, 3, len(PATIENTS))
            dosages[rng.integers(len(PATIENTS))] = rng.integers(1, 3)  # at least one carrier
            for patient, d in zip(PATIENTS, dosages.tolist(), strict=True):
                for h in range(d):
                    haps[patient][h][pos] = alt
            truth[(name, pos + 1, chr(ref), chr(alt))] = np.append(dosages, MISSING).astype(np.int8)
        haplotypes[name] = haps
    rows = []
    for name, length in CONTIGS.items():
        for patient in PATIENTS:
            for k, start in enumerate(range(0, length - READ_LEN + 1, STEP)):
                bases = haplotypes[name][patient][k % 2][start:start + READ_LEN].copy()
                wrong = rng.random(READ_LEN) < ERROR
                shift = rng.integers(1, 4, int(wrong.sum()))
                bases[wrong] = np.frombuffer(b"ACGT", dtype=np.uint8)[
                    (np.searchsorted(np.frombuffer(b"ACGT", dtype=np.uint8), bases[wrong]) + shift) % 4]
                rows.append(_read(patient, name, start, bases.tobytes(), f"{patient}:{name}:{k}"))
    # Reads the filters must drop: 12 of MAPQ 5 and 12 duplicates, all with a T where the reference has not.
    contig, pos1 = NOISE_SITE
    noise = bytearray(sequences[contig][pos1 - 50:pos1 + 50].encode())
    noise[49] = ord("T") if noise[49] != ord("T") else ord("G")
    for i in range(12):
        rows.append(_read("p0", contig, pos1 - 50, bytes(noise), f"lowmapq{i}", mapq=5))
        rows.append(_read("p1", contig, pos1 - 50, bytes(noise), f"dup{i}", duplicate=True))
    reads = write_reads(folder / "reads", rows)
    return reference, reads, truth, folder / "reference.fa", rows


def write_reads(folder, rows) -> str:
    """An aligned-read table's folder: the rows as they come, unsorted, in one file (what call must also read)."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "duplicate"} for r in rows],
                                        schema=ALIGNED_READ_SCHEMA), folder / "part-00000.parquet",
                   row_group_size=len(rows) // 7 + 1)  # several row groups, each spanning much of a contig
    return str(folder)


def call(spark, reference, reads: str, out, *, samples=SAMPLES, params=PARAMS, duplicates: list | None = None):
    """run_call on a reads folder; ``duplicates`` (patient, read_name) pairs go to a duplicates/ folder."""
    storage = HadoopStorage(spark, Path(out).parent.as_uri())
    dup_uri = None
    if duplicates is not None:
        dup_uri = f"{out}-duplicates"
        Path(dup_uri).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([{"patient": p, "read_name": r} for p, r in duplicates],
                                            schema=DUPLICATE_SCHEMA), f"{dup_uri}/part-00000.parquet")
    return run_call(spark, storage, reads, reference, samples, str(out), params, duplicates_uri=dup_uri)


def _read(patient, contig, start, bases, name, mapq=60, duplicate=False) -> dict:
    return {"patient": patient, "contig": contig, "start": start, "end": start + len(bases), "strand": 1,
            "mapq": mapq, "cigar": f"{len(bases)}M", "read_name": name, "mate": 0, "mate_start": None,
            "pair_key": None, "pair_score": None, "ref_bases": bases, "ref_quals": bytes([QUAL]) * len(bases),
            "duplicate": duplicate}


@pytest.fixture(scope="module")
def called(spark, cohort, tmp_path_factory):
    reference, reads, _, _, rows = cohort
    out = tmp_path_factory.mktemp("called") / "called"
    result = call(spark, reference, reads, out,
                  duplicates=[(r["patient"], r["read_name"]) for r in rows if r["duplicate"]])
    # Part files in name order are the table's order (no sort of the output).
    table = pa.concat_tables([pq.read_table(f) for f in sorted(out.glob("part-*.parquet"))])
    return result, table, out


def test_run_call__genotypes_match_the_truth(cohort, called):
    _, _, truth, _, _ = cohort
    result, table, _ = called
    rows = table.to_pylist()
    found = {(r["contig"], r["pos"], r["ref"], r["alt"]): unpack_dosages(r["dosages"]) for r in rows}
    assert set(found) == set(truth)  # every site, nothing else (the filtered reads' ALT included)
    wrong = {k: (found[k].tolist(), truth[k].tolist()) for k in truth if not np.array_equal(found[k], truth[k])}
    assert not wrong
    assert result["sites"] == result["snvs"] == len(truth) and result["candidates"] >= len(truth)
    assert result["missing_fraction"] == pytest.approx(1 / len(SAMPLES))  # p5, nothing else
    assert 18 < result["mean_depth"] * len(SAMPLES) / len(PATIENTS) < 22  # 20x in the 5 with reads
    assert result["window_length"] < min(CONTIGS.values()) and result["windows"] > 20
    assert result["reads"] == len(PATIENTS) * sum((n - READ_LEN) // STEP + 1 for n in CONTIGS.values())


def test_run_call__per_sample_columns(called):
    _, table, _ = called
    n = len(SAMPLES)
    for r in table.to_pylist():
        gq = np.frombuffer(r["gq"], dtype=np.uint8)
        dp = np.frombuffer(r["dp"], dtype="<u2")
        assert len(gq) == len(dp) == n
        assert dp[-1] == 0 and gq[-1] == 0  # p5: no reads
        assert (dp[:-1] >= 15).all() and (dp[:-1] <= 20).all()  # 20x less the errors and the Q filter (none)
        assert (gq[:-1] >= 20).all()
        assert r["mean_dp"] == pytest.approx(dp[:-1].mean()) and r["mean_gq"] == pytest.approx(gq[:-1].mean())
        assert r["qual"] >= 20 and r["id"] == "." and r["gene"] == "" and r["line"] is None
        assert r["call_rate"] is None and r["qc_pass"] is None


def test_run_call__schema_and_order(spark, called):
    _, table, out = called
    expected = spark.createDataFrame([], CALLED_DDL).schema
    written = spark.read.parquet(str(out)).schema
    assert [(f.name, f.dataType) for f in written] == [(f.name, f.dataType) for f in expected]
    rank = {name: i for i, name in enumerate(CONTIGS)}
    keys = [(rank[c], p) for c, p in zip(table.column("contig").to_pylist(), table.column("pos").to_pylist(),
                                         strict=True)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert keys[0][0] == 0  # chrB (first in the reference) first


def test_run_call__unknown_patient_is_an_error(spark, cohort, tmp_path):
    reference, reads, _, _, _ = cohort
    with pytest.raises(Exception, match="patient 'p4', who is not among the 4 samples"):
        call(spark, reference, reads, tmp_path / "out", samples=PATIENTS[:4])


def test_sample_concordance__names_the_swap(spark):
    key = "contig string, pos long, ref string, alt string, dosages binary"
    genotypes = np.array([[0, 1, 2, 1], [1, 0, 0, 2], [2, 0, 1, 0], [1, 2, 2, 0], [0, 0, 1, 1]], dtype=np.int8)
    called = genotypes.copy()
    called[0, 0] = MISSING
    # The VCF has samples in another order and a, b swapped; one extra site only the VCF has.
    vcf = genotypes[:, [1, 0, 3, 2]]  # columns: b-as-"a", a-as-"b", d, c
    sites = [("chr1", 10 * i + 1, "A", "G") for i in range(5)]
    called_df = spark.createDataFrame([(*s, pack_dosages(d)) for s, d in zip(sites, called, strict=True)], key)
    vcf_rows = [(*s, pack_dosages(d)) for s, d in zip(sites, vcf, strict=True)]
    vcf_df = spark.createDataFrame([*vcf_rows, ("chr1", 99, "C", "T", pack_dosages(np.zeros(4)))], key)
    result = sample_concordance(called_df, vcf_df, called_samples=["a", "b", "c", "d"],
                                vcf_samples=["a", "b", "d", "c"])
    assert result["c"] == (5, 1.0) and result["d"] == (5, 1.0)
    # Swapped: a agrees with the VCF's "a" at 1 of the 4 sites where a is called (a is missing at the
    # first), b with the VCF's "b" at 1 of 5.
    assert result["a"] == (4, 0.25) and result["b"] == (5, 0.2)


@pytest.mark.skipif(not (shutil.which("samtools") and shutil.which("bcftools")), reason="needs samtools, bcftools")
def test_run_call__agrees_with_bcftools(cohort, called, tmp_path):
    """The same reads as SAM (CIGAR all M: no deletions here) -> samtools sort -> bcftools mpileup -B
    (no BAQ: base qualities as given) -q 20 -Q 13 | bcftools call -m: the same sites and genotypes."""
    _, _, truth, fasta, rows = cohort
    _, table, _ = called
    sam = tmp_path / "reads.sam"
    with sam.open("w") as f:
        f.write("@HD\tVN:1.6\tSO:unsorted\n")
        f.writelines(f"@SQ\tSN:{name}\tLN:{n}\n" for name, n in CONTIGS.items())
        f.writelines(f"@RG\tID:{p}\tSM:{p}\n" for p in PATIENTS)
        for r in rows:
            flag = 1024 if r["duplicate"] else 0
            qual = "".join(chr(q + 33) for q in r["ref_quals"])
            f.write(f"{r['read_name']}\t{flag}\t{r['contig']}\t{r['start'] + 1}\t{r['mapq']}\t{r['cigar']}\t*\t0\t0\t"
                    f"{r['ref_bases'].decode()}\t{qual}\tRG:Z:{r['patient']}\n")
    bam = tmp_path / "reads.bam"
    subprocess.run(["samtools", "sort", "-o", str(bam), str(sam)], check=True, capture_output=True)
    subprocess.run(["samtools", "index", str(bam)], check=True)
    mpileup = subprocess.run(["bcftools", "mpileup", "-B", "-q", "20", "-Q", "13", "-a", "FORMAT/DP", "-f", str(fasta),
                              "-Ou", str(bam)], check=True, capture_output=True)
    vcf = subprocess.run(["bcftools", "call", "-m", "-v", "-Ov"], input=mpileup.stdout, check=True,
                         capture_output=True).stdout.decode()
    header = next(line for line in vcf.splitlines() if line.startswith("#CHROM")).split("\t")
    order = [header.index(p) for p in PATIENTS]
    theirs = {}
    for line in vcf.splitlines():
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if float(fields[5]) < PARAMS["reads"]["min_qual"]:
            continue
        gts = [fields[i].split(":")[0] for i in order]
        theirs[(fields[0], int(fields[1]), fields[3], fields[4])] = [
            MISSING if "." in g else sum(int(a) for a in g.replace("|", "/").split("/")) for g in gts]
    ours = {(r["contig"], r["pos"], r["ref"], r["alt"]): unpack_dosages(r["dosages"])[:len(PATIENTS)].tolist()
            for r in table.to_pylist()}
    assert set(theirs) == set(ours) == set(truth)
    assert theirs == ours


def test_run_call__reads_past_the_contig_end_are_an_error(spark, cohort, tmp_path):
    reference, _, _, _, _ = cohort
    rows = [_read("p0", "chrA", CONTIGS["chrA"] - 50, b"A" * READ_LEN, "beyond")]
    reads = write_reads(tmp_path / "reads", rows)
    with pytest.raises(Exception, match="a read ends at 8050 on 'chrA', which has 8000 bases"):
        call(spark, reference, reads, tmp_path / "out")


def test_mate_overlaps__second_mate_skips_the_overlap():
    reads = pa.table({"patient": ["a", "a", "a", "a", "b", "a"], "read_name": ["r1", "r1", "r2", "r2", "r1", "r3"],
                      "mate": pa.array([1, 2, 2, 1, 2, 2], pa.int8()), "start": [100, 150, 400, 500, 120, 10]})
    ends = pa.array([200, 250, 450, 600, 220, 60])
    skip = _mate_overlaps(reads, ends)
    # r1 of a: 150..200 skipped in mate 2; r2 of a: no overlap; b's r1 and a's r3 have no mate 1 here.
    assert skip["skip_start"].tolist() == [0, 150, 500, 0, 0, 0]
    assert (skip["skip_end"] - skip["skip_start"]).tolist() == [0, 50, 0, 0, 0, 0]


def test_run_call__overlapping_mates_count_once(spark, cohort, tmp_path):
    # 6 pairs of p0 whose mates cover the same 100 bp and carry the same ALT: 6 fragments, DP 6, not 12.
    reference, _, _, _, _ = cohort
    seq = reference.fetch("chrA", 1000, 1100)
    alt = seq[:50] + ("T" if seq[50] != "T" else "G") + seq[51:]
    rows = []
    for i in range(6):
        for mate in (1, 2):
            row = _read("p0", "chrA", 1000, alt.encode(), f"pair{i}")
            rows.append({**row, "mate": mate, "mate_start": 1000, "strand": 1 if mate == 1 else -1})
    call(spark, reference, write_reads(tmp_path / "reads", rows), tmp_path / "out")
    (site,) = pq.read_table(tmp_path / "out").to_pylist()
    assert site["pos"] == 1051 and np.frombuffer(site["dp"], dtype="<u2").tolist() == [6, 0, 0, 0, 0, 0]
    assert unpack_dosages(site["dosages"]).tolist() == [2, -1, -1, -1, -1, -1]


def test_run_call__no_reads_left_writes_an_empty_table(spark, cohort, tmp_path):
    reference, reads, _, _, _ = cohort
    result = call(spark, reference, reads, tmp_path / "out",
                  params={**PARAMS, "reads": {**PARAMS["reads"], "min_mapq": 61}})
    assert result["sites"] == result["reads"] == result["windows"] == 0
    written = spark.read.parquet(str(tmp_path / "out"))
    assert written.count() == 0 and [f.name for f in written.schema] == [f.name for f in
                                                                       spark.createDataFrame([], CALLED_DDL).schema]


def test_run_call__same_table_as_a_plain_window_loop(cohort, called):
    """The Spark path (placed partitions, evidence-only pileup) against the kernels run window by window
    in one process with the full pileup: the same sites, genotypes, GQ and DP, QUAL to rounding."""
    from genoflow.reads.genotyping import call_window
    from genoflow.reads.pileup import pileup_window

    reference, _, _, _, rows = cohort
    kept = [r for r in rows if r["mapq"] >= PARAMS["reads"]["min_mapq"] and not r["duplicate"]]
    expected = []
    for contig in CONTIGS:  # reference order
        reads = sorted((r for r in kept if r["contig"] == contig), key=lambda r: r["start"])
        for win_start in range(0, CONTIGS[contig], 1000):
            here = [r for r in reads if r["start"] < win_start + 1000 and r["end"] > win_start]
            win_len = min(1000, CONTIGS[contig] - win_start)
            pileup = pileup_window([r["ref_bases"] for r in here], [r["ref_quals"] for r in here],
                                   [r["start"] for r in here], [SAMPLES.index(r["patient"]) for r in here],
                                   len(SAMPLES), win_start, win_len, 13, mapq=[r["mapq"] for r in here])
            ref = np.frombuffer(reference.fetch(contig, win_start, win_start + win_len).encode(), dtype=np.uint8)
            calls = call_window(pileup, ref, min_alt_reads=2, min_qual=20.0, min_dp=2, prior=1.1e-3)
            expected += [(contig, int(p) + 1, pack_dosages(d), g.tobytes(), d_.astype("<u2").tobytes(), q)
                         for p, d, g, d_, q in zip(calls.pos, calls.dosage, calls.gq, calls.dp, calls.qual,
                                                   strict=True)]
    _, table, out = called
    got = [(r["contig"], r["pos"], r["dosages"], r["gq"], r["dp"], r["qual"]) for r in table.to_pylist()]
    assert [g[:5] for g in got] == [e[:5] for e in expected] and len(got) > 10
    assert np.allclose([g[5] for g in got], [e[5] for e in expected], rtol=1e-9)
    assert sum(pq.read_metadata(f).num_rows > 0 for f in out.glob("part-*.parquet")) > 1  # spread over tasks


def test_regions__each_reads_only_the_row_groups_that_overlap_it(cohort):
    """Sorted files (one contig per row group, as align writes them): a region lists the groups its windows
    overlap, no others; a group without statistics (several contigs) goes to every region."""
    from genoflow.reads.call import _boundaries, _regions, _window_weights

    reference = cohort[0]
    spans = [{"file": f, "group": g, "contig": "chrB", "start": 1000 * g, "end": 1000 * g + 1100, "rows": 10,
              "bases": 1000} for f in range(2) for g in range(12)]
    spans.append({"file": 2, "group": 0, "contig": None, "start": None, "end": None, "rows": 5, "bases": 500})
    regions = _regions(spans, reference, 500, _boundaries(_window_weights(spans, reference, 500), 4))
    assert len(regions) == 4
    for region in regions:
        groups = dict(region["groups"])
        assert groups.pop(2) == [0]
        lo, hi = region["lo"], region["hi"]
        expected = [g for g in range(12) if 1000 * g < hi and 1000 * g + 1100 > lo]  # hi: a window start
        assert groups == {0: expected, 1: expected} and len(expected) < 12

"""The multi-sample VCF export on the shared local[2] Spark session, read back by bcftools, tabix and our own
VCF ingest. A small block budget cuts 3,000 records into ~10 parts: the concatenation and the shifting of
each part's offsets are what can go wrong, and the index is compared bin by bin with htslib's own.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genoflow.io.tabix import gzip_members, read_tabix_index
from genoflow.io.vcf_export import _BLOCKS_PER_PART, CELL_BYTES, export_vcf
from genoflow.storage import HadoopStorage
from tests.conftest import require_tool
from tests.reference_fasta import indexed_reference

pytestmark = pytest.mark.slow  # runs htslib's tabix and bcftools as the reference


@pytest.fixture(autouse=True, scope="module")
def _htslib():
    require_tool("tabix", "bcftools")

N_SAMPLES = 20
CONTIGS = {"chr2": 40_000, "chr1": 60_000, "chrM": 16_000}  # reference order is not name order
N_RECORDS = 3_000
ROWS_PER_PART = 300
BUDGET = ROWS_PER_PART // _BLOCKS_PER_PART * N_SAMPLES * CELL_BYTES
SAMPLES = [f"P{i:03d}" for i in range(N_SAMPLES)]
DDL = "contig string, pos long, id string, ref string, alt string, dosages binary, qual double, gq binary, dp binary"


@pytest.fixture(scope="module")
def sequences():
    rng = np.random.default_rng(11)
    return {name: "".join(rng.choice(list("ACGT"), length)) for name, length in CONTIGS.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sequences):
    return indexed_reference(tmp_path_factory.mktemp("reference"), sequences)


@pytest.fixture(scope="module")
def table(sequences) -> pd.DataFrame:
    """A called table in shuffled order: SNVs and some deletions, missing genotypes, GQ and DP."""
    rng = np.random.default_rng(5)
    rows = []
    per_contig = {"chr2": 1_000, "chr1": 1_700, "chrM": 300}
    for contig, n in per_contig.items():
        seq = sequences[contig]
        for pos in np.sort(rng.choice(np.arange(1, len(seq) - 20), n, replace=False)).tolist():
            ref = seq[pos - 1 : pos - 1 + (1 if rng.random() < 0.9 else int(rng.integers(2, 8)))]
            alt = ref[0] if len(ref) > 1 else "ACGT"[("ACGT".index(ref) + 1) % 4]
            dosages = rng.choice([-1, 0, 1, 2], N_SAMPLES, p=[0.05, 0.6, 0.25, 0.1]).astype(np.int8)
            gq = rng.integers(0, 100, N_SAMPLES).astype(np.uint8)
            dp = rng.choice([0, 7, 30, 999, 65535], N_SAMPLES).astype("<u2")
            rows.append((contig, pos, f"rs{len(rows)}" if rng.random() < 0.5 else "", ref, alt, dosages.tobytes(),
                         float(rng.uniform(0, 300)) if rng.random() < 0.9 else None, gq.tobytes(), dp.tobytes()))
    assert len(rows) == N_RECORDS
    frame = pd.DataFrame(rows, columns=[c.split()[0] for c in DDL.split(", ")])
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def exported(spark, table, reference, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    storage = HadoopStorage(spark, folder.as_uri())
    df = spark.createDataFrame(table, DDL).repartition(3)
    result = export_vcf(spark, df, SAMPLES, reference, storage.uri("cohort.vcf.gz"), storage, budget=BUDGET)
    return folder, result


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    rank = table["contig"].map({name: i for i, name in enumerate(CONTIGS)})
    return table.assign(rank=rank).sort_values(["rank", "pos", "ref", "alt"]).reset_index(drop=True)


def _files(folder: Path) -> list[str]:
    """The folder's files, less the checksum files Hadoop's local file system keeps next to them."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".crc"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True)


def test_export_vcf__bcftools_reads_the_table_back(exported, table):
    folder, result = exported
    vcf = str(folder / "cohort.vcf.gz")
    assert result.n_records == N_RECORDS and result.n_parts >= 8
    assert _files(folder) == ["cohort.vcf.gz", "cohort.vcf.gz.tbi"]  # no temporaries
    view = subprocess.run(["bcftools", "view", "--no-version", vcf], capture_output=True, text=True, check=True)
    assert view.stderr == ""
    assert "##fileformat=VCFv4.3" in view.stdout and "##contig=<ID=chr1,length=60000>" in view.stdout
    query = _run("bcftools", "query", "-f", "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%INFO/AC\t%INFO/AN[\t%GT:%GQ:%DP]\n", vcf)
    expected = _sorted(table)
    lines = [line.split("\t") for line in query.stdout.splitlines()]
    assert len(lines) == N_RECORDS
    gt_dosage = {"./.": -1, "0/0": 0, "0/1": 1, "1/1": 2}
    for row, line in zip(expected.itertuples(), lines, strict=True):
        dosages = np.frombuffer(row.dosages, np.int8)
        assert line[:5] == [row.contig, str(row.pos), row.id or ".", row.ref, row.alt]
        cells = [cell.split(":") for cell in line[7:]]
        assert [gt_dosage[c[0]] for c in cells] == dosages.tolist()
        called = dosages >= 0
        assert [int(line[5]), int(line[6])] == [int(dosages[called].sum()), 2 * int(called.sum())]
        assert [int(c[2]) for c in cells] == np.frombuffer(row.dp, "<u2").tolist()
        assert [c[1] for c in cells] == [str(q) if d >= 0 else "." for q, d in zip(row.gq, dosages, strict=True)]


def test_export_vcf__index_is_htslibs_and_regions_work(exported, table, tmp_path):
    folder, _ = exported
    vcf = folder / "cohort.vcf.gz"
    assert _run("tabix", "-l", str(vcf)).stdout.split() == list(CONTIGS)
    copy = tmp_path / "copy.vcf.gz"
    shutil.copy(vcf, copy)
    _run("tabix", "-p", "vcf", str(copy))
    ours, htslib = (read_tabix_index(Path(f"{p}.tbi").read_bytes()) for p in (vcf, copy))
    assert ours["names"] == htslib["names"]
    assert [r["bins"] for r in ours["refs"]] == [r["bins"] for r in htslib["refs"]]
    assert [r["linear"] for r in ours["refs"]] == [r["linear"] for r in htslib["refs"]]
    assert gzip_members(Path(f"{vcf}.tbi").read_bytes()) == gzip_members(Path(f"{copy}.tbi").read_bytes())

    expected = _sorted(table)
    rng = np.random.default_rng(2)
    for _ in range(40):
        contig = str(rng.choice(list(CONTIGS)))
        lo = int(rng.integers(1, CONTIGS[contig]))
        hi = lo + int(rng.choice([0, 10, 3_000, 20_000]))
        end = expected["pos"] + expected["ref"].str.len() - 1
        want = expected[(expected["contig"] == contig) & (expected["pos"] <= hi) & (end >= lo)]
        got = _run("tabix", str(vcf), f"{contig}:{lo}-{hi}").stdout.splitlines()
        wanted = list(zip(want["contig"], want["pos"].astype(str), strict=True))
        assert [tuple(line.split("\t")[:2]) for line in got] == wanted, (contig, lo, hi)
    regions = _run("bcftools", "view", "-H", "-r", "chr1:20000-30000", str(vcf))
    assert regions.stderr == "" and len(regions.stdout.splitlines()) == int(
        ((expected["contig"] == "chr1") & (expected["pos"] <= 30_000)
         & (expected["pos"] + expected["ref"].str.len() - 1 >= 20_000)).sum())


def test_export_vcf__our_vcf_ingest_reads_the_same_dosages(spark, exported, table, reference, tmp_path):
    from genoflow.pipeline.vcf_ingest import ingest_vcf, read_vcf_header

    folder, _ = exported
    uri = (folder / "cohort.vcf.gz").as_uri()
    header = read_vcf_header(spark, uri)
    assert list(header.samples) == SAMPLES
    out = (tmp_path / "table").as_uri()
    ingest_vcf(spark, uri, header, out, reference=reference, genes=None,
               p={"min_call_rate": 0.0, "min_maf": 0.0, "min_hwe_p": 0.0})
    back = spark.read.parquet(out).select("contig", "pos", "ref", "alt", "dosages").toPandas()
    key = ["contig", "pos", "ref", "alt"]
    merged = _sorted(table).merge(back, on=key, suffixes=("", "_back"), validate="one_to_one")
    assert len(merged) == N_RECORDS
    assert (merged["dosages"].map(bytes) == merged["dosages_back"].map(bytes)).all()


def test_export_vcf__genotype_table_without_calls(spark, table, reference, tmp_path):
    storage = HadoopStorage(spark, tmp_path.as_uri())
    df = spark.createDataFrame(table[["contig", "pos", "id", "ref", "alt", "dosages"]].head(200),
                               "contig string, pos long, id string, ref string, alt string, dosages binary")
    result = export_vcf(spark, df, SAMPLES, [(n, length) for n, length in CONTIGS.items()],
                        storage.uri("plain.vcf.gz"), storage)
    assert result.n_parts == 1
    view = subprocess.run(["bcftools", "view", "-H", str(tmp_path / "plain.vcf.gz")], capture_output=True, text=True,
                          check=True)
    assert view.stderr == ""
    first = view.stdout.splitlines()[0].split("\t")
    assert first[8] == "GT" and all(cell in ("./.", "0/0", "0/1", "1/1") for cell in first[9:])
    assert "DP=" not in first[7]


def test_export_vcf__empty_table_gives_a_valid_empty_vcf(spark, tmp_path):
    storage = HadoopStorage(spark, tmp_path.as_uri())
    df = spark.createDataFrame([], DDL)
    result = export_vcf(spark, df, SAMPLES, list(CONTIGS.items()), storage.uri("empty.vcf.gz"), storage)
    assert (result.n_records, result.n_parts) == (0, 0)
    vcf = str(tmp_path / "empty.vcf.gz")
    assert _run("bcftools", "view", "-H", vcf).stdout == "" and _run("tabix", "-l", vcf).stdout == ""
    assert _run("bcftools", "query", "-l", vcf).stdout.split() == SAMPLES


def test_export_vcf__refuses_bad_input_and_leaves_nothing(spark, table, tmp_path):
    storage = HadoopStorage(spark, tmp_path.as_uri())
    df = spark.createDataFrame(table.head(50), DDL)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['dosages'\]"):
        export_vcf(spark, df.drop("dosages"), SAMPLES, list(CONTIGS.items()), storage.uri("a.vcf.gz"), storage)
    with pytest.raises(ValueError, match="unique"):
        export_vcf(spark, df, ["P0"] * N_SAMPLES, list(CONTIGS.items()), storage.uri("a.vcf.gz"), storage)
    with pytest.raises(Exception, match=r"not in the reference"):  # raised in a task: Spark wraps it
        export_vcf(spark, df, SAMPLES, [("chr2", 40_000)], storage.uri("a.vcf.gz"), storage)
    assert _files(tmp_path) == []
    (tmp_path / "b.vcf.gz").write_bytes(b"")
    with pytest.raises(FileExistsError, match="b.vcf.gz already exists"):
        export_vcf(spark, df, SAMPLES, list(CONTIGS.items()), storage.uri("b.vcf.gz"), storage)


@pytest.mark.integration
def test_export_vcf__on_hdfs_the_same_bytes_as_on_file(hdfs, spark, exported, table, reference, tmp_path):
    """Parts written by the tasks through WebHDFS, streamed together by the driver on HDFS: the same VCF and
    index, byte for byte, as the file:// export of the same table and budget."""
    spark.sparkContext._jsc.hadoopConfiguration().set(f"dfs.namenode.http-address.{hdfs.namenode}",
                                                      f"127.0.0.1:{hdfs.http_port}")
    storage = HadoopStorage(spark, f"{hdfs.uri}/tests/vcf_export")
    df = spark.createDataFrame(table, DDL).repartition(3)
    result = export_vcf(spark, df, SAMPLES, reference, storage.uri("cohort.vcf.gz"), storage, budget=BUDGET)
    assert result.n_parts == exported[1].n_parts
    assert storage.list(storage.uri()) == ["cohort.vcf.gz", "cohort.vcf.gz.tbi"]
    for name in ("cohort.vcf.gz", "cohort.vcf.gz.tbi"):
        hdfs.dfs("-get", f"/tests/vcf_export/{name}", str(tmp_path / name))
        assert (tmp_path / name).read_bytes() == (exported[0] / name).read_bytes(), name

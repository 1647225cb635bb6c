"""A bgzip reference FASTA on a real HDFS: opened by its samtools index, its bases read through WebHDFS by
Spark's Python workers while a VCF on HDFS is ingested, and a REF that disagrees caught naming the record."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from Bio import bgzf

from genoflow.errors import InputError
from genoflow.pipeline.preprocess import REFERENCE_INDEX_DIR, read_reference
from genoflow.pipeline.vcf_ingest import ingest_vcf, read_vcf_header
from genoflow.storage import HadoopStorage

pytestmark = pytest.mark.integration

P = {"vcf_chunk_lines": 200, "min_call_rate": 0.0, "min_maf": 0.0, "min_hwe_p": 0.0}
N_SITES = 1500


@pytest.fixture(scope="module")
def root(hdfs, spark, tmp_path_factory):
    """A storage root on HDFS holding ``ref.fa.gz`` (+ samtools' .fai and .gzi) and ``noindex/ref.fa.gz`` (.gzi only).

    The session's Hadoop configuration gets the NameNode's HTTP address, as a client's hdfs-site.xml
    gives it (the test HDFS listens on a free port, not 9870)."""
    local = tmp_path_factory.mktemp("reference")
    rng = np.random.default_rng(14)
    sequences = {"chr21": "".join(rng.choice(list("ACGT"), 5_000)), "chr22": "".join(rng.choice(list("ACGT"), 300_000))}
    (local / "ref.fa").write_text("".join(f">{name} random\n" + "".join(seq[i:i + 60] + "\n"
                                                                         for i in range(0, len(seq), 60))
                                          for name, seq in sequences.items()))
    with open(local / "ref.fa.gz", "wb") as out:
        subprocess.run(["bgzip", "-c", str(local / "ref.fa")], stdout=out, check=True)
    subprocess.run(["samtools", "faidx", str(local / "ref.fa.gz")], check=True)  # .fai and .gzi
    path = "/tests/reference"
    hdfs.dfs("-mkdir", "-p", f"{path}/noindex")
    hdfs.dfs("-put", "-f", *(str(local / f"ref.fa.gz{s}") for s in ("", ".fai", ".gzi")), path)
    hdfs.dfs("-put", "-f", *(str(local / f"ref.fa.gz{s}") for s in ("", ".gzi")), f"{path}/noindex")
    spark.sparkContext._jsc.hadoopConfiguration().set(f"dfs.namenode.http-address.{hdfs.namenode}",
                                                      f"127.0.0.1:{hdfs.http_port}")
    return {"uri": f"{hdfs.uri}{path}", "sequences": sequences, "local": local}


def put_vcf(hdfs, local, name: str, sequence: str, bad_site: int | None = None) -> tuple[str, list[int]]:
    """A bgzip VCF on contig "22" with REF from ``sequence`` (one wrong at ``bad_site``) put on HDFS."""
    rng = np.random.default_rng(3)
    positions = np.sort(rng.choice(np.arange(1, len(sequence) - 3), N_SITES, replace=False)).tolist()
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=22>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS0\tS1\tS2"]
    for k, pos in enumerate(positions):
        ref = sequence[pos - 1:pos + 1] if k % 5 == 0 else sequence[pos - 1]  # some two-base REFs
        if k == bad_site:
            ref = {"A": "C", "C": "G", "G": "T", "T": "A"}[ref[0]] + ref[1:]
        alt = "A" if ref[0] != "A" else "C"
        lines.append(f"22\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t0/1\t0/0\t1/1")
    with bgzf.BgzfWriter(str(local / name), "wb") as out:
        out.write(("\n".join(lines) + "\n").encode())
    hdfs.dfs("-put", "-f", str(local / name), "/tests/reference/")
    return f"{hdfs.uri}/tests/reference/{name}", positions


def test_reference_on_hdfs__ref_alleles_checked_through_webhdfs(hdfs, spark, root):
    storage = HadoopStorage(spark, root["uri"])
    reference = read_reference(storage, storage.uri("ref.fa.gz"))
    assert reference.file.webhdfs == hdfs.webhdfs_url and reference.index_source.endswith("/ref.fa.gz.fai")
    assert reference.names == ("chr21", "chr22") and reference.blocks is not None
    sequence = root["sequences"]["chr22"]
    assert reference.fetch("chr22", 123_456, 123_556) == sequence[123_456:123_556]  # on the driver, by WebHDFS

    vcf, positions = put_vcf(hdfs, root["local"], "good.vcf.gz", sequence)
    ingest_vcf(spark, vcf, read_vcf_header(spark, vcf), f"{root['uri']}/out-good", reference=reference, genes=None,
               p=P)
    table = spark.read.parquet(f"{root['uri']}/out-good").select("contig", "pos").orderBy("pos").toPandas()
    assert table["pos"].tolist() == positions and set(table["contig"]) == {"chr22"}  # the FASTA's spelling

    bad = N_SITES - 40
    vcf, positions = put_vcf(hdfs, root["local"], "bad.vcf.gz", sequence, bad_site=bad)
    with pytest.raises(InputError) as error:
        ingest_vcf(spark, vcf, read_vcf_header(spark, vcf), f"{root['uri']}/out-bad", reference=reference,
                   genes=None, p=P)
    assert error.value.source == vcf
    assert error.value.record == f"22:{positions[bad]}" and error.value.line == 3 + bad + 1
    assert f"but the reference FASTA has '{sequence[positions[bad] - 1]}" in error.value.problem


def test_reference_on_hdfs__missing_fai_built_once_under_the_storage_root(hdfs, spark, root):
    storage = HadoopStorage(spark, root["uri"])
    uri = storage.uri("noindex", "ref.fa.gz")
    built = read_reference(storage, uri)
    cache = "/".join(REFERENCE_INDEX_DIR)
    listing = hdfs.webhdfs(f"/tests/reference/{cache}", "LISTSTATUS")["FileStatuses"]["FileStatus"]
    names = [s["pathSuffix"] for s in listing]
    assert len(names) == 1 and names[0].startswith("ref.fa.gz.") and names[0].endswith(".fai")  # no temporary left
    assert built.index.to_text() == (root["local"] / "ref.fa.gz.fai").read_text()  # what samtools wrote
    again = read_reference(storage, uri)
    assert again.index_source == f"{root['uri']}/{cache}/{names[0]}"
    assert again.fetch("chr21", 0, 5_000) == root["sequences"]["chr21"]

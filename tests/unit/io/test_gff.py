"""Tests of genoflow.io.gff: gene reading and the vectorised position lookup."""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import io
import pickle
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from genoflow.errors import InputError
from genoflow.io.gff import GENE_SCHEMA, Gene, GeneIndex, read_genes

SRC = "reference_genome/genome_annotations.gff"


def gff(*features: str) -> io.BytesIO:
    return io.BytesIO(("##gff-version 3\n" + "".join(f + "\n" for f in features)).encode())


def feature(seqid="chr1", kind="gene", start=100, end=200, attributes="ID=g1;Name=GENE1"):
    return "\t".join([seqid, "sim", kind, str(start), str(end), ".", "+", ".", attributes])


def genes() -> io.BytesIO:
    return gff(
        feature(start=100, end=200, attributes="ID=g1;Name=BRCA%2C1"),
        feature(kind="mRNA", start=100, end=200, attributes="ID=t1;Parent=g1"),
        feature(start=150, end=400, attributes="ID=g2;Name=OVERLAP"),
        feature(start=1000, end=1000, attributes="ID=g3"),
        feature(seqid="chr2", start=1, end=50, attributes="ID=g4;Name=TP53"),
        "##FASTA",
        ">chr1",
        "ACGT",
    )


def read_error(stream) -> InputError:
    with pytest.raises(InputError) as error:
        read_genes(stream, source=SRC)
    assert error.value.source == SRC and SRC in str(error.value)
    return error.value


def test_read_genes__only_gene_features_with_names():
    index = read_genes(genes(), source=SRC)
    assert [g.name for g in index.genes] == ["BRCA,1", "OVERLAP", "g3", "TP53"]  # Name, else ID
    assert (index.genes[0].start, index.genes[0].end, index.genes[0].id) == (100, 200, "g1")
    assert len(index) == 4


def test_read_genes__ensembl_gene_kinds_are_genes():
    # Ensembl's GFF3 types non-coding genes ncRNA_gene and pseudogene; GENCODE calls them all gene.
    stream = gff(
        feature(kind="ncRNA_gene", start=10, end=20, attributes="ID=gene:ENSG1;Name=MIR1"),
        feature(kind="pseudogene", start=30, end=40, attributes="ID=gene:ENSG2;Name=PSG1"),
        feature(kind="lnc_RNA", start=10, end=20, attributes="ID=transcript:ENST1;Parent=gene:ENSG1"),
        feature(kind="pseudogenic_transcript", start=30, end=40, attributes="ID=transcript:ENST2"),
        # FlyBase: a pseudogene is a transcript of a gene (it has a Parent), not a gene of its own.
        feature(kind="pseudogene", start=32, end=38, attributes="ID=FBtr1;Parent=gene:ENSG2"),
    )
    assert [(g.name, g.id) for g in read_genes(stream, source=SRC).genes] == [("MIR1", "gene:ENSG1"),
                                                                              ("PSG1", "gene:ENSG2")]


def test_gene_index_annotate__boundaries_overlap_and_intergenic():
    index = read_genes(genes(), source=SRC)
    pos = np.array([99, 100, 149, 150, 200, 201, 400, 401, 999, 1000, 1001])
    names = index.annotate(np.array(["chr1"] * len(pos)), pos)
    assert names.dtype == object
    assert names.tolist() == [
        "",
        "BRCA,1",
        "BRCA,1",
        "BRCA,1",
        "BRCA,1",
        "OVERLAP",
        "OVERLAP",
        "",
        "",
        "g3",
        "",
    ]


def test_gene_index_annotate__contig_names_reconciled_and_unknown_contig():
    index = read_genes(genes(), source=SRC)
    names = index.annotate(np.array(["2", "chr2", "chr1", "chr9"], dtype=object), np.array([10, 51, 120, 10]))
    assert names.tolist() == ["TP53", "", "BRCA,1", ""]


def test_gene_index_annotate__nested_genes_first_in_file_wins():
    index = read_genes(
        gff(
            feature(start=10, end=100, attributes="Name=OUTER"),
            feature(start=40, end=60, attributes="Name=INNER"),
            feature(start=50, end=55, attributes="Name=INNERMOST"),
        ),
        source=SRC,
    )
    names = index.annotate(np.array(["chr1"] * 4), np.array([39, 50, 61, 101]))
    assert names.tolist() == ["OUTER", "OUTER", "OUTER", ""]
    later_first = read_genes(
        gff(feature(start=40, end=60, attributes="Name=INNER"), feature(start=10, end=100)), source=SRC
    )
    assert later_first.annotate(np.array(["chr1"] * 3), np.array([39, 50, 61])).tolist() == [
        "GENE1",
        "INNER",
        "GENE1",
    ]


def test_read_genes__wrong_column_count_names_line():
    error = read_error(gff(feature(), "chr1\tsim\tgene\t1\t2"))
    assert error.line == 3 and "expected 9 tab-separated columns, found 5" in error.problem


def test_read_genes__non_integer_coordinates_name_line():
    error = read_error(gff(feature(), feature(start="1.5e3")))
    assert error.line == 3 and "start '1.5e3' is not a positive integer" in error.problem
    error = read_error(gff(feature(kind="exon"), feature(end="x")))
    assert error.line == 3 and "end 'x'" in error.problem


def test_read_genes__coordinates_of_other_features_are_not_parsed():
    # Deliberate: exon/CDS/UTR lines (most of a file) are never split, for speed; their coordinates are unused.
    index = read_genes(gff(feature(kind="exon", end="x"), feature()), source=SRC)
    assert index.to_arrow().to_pylist() == [{"seqid": "chr1", "start": 100, "end": 200, "id": "g1", "name": "GENE1"}]


def test_read_genes__start_after_end():
    error = read_error(gff(feature(start=300, end=200)))
    assert error.line == 2 and "after end" in error.problem


def test_read_genes__no_genes():
    assert "no 'gene' features" in read_error(gff(feature(kind="exon"))).problem




def gtf(*lines: str, header: str = "#!genome-build GRCh38\n") -> io.BytesIO:
    return io.BytesIO((header + "".join(line + "\n" for line in lines)).encode())


def gtf_line(kind="gene", start=100, end=200, gene="ENSG1", name=None, seqid="1", extra=""):
    attributes = f'gene_id "{gene}"; gene_version "5";' + (f' gene_name "{name}";' if name else "") + extra
    return feature(seqid=seqid, kind=kind, start=start, end=end, attributes=attributes)


def rows(index) -> list[tuple]:
    return [tuple(row.values()) for row in index.to_arrow().to_pylist()]


def test_read_genes__gtf_gene_lines_named_gene_name_then_gene_id():
    stream = gtf(
        gtf_line(name="DDX11L1"),
        gtf_line(kind="transcript", start=100, end=150, extra=' transcript_id "ENST1";'),
        gtf_line(kind="exon", start=90, end=300),  # outside its gene: gene lines win over exons
        gtf_line(start=500, end=900, gene="ENSG2"),
        gtf_line(start=50, end=60, gene="ENSG3", name="A;B", seqid="chr2"),
    )
    assert rows(read_genes(stream, source="genes.gtf")) == [
        ("1", 100, 200, "ENSG1", "DDX11L1"),
        ("1", 500, 900, "ENSG2", "ENSG2"),
        ("chr2", 50, 60, "ENSG3", "A;B"),
    ]


def test_read_genes__gtf_without_gene_lines_spans_transcripts_and_exons_by_gene_id():
    stream = gtf(
        gtf_line(kind="exon", start=300, end=400, gene="B", name="BETA"),
        gtf_line(kind="exon", start=100, end=150, gene="A"),
        gtf_line(kind="CDS", start=1, end=5000, gene="A"),  # CDS lie inside exons: not used
        gtf_line(kind="transcript", start=90, end=160, gene="A"),
        gtf_line(kind="exon", start=250, end=260, gene="B", name="BETA"),
    )
    index = read_genes(stream, source="refGene.gtf.gz")
    assert rows(index) == [("1", 250, 400, "B", "BETA"), ("1", 90, 160, "A", "A")]  # first appearance order
    assert index.annotate(np.array(["chr1"] * 3), np.array([255, 95, 200])).tolist() == ["BETA", "A", ""]


def test_read_genes__gtf_errors_name_line():
    error = read_error(gtf(gtf_line(kind="exon"), gtf_line(kind="exon", seqid="2")))
    assert error.line == 3 and "gene_id 'ENSG1' is on contig '2' here but on '1' at line 2" in error.problem
    error = read_error(gtf(gtf_line(), feature(attributes='transcript_id "T1";')))
    assert error.line == 3 and "without a gene_id" in error.problem


def test_read_genes__format_from_pragma_then_file_name_then_attributes():
    as_gtf = gtf_line(name="G")
    assert rows(read_genes(gtf(as_gtf, header=""), source="annotation.txt"))[0][3:] == ("ENSG1", "G")
    assert rows(read_genes(gtf(feature(attributes="ID=g1"), header=""), source="a.gff"))[0][3:] == ("g1", "g1")
    # A GFF3 gene named by gene_name (GENCODE's GFF3), and a pragma that overrides a .gtf name.
    stream = gff(feature(attributes="ID=ENSG9.1;gene_name=TP53;gene_type=protein_coding"))
    assert rows(read_genes(stream, source="gencode.gtf"))[0][3:] == ("ENSG9.1", "TP53")


def test_read_genes__gzip_crlf_text_streams_and_sequences_without_fasta_pragma():
    plain = genes().getvalue()
    expected = rows(read_genes(genes(), source=SRC))
    assert rows(read_genes(io.BytesIO(gzip.compress(plain)), source=SRC + ".gz")) == expected
    assert rows(read_genes(io.BytesIO(plain.replace(b"\n", b"\r\n")), source=SRC)) == expected
    assert rows(read_genes(io.StringIO(plain.decode()), source=SRC)) == expected
    bare_fasta = plain.replace(b"##FASTA\n", b"")
    assert rows(read_genes(io.BytesIO(bare_fasta), source=SRC)) == expected


def test_read_genes__truncated_gzip_names_file():
    data = gzip.compress(b"".join(genes().getvalue() for _ in range(2000)))
    error = read_error(io.BytesIO(data[: len(data) // 2]))
    assert "gzip stream is truncated" in error.problem


def test_read_genes__line_numbers_deep_in_large_files():
    # Several 1 MB chunks: genes are found without splitting the exon lines, and still numbered exactly.
    exons = [feature(kind="exon", start=k, end=k + 9, attributes=f"Parent=t{k}") for k in range(1, 40_001)]
    index = read_genes(gff(*exons, "###", feature(start=7, end=8, attributes="ID=deep"), *exons), source=SRC)
    assert rows(index) == [("chr1", 7, 8, "deep", "deep")]
    error = read_error(gff(*exons, "###", *exons, feature(start=9, end=8), *exons))
    assert error.line == 80_003 and "start 9 is after end 8" in error.problem
    error = read_error(gff(*exons, "chr1\tsim\texon\t1\t2", *exons))
    assert error.line == 40_002 and "found 5" in error.problem
    # Blank lines, then sequences (with and without ##FASTA) deep in the file: nothing after them is read.
    gene = feature(start=7, end=8, attributes="ID=seen")
    for fasta in (["##FASTA", ">chr1"], [">chr1"]):
        stream = gff(*exons, "", gene, "", *exons, *fasta, feature(attributes="ID=in_fasta"), "ACGT", *exons)
        assert rows(read_genes(stream, source=SRC)) == [("chr1", 7, 8, "seen", "seen")]


def test_gene_index__arrow_table_pickle_and_genes():
    index = read_genes(genes(), source=SRC)
    table = index.to_arrow()
    assert table.schema == GENE_SCHEMA and table.column("name").to_pylist() == ["BRCA,1", "OVERLAP", "g3", "TP53"]
    copy = pickle.loads(pickle.dumps(index))
    pos = np.arange(90, 1010)
    expected = index.annotate(np.full(len(pos), "1"), pos).tolist()
    assert copy.annotate(np.full(len(pos), "chr1"), pos).tolist() == expected and "OVERLAP" in expected
    assert len(copy) == 4 and copy.genes[0] == Gene(seqid="chr1", start=100, end=200, id="g1", name="BRCA,1")
    assert GeneIndex(table).to_arrow().equals(table)


# --- An Ensembl-shaped synthetic annotation, written with Arrow compute (no Python loop over lines) ---

# GRCh38 primary contigs and their lengths in Mb (rounded); genes are spread in proportion.
CONTIG_MB = dict(zip([*map(str, range(1, 23)), "X", "Y", "MT"], (
    248, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135, 133, 114, 107, 102, 90, 83, 80, 59, 64, 47, 51, 156, 57, 1),
    strict=True))
KINDS = {"gff3": ["gene", "mRNA", "exon", "CDS", "five_prime_UTR", "start_codon", "stop_codon", "three_prime_UTR"],
         "gtf": ["gene", "transcript", "exon", "CDS", "UTR", "start_codon", "stop_codon", "UTR"]}


def _genes(rng, n_genes: int) -> dict:
    """Genes sorted by contig and start, log-normal lengths (median 20 kb): many overlap, as real ones do."""
    mb = np.array(list(CONTIG_MB.values()), dtype=float)
    contig = np.sort(rng.choice(len(mb), size=n_genes, p=mb / mb.sum()))
    length = np.clip(rng.lognormal(np.log(20_000), 1.2, n_genes), 200, 2_000_000).astype(np.int64)
    start = (rng.random(n_genes) * (mb[contig] * 1e6 - length)).astype(np.int64) + 1
    order = np.lexsort((start, contig))
    return {"contig": contig[order], "start": start[order], "end": start[order] + length[order] - 1,
            "named": rng.random(n_genes) > 0.1}  # ~10% without a name, as Ensembl's novel genes


def _rows(rng, genes: dict) -> dict:
    """Feature rows in Ensembl order: gene, then per transcript: transcript, exon+CDS pairs, UTR/codon rows."""
    start, end = genes["start"], genes["end"]
    n_tx = 1 + rng.poisson(2, len(start))
    tx_gene = np.repeat(np.arange(len(start)), n_tx)
    inner = np.r_[False, tx_gene[1:] == tx_gene[:-1]]  # the first transcript spans its gene
    third = (end - start)[tx_gene] // 3
    a = start[tx_gene] + (rng.random(len(tx_gene)) * third).astype(np.int64) * inner
    b = end[tx_gene] - (rng.random(len(tx_gene)) * third).astype(np.int64) * inner
    n_ex = 1 + rng.poisson(5, len(tx_gene))  # exons cut the transcript into slots; the last ends at its end
    ex_tx = np.repeat(np.arange(len(tx_gene)), n_ex)
    j = np.arange(len(ex_tx)) - np.repeat(np.cumsum(n_ex) - n_ex, n_ex)
    slot = ((b - a + 1) // n_ex)[ex_tx]
    ex_a = a[ex_tx] + j * slot
    ex_b = np.where(j == n_ex[ex_tx] - 1, b[ex_tx], ex_a + np.maximum(slot // 2, 1) - 1)
    n_g, n_t, n_e = len(start), len(tx_gene), len(ex_tx)
    tx_of_extra = np.repeat(np.arange(n_t), 4)
    rows = {
        "gene": np.r_[np.arange(n_g), tx_gene, np.repeat(tx_gene[ex_tx], 2), tx_gene[tx_of_extra]],
        "tx": np.r_[np.full(n_g, -1), np.arange(n_t), np.repeat(ex_tx, 2), tx_of_extra],
        "rank": np.r_[np.zeros(n_g + n_t, np.int64), 1 + np.arange(2 * n_e), 2 * n_e + 1 + np.arange(4 * n_t)],
        "kind": np.r_[np.zeros(n_g, np.int64), np.ones(n_t, np.int64), np.tile([2, 3], n_e),
                      np.tile([4, 5, 6, 7], n_t)],
        "start": np.r_[start, a, np.repeat(ex_a, 2), np.repeat(a, 4)],
        "end": np.r_[end, b, np.repeat(ex_b, 2), np.repeat(a + 2, 4)],
    }
    order = np.lexsort((rows["rank"], rows["tx"], rows["gene"]))
    return {key: value[order] for key, value in rows.items()}


def _str(values) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _cat(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars."""
    return pc.binary_join_element_wise(*parts, "")


def _gene_ids(index) -> pa.Array:
    return _cat("ENSG", pc.utf8_lpad(_str(index), 11, "0"))


def _attributes(rows: dict, named: np.ndarray, fmt: str) -> pa.Array:
    gene_id, tx_id = _gene_ids(rows["gene"]), _cat("ENST", pc.utf8_lpad(_str(np.maximum(rows["tx"], 0)), 11, "0"))
    is_gene, is_tx = pa.array(rows["kind"] == 0), pa.array(rows["kind"] == 1)
    name = pc.if_else(pa.array(named[rows["gene"]]), _cat("GENE", _str(rows["gene"])), None)
    if fmt == "gtf":
        transcript = pc.if_else(is_gene, "", _cat(' transcript_id "', tx_id, '";'))
        return _cat('gene_id "', gene_id, '"; gene_version "3";', transcript,
                    pc.fill_null(_cat(' gene_name "', name, '";'), ""), ' gene_biotype "protein_coding";')
    gene = _cat("ID=gene:", gene_id, pc.fill_null(_cat(";Name=", name), ""), ";biotype=protein_coding")
    child = _cat(pc.if_else(is_tx, _cat("ID=transcript:", tx_id, ";Parent=gene:", gene_id), "Parent="),
                 pc.if_else(is_tx, "", _cat("transcript:", tx_id)))
    return pc.if_else(is_gene, gene, child)


def _lines(rows: dict, genes: dict, fmt: str) -> memoryview:
    """The feature lines of ``rows``, as one buffer of text."""
    contigs = np.array(list(CONTIG_MB))
    lines = pc.binary_join_element_wise(
        pa.array(contigs[genes["contig"][rows["gene"]]]), "ensembl", pa.array(np.array(KINDS[fmt])[rows["kind"]]),
        _str(rows["start"]), _str(rows["end"]), ".", "+", ".", _cat(_attributes(rows, genes["named"], fmt), "\n"),
        "\t")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


def ensembl_like(path, n_genes: int, fmt: str, *, compress: bool = False, seed: int = 14) -> dict:
    """Write an Ensembl-shaped GFF3 or GTF (~52 lines per gene: 60k genes make ~3.1M lines).

    Returns the genes in file order (``seqid``, ``start``, ``end``, ``id``, ``name`` as `read_genes`
    should name them) and ``n_lines``.
    """
    rng = np.random.default_rng(seed)
    genes = _genes(rng, n_genes)
    rows = _rows(rng, genes)
    if fmt == "gff3":
        header = "##gff-version 3\n" + "".join(f"##sequence-region {c} 1 {mb * 10**6}\n" for c, mb in CONTIG_MB.items())
    else:
        header = "#!genome-build GRCh38.p14\n#!genome-version GRCh38\n"
    with (gzip.open(path, "wb", compresslevel=1) if compress else open(path, "wb")) as out:
        out.write(header.encode())
        for first in range(0, len(rows["gene"]), 500_000):  # bounded memory: ~100 MB of text at a time
            out.write(_lines({key: value[first : first + 500_000] for key, value in rows.items()}, genes, fmt))
    ids = _gene_ids(np.arange(n_genes)).to_numpy(zero_copy_only=False).astype(object)
    if fmt == "gff3":
        ids = np.array(["gene:" + i for i in ids], dtype=object)
    names = np.array([f"GENE{k}" for k in range(n_genes)], dtype=object)
    return {"seqid": np.array(list(CONTIG_MB))[genes["contig"]], "start": genes["start"], "end": genes["end"],
            "id": ids, "name": np.where(genes["named"], names, ids), "n_lines": header.count("\n") + len(rows["gene"])}


def brute_force(truth: dict, contig: np.ndarray, pos: np.ndarray) -> list[str]:
    """The first gene (file order) covering each position, found by comparing with every gene."""
    names = []
    for c, p in zip(contig, pos, strict=True):
        hit = np.flatnonzero((truth["seqid"] == c) & (truth["start"] <= p) & (truth["end"] >= p))
        names.append(truth["name"][hit[0]] if len(hit) else "")
    return names


def check_annotate(index, truth: dict, n: int, rng) -> None:
    """A sample of positions (half inside a random gene, half anywhere on its contig) against `brute_force`."""
    gene = rng.integers(0, len(truth["start"]), n)
    inside = truth["start"][gene] + (rng.random(n) * (truth["end"] - truth["start"] + 1)[gene]).astype(np.int64)
    anywhere = rng.integers(1, np.array([CONTIG_MB[c] for c in truth["seqid"][gene]]) * 10**6)
    pos = np.where(np.arange(n) % 2 == 0, inside, anywhere)
    contig = truth["seqid"][gene]
    ucsc = np.array(["chrM" if c == "MT" else f"chr{c}" for c in contig])  # as a UCSC-style VCF spells them
    spelled = np.where(rng.random(n) < 0.5, ucsc, contig)
    expected = brute_force(truth, contig, pos)
    assert index.annotate(spelled, pos).tolist() == expected
    assert sum(name != "" for name in expected) > n / 2  # the sample does hit genes


def read_streaming(path, source: str):
    """read_genes on ``path`` and the peak of Python memory it allocated."""
    read_genes(gff(feature()), source=SRC)  # lazy imports and caches first: they are not the parse
    tracemalloc.start()
    try:
        with open(path, "rb") as stream:
            index = read_genes(stream, source=source)
        return index, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def check_against_truth(index, truth: dict) -> None:
    table = index.to_arrow()
    assert len(index) == len(truth["start"])
    assert table.column("seqid").to_pylist() == truth["seqid"].tolist()
    assert np.array_equal(table.column("start").to_numpy(), truth["start"])
    assert np.array_equal(table.column("end").to_numpy(), truth["end"])
    assert table.column("id").to_pylist() == truth["id"].tolist()
    assert table.column("name").to_pylist() == truth["name"].tolist()


@pytest.mark.parametrize("fmt, compress", [("gff3", False), ("gff3", True), ("gtf", False), ("gtf", True)])
def test_read_genes__ensembl_shaped_file_streams(tmp_path, fmt, compress):
    path = tmp_path / f"annotation.{fmt}{'.gz' if compress else ''}"
    truth = ensembl_like(path, 5_000, fmt, compress=compress)
    text_bytes = len(gzip.decompress(path.read_bytes())) if compress else path.stat().st_size
    index, peak = read_streaming(path, path.name)
    check_against_truth(index, truth)
    check_annotate(index, truth, 500, np.random.default_rng(1))
    assert text_bytes > 20e6 and peak < 8e6  # ~260k lines; 1 MB chunks and the gene columns, not the file


@pytest.mark.integration
@pytest.mark.parametrize("fmt, compress", [("gff3", False), ("gtf", True)])
def test_read_genes__gencode_scale(tmp_path, fmt, compress):
    """60k genes in ~3.1M lines (Ensembl/GENCODE size): streamed, correct, and small to broadcast."""
    path = tmp_path / f"annotation.{fmt}{'.gz' if compress else ''}"
    truth = ensembl_like(path, 60_000, fmt, compress=compress)
    assert truth["n_lines"] > 3_000_000
    index, peak = read_streaming(path, path.name)
    check_against_truth(index, truth)
    check_annotate(index, truth, 2_000, np.random.default_rng(2))
    assert peak < 40e6  # the text is 240 MB (GFF3) / 530 MB (GTF)
    assert len(pickle.dumps(index)) < 8e6  # what Spark broadcasts to every Python worker (~5 MB)


# --- Real annotations: the test files gffutils ships (FlyBase, NCBI, GENCODE, Ensembl, UCSC) ---

def gffutils_file(name: str):
    import gffutils  # a test dependency (pyproject test extra): a missing one fails, never skips
    return gffutils, importlib.resources.files(gffutils) / "test" / "data" / name


@pytest.mark.parametrize("name, n_genes", [
    pytest.param("dmel-all-no-analysis-r5.49_50k_lines.gff", 631, marks=pytest.mark.integration),  # 50k lines
    ("ncbi_gff3.txt", 5),  # GFF3 with percent-encoded attributes, named .txt
    ("FBgn0031208.gff", 3),  # sequences after a bare '>' line, no ##FASTA
    ("gff_example1.gff3.gz", 1),
    ("gencode-v19.gtf", 1),
    ("FBgn0031208.gtf", 3),  # no gene lines: gffutils infers them, as read_genes does
    ("sharr.gtf", 1),  # no gene lines, a position beyond 2^29
])
def test_read_genes__real_files_match_gffutils(name, n_genes):
    gffutils, path = gffutils_file(name)
    with path.open("rb") as stream:
        index = read_genes(stream, source=name)
    db = gffutils.create_db(str(path), ":memory:", merge_strategy="create_unique", keep_order=True)
    expected = sorted((f.seqid, f.start, f.end) for f in db.features_of_type("gene"))
    assert len(index) == n_genes and sorted(row[:3] for row in rows(index)) == expected


def test_read_genes__real_gff3_names():
    _, path = gffutils_file("dmel-all-no-analysis-r5.49_50k_lines.gff")
    with path.open("rb") as stream:
        index = read_genes(stream, source=path.name)
    assert rows(index)[:2] == [
        ("2L", 7529, 9484, "FBgn0031208", "CG11023"),
        ("2L", 9839, 21376, "FBgn0002121", "l(2)gl"),
    ]
    _, path = gffutils_file("ncbi_gff3.txt")  # genes without ID or Name: named by their span
    with path.open("rb") as stream:
        first = rows(read_genes(stream, source=path.name))[0]
    assert first == ("NC_008596.1", 12272, 13301, "", "NC_008596.1:12272-13301")


def test_read_genes__real_gtf_without_gene_lines_matches_pandas():
    # Ensembl-style GTF (C. elegans) named .txt, no gene lines; gffutils infers nothing here, so pandas does it.
    _, path = gffutils_file("ensembl_gtf.txt")
    frame = pd.read_csv(path, sep="\t", header=None, quoting=csv.QUOTE_NONE, usecols=[0, 2, 3, 4, 8],
                        names=["seqid", "kind", "start", "end", "a"])
    frame = frame[frame.kind.isin(["exon", "transcript"])].assign(gene=frame.a.str.extract(r'gene_id "([^"]+)"')[0])
    spans = frame.groupby("gene", sort=False).agg(seqid=("seqid", "first"), start=("start", "min"), end=("end", "max"))
    with path.open("rb") as stream:
        index = read_genes(stream, source=path.name)
    assert [row[:4] for row in rows(index)] == [(s.seqid, s.start, s.end, g) for g, s in spans.iterrows()]
    assert rows(index)[1][4] == "amx-2"  # gene_name

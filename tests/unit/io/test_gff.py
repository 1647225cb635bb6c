"""Tests of genoflow.io.gff: gene reading and the vectorised position lookup."""

from __future__ import annotations

import io

import numpy as np
import pytest

from genoflow.errors import InputError
from genoflow.io.gff import read_genes

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
    error = read_error(gff(feature(kind="exon", end="x")))
    assert error.line == 2 and "end 'x'" in error.problem


def test_read_genes__start_after_end():
    error = read_error(gff(feature(start=300, end=200)))
    assert error.line == 2 and "after end" in error.problem


def test_read_genes__no_genes():
    assert "no 'gene' features" in read_error(gff(feature(kind="exon"))).problem

"""Fuzzing the GFF3/GTF gene reader, `read_genes`."""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from genoflow.io.gff import read_genes
from tests.fuzz.conftest import FUZZ, TIMEOUT_S, inputs, only_input_errors, plain_size

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

GFF3_SOURCE, GTF_SOURCE = "fuzz/genes.gff3.gz", "fuzz/genes.gtf"
GFF3 = (b"##gff-version 3\n"
        b"chr1\tsim\tgene\t100\t200\t.\t+\t.\tID=g1;Name=BRCA%2C1\n"
        b"chr1\tsim\tmRNA\t100\t200\t.\t+\t.\tID=t1;Parent=g1\n"
        b"chr2\tsim\tgene\t1\t50\t.\t-\t.\tID=g2\n"
        b"##FASTA\n>chr1\nACGT\n")
GTF = (b'#!genome-build test\n'
       b'chr1\tsim\ttranscript\t100\t200\t.\t+\t.\tgene_id "g1"; gene_name "A";\n'
       b'chr1\tsim\texon\t150\t300\t.\t+\t.\tgene_id "g1"; transcript_id "t1";\n'
       b'chr2\tsim\tgene\t5\t9\t.\t+\t.\tgene_id "g2";\n')
META = [b"##gff-version 3", b"##gff-version 2", b"#comment", b"##FASTA", b">chr1", b"", b"ACGT", b"chr1 sim gene 1 2"]
COLUMNS = [
    [b"chr1", b"chr2", b""],
    [b"sim", b"."],
    [b"gene", b"mRNA", b"exon", b"transcript", b"pseudogene"],
    [b"1", b"100", b"0", b"2147483648", b"1.5e3"],
    [b"1", b"200", b"50", b"9223372036854775808"],
    [b".", b"0.5"],
    [b"+", b"-", b"."],
    [b".", b"0"],
    [b"ID=g1", b"ID=g2;Name=X", b"Parent=g1", b'gene_id "g1";', b'gene_id "g2"; gene_name "B";', b"gene_id g3",
     b'gene_id "";', b"Name=%ZZ;ID=%00", b";;=;"],
]


# Inputs that broke the reader before (run first every time).
HUGE_END = b"\t\tgene\t1\t9223372036854775808\t\t\t\t"  # OverflowError building the int64 end column


def test_read_genes(counter):
    @FUZZ
    @example(GFF3_SOURCE, HUGE_END)
    @given(st.sampled_from([GFF3_SOURCE, GTF_SOURCE]), inputs(GFF3, META, COLUMNS) | inputs(GTF, META, COLUMNS))
    def run(source, data):
        counter()
        genes = only_input_errors(lambda: read_genes(io.BytesIO(data), source=source), source)
        if genes is not None:
            table = genes.to_arrow()
            assert 1 <= table.num_rows <= plain_size(data) and table.nbytes <= 32 * plain_size(data) + 4096
            genes.annotate(table.column(0).to_numpy(zero_copy_only=False), table.column(1).to_numpy())

    run()
    counter.check("GFF3/GTF (read_genes)")

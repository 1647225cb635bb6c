"""Fuzzing the phenotype tables: `read_phenotype_table` (.fam, plink .covar, CSV, TSV) and `parse_column`
of every column as every type, as the study reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genoflow.io.phenotypes import COLUMN_TYPES, parse_column, read_phenotype_table
from tests.fuzz.conftest import FUZZ, TIMEOUT_S, inputs, only_input_errors

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

ID = "sample_id"
FAM = b"F1 S1 0 0 1 2\nF1 S2 0 0 2 1\nF2 S3 S1 S2 0 -9\n"
COVAR = b"#FID\tIID\tage\tPC1\nF1\tS1\t54\t0.01\nF1\tS2\tNA\t-9\n"
CSV = b"\xef\xbb\xbfsample_id,age,sex,status\nS1,54,F,case\n\"S2\",61,male,\"control\"\nS3,.,2,1\n"
TSV = b"sample_id\tage\tsex\tstatus\nS1\t54\tF\t1\nS2\tnan\tM\t0\n"
VALID = {"fuzz/cohort.fam": (FAM, b" "), "fuzz/cohort.covar": (COVAR, b"\t"), "fuzz/cohort.csv": (CSV, b","),
         "fuzz/cohort.tsv": (TSV, b"\t")}
META = [b"sample_id,age,sex", b"sample_id\tage", b"FID IID age", b"#FID IID", b"IID", b"", b"sample_id,sample_id"]
COLUMNS = [[b"F1", b"S1", b"S2", b"0"], [b"S1", b"S2", b"S3"], [b"0", b"-9", b"54", b"1e309", b"case"],
           [b"1", b"2", b"F", b"male", b"NA"], [b"0.5", b"-9", b"."]]


def _cases():
    return st.one_of(*(st.tuples(st.just(source), inputs(valid, META, COLUMNS, sep=sep, gzip_ok=False))
                       for source, (valid, sep) in VALID.items()))


def test_read_phenotype_table(counter):
    @FUZZ
    @given(_cases())
    def run(case):
        source, data = case
        counter()
        text = data.decode("latin-1")  # every byte a character: NUL, \x85 (NEL), \x1c, lone \r
        table = only_input_errors(lambda: read_phenotype_table(text, source=source, id_column=ID), source)
        if table is None:
            return
        assert 1 <= len(table.frame) <= len(text) and table.frame.size <= len(text) + 1
        for column in table.frame.columns:
            for kind in COLUMN_TYPES:
                values = only_input_errors(lambda: parse_column(table, column, kind), source)  # noqa: B023
                assert values is None or len(values) == len(table.frame)

    run()
    counter.check("phenotype tables (read_phenotype_table + parse_column)")

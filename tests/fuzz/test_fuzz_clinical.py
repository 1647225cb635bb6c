"""Fuzzing the clinical CSV parser: `parse_clinical_csv` on any text, and preprocess's
`parse_patient_clinical` on the file's bytes (UTF-8 decoding included)."""

from __future__ import annotations

import pytest
from hypothesis import given

from genoflow.io.clinical import clinical_table, parse_clinical_csv
from genoflow.pipeline.preprocess import parse_patient_clinical
from tests.fuzz.conftest import FUZZ, TIMEOUT_S, inputs, only_input_errors

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(TIMEOUT_S)]

SOURCE = "fuzz/P0001/clinical_data.csv"
VALID = (b"\xef\xbb\xbfpatient_id,age,sex,disease_status\n"
         b"P0001,54,F,case\n"
         b'"P0002", 61 ,male,"control, treated"\n'
         b"\n"
         b"P0003,,NA,0\n")
META = [b"patient_id,age,sex", b"patient_id,patient_id", b"age,sex", b"patient_id", b"", b'"patient_id', b"a,b,c"]
COLUMNS = [[b"P0001", b"P0002", b'"P0003"', b'"P,4"', b'"unterminated'], [b"54", b"-1", b"1e400", b"NA"],
           [b"F", b"M", b"2", b"x"]]


def test_parse_clinical_csv(counter):
    @FUZZ
    @given(inputs(VALID, META, COLUMNS, sep=b",", gzip_ok=False))
    def run(data):
        counter()
        # latin-1 maps every byte to a character: NUL, \x85 (NEL), \x1c and a lone \r reach the parser.
        text = data.decode("latin-1")
        rows = only_input_errors(lambda: parse_clinical_csv(text, source=SOURCE), SOURCE)
        if rows is not None:
            assert 1 <= len(rows) <= len(text)
            assert sum(len(value) for row in rows for value in row.values()) <= len(text)
            table = clinical_table({row["patient_id"]: row for row in rows}, "fuzz", file_name="clinical_data.csv")
            assert len(table.frame) == len({row["patient_id"] for row in rows})
        row = only_input_errors(lambda: parse_patient_clinical(SOURCE, data), SOURCE)
        if row is not None:
            assert sum(len(str(value)) for value in row.values()) <= len(data)

    run()
    counter.check("clinical CSV (parse_clinical_csv + parse_patient_clinical)")

"""Tests of genoflow.io.clinical.parse_clinical_csv."""

from __future__ import annotations

import pytest

from genoflow.errors import InputError
from genoflow.io.clinical import CLINICAL_COLUMNS, CLINICAL_SCHEMA, parse_clinical_csv

SRC = "patient_data/P0001/clinical_data.csv"
HEADER = "patient_id,age,sex,disease_status,treatment_response"


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as error:
        parse_clinical_csv(text, source=SRC)
    assert error.value.source == SRC and SRC in str(error.value)
    return error.value


def test_parse_clinical_csv__types_and_normalisation():
    text = f"\ufeff{HEADER},site\nP1,54,female,1,0,Leeds\nP2, 7 ,M,0,,York\r\nP3,120,Male,1,1,\n\n"
    rows = parse_clinical_csv(text, source=SRC)
    assert rows == [
        {
            "patient_id": "P1",
            "age": 54,
            "sex": "F",
            "disease_status": 1,
            "treatment_response": 0,
            "site": "Leeds",
        },
        {
            "patient_id": "P2",
            "age": 7,
            "sex": "M",
            "disease_status": 0,
            "treatment_response": None,
            "site": "York",
        },
        {
            "patient_id": "P3",
            "age": 120,
            "sex": "M",
            "disease_status": 1,
            "treatment_response": 1,
            "site": "",
        },
    ]


def test_parse_clinical_csv__schema_names_the_required_columns():
    assert tuple(CLINICAL_SCHEMA.names) == CLINICAL_COLUMNS


def test_parse_clinical_csv__columns_in_any_order():
    rows = parse_clinical_csv(
        "sex,treatment_response,age,patient_id,disease_status\nF,1,30,P9,0\n", source=SRC
    )
    assert rows[0]["patient_id"] == "P9" and rows[0]["age"] == 30


def test_parse_clinical_csv__missing_column_lists_found_columns():
    error = error_of("patient_id,age,sex,disease_status\nP1,3,F,1\n")
    assert error.line == 1
    assert "missing column(s) treatment_response" in error.problem
    assert "'patient_id', 'age', 'sex', 'disease_status'" in error.problem


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        ("P1,abc,F,1,0", "age", "abc"),
        ("P1,-1,F,1,0", "age", "-1"),
        ("P1,121,F,1,0", "age", "121"),
        ("P1,40.5,F,1,0", "age", "40.5"),
        ("P1,40,X,1,0", "sex", "X"),
        ("P1,40,F,2,0", "disease_status", "2"),
        ("P1,40,F,,0", "disease_status", ""),
        ("P1,40,F,1,yes", "treatment_response", "yes"),
        (",40,F,1,0", "patient_id", ""),
    ],
)
def test_parse_clinical_csv__bad_value_names_line_column_and_value(row, column, value):
    error = error_of(f"{HEADER}\nP0,30,M,0,1\n{row}\n")
    assert error.line == 3
    assert f"column {column}" in error.problem
    assert repr(value) in error.problem


def test_parse_clinical_csv__wrong_field_count():
    error = error_of(f"{HEADER}\nP1,30,M,0\n")
    assert error.line == 2 and "expected 5 fields" in error.problem


def test_parse_clinical_csv__duplicate_patient():
    error = error_of(f"{HEADER}\nP1,30,M,0,1\nP1,31,M,0,1\n")
    assert error.line == 3 and "duplicate patient_id 'P1'" in error.problem


def test_parse_clinical_csv__empty_file_and_header_only():
    assert "empty file" in error_of("").problem
    assert "no data rows" in error_of(HEADER + "\n").problem

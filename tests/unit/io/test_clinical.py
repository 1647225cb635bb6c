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


def test_parse_clinical_csv__values_kept_as_stripped_text():
    """Typing is the study's (genoflow.study): the CSV parser only needs patient_id."""
    text = f"\ufeff{HEADER},site\nP1,54,female,1,0,Leeds\nP2, 7 ,M,0,,York\r\n\n"
    rows = parse_clinical_csv(text, source=SRC)
    assert rows == [
        {"patient_id": "P1", "age": "54", "sex": "female", "disease_status": "1", "treatment_response": "0",
         "site": "Leeds"},
        {"patient_id": "P2", "age": "7", "sex": "M", "disease_status": "0", "treatment_response": "", "site": "York"},
    ]


def test_parse_clinical_csv__schema_names_the_required_columns():
    assert tuple(CLINICAL_SCHEMA.names) == CLINICAL_COLUMNS == ("patient_id",)


def test_parse_clinical_csv__only_patient_id_is_required():
    rows = parse_clinical_csv("ldl,patient_id\n3.2,P9\n", source=SRC)
    assert rows == [{"ldl": "3.2", "patient_id": "P9"}]


def test_parse_clinical_csv__missing_patient_id_lists_found_columns():
    error = error_of("id,age\nP1,3\n")
    assert error.line == 1
    assert "missing column(s) patient_id" in error.problem and "'id', 'age'" in error.problem


def test_parse_clinical_csv__empty_patient_id_names_line_and_column():
    error = error_of(f"{HEADER}\nP0,30,M,0,1\n,40,F,1,0\n")
    assert error.line == 3 and "column patient_id" in error.problem and "''" in error.problem


def test_clinical_table__union_of_columns_and_per_patient_files():
    from genoflow.io.clinical import clinical_table

    rows = {"P1": {"patient_id": "P1", "ldl": "3"}, "P2": {"patient_id": "P2", "site": "York"}}
    table = clinical_table(rows, "raw/patient_data/", file_name="clinical_data.csv")
    assert table.frame.loc["P1", "site"] == "" and table.frame.loc["P2", "ldl"] == ""
    assert table.where("P2") == ("raw/patient_data/P2/clinical_data.csv", 2)


def test_parse_clinical_csv__wrong_field_count():
    error = error_of(f"{HEADER}\nP1,30,M,0\n")
    assert error.line == 2 and "expected 5 fields" in error.problem


def test_parse_clinical_csv__duplicate_patient():
    error = error_of(f"{HEADER}\nP1,30,M,0,1\nP1,31,M,0,1\n")
    assert error.line == 3 and "duplicate patient_id 'P1'" in error.problem


def test_parse_clinical_csv__empty_file_and_header_only():
    assert "empty file" in error_of("").problem
    assert "no data rows" in error_of(HEADER + "\n").problem

"""Tests of genoflow.io.phenotypes: the cohort phenotype table formats and typed column parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genoflow.errors import InputError
from genoflow.io.phenotypes import normalise_sex, parse_column, read_phenotype_table


def table(text: str, source: str = "study/pheno.csv", id_column: str = "patient_id"):
    return read_phenotype_table(text, source=source, id_column=id_column)


def error_of(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as error:
        fn(*args, **kwargs)
    return error.value


def values(series) -> list:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in series.tolist()]


def test_read_fam__six_columns_keyed_on_iid():
    t = table("F1 S1 0 0 1 2\nF2  S2\t0 0 2 1\n\nF3 S3 0 0 0 -9\n", "x/cohort.fam")
    assert list(t.frame.columns) == ["FID", "IID", "PAT", "MAT", "SEX", "PHENO"]
    assert list(t.frame.index) == ["S1", "S2", "S3"] and t.plink
    assert t.lines == {"S1": 1, "S2": 2, "S3": 4}
    assert values(parse_column(t, "PHENO", "binary")) == [1.0, 0.0, None]
    assert values(parse_column(t, "SEX", "sex")) == ["M", "F", None]


def test_read_fam__wrong_field_count_names_the_line():
    error = error_of(table, "F1 S1 0 0 1 2\nF2 S2 0 0 1\n", "x/cohort.fam")
    assert error.source == "x/cohort.fam" and error.line == 2 and "6 fields" in error.problem


@pytest.mark.parametrize("header", ["FID IID stratum age", "#FID IID stratum age", "#FID\tIID\tstratum\tage"])
def test_read_plink_table__header_with_or_without_hash(header):
    t = table(f"{header}\nF1 S1 CEU 40\nF2 S2 JPT+CHB -9\n", "x/cohort.covar")
    assert list(t.frame.columns) == ["FID", "IID", "stratum", "age"]
    assert values(parse_column(t, "stratum", "categorical")) == ["CEU", "JPT+CHB"]
    assert values(parse_column(t, "age", "numeric")) == [40.0, None]  # -9: missing in a plink file


def test_read_plink_table__without_fid_iid_header_is_an_error():
    error = error_of(table, "F1 S1 CEU\n", "x/cohort.pheno")
    assert error.line == 1 and "FID IID" in error.problem


def test_read_delimited__csv_and_tsv_keyed_on_the_id_column():
    csv = table("patient_id,ldl,site\nP1,3.5,Leeds\nP2,NA,\n")
    tsv = table("patient_id\tldl\tsite\nP1\t3.5\tLeeds\nP2\t\t\n", "x/pheno.tsv")
    for t in (csv, tsv):
        assert list(t.frame.index) == ["P1", "P2"] and not t.plink
        assert values(parse_column(t, "ldl", "quantitative")) == [3.5, None]
        assert values(parse_column(t, "site", "categorical")) == ["Leeds", None]


def test_read_delimited__minus_nine_is_a_number_outside_plink_files():
    t = table("patient_id,score\nP1,-9\n")
    assert values(parse_column(t, "score", "numeric")) == [-9.0]


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("id,ldl\nP1,3\n", 1, "no id column 'patient_id' (study.id_column); found columns: 'id', 'ldl'"),
    ("patient_id,ldl,ldl\nP1,3,4\n", 1, "duplicate column(s) ldl"),
    ("patient_id,ldl\nP1,3,4\n", 2, "expected 2 fields (as in the header), found 3"),
    ("patient_id,ldl\nP1,3\nP1,4\n", 3, "duplicate sample id 'P1' (first on line 2)"),
    ("patient_id,ldl\n,3\n", 2, "column patient_id: expected a sample id"),
    ("patient_id,ldl\n", None, "no data rows"),
    ("", None, "empty file"),
])
def test_read_delimited__errors_name_file_and_line(text, line, problem):
    error = error_of(table, text)
    assert error.source == "study/pheno.csv" and error.line == line and problem in error.problem


@pytest.mark.parametrize(("raw", "expected"), [
    (["0", "1", "", "NA", "-9"], [0.0, 1.0, None, None, None]),
    (["control", "Case", "na", "CASE"], [0.0, 1.0, None, 1.0]),
    (["unaffected", "Affected"], [0.0, 1.0]),
    (["1", "2", "0", "-9", "2"], [0.0, 1.0, None, None, 1.0]),  # a 2 means plink coding: 0 is then missing
])
def test_parse_column__binary_encodings(raw, expected):
    text = "patient_id,y\n" + "".join(f"P{i},{v}\n" for i, v in enumerate(raw))
    assert values(parse_column(table(text), "y", "binary")) == expected


def test_parse_column__plink_file_binary_uses_1_2_coding_even_without_a_2():
    t = table("#FID IID y\nF1 S1 1\nF2 S2 0\n", "x/y.pheno")
    assert values(parse_column(t, "y", "binary")) == [0.0, None]


@pytest.mark.parametrize(("kind", "bad", "expected"), [
    ("binary", "yes", "0/1, case/control or plink's 1/2"),
    ("binary", "3", "0/1, case/control or plink's 1/2"),
    ("quantitative", "high", "a number"),
    ("numeric", "inf", "a number"),
    ("sex", "X", "F/M, female/male or plink's 1/2 (0 unknown)"),
])
def test_parse_column__bad_value_names_file_line_column_and_value(kind, bad, expected):
    t = table(f"patient_id,col\nP1,1\nP2,{bad}\n")
    error = error_of(parse_column, t, "col", kind)
    assert str(error) == f"study/pheno.csv, line 3: column col: expected {expected}, found {bad!r}"


def test_parse_column__types():
    t = table("patient_id,y,q,sex\nP1,1,2.5,female\nP2,0,-1e3,M\n")
    assert parse_column(t, "y", "binary").dtype == np.float64
    assert parse_column(t, "q", "quantitative").tolist() == [2.5, -1000.0]
    assert parse_column(t, "sex", "sex").tolist() == ["F", "M"]


def test_normalise_sex__forms():
    assert [normalise_sex(v) for v in ("F", "m", "Female", "MALE", "1", "2", "0", "", None)] == \
        ["F", "M", "F", "M", "M", "F", None, None, None]
    with pytest.raises(ValueError, match="'sex'"):
        normalise_sex("x")

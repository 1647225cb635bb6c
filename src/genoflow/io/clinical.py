"""Per-patient clinical CSV: schema, parsing and validation."""

from __future__ import annotations

import csv
import io

import pyarrow as pa

from genoflow.errors import InputError

__all__ = ["CLINICAL_COLUMNS", "CLINICAL_SCHEMA", "parse_clinical_csv"]

CLINICAL_COLUMNS = ("patient_id", "age", "sex", "disease_status", "treatment_response")
"""Required columns, in their usual order (extra columns are allowed and kept as strings)."""

CLINICAL_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("age", pa.int64(), nullable=False),
        pa.field("sex", pa.string(), nullable=False),  # "F" or "M"
        pa.field("disease_status", pa.int8(), nullable=False),  # 0 or 1
        pa.field("treatment_response", pa.int8(), nullable=True),  # 0, 1 or null (unknown)
    ]
)
"""Types of the required columns after `parse_clinical_csv`."""

_SEX = {"f": "F", "female": "F", "m": "M", "male": "M"}
_AGE_RANGE = (0, 120)


def parse_clinical_csv(text: str, *, source: str) -> list[dict]:
    """Parse and validate a clinical CSV.

    Parameters
    ----------
    text : str
        The CSV, with a header row. Values are stripped of surrounding whitespace; blank
        lines are skipped.
    source : str
        Name of the file, for error messages.

    Returns
    -------
    list of dict
        One dict per data row: ``patient_id`` (str), ``age`` (int, 0..120), ``sex`` ("F" or
        "M"; ``female``/``male`` accepted in any case), ``disease_status`` (int 0 or 1),
        ``treatment_response`` (int 0 or 1, or None when empty), and any extra column as str.

    Raises
    ------
    InputError
        A missing or duplicate column (listing the columns found), a row with the wrong number
        of fields, a bad value (naming the line, the column and the value), a duplicate
        ``patient_id``, or no data row.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = _read_header(reader, source)
    rows = []
    first_line_of: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise InputError(source, f"malformed CSV: {error}", line=line) from None
        if not any(value.strip() for value in fields):
            continue
        row = _parse_row(header, fields, source, line)
        if row["patient_id"] in first_line_of:
            first = first_line_of[row["patient_id"]]
            problem = f"duplicate patient_id {row['patient_id']!r} (first on line {first})"
            raise InputError(source, problem, line=line)
        first_line_of[row["patient_id"]] = line
        rows.append(row)
    if not rows:
        raise InputError(source, "no data rows: the clinical CSV has a header but no patient")
    return rows


def _read_header(reader, source: str) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise InputError(source, "empty file: expected a header row " + ",".join(CLINICAL_COLUMNS)) from None
    except csv.Error as error:
        raise InputError(source, f"malformed CSV header: {error}", line=1) from None
    found = ", ".join(repr(name) for name in header)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        problem = f"duplicate column(s) {', '.join(duplicates)}; found columns: {found}"
        raise InputError(source, problem, line=1)
    missing = [name for name in CLINICAL_COLUMNS if name not in header]
    if missing:
        raise InputError(source, f"missing column(s) {', '.join(missing)}; found columns: {found}", line=1)
    return header


def _parse_row(header: list[str], fields: list[str], source: str, line: int) -> dict:
    if len(fields) != len(header):
        problem = f"expected {len(header)} fields (as in the header), found {len(fields)}"
        raise InputError(source, problem, line=line)
    values = dict(zip(header, (value.strip() for value in fields), strict=True))

    def bad(column: str, expected: str) -> InputError:
        return InputError(source, f"column {column}: {expected}, found {values[column]!r}", line=line)

    if not values["patient_id"]:
        raise bad("patient_id", "expected a non-empty patient id")
    age = values["age"]
    if not (age.isascii() and age.isdigit()) or not _AGE_RANGE[0] <= int(age) <= _AGE_RANGE[1]:
        raise bad("age", f"expected an integer from {_AGE_RANGE[0]} to {_AGE_RANGE[1]}")
    sex = _SEX.get(values["sex"].lower())
    if sex is None:
        raise bad("sex", "expected F or M (or female/male)")
    if values["disease_status"] not in ("0", "1"):
        raise bad("disease_status", "expected 0 or 1")
    if values["treatment_response"] not in ("0", "1", ""):
        raise bad("treatment_response", "expected 0, 1 or empty")
    row = dict(values)
    row.update(
        age=int(age),
        sex=sex,
        disease_status=int(values["disease_status"]),
        treatment_response=int(values["treatment_response"]) if values["treatment_response"] else None,
    )
    return row

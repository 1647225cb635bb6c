"""Per-patient clinical CSV: schema, parsing and validation."""

from __future__ import annotations

import csv
import io

import pyarrow as pa

from genoflow.errors import InputError

__all__ = ["CLINICAL_COLUMNS", "CLINICAL_SCHEMA", "parse_clinical_csv", "clinical_table"]

CLINICAL_COLUMNS = ("patient_id",)
"""The one required column; the study (decision 0011) names the others it uses, and types them."""

CLINICAL_SCHEMA = pa.schema([pa.field("patient_id", pa.string(), nullable=False)])
"""Type of the required column after `parse_clinical_csv` (every other column is a str)."""


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
        One dict per data row, column -> stripped str. The values are typed later, by the study
        (:func:`genoflow.io.phenotypes.parse_column`), as the study declares them.

    Raises
    ------
    InputError
        No ``patient_id`` column or a duplicate column (listing the columns found), a row with the
        wrong number of fields, an empty or duplicate ``patient_id``, or no data row.
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
    if not values["patient_id"]:
        raise InputError(source, f"column patient_id: expected a non-empty patient id, found {values['patient_id']!r}",
                         line=line)
    return values


def clinical_table(rows: dict[str, dict], source: str, *, file_name: str):
    """Per-patient rows (patient id -> :func:`parse_clinical_csv`'s row) as one
    :class:`~genoflow.io.phenotypes.RawTable`; a column some patients lack is missing ("") for them,
    and each patient's values are reported against ``<source>/<patient>/<file_name>``, line 2."""
    import pandas as pd

    from genoflow.io.phenotypes import RawTable

    columns = list(dict.fromkeys(name for row in rows.values() for name in row))
    frame = pd.DataFrame([[row.get(name, "") for name in columns] for row in rows.values()],
                         columns=columns, index=list(rows), dtype=object)
    files = {patient: f"{source.rstrip('/')}/{patient}/{file_name}" for patient in rows}
    return RawTable(source, frame, dict.fromkeys(rows, 2), files=files)

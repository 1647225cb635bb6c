"""Cohort phenotype tables (decision 0011): plink .fam, plink .covar/.pheno, CSV/TSV; typed value parsing.

A table is read as text into a :class:`RawTable` (every value a stripped string, keyed by sample id,
with the line each sample came from); :func:`parse_column` then turns one column into its declared
type, so a value that does not parse is reported with its file, line, column and value.
"""

from __future__ import annotations

import csv
import io
import math
import posixpath
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genoflow.errors import InputError

__all__ = ["RawTable", "read_phenotype_table", "read_fam", "read_plink_table", "read_delimited",
           "parse_column", "normalise_sex", "COLUMN_TYPES", "MISSING"]

COLUMN_TYPES = ("binary", "quantitative", "numeric", "categorical", "sex")
MISSING = frozenset({"", "na", "nan", "."})  # missing in every table
_PLINK_MISSING = frozenset({"-9"})  # missing in plink files (and in any binary column: plink's code)
_FAM_COLUMNS = ("FID", "IID", "PAT", "MAT", "SEX", "PHENO")
_CASE = {"1": 1.0, "case": 1.0, "affected": 1.0, "0": 0.0, "control": 0.0, "unaffected": 0.0}
_PLINK_CASE = {"2": 1.0, "1": 0.0}  # plink 1/2 coding, where 0 (and -9) is missing
_SEX = {"f": "F", "female": "F", "m": "M", "male": "M"}
_PLINK_SEX = {"1": "M", "2": "F", "0": None}


@dataclass
class RawTable:
    """One phenotype table as text.

    Attributes
    ----------
    source : str
        The file, for messages (the patient folder for per-patient CSVs).
    frame : pandas.DataFrame
        Index: sample id (str); one column per table column, every value a stripped str.
    lines : dict
        Sample id -> 1-based line of its row.
    plink : bool
        A plink file: ``-9`` is missing and binary columns use plink's 1/2 coding.
    files : dict
        Sample id -> its own file, when each sample has one (per-patient CSVs); else empty.
    """

    source: str
    frame: pd.DataFrame
    lines: dict[str, int]
    plink: bool = False
    files: dict[str, str] = field(default_factory=dict)

    def where(self, sample: str) -> tuple[str, int | None]:
        return self.files.get(sample, self.source), self.lines.get(sample)


def read_phenotype_table(text: str, *, source: str, id_column: str) -> RawTable:
    """The table in ``text``, its format from the file name: ``.fam``; ``.covar``/``.pheno``/``.eigenvec``
    (plink, whitespace-separated, header ``FID IID ...`` or ``#FID IID ...``); ``.tsv``/``.txt`` (tabs);
    anything else CSV. CSV/TSV key on ``id_column``, plink files on IID."""
    name = posixpath.basename(source).lower()
    if name.endswith(".fam"):
        return read_fam(text, source=source)
    if name.endswith((".covar", ".pheno", ".eigenvec")):
        return read_plink_table(text, source=source)
    delimiter = "\t" if name.endswith((".tsv", ".txt", ".tab")) else ","
    return read_delimited(text, source=source, id_column=id_column, delimiter=delimiter)


def read_fam(text: str, *, source: str) -> RawTable:
    """plink .fam: ``FID IID PAT MAT SEX PHENO``, whitespace-separated, no header."""
    rows = []
    for line, fields in _lines(text):
        if len(fields) != len(_FAM_COLUMNS):
            raise InputError(source, f"a .fam line has 6 fields (FID IID PAT MAT SEX PHENO), found {len(fields)}",
                             line=line)
        rows.append((line, fields))
    return _table(source, list(_FAM_COLUMNS), rows, "IID", plink=True)


def read_plink_table(text: str, *, source: str) -> RawTable:
    """plink .covar/.pheno: a header ``FID IID col...`` (or ``#FID IID ...``), whitespace-separated."""
    lines = list(_lines(text))
    if not lines:
        raise InputError(source, "empty file: expected a header line FID IID <columns>")
    _, header = lines[0]
    header = [header[0].lstrip("#"), *header[1:]]
    if header[:2] != ["FID", "IID"] and header[:1] != ["IID"]:
        raise InputError(source, f"expected a header starting FID IID (or #FID IID), found {' '.join(header)!r}",
                         line=lines[0][0])
    return _table(source, header, lines[1:], "IID", plink=True)


def read_delimited(text: str, *, source: str, id_column: str, delimiter: str = ",") -> RawTable:
    """CSV or TSV with a header row; keyed on ``id_column``."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    rows = []
    try:
        for fields in reader:
            if any(value.strip() for value in fields):
                rows.append((reader.line_num, [value.strip() for value in fields]))
    except csv.Error as error:
        raise InputError(source, f"malformed table: {error}", line=reader.line_num) from None
    if not rows:
        raise InputError(source, f"empty file: expected a header row naming {id_column!r} and the study's columns")
    (header_line, header), body = rows[0], rows[1:]
    return _table(source, header, body, id_column, header_line=header_line)


def _lines(text: str):
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def _table(source: str, header: list[str], rows, id_column: str, *, plink: bool = False,
           header_line: int = 1) -> RawTable:
    found = ", ".join(repr(name) for name in header)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(source, f"duplicate column(s) {', '.join(duplicates)}; found columns: {found}",
                         line=header_line)
    if id_column not in header:
        raise InputError(source, f"no id column {id_column!r} (study.id_column); found columns: {found}",
                         line=header_line)
    lines: dict[str, int] = {}
    values = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise InputError(source, f"expected {len(header)} fields (as in the header), found {len(fields)}",
                             line=line)
        sample = fields[header.index(id_column)]
        if not sample:
            raise InputError(source, f"column {id_column}: expected a sample id, found ''", line=line)
        if sample in lines:
            raise InputError(source, f"duplicate sample id {sample!r} (first on line {lines[sample]})", line=line)
        lines[sample] = line
        values.append(fields)
    if not values:
        raise InputError(source, "no data rows: the table has a header but no sample")
    frame = pd.DataFrame(values, columns=header, dtype=object).set_index(id_column, drop=False)
    return RawTable(source, frame, lines, plink=plink)


def parse_column(table: RawTable, column: str, kind: str) -> pd.Series:
    """One column of ``table`` as ``kind``, indexed by sample id.

    ``binary``: float64 0.0/1.0 from ``0/1``, ``case/control``, ``affected/unaffected`` or plink's
    ``1/2`` (control/case; used in plink files and whenever a ``2`` appears, where ``0`` is missing);
    ``quantitative`` / ``numeric``: float64; ``categorical``: str; ``sex``: ``F``/``M`` (female/male,
    or plink's 1 = M, 2 = F, 0 = unknown). Missing (``NA``, empty, ``.``; ``-9`` in plink files and in
    binary columns): NaN, or None for strings.

    Raises
    ------
    InputError
        A value that does not parse as ``kind``, naming the file, line, column and value.
    """
    raw = table.frame[column]
    if kind == "binary":
        return _parse(table, column, raw, _binary_parser(table, raw), "0/1, case/control or plink's 1/2", float)
    if kind in ("quantitative", "numeric"):
        return _parse(table, column, raw, lambda v: _float(v, table.plink), "a number", float)
    if kind == "sex":
        return _parse(table, column, raw, _sex, "F/M, female/male or plink's 1/2 (0 unknown)", object)
    if kind == "categorical":
        return _parse(table, column, raw, lambda v: None if _missing(v, table.plink) else v, "a value", object)
    raise ValueError(f"kind must be one of {COLUMN_TYPES}, got {kind!r}")


_BAD = object()


def _parse(table: RawTable, column: str, raw: pd.Series, parse, expected: str, dtype) -> pd.Series:
    out = []
    for sample, value in raw.items():
        parsed = parse(value)
        if parsed is _BAD:
            file, line = table.where(sample)
            raise InputError(file, f"column {column}: expected {expected}, found {value!r}", line=line)
        out.append(math.nan if parsed is None and dtype is float else parsed)
    return pd.Series(out, index=raw.index, dtype=np.float64 if dtype is float else object, name=column)


def _missing(value: str, plink: bool) -> bool:
    return value.lower() in MISSING or (plink and value in _PLINK_MISSING)


def _binary_parser(table: RawTable, raw: pd.Series):
    plink = table.plink or (raw == "2").any()
    codes = {**_CASE, **_PLINK_CASE} if plink else _CASE

    def parse(value: str):
        lowered = value.lower()
        if lowered in MISSING or value in _PLINK_MISSING or (plink and value == "0"):
            return None
        return codes.get(lowered, _BAD)

    return parse


def _float(value: str, plink: bool):
    if _missing(value, plink):
        return None
    try:
        number = float(value)
    except ValueError:
        return _BAD
    return number if math.isfinite(number) else _BAD


def _sex(value: str):
    lowered = value.lower()
    if lowered in MISSING or value in _PLINK_MISSING:
        return None
    if lowered in _SEX:
        return _SEX[lowered]
    return _PLINK_SEX.get(value, _BAD)


def normalise_sex(value) -> str | None:
    """``F``/``M`` from F/M, female/male (any case) or plink's 2/1; None when missing or unknown (0).

    Raises ValueError for anything else."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
    parsed = _sex(text)
    if parsed is _BAD:
        raise ValueError(f"'sex': expected F/M, female/male or plink's 1/2, found {value!r}")
    return parsed

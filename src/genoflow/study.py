"""The study (decision 0011): which columns are targets and covariates, their types, and the checks
that a cohort's phenotype tables can support the study, run before any Spark job.

The tables come from :mod:`genoflow.io.phenotypes` (a cohort table, optionally a covariates table)
or :func:`genoflow.io.clinical.clinical_table` (per-patient CSVs); :func:`build_study` types the
columns the study uses, joins them on the sample id and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genoflow.errors import InputError
from genoflow.io.phenotypes import RawTable, parse_column

__all__ = ["targets", "binary_targets", "covariates", "StudySettings", "Study", "build_study", "check_study",
           "design_matrix"]


def targets(params: dict) -> dict[str, str]:
    """Target name -> ``"binary"`` | ``"quantitative"``, in params order (``study.targets``)."""
    return dict(params["study"]["targets"])


def binary_targets(params: dict) -> list[str]:
    return [name for name, kind in targets(params).items() if kind == "binary"]


def covariates(params: dict) -> list[str]:
    """The study covariates the models and the association scan use (``features.covariates``)."""
    return list(params["features"]["covariates"])


@dataclass(frozen=True)
class StudySettings:
    """``study:`` plus the covariates in use (``features.covariates``)."""

    targets: dict[str, str]
    covariates: list[str]
    categorical: list[str]
    missing_covariates: str = "drop"  # drop | impute
    min_minority: int = 10

    @classmethod
    def from_params(cls, params: dict) -> StudySettings:
        s = params["study"]
        return cls(targets(params), covariates(params), list(s.get("categorical") or []),
                   s.get("missing_covariates", "drop"), int(s.get("min_minority", 10)))

    def kind(self, column: str) -> str:
        """How a column parses: the target's type, ``sex`` (F/M), categorical or numeric."""
        if column in self.targets:
            return self.targets[column]
        if column == "sex":
            return "sex"
        return "categorical" if column in self.categorical else "numeric"


@dataclass
class Study:
    """The study's columns for the cohort's samples.

    Attributes
    ----------
    frame : pandas.DataFrame
        Index: sample id. Targets float64 (0.0/1.0 or the value, NaN missing), numeric covariates
        float64, categorical covariates and ``sex`` (F/M, when a table has it) str or None.
    columns : dict
        Column -> ``{"role": "target"|"covariate"|"sex", "type", "levels", "n_missing", "source"}``.
    n_missing_covariates : int
        Samples missing at least one used covariate (left out when ``missing_covariates`` is drop).
    """

    frame: pd.DataFrame
    columns: dict[str, dict]
    missing_covariates: str = "drop"
    n_missing_covariates: int = 0
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def sex(self) -> pd.Series | None:
        return self.frame["sex"] if "sex" in self.frame else None

    def summary(self) -> dict:
        """``study.json``: each column's role, type, levels and missing count."""
        return {"columns": self.columns, "missing_covariates": self.missing_covariates,
                "n_samples": len(self.frame), "n_samples_missing_covariates": self.n_missing_covariates}


def build_study(tables: list[RawTable], settings: StudySettings, samples: list[str], *, check: bool = True) -> Study:
    """The study's columns typed, joined on the sample id, for ``samples`` (in that order), checked
    (:func:`check_study`; ``check=False``: typed only, e.g. a batch that joins a larger cohort).

    The first table holding a column provides it. A plink ``.fam`` (columns FID IID PAT MAT SEX PHENO)
    gives ``sex`` from SEX and, as its PHENO, the first target no other table has.

    Raises
    ------
    InputError
        A named column that no table has (listing the columns found), a value that does not parse
        as its type, or a failed :func:`check_study`.
    """
    tables = [_name_fam_columns(t, settings, tables) for t in tables]
    used = [*settings.targets, *[c for c in settings.covariates if c not in settings.targets]]
    frame, columns, sources = pd.DataFrame(index=pd.Index(samples, dtype=object)), {}, {}
    for column in [*used, *([] if "sex" in used else ["sex"])]:
        table = next((t for t in tables if column in t.frame.columns), None)
        if table is None:
            if column == "sex":
                continue  # optional: only the X sex check needs it
            raise _unknown_column(column, settings, tables)
        kind = settings.kind(column)
        values = parse_column(table, column, kind).reindex(frame.index)
        frame[column] = values
        sources[column] = table.source
        role = "target" if column in settings.targets else "covariate" if column in used else "sex"
        columns[column] = {"role": role, "type": "categorical" if kind == "sex" else kind,
                           "levels": sorted(values.dropna().unique().tolist()) if values.dtype == object else None,
                           "n_missing": int(values.isna().sum()), "source": table.source}
    cov = [c for c in settings.covariates if c not in settings.targets]
    n_missing = int(frame[cov].isna().any(axis=1).sum()) if cov else 0
    study = Study(frame, columns, settings.missing_covariates, n_missing, sources)
    if check:
        check_study(study, settings)
    return study


def _name_fam_columns(table: RawTable, settings: StudySettings, tables: list[RawTable]) -> RawTable:
    if not (table.plink and list(table.frame.columns) == ["FID", "IID", "PAT", "MAT", "SEX", "PHENO"]):
        return table
    elsewhere = {c for t in tables if t is not table for c in t.frame.columns}
    pheno = next((t for t in settings.targets if t not in elsewhere), "PHENO")
    frame = table.frame.rename(columns={"SEX": "sex", "PHENO": pheno})
    return RawTable(table.source, frame, table.lines, table.plink, table.files)


def _unknown_column(column: str, settings: StudySettings, tables: list[RawTable]) -> InputError:
    where = "study.targets" if column in settings.targets else "features.covariates"
    found = ", ".join(repr(c) for t in tables for c in t.frame.columns)
    return InputError(" + ".join(t.source for t in tables),
                      f"column {column!r} ({where}) is not in the phenotype table(s); found columns: {found}")


def check_study(study: Study, settings: StudySettings) -> None:
    """The checks of decision 0011, each failing with one line naming the file and the column.

    A binary target needs both classes and at least ``min_minority`` of its rarer one among the
    labelled samples (those kept: with ``missing_covariates: drop``, samples missing a covariate are
    left out); a covariate must vary, and the covariates (numeric as they are, categorical one-hot
    against the most frequent level) must not be collinear.
    """
    frame = study.frame
    cov = [c for c in settings.covariates if c not in settings.targets]
    if settings.missing_covariates == "drop" and cov:
        frame = frame[frame[cov].notna().all(axis=1)]
    for name, kind in settings.targets.items():
        if kind == "binary":
            _check_binary(frame[name], study.sources[name], settings.min_minority)
    for name in cov:
        levels = frame[name].dropna().unique()
        if len(levels) < 2:
            raise InputError(study.sources[name], f"covariate {name!r} is constant ({levels.tolist()!r}): "
                                                  f"it cannot adjust for anything; drop it from features.covariates")
    _check_collinear(frame[cov].dropna(), cov, study.sources)


def _check_binary(labels: pd.Series, source: str, min_minority: int) -> None:
    counts = labels.dropna().value_counts()
    if len(counts) < 2:
        raise InputError(source, f"target {labels.name!r} has a single class among labelled samples "
                                 f"({counts.to_dict()}): nothing to predict")
    if counts.min() < min_minority:
        raise InputError(source, f"target {labels.name!r}: only {int(counts.min())} sample(s) of its minority "
                                 f"class {counts.idxmin():g} (study.min_minority: {min_minority})")


def design_matrix(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Covariates as numbers: numeric columns as they are, object columns one-hot against their most
    frequent level (ties: the first in sorted order); returns the matrix and each column's covariate."""
    columns, owners = [], []
    for name in names:
        values = frame[name]
        if values.dtype == object:
            counts = values.value_counts()
            reference = sorted(counts[counts == counts.max()].index)[0]
            for level in sorted(set(counts.index) - {reference}):
                columns.append((values == level).to_numpy(dtype=float))
                owners.append(name)
        else:
            columns.append(values.to_numpy(dtype=float))
            owners.append(name)
    matrix = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    return matrix, owners


def _check_collinear(frame: pd.DataFrame, names: list[str], sources: dict[str, str]) -> None:
    matrix, owners = design_matrix(frame, names)
    design = np.column_stack([np.ones(len(frame)), matrix])
    for j in range(matrix.shape[1]):
        if np.linalg.matrix_rank(design[:, : j + 2]) < j + 2:
            name = owners[j]
            others = sorted(set(owners[:j]) - {name}) or [name]
            raise InputError(sources[name], f"covariate {name!r} is collinear with {', '.join(others)} and the "
                                            f"intercept (rank-deficient covariate design): drop one of them")

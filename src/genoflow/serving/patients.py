"""Patients' raw values -> one model's input matrix, with every problem named.

Validation here is about what a client sent (types, ranges, names the model knows); turning
valid values into features is `FeatureSpec.transform`, the very code that built the training
table, so serving cannot drift from training. Problem messages may quote the offending value
back to the client, but nothing here logs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from genoflow.genotypes import MISSING, variant_label
from genoflow.serving.errors import InputProblem
from genoflow.serving.model import Covariate, ServedModel

__all__ = ["PatientValues", "Prepared", "prepare", "variant_column"]

DOSAGES = (0, 1, 2)
MAX_LISTED = 5  # unknown names quoted in an error; the count says how many more

# contig:pos:ref:alt; a contig may itself contain ':' (e.g. HLA alleles), so split from the right.
_VARIANT_KEY = re.compile(r"^(?P<contig>.+):(?P<pos>[0-9]+):(?P<ref>[ACGTNacgtn]+):(?P<alt>[ACGTNacgtn]+)$")


@dataclass(frozen=True)
class PatientValues:
    """One patient's raw values as sent: covariates by name and genotypes by variant key."""

    covariates: Mapping[str, object]
    genotypes: Mapping[str, object]


@dataclass(frozen=True)
class Prepared:
    """Model inputs of a list of patients (rows in request order)."""

    x: np.ndarray  # (n, len(spec.names)) float64
    n_variants_used: np.ndarray  # (n,) int: model variants with a called dosage
    n_variants_missing: np.ndarray  # (n,) int: model variants absent or no-call, imputed


def variant_column(key: str) -> str | None:
    """The feature column of a genotype key: ``chr22:1114906:C:G`` or ``v_chr22_1114906_C_G``.

    Returns None when ``key`` is neither form.
    """
    if key.startswith("v_"):
        return key
    match = _VARIANT_KEY.match(key)
    if match is None:
        return None
    return variant_label(match["contig"], int(match["pos"]), match["ref"].upper(), match["alt"].upper())


def prepare(model: ServedModel, patients: Sequence[PatientValues], *, ignore_unknown: bool = False,
            labels: Sequence[str] | None = None) -> Prepared:
    """Validate raw values against ``model``'s feature spec and build its input matrix.

    Parameters
    ----------
    model : ServedModel
    patients : sequence of PatientValues
    ignore_unknown : bool
        Skip covariates and variants the model does not use instead of refusing them.
    labels : sequence of str, optional
        How to name each patient in messages (e.g. ``patients[3]``); default: no prefix.

    Raises
    ------
    InputProblem
        Every problem found (status 422): missing or invalid covariates, numbers outside their
        allowed range (`genoflow.serving.ranges`: the field, the value and the range), dosages that are
        not 0/1/2, malformed variant keys, names the model does not know (unless ``ignore_unknown``).
    """
    spec = model.spec
    columns = [*(c.name for c in model.covariates), *spec.read_qc, *model.variant_order]
    frame: dict[str, list] = {name: [] for name in columns}
    used = np.zeros(len(patients), dtype=np.int64)
    problems: list[str] = []
    for i, patient in enumerate(patients):
        where = f"{labels[i]}." if labels else ""
        problems += _covariates(model, patient.covariates, frame, where, ignore_unknown)
        calls, found = _genotypes(model, patient.genotypes, where, ignore_unknown)
        problems += found
        for column in model.variant_order:
            frame[column].append(calls.get(column, math.nan))
        used[i] = len(calls)
    if problems:
        raise InputProblem(problems)
    x = spec.transform(frame) if patients else np.empty((0, len(spec.names)))
    return Prepared(x, used, len(model.variant_order) - used)


def _covariates(model: ServedModel, values, frame: dict, where: str, ignore_unknown: bool) -> list[str]:
    if not isinstance(values, Mapping):
        return [f"{where}covariates: expected an object of name -> value"]
    spec, problems = model.spec, []
    for covariate in model.covariates:
        value, problem = _covariate(covariate, values.get(covariate.name))
        problem = problem or _out_of_range(model, covariate.name, value)
        frame[covariate.name].append(value)
        if problem:
            problems.append(f"{where}covariates.{covariate.name}: {problem}")
    for name in spec.read_qc:
        value = values.get(name)
        if value is None:
            frame[name].append(math.nan)  # optional: the training mean fills it
        elif _finite(value) is not None:
            frame[name].append(_finite(value))
            if problem := _out_of_range(model, name, _finite(value)):
                problems.append(f"{where}covariates.{name}: {problem}")
        else:
            frame[name].append(math.nan)
            problems.append(f"{where}covariates.{name}: expected a finite number or null, got {_short(value)}")
    unknown = sorted(set(values) - model.covariate_columns)
    if unknown and not ignore_unknown:
        problems.append(f"{where}covariates: {_listed(unknown)} not used by {model.name} v{model.version} "
                        f"(it uses {', '.join(sorted(model.covariate_columns))}); send \"ignore_unknown\": true "
                        "to skip unused values")
    return problems


def _out_of_range(model: ServedModel, name: str, value) -> str | None:
    """Why a numeric value cannot be scored (`genoflow.serving.ranges`), or None."""
    allowed = model.ranges.get(name)
    if allowed is None or not isinstance(value, float) or math.isnan(value) or value in allowed:
        return None
    return f"{value:g} is out of range: allowed {allowed.describe()}"


def _covariate(covariate: Covariate, value) -> tuple[object, str | None]:
    """The raw value for the spec and a problem, if any.

    Numbers must be finite; a categorical value must be one of the levels the model was trained
    with (exactly, else ignoring case when that names one level), since an unseen level has no
    column. A missing value is refused unless the study imputes the covariate (the spec fills it).
    """
    missing = (None if covariate.kind == "categorical" else math.nan), None if covariate.imputed else "required"
    if value is None:
        return missing
    if covariate.kind == "numeric":
        number = _finite(value)
        return (number, None) if number is not None else (math.nan, f"expected a finite number, got {_short(value)}")
    text = _text(covariate, value)
    if text == "":  # sex 0: plink's unknown
        return missing
    level = _level(covariate.levels, text) if text is not None else None
    if level is None:
        return None, f"unknown level {_short(value)}; known levels: {', '.join(map(repr, covariate.levels))}"
    return level, None


def _text(covariate: Covariate, value) -> str | None:
    """A categorical value as text ("" for an unknown sex), or None when it cannot name a level.

    A string or an int (a JSON number naming a level, e.g. a stratum); ``sex`` by the study's own
    rule (F/M, female/male, plink's 2/1), as training read it.
    """
    from genoflow.io.phenotypes import normalise_sex

    if not (isinstance(value, str) or type(value) is int):
        return None
    if covariate.name != "sex":
        return str(value).strip()
    try:
        return normalise_sex(value) or ""
    except ValueError:
        return None


def _level(levels: tuple[str, ...], text: str) -> str | None:
    if text in levels:
        return text
    folded = [level for level in levels if level.casefold() == text.casefold()]
    return folded[0] if len(folded) == 1 else None


def _genotypes(model: ServedModel, values, where: str, ignore_unknown: bool) -> tuple[dict[str, float], list[str]]:
    """Called dosages of the model's variants, by column; and the problems found."""
    if not isinstance(values, Mapping):
        return {}, [f"{where}genotypes: expected an object of variant -> dosage"]
    calls: dict[str, float] = {}
    seen: dict[str, object] = {}
    problems, malformed, unknown = [], [], []
    for key, value in values.items():
        column = variant_column(key)
        if column is None:
            malformed.append(key)
            continue
        if column not in model.variant_columns:
            unknown.append(key)
            continue
        # Exactly the integers (not 1.0, not true): a dosage is a count of alleles.
        is_int = type(value) is int
        if not (value is None or (is_int and (value in DOSAGES or value == MISSING))):
            problems.append(f"{where}genotypes[{_short(key)}]: dosage must be 0, 1 or 2 (null or -1 for a "
                            f"missing call), got {_short(value)}")
            continue
        if column in seen and seen[column] != value:
            problems.append(f"{where}genotypes: {_short(key)} is given twice with different dosages")
        seen[column] = value
        if is_int and value != MISSING:
            calls[column] = float(value)
    if malformed:
        problems.append(f"{where}genotypes: {_listed(malformed)} not a variant key: use contig:pos:ref:alt "
                        "(e.g. chr22:1114906:C:G) or the feature name v_<contig>_<pos>_<ref>_<alt>")
    if unknown and not ignore_unknown:
        problems.append(f"{where}genotypes: {_listed(unknown)} not used by {model.name} v{model.version}; "
                        "send \"ignore_unknown\": true to skip variants the model does not use")
    return calls, problems


def _finite(value) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN/inf, or an int too big for a float)."""
    # bool is an int in Python, but `true` is not a measurement.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _listed(names: list[str]) -> str:
    shown = ", ".join(_short(n) for n in names[:MAX_LISTED])
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    verb = "is" if len(names) == 1 else "are"
    return f"{shown}{more} {verb}"

"""The values a served model accepts for each numeric input: from what the input means, else from training.

A logistic model answers something for any number, and far outside what it was fitted on that
something is meaningless (``gc_fraction: 7`` gave a risk of 1.0). So every numeric input has a
closed range, and a value outside it is refused (422) rather than scored:

- by meaning, where the name says what the value is: the FASTQ read-QC summaries
  (`genoflow.io.fastq.fastq_read_qc`: fractions in [0, 1], Phred+33 scores in [0, 93], counts and
  lengths >= 0) and ``age`` in years, [0, 130];
- else from the training rows' range recorded in the feature spec (``min``/``max`` of a numeric
  covariate, `genoflow.features.spec.fit_covariates`), widened by `TRAINING_SLACK` of its span on
  each side, so a patient a little past the cohort's extremes is still scored;
- else (a spec saved before ranges were recorded) any finite number, as before.

Genotype dosages are checked where they are read (0, 1, 2, or missing: `genoflow.serving.patients`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Range", "RANGE_BY_MEANING", "TRAINING_SLACK", "input_ranges"]

TRAINING_SLACK = 0.25


@dataclass(frozen=True)
class Range:
    """A closed interval and why it is the allowed one (said in the 422)."""

    low: float
    high: float
    basis: str

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"[{_number(self.low)}, {_number(self.high)}] ({self.basis})"


_FRACTION = (0.0, 1.0, "a fraction")
_COUNT = (0.0, math.inf, "a count")
_LENGTH = (0.0, math.inf, "a read length")
RANGE_BY_MEANING: dict[str, Range] = {name: Range(*bounds) for name, bounds in {
    "gc_fraction": _FRACTION, "n_rate": _FRACTION, "q30_fraction": _FRACTION,
    "mean_phred": (0.0, 93.0, "Phred+33 base qualities run from 0 to 93"),
    "n_reads": _COUNT, "n_bases": _COUNT,
    "mean_length": _LENGTH, "min_length": _LENGTH, "max_length": _LENGTH,
    "age": (0.0, 130.0, "an age in years"),
}.items()}


def input_ranges(covariates: list[dict], read_qc: list[str]) -> dict[str, Range]:
    """The allowed range of each numeric input of a feature spec that has one, by name.

    Parameters
    ----------
    covariates : list of dict
        ``FeatureSpec.covariates``; categorical ones are checked against their levels instead.
    read_qc : list of str
        ``FeatureSpec.read_qc``.
    """
    out = {name: RANGE_BY_MEANING[name] for name in read_qc if name in RANGE_BY_MEANING}
    for c in covariates:
        if c["kind"] != "numeric":
            continue
        if c["name"] in RANGE_BY_MEANING:
            out[c["name"]] = RANGE_BY_MEANING[c["name"]]
        elif c.get("min") is not None and c.get("max") is not None:
            out[c["name"]] = _widened(float(c["min"]), float(c["max"]))
    return out


def _widened(low: float, high: float) -> Range:
    slack = TRAINING_SLACK * (high - low)
    basis = (f"the training range [{_number(low)}, {_number(high)}] widened by {TRAINING_SLACK:.0%} of its span "
             "each side")
    return Range(low - slack, high + slack, basis)


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.6g}"

"""The feature specification: one definition of how a patient's raw values become model inputs.

The features job builds the training table with :meth:`FeatureSpec.transform`, and the model API
calls the same method on one patient's JSON, so training and serving cannot drift apart. A spec
is saved with every trained model (``feature_spec.json`` in its MLflow run).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from genoflow.features.scores import ScoreBlock
from genoflow.genotypes import variant_label
from genoflow.privacy import BANDED_COVARIATES, band_midpoint

__all__ = ["FeatureSpec", "fit_covariates", "encode_covariates", "covariate_columns"]


def fit_covariates(samples, names: list[str], categorical: list[str], is_train: np.ndarray,
                   missing: str = "drop") -> list[dict]:
    """The encoding of the study covariates (decision 0011), learnt from the sample table.

    Parameters
    ----------
    samples : pandas.DataFrame
        The sample table: numeric covariates float64, categorical ones str (None missing).
    names : list of str
        The covariates, in order (``features.covariates``).
    categorical : list of str
        ``study.categorical``; a str column (e.g. ``sex``) is categorical too.
    is_train : numpy.ndarray of bool, shape (n_samples,)
        The training rows: the reference level and the fill values come from them only.
    missing : str
        ``study.missing_covariates``: ``impute`` fills a missing value with the training mean (numeric)
        or the reference level (the training mode); ``drop`` sets no fill, so a missing value is an error.

    Returns
    -------
    list of dict
        ``{"name", "kind": "numeric"|"categorical", "levels", "reference", "fill"}`` per covariate, and
        for a numeric one ``min``/``max``, its training rows' range (None when they have no value), and
        ``band`` for one of :data:`genoflow.privacy.BANDED_COVARIATES`: scoring bands its value likewise.
        ``levels``: every level seen (all rows: no labels involved), sorted; ``reference``: the most
        frequent training level, ties by sorted order.
    """
    import pandas as pd

    out = []
    for name in names:
        if name not in samples:
            raise ValueError(f"covariate {name!r} is not a column of the sample table")
        values = samples[name]
        if name in categorical or values.dtype == object:
            present = values.dropna().astype(str)
            counts = present[np.asarray(is_train)[values.notna().to_numpy()]].value_counts()
            if counts.empty:
                raise ValueError(f"covariate {name!r} has no value in the training rows")
            reference = sorted(counts[counts == counts.max()].index)[0]
            out.append({"name": name, "kind": "categorical", "levels": sorted(present.unique()),
                        "reference": reference, "fill": reference if missing == "impute" else None})
        else:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)[np.asarray(is_train)]
            band = BANDED_COVARIATES.get(name)  # the sample table holds band midpoints (decision 0018)
            numbers = band_midpoint(numbers, band) if band else numbers
            mean = float(np.nanmean(numbers)) if np.isfinite(numbers).any() else 0.0
            finite = numbers[np.isfinite(numbers)]
            # The training range (a banded column's: its bands' edges): serving refuses values far outside it
            # (genoflow.serving.patients).
            half = band / 2 if band else 0.0
            low, high = (float(finite.min()) - half, float(finite.max()) + half) if finite.size else (None, None)
            out.append({"name": name, "kind": "numeric", "levels": [], "reference": None,
                        "fill": mean if missing == "impute" else None, "min": low, "max": high,
                        **({"band": band} if band else {})})
    return out


def covariate_columns(covariates: list[dict]) -> list[str]:
    """The encoded columns: a numeric covariate's name; ``<name>=<level>`` per non-reference level."""
    return [col for c in covariates for col in _columns_of(c)]


def _columns_of(c: dict) -> list[str]:
    if c["kind"] == "numeric":
        return [c["name"]]
    return [f"{c['name']}={level}" for level in c["levels"] if level != c["reference"]]


def encode_covariates(frame, covariates: list[dict]) -> np.ndarray:
    """The covariates as model inputs, shape (n_rows, len(covariate_columns)) float64.

    Raises ValueError naming the covariate: absent from ``frame``; a missing value without a fill
    (``missing_covariates: drop``); a level the training cohort did not have; a non-number.
    """
    n = _n_rows(frame)
    columns = []
    for c in covariates:
        name = c["name"]
        if name not in frame:
            raise ValueError(f"covariate {name!r} is required")
        values = [_covariate_value(c, v) for v in frame[name]]
        if any(v is None for v in values):
            if c.get("fill") is None:
                raise ValueError(f"covariate {name!r} is missing (study.missing_covariates: drop, so it is required)")
            values = [c["fill"] if v is None else v for v in values]
        if c["kind"] == "numeric":
            columns.append(np.asarray(values, dtype=float))
            continue
        unknown = sorted({v for v in values if v not in c["levels"]})
        if unknown:
            raise ValueError(f"covariate {name!r}: unknown level {unknown[0]!r} (levels: {', '.join(c['levels'])})")
        columns.extend(np.asarray([v == level for v in values], dtype=float)
                       for level in c["levels"] if level != c["reference"])
    return np.column_stack(columns) if columns else np.empty((n, 0))


def _covariate_value(c: dict, value):
    """One raw value: None when missing; a str level (``sex`` normalised to F/M) or a float."""
    from genoflow.io.phenotypes import normalise_sex

    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    if c["kind"] == "categorical" and c["name"] == "sex":
        try:
            return normalise_sex(value)
        except ValueError as err:
            raise ValueError(f"covariate {err}") from None
    if c["kind"] == "categorical":
        return str(value).strip()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"covariate {c['name']!r}: expected a number, found {value!r}") from None
    if c.get("band") and math.isfinite(number):  # banded in training: band what a clinician sends the same way
        number = float(band_midpoint(number, c["band"]))
    return number if math.isfinite(number) else None


@dataclass
class FeatureSpec:
    """Feature columns of one model, in order, with the training-split fill values.

    Attributes
    ----------
    covariates : list of dict
        Study covariates (:func:`fit_covariates`): ``{"name", "kind": "numeric"|"categorical",
        "levels", "reference", "fill"}``; a categorical one becomes a column ``<name>=<level>`` per
        non-reference level. Required at scoring unless it has a fill (``missing_covariates: impute``).
    read_qc : list of str
        FASTQ read-QC features; missing values take the training mean.
    variants : list of dict
        Selected variants (contig, pos, ref, alt, gene, train_p); each becomes a dosage column
        named ``v_<contig>_<pos>_<ref>_<alt>``; a missing dosage takes the training mean.
    fill : dict
        Column -> training-split mean used for missing values.
    scores : list of dict
        Linear genotype scores (:class:`genoflow.features.scores.ScoreBlock` as dicts): principal
        components (loadings + allele frequencies, for projecting a new patient), polygenic scores
        (clumped variants' weights) and gene burdens (the genes' rare variants). Their columns come
        after the read-QC ones; a missing call takes its mean (``2p``) inside the score.
    """

    covariates: list[dict]
    read_qc: list[str]
    variants: list[dict]
    fill: dict[str, float] = field(default_factory=dict)
    scores: list[dict] = field(default_factory=list)

    @property
    def covariate_names(self) -> list[str]:
        """The raw sample-table columns the covariates are encoded from."""
        return [c["name"] for c in self.covariates]

    @property
    def covariate_columns(self) -> list[str]:
        return covariate_columns(self.covariates)

    @property
    def variant_columns(self) -> list[str]:
        return [variant_label(v["contig"], v["pos"], v["ref"], v["alt"]) for v in self.variants]

    @property
    def score_blocks(self) -> list[ScoreBlock]:
        # Built once per spec (a request scores with the same spec many times); `scores` is not
        # changed after construction.
        if getattr(self, "_blocks", None) is None:
            self._blocks = [ScoreBlock(**block) for block in self.scores]
        return self._blocks

    @property
    def score_columns(self) -> list[str]:
        return [name for block in self.score_blocks for name in block.names]

    @property
    def input_variants(self) -> list[dict]:
        """Every variant whose dosage the features use: the selected ones, then the scores' (no repeats)."""
        seen, out = set(), []
        keys = [(v["contig"], int(v["pos"]), v["ref"], v["alt"]) for v in self.variants]
        keys += [(c, int(p), r, a) for block in self.score_blocks for c, p, r, a in block.variants]
        for key in keys:
            if key not in seen:
                seen.add(key)
                out.append(dict(zip(("contig", "pos", "ref", "alt"), key, strict=True)))
        return out

    @property
    def input_variant_columns(self) -> list[str]:
        return [variant_label(v["contig"], v["pos"], v["ref"], v["alt"]) for v in self.input_variants]

    @property
    def names(self) -> list[str]:
        return [*self.covariate_columns, *self.read_qc, *self.score_columns, *self.variant_columns]

    def fit_fill(self, frame, is_train: np.ndarray) -> FeatureSpec:
        """Set fill values to the training rows' means (missing values ignored); returns self."""
        for col in [*self.read_qc, *self.variant_columns]:
            values = _numeric(frame, col)[is_train]
            finite = values[np.isfinite(values)]
            self.fill[col] = float(finite.mean()) if finite.size else 0.0
        return self

    def transform(self, frame, genotype_scores: np.ndarray | None = None) -> np.ndarray:
        """Model inputs, shape (n_rows, len(names)) float64, from raw values in ``frame``.

        ``frame`` is any mapping of column -> sequence (a pandas DataFrame, or a dict of lists):
        the covariates (:func:`encode_covariates`), the read-QC columns and the variant dosage columns (every
        ``input_variant_columns``), where a dosage of -1, NaN or an absent column means missing.
        ``genotype_scores``, shape (n_rows, len(score_columns)), gives the score columns already
        computed (the features job computes them in Spark with the same weights); without it they
        are computed from the frame's dosages. Raises ValueError naming a covariate that is absent,
        missing without a fill, or of a level unknown to the spec.
        """
        columns = list(encode_covariates(frame, self.covariates).T)
        n = _n_rows(frame)
        for col in self.read_qc:
            values = _numeric(frame, col) if col in frame else np.full(n, np.nan)
            columns.append(np.where(np.isfinite(values), values, self.fill.get(col, 0.0)))
        columns.extend(self._scores(frame, n, genotype_scores).T)
        for col in self.variant_columns:
            values = _numeric(frame, col) if col in frame else np.full(n, np.nan)
            values = np.where(values < 0, np.nan, values)
            columns.append(np.where(np.isfinite(values), values, self.fill.get(col, 0.0)))
        return np.column_stack(columns) if columns else np.empty((n, 0))

    def _scores(self, frame, n: int, given: np.ndarray | None) -> np.ndarray:
        width = len(self.score_columns)
        if given is not None:
            given = np.asarray(given, dtype=np.float64)
            if given.shape != (n, width):
                raise ValueError(f"genotype_scores: expected shape ({n}, {width}), got {given.shape}")
            return given
        parts = [np.empty((n, 0))]
        for block in self.score_blocks:
            dosages = np.column_stack([_numeric(frame, col) if col in frame else np.full(n, np.nan)
                                       for col in block.variant_columns]) if block.variants else np.empty((n, 0))
            parts.append(block.apply(dosages))
        return np.column_stack(parts)

    def subset(self, variants: list[dict], score_columns: list[str] | None = None) -> FeatureSpec:
        """The same covariate/read-QC columns with another variant list and some of the score columns
        (all by default), sharing fill values."""
        wanted = set(self.score_columns if score_columns is None else score_columns)
        blocks = []
        for block in self.score_blocks:
            names = [name for name in block.names if name in wanted]
            if names:
                blocks.append(asdict(block.subset_names(names)))
        return FeatureSpec([dict(c) for c in self.covariates], list(self.read_qc), list(variants), dict(self.fill),
                           blocks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        fields = json.loads(text)
        if "clinical" in fields:  # a spec saved before decision 0011: age numeric, sex 0/1 = one-hot sex=M
            fields["covariates"] = [_legacy_covariate(name) for name in fields.pop("clinical")]
        return cls(**fields)


def _legacy_covariate(name: str) -> dict:
    if name == "sex":
        return {"name": "sex", "kind": "categorical", "levels": ["F", "M"], "reference": "F", "fill": None}
    return {"name": name, "kind": "numeric", "levels": [], "reference": None, "fill": None}


def _n_rows(frame) -> int:
    if hasattr(frame, "columns"):  # a DataFrame
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


def _numeric(frame, col: str) -> np.ndarray:
    values = frame[col]
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        import pandas as pd

        return pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(dtype=float)

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

__all__ = ["FeatureSpec", "encode_sex"]


def encode_sex(values) -> np.ndarray:
    """``F``/``M`` (any case, or female/male) as 0.0/1.0; anything else is NaN."""
    out = []
    for v in values:
        s = str(v).strip().upper() if v is not None else ""
        out.append(1.0 if s in ("M", "MALE") else 0.0 if s in ("F", "FEMALE") else math.nan)
    return np.asarray(out, dtype=float)


@dataclass
class FeatureSpec:
    """Feature columns of one model, in order, with the training-split fill values.

    Attributes
    ----------
    clinical : list of str
        Clinical covariates (``age`` in years, ``sex`` as F/M encoded 0/1). Required at scoring.
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

    clinical: list[str]
    read_qc: list[str]
    variants: list[dict]
    fill: dict[str, float] = field(default_factory=dict)
    scores: list[dict] = field(default_factory=list)

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
        return [*self.clinical, *self.read_qc, *self.score_columns, *self.variant_columns]

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
        ``age``, ``sex`` (F/M), the read-QC columns and the variant dosage columns (every
        ``input_variant_columns``), where a dosage of -1, NaN or an absent column means missing.
        ``genotype_scores``, shape (n_rows, len(score_columns)), gives the score columns already
        computed (the features job computes them in Spark with the same weights); without it they
        are computed from the frame's dosages. Raises ValueError when a clinical covariate is
        missing, since those are never imputed.
        """
        columns = []
        for col in self.clinical:
            if col not in frame:
                raise ValueError(f"clinical covariate {col!r} is required")
            values = encode_sex(frame[col]) if col == "sex" else _numeric(frame, col)
            if not np.isfinite(values).all():
                raise ValueError(f"clinical covariate {col!r} is required and must be valid for every row")
            columns.append(values)
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
        """The same clinical/read-QC columns with another variant list and some of the score columns
        (all by default), sharing fill values."""
        wanted = set(self.score_columns if score_columns is None else score_columns)
        blocks = []
        for block in self.score_blocks:
            names = [name for name in block.names if name in wanted]
            if names:
                blocks.append(asdict(block.subset_names(names)))
        return FeatureSpec(list(self.clinical), list(self.read_qc), list(variants), dict(self.fill), blocks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


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

"""Request and response bodies of the model API (shapes only; values are checked in `patients`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

__all__ = ["PatientIn", "PredictRequest", "BatchPatient", "BatchRequest", "ModelRef", "Prediction",
           "BatchItem", "BatchPrediction"]

_EXAMPLE = {"target": "disease_status", "covariates": {"age": 61, "sex": "F", "mean_phred": 35.2},
            "genotypes": {"chr22:1114906:C:G": 1, "chr22:1120044:T:C": 0}}


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    covariates: dict[str, Any] = Field(
        description="the model's study covariates by name (GET /models lists them): numbers, or one of the known "
                    "levels of a categorical covariate; read-QC values (e.g. mean_phred) are optional and null or "
                    "absent means the training mean")
    genotypes: dict[str, Any] = Field(
        default_factory=dict,
        description="variant (contig:pos:ref:alt, or the feature name v_<contig>_<pos>_<ref>_<alt>) -> "
                    "dosage 0/1/2; null or -1 is a missing call; the model's variants not given are imputed")


class PredictRequest(PatientIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    target: str | None = Field(None, description="the served target; default: the first served (disease_status)")
    ignore_unknown: StrictBool = Field(False, description="skip variants/covariates the model does not use")


class BatchPatient(PatientIn):
    id: str | None = Field(None, max_length=200, description="echoed back with the prediction; never logged")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str | None = None
    ignore_unknown: StrictBool = False
    patients: list[BatchPatient]


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str


class Prediction(BaseModel):
    risk: float | None = Field(None, description="binary targets: P(y = 1) from the served model, as Spark's "
                               "probability[1]")
    prediction: float | None = Field(None, description="quantitative targets: the predicted value, as Spark's "
                                     "prediction")
    target: str
    model: ModelRef
    dataset_version: str | None
    n_variants_used: int = Field(description="the model's variants with a called dosage")
    n_variants_missing: int = Field(description="the model's variants absent or no-call (imputed: training mean, "
                                    "or 2 x ALT frequency inside a genotype score)")


class BatchItem(BaseModel):
    id: str | None
    risk: float | None = None
    prediction: float | None = None
    n_variants_used: int
    n_variants_missing: int


class BatchPrediction(BaseModel):
    target: str
    model: ModelRef
    dataset_version: str | None
    predictions: list[BatchItem]

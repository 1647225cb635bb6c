"""The typed schema of params.yaml (decision 0011): one pydantic model per section.

Every key is known: a misspelled or unknown key, a wrong type or a value out of range is a
:class:`~genoflow.errors.ParamsError` naming the key path, raised before any Spark work
(:func:`genoflow.config.load_params` validates params.yaml and each run's overrides; the jobs
validate what they are given).

Defaults are the values params.yaml ships with, so a params file may leave keys out, and
``validate_params(params).model_dump()`` is the complete params dict the steps read.

Examples
--------
>>> validate_params({"study": {"targets": {"case": "binary"}}}).features.top_k
40
>>> validate_params({"features": {"top_kk": 5}}, "params.yaml")
Traceback (most recent call last):
...
genoflow.errors.ParamsError: params.yaml: features.top_kk: unknown key (did you mean top_k?)
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from genoflow.errors import ParamsError
from genoflow.models.estimators import MODEL_FAMILIES, TARGET_TYPES
from genoflow.storage.paths import relative_name

__all__ = ["Params", "Preprocess", "Features", "Train", "Promote", "Mlflow", "Ingest", "Monitor", "Study",
           "SECTIONS", "validate_params", "validate_section"]

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Probability = Annotated[float, Field(gt=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Name = Annotated[str, StringConstraints(min_length=1)]
# A path under the project or the storage root: no '..' (run conf sets these; genoflow.storage.paths).
RelativePath = Annotated[str, StringConstraints(min_length=1), AfterValidator(relative_name)]
Family = Literal[MODEL_FAMILIES]  # type: ignore[valid-type]  # the tuple's values, one home
TargetType = Literal[TARGET_TYPES]  # type: ignore[valid-type]


def _scalar(value: Any) -> Any:
    # One check instead of a Union: a Union's failure is one error per member, not one line.
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"expected a number, string or boolean, got {value!r}")


def _spark_key(key: str) -> str:
    if key.startswith("spark."):
        return key
    raise ValueError(f"{key!r} is not a Spark conf key (they start with 'spark.'; spark-submit would ignore it)")


Scalar = Annotated[Any, AfterValidator(_scalar)]
SparkKey = Annotated[str, AfterValidator(_spark_key)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Preprocess(_Section):
    """VCF to genotype table, QC thresholds (plink2's flags in comments of params.yaml)."""

    input: Literal["auto", "vcf", "reads"] = "auto"  # genoflow.reads.inputs.resolve_input
    vcf: RelativePath | None = "raw/cohort.vcf.gz"  # null: a cohort of reads only
    reference_fasta: RelativePath | None = "raw/reference_genome/genome_sequence.fasta"  # null: no REF check
    annotations_gff: RelativePath | None = "raw/reference_genome/genome_annotations.gff"  # null: no burden features
    patient_dir: RelativePath | None = "raw/patient_data"
    min_call_rate: Fraction = 0.95
    min_maf: Annotated[float, Field(ge=0.0, le=0.5)] = 0.01
    min_hwe_p: Fraction = 1.0e-6
    max_sample_missingness: Fraction = 0.05
    max_het_sd: Annotated[float, Field(gt=0.0)] = 4.0
    vcf_layout: Literal["cohort", "per_patient"] = "cohort"
    patient_vcf: RelativePath = "genome_variants.vcf.gz"
    vcf_min_gq: Count = 0
    vcf_min_dp: Count = 0


class Features(_Section):
    """Split, ancestry PCs, association, polygenic scores and burdens (decision 0008)."""

    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.25
    split_seed: int = 42
    top_k: Count = 40
    top_k_independent: bool = True
    covariates: list[Name] = ["age", "sex"]
    read_qc: list[Name] = ["mean_phred", "gc_fraction", "n_rate"]
    pca_components: Count = 10
    pca_covariates: Count = 5
    pca_method: Literal["auto", "exact", "randomized"] = "auto"  # genoflow.features.pca.METHODS
    prune_window: Annotated[int, Field(ge=1)] = 50
    prune_window_kb: bool = False
    prune_step: Annotated[int, Field(ge=1)] = 5
    prune_r2: Fraction = 0.2
    ld_max_samples: Annotated[int, Field(ge=0)] = 20000  # r² of pruning and clumping on at most this many; 0: all
    prs_thresholds: list[Probability] = [1.0e-4, 1.0e-3, 1.0e-2, 5.0e-2]
    prs_folds: Count = 5
    clump_p2: Probability = 0.05
    clump_r2: Fraction = 0.1
    clump_kb: Annotated[float, Field(gt=0.0)] = 250
    burden_max_maf: Annotated[float, Field(gt=0.0, le=0.5)] = 0.05
    burden_min_variants: Annotated[int, Field(ge=1)] = 2
    burden_top_k: Count = 5

    @model_validator(mode="after")
    def _consistent(self):
        if self.pca_covariates > self.pca_components:
            raise ValueError(f"pca_covariates ({self.pca_covariates}) exceeds pca_components ({self.pca_components})")
        if self.prune_window_kb and self.prune_step != 1:
            raise ValueError(f"prune_window_kb: true needs prune_step: 1 (like plink2), got {self.prune_step}")
        if self.prs_folds == 1:
            raise ValueError("prs_folds must be 0 (in-sample scores) or >= 2 (cross-fitted), got 1")
        return self


class Reads(_Section):
    """Reads to genotypes (decision 0016): minimap2 through mappy, then joint SNV calling like bcftools call -m."""

    preset: Literal["sr"] = "sr"  # minimap2's short-read preset (the reads are Illumina-like)
    min_mapq: Count = 20
    min_baseq: Count = 13  # bcftools mpileup -Q
    min_mapping_rate: Fraction = 0.5  # below: the patient's reads are not from this reference (an error)
    min_alt_reads: Annotated[int, Field(ge=1)] = 2  # a site is a candidate when one patient has this many ALT bases
    min_qual: Annotated[float, Field(ge=0.0)] = 20.0  # site QUAL (phred of P(no variant)) to keep a site
    min_dp: Count = 2  # a patient's genotype with fewer filtered bases is missing (./.)
    prior: Probability = 1.1e-3  # bcftools call -m --prior: expected substitution rate
    min_concordance: Fraction = 0.8  # reads vs the cohort VCF, per patient: below is a probable sample swap


_DEFAULT_GRID = {"logistic_regression": {"regParam": [0.01, 0.1], "elasticNetParam": [0.0]},
                 "random_forest": {"numTrees": [100], "maxDepth": [4, 6]},
                 "gbt": {"maxIter": [30], "maxDepth": [2, 3]}}


class Train(_Section):
    """Model families and their grids (Spark MLlib names; checked against the estimator when it is built)."""

    models: Annotated[list[Family], Field(min_length=1)] = list(MODEL_FAMILIES)
    cv_folds: Annotated[int, Field(ge=2)] = 3
    seed: int = 7
    parallelism: Annotated[int, Field(ge=1)] = 2
    cv_engine: Literal["auto", "mllib"] = "auto"  # auto: CV fits on the driver where they are MLlib's (0035)
    final_engine: Literal["auto", "mllib"] = "auto"  # the same for the final models, built as MLlib's (0037)
    grid: dict[Family, dict[Name, Annotated[list[Scalar], Field(min_length=1)]]] = _DEFAULT_GRID


class Promote(_Section):
    """The gate of decision 0011: beat the covariates-only baseline, then the champion by a margin."""

    metric: Name = "test_auc_roc"
    min_improvement: float = 0.005
    model_name_prefix: Name = "genoflow"
    max_p_vs_baseline: Probability = 0.05


class Mlflow(_Section):
    experiment: Name = "genomic_risk_training"


class Ingest(_Section):
    """dags/cohort_ingest.py and the training DAG's schedule."""

    landing_dir: RelativePath = "data/incoming/latest"
    target: RelativePath = "data/raw"
    mode: Literal["replace", "append"] = "replace"
    remote: Name | None = None
    commit: bool = True
    full_check_records: Count = 2000
    retrain_schedule: Name | None = "0 3 * * 1"


class Monitor(_Section):
    """dags/drift_monitor.py and jobs/drift.py."""

    schedule: Name | None = "@daily"
    cohort_vcf: RelativePath = "incoming/latest/cohort.vcf.gz"
    patient_dir: RelativePath = "incoming/latest/patient_data"
    target: Name = "disease_status"
    model_name_prefix: Name = "genoflow"
    experiment: Name = "drift_monitor"
    alpha: Probability = 0.05
    min_significant_fraction: Fraction = 0.01
    max_fst: Fraction = 0.01
    psi_bins: Annotated[int, Field(ge=2)] = 10
    score_psi_bins: Annotated[int, Field(ge=2)] = 5
    psi_threshold: Annotated[float, Field(ge=0.0)] = 0.25
    score_psi_threshold: Annotated[float, Field(ge=0.0)] = 0.25


class Study(_Section):
    """The cohort's phenotype tables, targets and covariate handling (decision 0011)."""

    phenotypes: RelativePath | None = None  # null: per-patient <preprocess.patient_dir>/<id>/clinical_data.csv
    covariates_file: RelativePath | None = None
    id_column: Name = "patient_id"
    targets: Annotated[dict[Name, TargetType], Field(min_length=1)] = {"disease_status": "binary",
                                                                       "treatment_response": "binary"}
    categorical: list[Name] = ["sex"]
    missing_covariates: Literal["drop", "impute"] = "drop"
    min_minority: Annotated[int, Field(ge=1)] = 10


class Compute(_Section):
    """How the work is cut up, not what it computes: left out of every content key (decision 0012)."""

    block_mb: Annotated[float, Field(gt=0.0)] = 64  # genoflow.genotypes.block_budget
    chunk_reads: Annotated[int, Field(ge=1)] = 20000  # FASTQ records per alignment task's chunk
    align_threads: Count = 0  # mappy threads per alignment task; 0: spark.task.cpus


class Params(_Section):
    """params.yaml: every section typed, each key defaulting to the value params.yaml ships with."""

    study: Study = Study()
    preprocess: Preprocess = Preprocess()
    reads: Reads = Reads()
    features: Features = Features()
    train: Train = Train()
    promote: Promote = Promote()
    mlflow: Mlflow = Mlflow()
    spark: dict[SparkKey, Scalar] = {}
    compute: Compute = Compute()
    ingest: Ingest = Ingest()
    monitor: Monitor = Monitor()


SECTIONS = tuple(Params.model_fields)

# Keys that moved: a params file written for an older genoflow gets told where they went.
_MOVED = {("train", "targets"): "moved to study.targets, a mapping of name to binary|quantitative (decision 0011)",
          ("preprocess", "vcf_chunk_lines"): "replaced by compute.block_mb, blocks sized in bytes (decision 0012)"}


def validate_params(params: dict, source: str = "params") -> Params:
    """``params`` as typed sections, or :class:`ParamsError` naming the first bad key.

    Parameters
    ----------
    params : dict
        params.yaml's content, possibly with a run's overrides merged in.
    source : str
        Where ``params`` came from, for the message: the params file, ``run conf``, ``--params-json``.

    Raises
    ------
    ParamsError
        One line: ``<source>: <key path>: <problem>`` (plus how many other keys are wrong).
    """
    if not isinstance(params, dict):
        raise ParamsError(source, "(top level)", f"expected a mapping of sections, got {type(params).__name__}")
    try:
        return Params.model_validate(params)
    except ValidationError as err:
        raise _params_error(err.errors(), source) from None


def validate_section(name: str, values: Any, source: str = "params") -> Any:
    """One section on its own (e.g. ``monitor`` with a run's overrides merged in), typed, or ParamsError.

    >>> validate_section("monitor", {"psi_bins": 4}).psi_bins
    4
    """
    from pydantic import TypeAdapter

    if name not in SECTIONS:
        raise ValueError(f"name must be one of {SECTIONS}, got {name!r}")
    try:
        return TypeAdapter(Params.model_fields[name].annotation).validate_python(values)
    except ValidationError as err:
        errors = [{**error, "loc": (name, *error["loc"])} for error in err.errors()]
        raise _params_error(errors, source) from None


def _params_error(errors: list[dict], source: str) -> ParamsError:
    """The first error, naming its key; the keys of the others after it (one line in all)."""
    problems = [_describe(error) for error in errors]
    key, problem = problems[0]
    others = sorted({k for k, _ in problems[1:]} - {key})
    if others:
        problem += f" (also wrong: {', '.join(others)})"
    return ParamsError(source, key, problem)


def _describe(error: dict) -> tuple[str, str]:
    """(key path, problem) of one pydantic error, in params.yaml's words."""
    loc = error["loc"]
    key = _path(loc)
    if tuple(loc) in _MOVED:
        return key, _MOVED[tuple(loc)]
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return key, f"unknown key ({hint})"
    got = f", got {_short(error['input'])}" if "input" in error else ""
    if kind in _EXPECTED:
        return key, _EXPECTED[kind] + got
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    return key, message if kind == "value_error" else message + got


_EXPECTED = {
    "int_type": "expected an integer", "int_parsing": "expected an integer", "int_from_float": "expected an integer",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string", "list_type": "expected a list",
    "dict_type": "expected a mapping", "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "string_too_short": "must not be empty", "too_short": "must not be empty",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _path(loc: tuple) -> str:
    """``('train', 'models', 1)`` -> ``train.models[1]``; a bad mapping key ends in ``(key)``."""
    parts = ""
    for item in loc:
        if item == "[key]":
            parts += " (key)"
        elif isinstance(item, int):
            parts += f"[{item}]"
        else:
            parts += f".{item}" if parts else str(item)
    return parts


def _known_keys(loc: tuple) -> list[str]:
    """The keys the section at ``loc`` accepts (for 'did you mean')."""
    model = Params
    for item in loc:
        field = model.model_fields.get(str(item))
        annotation = getattr(field, "annotation", None)
        model = next((t for t in (annotation, *getattr(annotation, "__args__", ()))
                      if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)

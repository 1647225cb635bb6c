"""Association statistics: per-variant regression kernels (numpy), their Spark wrapper and plots.

- :func:`prepare_glm` + :func:`glm_block`: linear / logistic (Firth fallback) regression of a trait
  on each variant of a dosage block, with covariates (``genoflow.stats.glm``);
- :func:`glm_scan`: the same over a Spark genotype table, block by block (``genoflow.stats.spark_glm``);
  :func:`glm_scans` several such scans (other samples, traits, covariates) in one pass;
- :func:`fit_null_logistic` / :func:`fit_null_linear`: the trait-on-covariates null fits the score
  test (``genoflow.features.association``) and the logistic GLM start from (``genoflow.stats.null_model``);
- :func:`genomic_inflation`: lambda_GC of a scan's p-values;
- :func:`write_association_plots` / :func:`log_association_plots`: Manhattan + QQ PNGs beside the
  results / on an MLflow run (``genoflow.stats.plots``).

Names load on first use: a Spark worker that unpickles the scan's block function imports
``genoflow.stats.glm`` through this package, and should not pay for scipy.stats and matplotlib
(~0.7 s per worker) that only the driver's summary and plots use.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "genomic_inflation": "genoflow.reporting.stats",
    **dict.fromkeys(("FAMILIES", "RESULT_COLUMNS", "GlmNull", "glm_block", "prepare_glm"), "genoflow.stats.glm"),
    **dict.fromkeys(("association_plots", "log_association_plots", "write_association_plots"),
                    "genoflow.stats.plots"),
    **dict.fromkeys(("NullModel", "fit_null_logistic", "fit_null_linear"), "genoflow.stats.null_model"),
    **dict.fromkeys(("GLM_RESULT_DDL", "glm_scan", "glm_scans"), "genoflow.stats.spark_glm"),
}

__all__ = [
    "FAMILIES", "RESULT_COLUMNS", "GLM_RESULT_DDL", "GlmNull", "prepare_glm", "glm_block", "glm_scan", "glm_scans",
    "NullModel", "fit_null_logistic", "fit_null_linear",
    "genomic_inflation", "association_plots", "write_association_plots", "log_association_plots",
]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""Association statistics: per-variant regression kernels (numpy), their Spark wrapper and plots.

- :func:`prepare_glm` + :func:`glm_block`: linear / logistic (Firth fallback) regression of a trait
  on each variant of a dosage block, with covariates (``genoflow.stats.glm``);
- :func:`glm_scan`: the same over a Spark genotype table, block by block (``genoflow.stats.spark_glm``);
- :func:`genomic_inflation`: lambda_GC of a scan's p-values;
- :func:`write_association_plots` / :func:`log_association_plots`: Manhattan + QQ PNGs beside the
  results / on an MLflow run (``genoflow.stats.plots``).
"""

from genoflow.reporting.stats import genomic_inflation
from genoflow.stats.glm import FAMILIES, RESULT_COLUMNS, GlmNull, glm_block, prepare_glm
from genoflow.stats.plots import association_plots, log_association_plots, write_association_plots
from genoflow.stats.spark_glm import GLM_RESULT_DDL, glm_scan

__all__ = [
    "FAMILIES", "RESULT_COLUMNS", "GLM_RESULT_DDL", "GlmNull", "prepare_glm", "glm_block", "glm_scan",
    "genomic_inflation", "association_plots", "write_association_plots", "log_association_plots",
]

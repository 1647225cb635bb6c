"""Model evaluation: held-out metrics with their uncertainty and paired tests (decision 0011)."""

from genoflow.evaluation.metrics import (
    auc_roc,
    binary_report,
    delong_auc,
    paired_delong,
    paired_squared_error_test,
    quantitative_report,
)

__all__ = ["auc_roc", "binary_report", "delong_auc", "paired_delong", "paired_squared_error_test",
           "quantitative_report"]

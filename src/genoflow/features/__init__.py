"""Feature engineering: association statistics and train/test splits (numpy + scipy.special)."""

from genoflow.features.association import NullModel, fit_null_logistic, score_test_block
from genoflow.features.split import stratified_split

__all__ = ["NullModel", "fit_null_logistic", "score_test_block", "stratified_split"]

import numpy as np
from sklearn.metrics import auc, roc_curve

from genoflow.pipeline.evaluate import roc_points


def test_roc_points__matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(labels * 0.3 + rng.random(500), 2)  # rounded: many tied scores
    fpr, tpr = roc_points(scores, labels)
    ref_fpr, ref_tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert abs(auc(fpr, tpr) - auc(ref_fpr, ref_tpr)) < 1e-12

"""The drift computation's small helpers (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.monitoring.compute import _auc, batch_name


def test_auc__unlabelled_patients_are_left_out():
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.99])
    labels = np.array([0.0, 0.0, 1.0, 1.0, np.nan])  # the last patient has no label: its score is not counted
    assert _auc(scores, labels) == pytest.approx(0.75)


@pytest.mark.parametrize("labels", [[1.0, 1.0, np.nan], [0.0, 0.0, 0.0], [np.nan, np.nan, np.nan]])
def test_auc__none_without_both_classes(labels):
    assert _auc(np.array([0.2, 0.5, 0.9]), np.array(labels)) is None


def test_batch_name__the_folder_above_the_vcf():
    assert batch_name("hdfs://nn:8020/genoflow/incoming/2026-12-01/cohort.vcf.gz") == "2026-12-01"

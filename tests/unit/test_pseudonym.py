"""Pseudonym keys, sample order and coarsening (decision 0018)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genoflow.config import Settings, load_params, step_key
from genoflow.errors import InputError
from genoflow.features.spec import FeatureSpec, fit_covariates
from genoflow.privacy import band_midpoint, coarsen_study_columns
from genoflow.pseudonym import (
    DEMO_PSEUDONYM_KEY,
    check_pseudonym_key,
    key_fingerprint,
    pseudonym_order,
    pseudonymise,
    weak_key_reason,
)
from tests.conftest import REPO

KEY = "0123456789abcdef-a-real-secret"


def test_pseudonym_order__sorted_by_pseudonym_unrelated_to_raw_order():
    ids = [f"PT{i:05d}" for i in range(1, 1001)]
    order = pseudonym_order(ids, KEY)
    pids = [pseudonymise(ids[i], KEY) for i in order]
    assert pids == sorted(pids) and sorted(order) == list(range(1000))
    rank_of_raw = np.argsort(order)  # the sample_index each raw id gets
    rho = stats.spearmanr(np.arange(1000), rank_of_raw).statistic
    assert abs(rho) < 0.1, rho
    assert int((rank_of_raw == np.arange(1000)).sum()) <= 5
    assert pseudonym_order(ids, "another-key-of-enough-length") != order  # the order is keyed


def test_key_fingerprint__tells_keys_apart_without_showing_them():
    fingerprint = key_fingerprint(KEY)
    assert fingerprint == key_fingerprint(KEY) and len(fingerprint) == 16
    assert int(fingerprint, 16) >= 0
    assert fingerprint != key_fingerprint(KEY + "x")
    assert fingerprint not in pseudonymise(KEY, KEY) and KEY[:8] not in fingerprint


@pytest.mark.parametrize("key", [None, DEMO_PSEUDONYM_KEY, "", "   ", "change-me", "CHANGEME", "secret", "password",
                                 "demo", "test", "change_me_now", "short-key-123"])
def test_check_pseudonym_key__refuses_weak_keys_naming_the_variable(key):
    assert weak_key_reason(key)
    with pytest.raises(InputError, match=r"GENOFLOW_PSEUDONYM_KEY.*export GENOFLOW_PSEUDONYM_KEY=.*ALLOW_DEMO"):
        check_pseudonym_key(key, allow_weak=False)
    assert check_pseudonym_key(key, allow_weak=True) == (DEMO_PSEUDONYM_KEY if key is None else key)


def test_check_pseudonym_key__accepts_a_long_secret():
    assert weak_key_reason(KEY) is None
    assert check_pseudonym_key(KEY, allow_weak=False) == KEY


def test_settings__demo_key_needs_the_flag(tmp_path):
    unset = Settings({"GENOFLOW_HOME": str(tmp_path)})
    with pytest.raises(InputError, match="GENOFLOW_PSEUDONYM_KEY: is not set"):
        unset.checked_pseudonym_key()
    assert Settings({"GENOFLOW_HOME": str(tmp_path), "GENOFLOW_ALLOW_DEMO_KEY": "1"}).checked_pseudonym_key() \
        == DEMO_PSEUDONYM_KEY
    with pytest.raises(InputError, match="is empty"):
        Settings({"GENOFLOW_HOME": str(tmp_path), "GENOFLOW_PSEUDONYM_KEY": ""}).checked_pseudonym_key()
    assert Settings({"GENOFLOW_HOME": str(tmp_path), "GENOFLOW_PSEUDONYM_KEY": KEY}).checked_pseudonym_key() == KEY


def test_step_key__a_rotated_key_gives_new_keys_for_steps_holding_pseudonyms(monkeypatch):
    params = load_params(REPO / "params.yaml")
    old, new = key_fingerprint(KEY), key_fingerprint(KEY + "-rotated")
    for step in ("preprocess", "features", "train", "evaluate"):
        assert step_key(step, "v", params, pseudonym_fingerprint=old) != \
            step_key(step, "v", params, pseudonym_fingerprint=new), step
    for step in ("align", "call"):  # raw ids only: no pseudonyms in their outputs
        assert step_key(step, "v", params, pseudonym_fingerprint=old) == \
            step_key(step, "v", params, pseudonym_fingerprint=new), step
    monkeypatch.setenv("GENOFLOW_PSEUDONYM_KEY", KEY)  # default: the environment's key
    assert step_key("preprocess", "v", params) == step_key("preprocess", "v", params, pseudonym_fingerprint=old)


def test_band_midpoint__five_year_bands_idempotent():
    ages = np.array([18.0, 19.9, 20.0, 44.0, 45.0, 89.0, np.nan])
    banded = band_midpoint(ages, 5.0)
    np.testing.assert_array_equal(banded[:6], [17.5, 17.5, 22.5, 42.5, 47.5, 87.5])
    assert np.isnan(banded[6])
    np.testing.assert_array_equal(band_midpoint(banded, 5.0)[:6], banded[:6])


def test_coarsen_study_columns__bands_numeric_age_only():
    frame = pd.DataFrame({"age": [61.0, np.nan], "sex": ["F", "M"], "disease_status": [1.0, 0.0]})
    out = coarsen_study_columns(frame)
    assert out["age"].tolist()[0] == 62.5 and np.isnan(out["age"].tolist()[1])
    assert out[["sex", "disease_status"]].equals(frame[["sex", "disease_status"]])
    assert frame["age"].tolist()[0] == 61.0  # not modified in place
    categorical = pd.DataFrame({"age": ["40-49", "50-59"]})
    assert coarsen_study_columns(categorical).equals(categorical)


def test_fit_covariates__serving_bands_a_clinicians_age_like_training():
    samples = coarsen_study_columns(pd.DataFrame({"age": [23.0, 41.0, 67.0], "sex": ["F", "M", "F"]}))
    spec = FeatureSpec(fit_covariates(samples, ["age", "sex"], ["sex"], np.ones(3, bool)), [], [])
    age = spec.covariates[0]
    assert age["band"] == 5.0 and (age["min"], age["max"]) == (20.0, 70.0)  # the bands' edges
    exact = spec.transform({"age": [61, 62.5, 64.9], "sex": ["F", "F", "F"]})
    np.testing.assert_array_equal(exact[:, 0], [62.5, 62.5, 62.5])
    legacy = dict(age, band=None)  # a model trained before bands: ages as sent
    assert FeatureSpec([legacy], [], []).transform({"age": [61]})[0, 0] == 61.0

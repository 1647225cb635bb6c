"""The sample table's study columns (decision 0011) and the features split on them; pandas only, no Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from genoflow.io.phenotypes import read_phenotype_table
from genoflow.pipeline.features import covariate_matrix, split_samples
from genoflow.pipeline.preprocess import build_sample_table, sex_arrays
from genoflow.study import StudySettings, build_study

IDS = [f"S{i}" for i in range(40)]
P = {"max_het_sd": 4.0, "max_sample_missingness": 0.05}


def study(missing: str = "drop"):
    def row(i: int) -> str:
        ldl, site, sex = "NA" if i == 3 else i / 10, "NA" if i == 5 else "ab"[i % 3 == 0], "" if i == 7 else "FM"[i % 2]
        return f"S{i},{i % 2},{ldl},{site},{sex}\n"

    text = "patient_id,y,ldl,site,sex\n" + "".join(row(i) for i in range(40))
    tables = [read_phenotype_table(text, source="p.csv", id_column="patient_id")]
    settings = StudySettings({"y": "binary", "ldl": "quantitative"}, ["site"], ["site"], missing, 5)
    return build_study(tables, settings, IDS)


def sample_table(missing: str = "drop"):
    qc = {"missingness": np.zeros(40), "het_rate": np.full(40, 0.3)}
    return build_sample_table(IDS, study(missing), qc, {"S1": {"n_reads": 10, "mean_phred": 30.0}}, P, "key")


def test_build_sample_table__study_columns_typed_after_qc_and_read_qc():
    table = sample_table()
    assert list(table.columns[-4:]) == ["y", "ldl", "site", "sex"]
    assert table["y"].dtype == np.float64 and table["ldl"].dtype == np.float64 and np.isnan(table.loc[3, "ldl"])
    assert table["site"].dtype == object and table.loc[5, "site"] is None
    assert table.loc[1, "n_reads"] == 10 and pd.isna(table.loc[0, "n_reads"]) and np.isnan(table.loc[0, "mean_phred"])
    assert "S1" not in table["pid"].tolist()  # pseudonyms only


def test_sex_arrays__unknown_sex_is_not_known():
    male, known = sex_arrays(study(), IDS)
    assert male[:2].tolist() == [False, True] and not known[7] and known.sum() == 39


def test_split_samples__drops_missing_covariates_and_stratifies_on_the_first_binary_target():
    params = {"study": {"targets": {"ldl": "quantitative", "y": "binary"}, "missing_covariates": "drop"}}
    f = {"covariates": ["site"], "test_fraction": 0.25, "split_seed": 1}
    kept = split_samples(sample_table(), f, params)
    assert len(kept) == 39 and 5 not in kept["sample_index"].tolist()
    test = kept[kept["split"] == "test"]
    assert sorted(test["y"].value_counts().tolist()) == [5, 5]  # round(0.25 * 19) = 5 and round(0.25 * 20) = 5
    imputed = split_samples(sample_table("impute"), f, {"study": {**params["study"], "missing_covariates": "impute"}})
    assert len(imputed) == 40


def test_covariate_matrix__one_hot_from_the_encoding():
    encoding = [{"name": "site", "kind": "categorical", "levels": ["a", "b"], "reference": "a", "fill": "a"}]
    x = covariate_matrix(sample_table().iloc[3:6], encoding)
    np.testing.assert_array_equal(x, [[1.0], [0.0], [0.0]])  # S3 b, S4 a, S5 missing -> fill a

"""Tests of genoflow.study: typed study columns joined from the tables, and the study checks (decision 0011)."""

from __future__ import annotations

import numpy as np
import pytest

from genoflow.errors import InputError
from genoflow.io.phenotypes import read_phenotype_table
from genoflow.study import StudySettings, build_study, targets

N = 40
SAMPLES = [f"S{i}" for i in range(N)]


def fam(pheno=lambda i: 2 if i % 3 == 0 else 1, sex=lambda i: 1 + i % 2):
    text = "".join(f"F{i} S{i} 0 0 {sex(i)} {pheno(i)}\n" for i in range(N))
    return read_phenotype_table(text, source="raw/c.fam", id_column="patient_id")


def covar(stratum=lambda i: "A" if i % 4 else "B", age=lambda i: 30 + i):
    text = "#FID IID stratum age\n" + "".join(f"F{i} S{i} {stratum(i)} {age(i)}\n" for i in range(N))
    return read_phenotype_table(text, source="raw/c.covar", id_column="patient_id")


def settings(**kw) -> StudySettings:
    base = {"targets": {"cc": "binary"}, "covariates": ["stratum", "age"], "categorical": ["stratum"],
            "missing_covariates": "drop", "min_minority": 5}
    return StudySettings(**{**base, **kw})


def error_of(tables, s) -> InputError:
    with pytest.raises(InputError) as error:
        build_study(tables, s, SAMPLES)
    return error.value


def test_targets__from_params_in_order():
    assert targets({"study": {"targets": {"y": "binary", "ldl": "quantitative"}}}) == \
        {"y": "binary", "ldl": "quantitative"}


def test_build_study__fam_pheno_is_the_target_sex_from_the_fam_covariates_joined():
    study = build_study([fam(), covar()], settings(), SAMPLES)
    frame = study.frame
    assert list(frame.index) == SAMPLES and list(frame.columns) == ["cc", "stratum", "age", "sex"]
    assert frame["cc"].dtype == np.float64 and frame["cc"].sum() == 14  # i % 3 == 0 for i < 40
    assert frame["age"].dtype == np.float64 and frame["stratum"].tolist()[:4] == ["B", "A", "A", "A"]
    assert frame["sex"].tolist()[:2] == ["M", "F"]
    assert study.columns["stratum"] == {"role": "covariate", "type": "categorical", "levels": ["A", "B"],
                                        "n_missing": 0, "source": "raw/c.covar"}
    assert study.columns["sex"]["role"] == "sex" and study.columns["cc"]["role"] == "target"


def test_build_study__missing_values_counted_per_column():
    study = build_study([fam(pheno=lambda i: 0 if i < 3 else 2 if i % 3 == 0 else 1),
                         covar(age=lambda i: "NA" if i in (5, 6) else 30 + i)], settings(), SAMPLES)
    assert study.columns["cc"]["n_missing"] == 3 and study.columns["age"]["n_missing"] == 2
    assert study.n_missing_covariates == 2
    assert study.summary()["n_samples_missing_covariates"] == 2


def test_build_study__unknown_column_lists_the_columns_found():
    error = error_of([fam(), covar()], settings(covariates=["stratum", "bmi"]))
    assert error.source == "raw/c.fam + raw/c.covar"
    assert error.problem.startswith("column 'bmi' (features.covariates) is not in the phenotype table(s); "
                                    "found columns: 'FID', 'IID', 'PAT', 'MAT', 'sex', 'cc', 'FID'")


def test_build_study__value_of_the_wrong_type_names_file_line_column():
    error = error_of([fam(), covar(age=lambda i: "old" if i == 7 else 30)], settings())
    assert str(error) == "raw/c.covar, line 9: column age: expected a number, found 'old'"


def test_check_study__single_class_target():
    error = error_of([fam(pheno=lambda i: 1), covar()], settings())
    assert error.source == "raw/c.fam" and "target 'cc' has a single class" in error.problem


def test_check_study__too_few_of_the_minority_class():
    error = error_of([fam(pheno=lambda i: 2 if i < 3 else 1), covar()], settings())
    assert error.problem == "target 'cc': only 3 sample(s) of its minority class 1 (study.min_minority: 5)"


def test_check_study__minority_counted_after_dropping_missing_covariates():
    tables = [fam(pheno=lambda i: 2 if i < 6 else 1), covar(age=lambda i: "NA" if i < 2 else 30 + i)]
    assert "only 4 sample(s)" in error_of(tables, settings()).problem
    build_study(tables, settings(missing_covariates="impute"), SAMPLES)  # 6 cases when imputing


def test_check_study__constant_covariate():
    error = error_of([fam(), covar(stratum=lambda i: "A")], settings())
    assert error.source == "raw/c.covar" and error.problem.startswith("covariate 'stratum' is constant (['A'])")


def test_check_study__collinear_covariates_one_hot_included():
    # age is 1 exactly in stratum B: the one-hot column stratum=B equals it.
    tables = [fam(), covar(age=lambda i: 0 if i % 4 else 1)]
    error = error_of(tables, settings(covariates=["stratum", "age"]))
    assert error.source == "raw/c.covar"
    assert error.problem.startswith("covariate 'age' is collinear with stratum and the intercept")


def test_check_study__quantitative_target_has_no_class_check():
    tables = [read_phenotype_table("patient_id,ldl\n" + "".join(f"S{i},{i / 10}\n" for i in range(N)),
                                   source="raw/p.csv", id_column="patient_id")]
    study = build_study(tables, settings(targets={"ldl": "quantitative"}, covariates=[], categorical=[]), SAMPLES)
    assert study.frame["ldl"].iloc[-1] == pytest.approx(3.9) and study.sex is None

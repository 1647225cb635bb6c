import numpy as np
import pytest

from genoflow.features.spec import FeatureSpec, fit_covariates

VARIANTS = [{"contig": "chr22", "pos": 10, "ref": "A", "alt": "G", "gene": "", "train_p": 1e-5},
            {"contig": "chr22", "pos": 20, "ref": "C", "alt": "T", "gene": "GF01", "train_p": 1e-4}]


def spec() -> FeatureSpec:
    import pandas as pd

    raw = pd.DataFrame({"age": [40.0, 50.0, 60.0, 70.0], "sex": ["F", "M", "M", "F"],
                        "mean_phred": [30.0, np.nan, 34.0, 99.0],
                        "v_chr22_10_A_G": [0, 1, 2, -1], "v_chr22_20_C_T": [2, np.nan, 0, 0]})
    is_train = np.array([1, 1, 1, 0], bool)
    covariates = fit_covariates(raw, ["age", "sex"], ["sex"], is_train)
    return FeatureSpec(covariates, ["mean_phred"], VARIANTS).fit_fill(raw, is_train)


def test_fit_fill__training_rows_only():
    s = spec()
    assert s.fill == {"mean_phred": 32.0, "v_chr22_10_A_G": 1.0, "v_chr22_20_C_T": 1.0}  # row 4 is test


def test_transform__one_patient_dict_matches_table_rows():
    s = spec()
    one = s.transform({"age": [55], "sex": ["male"], "v_chr22_20_C_T": [1]})  # no read QC, one dosage missing
    # reference M: training has 2 M, 1 F; age in 5-year bands (decision 0018): 55 -> 57.5, 55-59's midpoint
    np.testing.assert_array_equal(one, [[57.5, 0.0, 32.0, 1.0, 1.0]])
    assert s.names == ["age", "sex=F", "mean_phred", "v_chr22_10_A_G", "v_chr22_20_C_T"]


def test_transform__missing_covariate_is_an_error():
    with pytest.raises(ValueError, match="covariate 'age' is required"):
        spec().transform({"sex": ["F"]})
    with pytest.raises(ValueError, match="covariate 'age' is missing"):
        spec().transform({"age": [None], "sex": ["F"]})
    with pytest.raises(ValueError, match="'sex'"):
        spec().transform({"age": [40], "sex": ["unknown"]})


def test_json__round_trip():
    s = spec()
    assert FeatureSpec.from_json(s.to_json()) == s


def _with_scores() -> FeatureSpec:
    """The spec above plus a 2-variant PC block and a 1-threshold polygenic score."""
    from dataclasses import asdict

    import pandas as pd

    from genoflow.features.scores import pca_block, prs_block

    rows = pd.DataFrame({"contig": ["chr22", "chr22"], "pos": [20, 30], "ref": ["C", "A"], "alt": ["T", "G"],
                         "alt_af": [0.25, 0.5], "loadings": [[0.5], [-1.0]], "beta": [0.3, 0.0], "p": [1e-4, 0.5]})
    s = spec()
    blocks = [asdict(pca_block(rows, np.array([2.0]), ["pc1"])), asdict(prs_block(rows, [1e-3], "prs_t"))]
    return FeatureSpec(s.covariates, s.read_qc, s.variants, s.fill, blocks)


def test_transform__score_columns_from_dosages_equal_precomputed():
    s = _with_scores()
    assert s.names == ["age", "sex=F", "mean_phred", "pc1", "prs_t_p1em3", "v_chr22_10_A_G", "v_chr22_20_C_T"]
    frame = {"age": [50, 60], "sex": ["F", "M"], "v_chr22_20_C_T": [2, -1], "v_chr22_30_A_G": [0, 1]}
    x = s.transform(frame)
    # pc1: (2 - 0.5) * 0.5 / sqrt(2 * .25 * .75) + (0 - 1) * -1 / sqrt(.5); missing -> 0 contribution.
    assert x[0, 3] == pytest.approx(1.5 * 0.5 / np.sqrt(0.375) + 1.0 / np.sqrt(0.5))
    assert x[1, 3] == pytest.approx(0.0)
    assert x[:, 4] == pytest.approx([0.6, 0.15])  # beta * dosage; missing -> 2p = 0.5 copies
    np.testing.assert_array_equal(s.transform(frame, genotype_scores=x[:, 3:5]), x)


def test_input_variants__selected_then_score_variants_once():
    s = _with_scores()
    assert s.input_variant_columns == ["v_chr22_10_A_G", "v_chr22_20_C_T", "v_chr22_30_A_G"]
    assert FeatureSpec.from_json(s.to_json()).names == s.names


def test_subset__keeps_only_the_named_scores():
    small = _with_scores().subset(VARIANTS[:1], ["prs_t_p1em3"])
    assert small.names == ["age", "sex=F", "mean_phred", "prs_t_p1em3", "v_chr22_10_A_G"]
    assert small.input_variant_columns == ["v_chr22_10_A_G", "v_chr22_20_C_T"]  # beta 0 at pos 30: dropped


def _strata(train=(True,) * 6):
    import pandas as pd

    samples = pd.DataFrame({"stratum": ["b", "a", "c", "a", None, "c"], "bmi": [20.0, 22.0, np.nan, 24.0, 26.0, 28.0]})
    return samples, np.array(train, bool)


def test_fit_covariates__reference_is_the_most_frequent_training_level_ties_sorted():
    samples, is_train = _strata()
    stratum, bmi = fit_covariates(samples, ["stratum", "bmi"], ["stratum"], is_train)
    assert stratum == {"name": "stratum", "kind": "categorical", "levels": ["a", "b", "c"], "reference": "a",
                       "fill": None}  # a and c twice each: a comes first
    assert bmi == {"name": "bmi", "kind": "numeric", "levels": [], "reference": None, "fill": None,
                   "min": 20.0, "max": 28.0}  # the training range, for serving's range check
    only_c = fit_covariates(samples, ["stratum"], ["stratum"], np.array([0, 0, 1, 0, 0, 1], bool))[0]
    assert only_c["reference"] == "c" and only_c["levels"] == ["a", "b", "c"]  # levels from every row


def test_transform__one_hot_for_each_non_reference_level():
    samples, is_train = _strata()
    s = FeatureSpec(fit_covariates(samples, ["stratum", "bmi"], ["stratum"], is_train), [], [])
    assert s.names == ["stratum=b", "stratum=c", "bmi"]
    x = s.transform({"stratum": ["a", "b", "c"], "bmi": [1.0, 2.0, 3.0]})
    np.testing.assert_array_equal(x, [[0, 0, 1], [1, 0, 2], [0, 1, 3]])


def test_transform__unknown_level_at_serving_names_it():
    samples, is_train = _strata()
    s = FeatureSpec(fit_covariates(samples, ["stratum"], ["stratum"], is_train), [], [])
    with pytest.raises(ValueError, match=r"^covariate 'stratum': unknown level 'd' \(levels: a, b, c\)$"):
        s.transform({"stratum": ["a", "d"]})


def test_fit_covariates__impute_fills_with_training_mean_and_mode():
    samples, is_train = _strata()
    s = FeatureSpec(fit_covariates(samples, ["stratum", "bmi"], ["stratum"], is_train, "impute"), [], [])
    x = s.transform({"stratum": [None], "bmi": [None]})
    np.testing.assert_array_equal(x, [[0, 0, 24.0]])  # reference a; mean of 20, 22, 24, 26, 28


def test_from_json__a_spec_saved_before_0011_reads_sex_as_one_hot_against_f():
    old = '{"clinical": ["age", "sex"], "read_qc": [], "variants": [], "fill": {}, "scores": []}'
    s = FeatureSpec.from_json(old)
    assert s.names == ["age", "sex=M"]
    np.testing.assert_array_equal(s.transform({"age": [50], "sex": ["M"]}), [[50.0, 1.0]])

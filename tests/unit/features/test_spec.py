import numpy as np
import pytest

from genoflow.features.spec import FeatureSpec, encode_sex

VARIANTS = [{"contig": "chr22", "pos": 10, "ref": "A", "alt": "G", "gene": "", "train_p": 1e-5},
            {"contig": "chr22", "pos": 20, "ref": "C", "alt": "T", "gene": "GF01", "train_p": 1e-4}]


def spec() -> FeatureSpec:
    raw = {"age": [40, 50, 60, 70], "sex": ["F", "M", "M", "F"], "mean_phred": [30.0, np.nan, 34.0, 99.0],
           "v_chr22_10_A_G": [0, 1, 2, -1], "v_chr22_20_C_T": [2, np.nan, 0, 0]}
    return FeatureSpec(["age", "sex"], ["mean_phred"], VARIANTS).fit_fill(raw, np.array([1, 1, 1, 0], bool))


def test_fit_fill__training_rows_only():
    s = spec()
    assert s.fill == {"mean_phred": 32.0, "v_chr22_10_A_G": 1.0, "v_chr22_20_C_T": 1.0}  # row 4 is test


def test_transform__one_patient_dict_matches_table_rows():
    s = spec()
    one = s.transform({"age": [55], "sex": ["male"], "v_chr22_20_C_T": [1]})  # no read QC, one dosage missing
    np.testing.assert_array_equal(one, [[55.0, 1.0, 32.0, 1.0, 1.0]])
    assert s.names == ["age", "sex", "mean_phred", "v_chr22_10_A_G", "v_chr22_20_C_T"]


def test_transform__missing_clinical_is_an_error():
    with pytest.raises(ValueError, match="'age'"):
        spec().transform({"sex": ["F"]})
    with pytest.raises(ValueError, match="'sex'"):
        spec().transform({"age": [40], "sex": ["unknown"]})


def test_json__round_trip():
    s = spec()
    assert FeatureSpec.from_json(s.to_json()) == s


def test_encode_sex__cases():
    np.testing.assert_array_equal(encode_sex(["F", "m", "Female", "MALE", "x"])[:4], [0, 1, 0, 1])
    assert np.isnan(encode_sex(["x"])[0])

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


def _with_scores() -> FeatureSpec:
    """The spec above plus a 2-variant PC block and a 1-threshold polygenic score."""
    from dataclasses import asdict

    import pandas as pd

    from genoflow.features.scores import pca_block, prs_block

    rows = pd.DataFrame({"contig": ["chr22", "chr22"], "pos": [20, 30], "ref": ["C", "A"], "alt": ["T", "G"],
                         "alt_af": [0.25, 0.5], "loadings": [[0.5], [-1.0]], "beta": [0.3, 0.0], "p": [1e-4, 0.5]})
    s = spec()
    blocks = [asdict(pca_block(rows, np.array([2.0]), ["pc1"])), asdict(prs_block(rows, [1e-3], "prs_t"))]
    return FeatureSpec(s.clinical, s.read_qc, s.variants, s.fill, blocks)


def test_transform__score_columns_from_dosages_equal_precomputed():
    s = _with_scores()
    assert s.names == ["age", "sex", "mean_phred", "pc1", "prs_t_p1em3", "v_chr22_10_A_G", "v_chr22_20_C_T"]
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
    assert small.names == ["age", "sex", "mean_phred", "prs_t_p1em3", "v_chr22_10_A_G"]
    assert small.input_variant_columns == ["v_chr22_10_A_G", "v_chr22_20_C_T"]  # beta 0 at pos 30: dropped

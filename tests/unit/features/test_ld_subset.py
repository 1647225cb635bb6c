"""LD measured on a capped patient subset (features.ld_max_samples): genoflow.features.ld.ld_subset and its two
users, LD pruning (prune_contigs) and clumping (clump_scans through learning.clumped_indexes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.features.ld import _alt_af, indep_pairwise, indep_pairwise_stream, ld_samples, ld_subset, prune_contigs
from genoflow.features.prs import clump
from genoflow.genotypes import pack_dosages
from tests.ld_data import linked_dosages

KEYS = ["contig", "pos", "ref", "alt"]




def _table(spark, contigs: dict[str, np.ndarray]):
    """A genotype table (keys, gene, alt_af, packed dosages) of ``contigs`` (name -> (m, n) dosages), and its
    pandas keys in the same row order."""
    frames = [pd.DataFrame({"contig": c, "pos": 1_000 + 700 * np.arange(len(d)), "ref": "A",
                            "alt": [f"G{i}" for i in range(len(d))], "gene": "", "alt_af": 0.3,
                            "dosages": [pack_dosages(row) for row in d]}) for c, d in contigs.items()]
    frame = pd.concat(frames, ignore_index=True)
    return spark.createDataFrame(frame.sample(frac=1.0, random_state=1)).repartition(3), frame[KEYS]


def test_ld_subset__size_sorted_deterministic_and_a_no_op_at_or_below_the_cap():
    index = np.random.default_rng(0).permutation(1000)[:700]  # not sorted, not contiguous
    sub = ld_subset(index, 100, seed=7)
    assert sub.shape == (100,) and sub.dtype == np.int64
    assert np.all(np.diff(sub) > 0)  # sorted, no repeats
    assert set(sub) <= set(index)
    np.testing.assert_array_equal(sub, ld_subset(index, 100, seed=7))
    assert not np.array_equal(sub, ld_subset(index, 100, seed=8))
    for cap in (0, 700, 5000):  # at or below the cap: the index itself, in its own order
        np.testing.assert_array_equal(ld_subset(index, cap, seed=7), index)
    with pytest.raises(ValueError, match="max_samples"):
        ld_subset(index, -1, seed=7)
    # The params' reading: cap ld_max_samples, seed split_seed; a dict without the key uses every sample.
    np.testing.assert_array_equal(ld_samples(index, {"ld_max_samples": 100, "split_seed": 7}), sub)
    np.testing.assert_array_equal(ld_samples(index, {"split_seed": 7}), index)


def test_indep_pairwise__r2_on_the_subset_maf_on_everyone():
    """ld_columns changes only the r² samples: the stream given the subset's rows agrees, the kept set is
    that of the whole-cohort prune with each window's r² matrix taken from the subset, and the cap matters."""
    dosages = linked_dosages(300, 120, seed=3, monomorphic=False)
    positions = 1_000 + 500 * np.arange(120)
    cols = ld_subset(np.arange(300), 25, seed=1)
    rule = {"window": 10, "step": 3, "r2": 0.2}
    capped = indep_pairwise(dosages, positions, ld_columns=cols, **rule)
    blocks = ((list(range(a, a + 7)), positions[a : a + 7], dosages[a : a + 7], dosages[a : a + 7][:, cols])
              for a in range(0, 120, 7))
    keep = np.concatenate([k for _, k, _ in indep_pairwise_stream(blocks, **rule)])
    np.testing.assert_array_equal(keep, capped)
    assert not np.array_equal(capped, indep_pairwise(dosages, positions, **rule))  # 25 patients' r² is not 300's


@pytest.mark.integration  # starts a SparkSession
def test_prune_contigs__capped_equals_the_prune_on_the_subset_and_is_unchanged_at_the_cap(spark):
    from genoflow.spark import session_conf

    n = 90
    contigs = {"1": linked_dosages(n, 110, seed=1, monomorphic=False),
               "2": linked_dosages(n, 40, seed=2, monomorphic=False)}
    table, _ = _table(spark, contigs)
    index = np.arange(n)[4:][::-1]  # the patients pruning uses, in another order
    rule = {"window": 10, "step": 3, "r2": 0.2}

    def run(ld):
        with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "13"}):
            got = prune_contigs(table, sample_index=index, ld_sample_index=ld, **rule).toPandas()
        return got.sort_values(["contig", "pos"], ignore_index=True)

    sub = ld_subset(index, 30, seed=5)
    capped = run(sub)
    position_in_index = {s: i for i, s in enumerate(index)}
    for contig, d in contigs.items():
        keep = indep_pairwise(d[:, index], 1_000 + 700 * np.arange(len(d)), **rule,
                              ld_columns=[position_in_index[s] for s in sub])
        mine = capped[capped["contig"] == contig]
        assert mine["alt"].tolist() == [f"G{i}" for i in np.flatnonzero(keep)]
        # alt_af is still every patient's, not the subset's
        np.testing.assert_allclose(mine["alt_af"], _alt_af(d[keep][:, index]), rtol=1e-12)
    uncapped = run(None)
    assert not capped["alt"].equals(uncapped["alt"]) or len(capped) != len(uncapped)
    # At or below the cap ld_subset gives the index back: the same rows and frequencies, bit for bit.
    pd.testing.assert_frame_equal(run(ld_subset(index, n, seed=5)), uncapped, check_exact=True)


@pytest.mark.integration  # starts a SparkSession
def test_clumped_indexes__capped_equals_clumping_on_each_scans_subset_and_is_unchanged_at_the_cap(spark):
    from genoflow.features.learning import clumped_indexes

    n = 120
    contigs = {"1": linked_dosages(n, 60, seed=4, monomorphic=False),
               "2": linked_dosages(n, 30, seed=5, monomorphic=False)}
    table, keys = _table(spark, contigs)
    rng = np.random.default_rng(9)
    p = rng.uniform(0, 0.02, size=(2, len(keys)))
    p[:, ::3] = 0.5  # some variants not candidates
    scans = pd.concat([keys.assign(scan=s, beta=rng.normal(size=len(keys)), p=p[s]) for s in (0, 1)])
    scans_df = spark.createDataFrame(scans)
    fits = {0: np.arange(n)[::2], 1: rng.permutation(n)[:80]}  # each scan's training patients
    rule = {"prs_thresholds": [0.01], "clump_p2": 0.01, "clump_r2": 0.1, "clump_kb": 20, "split_seed": 3}

    capped = clumped_indexes(scans_df, table, fits, {**rule, "ld_max_samples": 25})
    for s, index in fits.items():
        sub = ld_subset(index, 25, seed=3)
        want = []
        for contig, d in contigs.items():
            rows = (keys["contig"] == contig).to_numpy()
            is_index, size = clump(p[s][rows], keys["pos"][rows].to_numpy(), d[:, sub], p1=0.01, p2=0.01, r2=0.1,
                                   kb=20)
            want += [(contig, f"G{i}", int(k)) for i, k in zip(np.flatnonzero(is_index), size[is_index],
                                                                 strict=True)]
        got = capped[s]
        assert sorted(zip(got["contig"], got["alt"], got["clump_size"], strict=True)) == sorted(want)
        assert any(k > 1 for *_, k in want)  # some clumps have members: r² decided something

    everyone = clumped_indexes(scans_df, table, fits, {**rule, "ld_max_samples": 0})
    at_cap = clumped_indexes(scans_df, table, fits, {**rule, "ld_max_samples": 80})
    for s in fits:
        pd.testing.assert_frame_equal(at_cap[s], everyone[s], check_exact=True)
    assert any(not capped[s]["alt"].equals(everyone[s]["alt"]) for s in fits)  # the cap changed something

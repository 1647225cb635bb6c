"""Streaming LD pruning (genoflow.features.ld.indep_pairwise_stream, prune_contigs) against the whole-contig
reference :func:`indep_pairwise`, which tests/concordance/test_ld_pca_prs.py checks against plink2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.features.ld import _alt_af, indep_pairwise, indep_pairwise_stream, prune_contigs
from genoflow.genotypes import pack_dosages
from tests.ld_data import linked_dosages

# (window, step, kb): variant-count windows with steps below, at and above the window, and kb windows.
SETTINGS = [(5, 1, False), (10, 3, False), (4, 4, False), (3, 5, False), (50, 5, False), (1, 1, True),
            (20, 1, True)]




def _positions(m: int, seed: int) -> np.ndarray:
    """Sorted positions ~500 bp apart on average, multiples of 100 with many repeated (multi-allelic sites),
    so that kb windows often end on a site of several rows exactly ``window`` kb away."""
    gaps = np.random.default_rng(seed).choice([0, 100, 300, 500, 1000, 2500], size=m,
                                              p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
    return 1_000 + np.cumsum(gaps)


def _stream(dosages, positions, cuts, **rule):
    """The streaming prune fed in blocks cut at ``cuts``: (keep mask, alt_af) of every row, in order."""
    bounds = [0, *cuts, len(positions)]
    blocks = ((list(range(a, b)), positions[a:b], dosages[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    keys, keep, af = [], [], []
    for k, kept, freq in indep_pairwise_stream(blocks, **rule):
        keys += k
        keep.append(kept)
        af.append(freq)
    assert keys == list(range(len(positions)))  # every row decided once, in order
    return np.concatenate(keep), np.concatenate(af)


@pytest.mark.parametrize(("window", "step", "kb"), SETTINGS)
@pytest.mark.parametrize("data", ["random", "linked"])
def test_stream__equals_whole_contig_prune_at_any_block_boundaries(window, step, kb, data):
    n, m = 80, 180
    dosages = (linked_dosages(n, m, seed=window + step) if data == "linked"
               else np.random.default_rng(window).integers(-1, 3, size=(m, n)).astype(np.int8))
    positions = _positions(m, seed=step)
    rule = {"window": window, "step": step, "r2": 0.2 if data == "linked" else 0.02, "window_kb": kb}
    expected = indep_pairwise(dosages, positions, **rule)
    assert 0 < expected.sum() < m - m // 40  # the threshold removes some variants but not all
    rng = np.random.default_rng(7)
    for cuts in ([], list(range(1, m)), sorted(rng.choice(np.arange(1, m), size=12, replace=False).tolist())):
        keep, af = _stream(dosages, positions, cuts, **rule)
        np.testing.assert_array_equal(keep, expected)
        np.testing.assert_array_equal(af, _alt_af(dosages))


def test_stream__short_contigs_and_rejected_settings():
    dosages = linked_dosages(30, 3, seed=1)
    for window, step in [(5, 1), (5, 2), (2, 5)]:  # contigs shorter than a window or a step
        keep, _ = _stream(dosages, np.array([10, 20, 30]), [1], window=window, step=step, r2=0.1)
        np.testing.assert_array_equal(keep, indep_pairwise(dosages, np.array([10, 20, 30]), window=window,
                                                           step=step, r2=0.1))
    assert list(indep_pairwise_stream(iter([]), window=3, step=1, r2=0.5)) == []
    with pytest.raises(ValueError, match="step"):
        list(indep_pairwise_stream(iter([]), window=3, step=2, r2=0.5, window_kb=True))


@pytest.mark.integration  # starts a SparkSession
@pytest.mark.parametrize(("window", "step", "kb", "batch"), [(10, 3, False, 3), (20, 1, True, 7), (4, 4, False, 1000)])
def test_prune_contigs__spark_stream_equals_in_memory_prune(spark, window, step, kb, batch):
    from genoflow.spark import session_conf

    n, contigs = 60, {"1": 150, "2": 40, "10": 90, "X": 1, "Y": 25}  # several contigs per partition (4 of them)
    frames, expected = [], []
    for c, (contig, m) in enumerate(contigs.items()):
        dosages, positions = linked_dosages(n + 5, m, seed=c), _positions(m, seed=c)
        index = np.arange(n + 5)[5:][::-1]  # a subset of the samples, in another order
        rule = {"window": window, "step": step, "r2": 0.2, "window_kb": kb}
        keep = indep_pairwise(dosages[:, index], positions, **rule)
        expected.append(pd.DataFrame({"contig": contig, "pos": positions[keep], "ref": "A",
                                      "alt": [f"G{i}" for i in np.flatnonzero(keep)],
                                      "alt_af": _alt_af(dosages[keep][:, index])}))
        frames.append(pd.DataFrame({"contig": contig, "pos": positions, "ref": "A", "alt": [f"G{i}" for i in range(m)],
                                    "dosages": [pack_dosages(row) for row in dosages]}))
    table = spark.createDataFrame(pd.concat(frames).sample(frac=1.0, random_state=3)).repartition(3)

    with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": str(batch)}):
        got = prune_contigs(table, sample_index=index, **rule).toPandas()

    want = pd.concat(expected, ignore_index=True)
    order = ["contig", "pos", "alt"]
    got = got.sort_values(order, ignore_index=True)
    want = want.sort_values(order, ignore_index=True)
    pd.testing.assert_frame_equal(got[["contig", "pos", "ref", "alt"]], want[["contig", "pos", "ref", "alt"]])
    np.testing.assert_allclose(got["alt_af"], want["alt_af"], rtol=1e-12)
    assert 0 < len(got) < sum(contigs.values())


@pytest.mark.parametrize("batch_rows", [1, 4, 1000])
def test_prune_batches__contig_changes_inside_batches_and_small_chunks(monkeypatch, batch_rows):
    """The ``mapInArrow`` function itself on sorted Arrow batches, contigs changing inside a batch and
    batches cut into 3-row chunks, equals :func:`indep_pairwise` contig by contig."""
    import pyarrow as pa

    import genoflow.features.ld as ld
    from genoflow.genotypes import BLOCK_BYTES

    n, index = 40, np.arange(45)[5:][::-1]
    monkeypatch.setattr(ld, "_AF_BYTES_PER_VALUE", BLOCK_BYTES // (3 * n))  # rows_per_block -> 3-row chunks
    rule = {"window": 6, "step": 2, "r2": 0.2}
    rows, want = [], []
    for c, (contig, m) in enumerate({"1": 50, "2": 2, "3": 31}.items()):
        dosages, positions = linked_dosages(45, m, seed=10 + c), _positions(m, seed=c)
        keep = indep_pairwise(dosages[:, index], positions, **rule)
        want += [(contig, int(p), f"G{i}", af) for i, (p, af) in
                 enumerate(zip(positions, _alt_af(dosages[:, index]), strict=True)) if keep[i]]
        rows += [(contig, int(p), f"G{i}", pack_dosages(d)) for i, (p, d) in enumerate(zip(positions, dosages,
                                                                                          strict=True))]
    table = pa.table({"contig": [r[0] for r in rows], "pos": pa.array([r[1] for r in rows], pa.int64()),
                      "ref": ["A"] * len(rows), "alt": [r[2] for r in rows], "dosages": [r[3] for r in rows]})

    out = pa.Table.from_batches(list(ld._prune_batches(iter(table.to_batches(batch_rows)), index, **rule)))

    assert out.column("contig").to_pylist() == [w[0] for w in want]
    assert out.column("pos").to_pylist() == [w[1] for w in want]
    assert out.column("alt").to_pylist() == [w[2] for w in want]
    np.testing.assert_allclose(out.column("alt_af").to_numpy(), [w[3] for w in want], rtol=1e-12)


def test_stream__rejects_rows_out_of_position_order():
    dosages = linked_dosages(20, 4, seed=2)
    blocks = [([0, 1], np.array([10, 30]), dosages[:2]), ([2, 3], np.array([20, 40]), dosages[2:])]
    with pytest.raises(ValueError, match="position order"):
        list(indep_pairwise_stream(iter(blocks), window=3, step=1, r2=0.5))

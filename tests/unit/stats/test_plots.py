"""genoflow.stats.plots: the Manhattan and QQ PNGs written beside a scan's results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genoflow.stats import association_plots, write_association_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _results(rng, n=300):
    return pd.DataFrame({"contig": rng.choice(["1", "2"], size=n), "pos": rng.integers(1, 10**6, size=n),
                         "p": np.r_[rng.uniform(size=n - 1), np.nan]})


def test_write_association_plots__writes_two_pngs_under_the_prefix(tmp_path):
    written = {}

    def write_bytes(uri, data):
        written[uri] = data

    uris = write_association_plots(_results(np.random.default_rng(0)), write_bytes, "file:///out/assoc/",
                                   title="qt: linear regression")
    assert uris == ["file:///out/assoc/manhattan.png", "file:///out/assoc/qq.png"]
    assert all(written[u].startswith(PNG_MAGIC) and len(written[u]) > 5000 for u in uris)


def test_association_plots__names_the_missing_column():
    with pytest.raises(ValueError, match=r"\['p'\]"):
        association_plots(pd.DataFrame({"contig": ["1"], "pos": [1]}), title="x")

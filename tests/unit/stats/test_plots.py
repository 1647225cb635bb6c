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


@pytest.mark.integration  # a real MLflow tracking store (SQLite migrations: seconds)
def test_log_association_plots__logs_both_pngs_on_the_run(tmp_path):
    import mlflow

    from genoflow.stats import log_association_plots

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("assoc", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        log_association_plots(_results(np.random.default_rng(1)), title="cc: logistic regression")
    log_association_plots(_results(np.random.default_rng(2)), title="again", run_id=run.info.run_id,
                          artifact_path="association/again")
    client = mlflow.MlflowClient()
    assert {a.path for a in client.list_artifacts(run.info.run_id, "association")} >= {
        "association/manhattan.png", "association/qq.png", "association/again"}
    local = client.download_artifacts(run.info.run_id, "association/qq.png", str(tmp_path))
    assert open(local, "rb").read().startswith(PNG_MAGIC)

"""Manhattan and QQ plots of an association scan, written beside the results and logged to MLflow.

The figures are the report's own (:mod:`genoflow.reporting.plots`); this module names the files and
puts them where a scan's consumer wants them.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["ASSOCIATION_PLOT_FILES", "association_plots", "write_association_plots", "log_association_plots"]

ASSOCIATION_PLOT_FILES = ("manhattan.png", "qq.png")


def association_plots(results, *, title: str, selected: set | None = None) -> dict[str, bytes]:
    """PNG bytes of the Manhattan and QQ plots, keyed by :data:`ASSOCIATION_PLOT_FILES`.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per variant with ``contig``, ``pos`` and ``p`` (NaN p-values are left out), e.g.
        a collected :func:`genoflow.stats.spark_glm.glm_scan` (a few columns of it suffice:
        ``scan.select("contig", "pos", "p").toPandas()``).
    title : str
        E.g. ``"disease_status: logistic regression"``; lambda_GC is added to the QQ plot's.
    selected : set of (contig, pos), optional
        Variants to ring on the Manhattan plot (e.g. the top-K chosen as features).
    """
    from genoflow.reporting.plots import manhattan_png, qq_png

    missing = {"contig", "pos", "p"} - set(results.columns)
    if missing:
        raise ValueError(f"association_plots: results lack column(s) {sorted(missing)}")
    return {
        "manhattan.png": manhattan_png(results, title=title, selected=selected),
        "qq.png": qq_png(results["p"].to_numpy(dtype=np.float64), title=title),
    }


def write_association_plots(results, write_bytes, prefix: str, *, title: str, selected: set | None = None) -> list:
    """Write the plots as ``<prefix>/manhattan.png`` and ``<prefix>/qq.png``; return their URIs.

    ``write_bytes(uri, data)`` is the storage's writer (``HadoopStorage.write_bytes`` for a step's
    temporary output folder, so the plots are committed with the results).
    """
    uris = []
    for name, png in association_plots(results, title=title, selected=selected).items():
        uri = f"{prefix.rstrip('/')}/{name}"
        write_bytes(uri, png)
        uris.append(uri)
    return uris


def log_association_plots(results, *, title: str, artifact_path: str = "association", run_id: str | None = None,
                          selected: set | None = None) -> None:
    """Log the plots as MLflow artifacts under ``artifact_path`` of ``run_id`` (default: the active run)."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        for name, png in association_plots(results, title=title, selected=selected).items():
            with open(os.path.join(tmp, name), "wb") as handle:
                handle.write(png)
        if run_id is None:
            mlflow.log_artifacts(tmp, artifact_path=artifact_path)
        else:
            mlflow.MlflowClient().log_artifacts(run_id, tmp, artifact_path=artifact_path)

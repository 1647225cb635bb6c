"""The report's figures, each returned as PNG bytes (matplotlib, Agg backend)."""

from __future__ import annotations

import io

import numpy as np

from genoflow.reporting.stats import calibration_bins, expected_log10_p, genomic_inflation

__all__ = ["manhattan_png", "qq_png", "roc_png", "pr_png", "calibration_png"]

GENOME_WIDE = 5e-8
_COLOURS = ("#1f4e79", "#6b9bc3")
_FAMILY_COLOURS = {"logistic_regression": "tab:blue", "random_forest": "tab:green", "gbt": "tab:orange"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def manhattan_png(assoc, *, title: str, selected: set | None = None) -> bytes:
    """-log10 p by position (contigs side by side, alternating colours), the Bonferroni and 5e-8
    lines, and the selected (top-K) variants ringed. ``assoc``: contig, pos, p."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    frame = assoc.dropna(subset=["p"]).sort_values(["contig", "pos"])
    offset, ticks, labels = 0, [], []
    x = np.empty(len(frame))
    for i, (contig, group) in enumerate(frame.groupby("contig", sort=True)):
        idx = frame.index.get_indexer(group.index)
        x[idx] = group["pos"].to_numpy() + offset
        ax.scatter(x[idx] / 1e6, -np.log10(np.clip(group["p"], 1e-300, 1)), s=6, c=_COLOURS[i % 2], lw=0)
        ticks.append((offset + group["pos"].median()) / 1e6)
        labels.append(contig)
        offset += int(group["pos"].max()) + 1
    n = max(len(frame), 1)
    top = max(-np.log10(max(float(frame["p"].min()), 1e-300)) if len(frame) else 1.0, -np.log10(GENOME_WIDE))
    ax.set_ylim(0, top * 1.18)  # headroom for the legend above the highest point
    ax.axhline(-np.log10(0.05 / n), c="tab:orange", ls="--", lw=1, label=f"Bonferroni 0.05/{n:,}")
    ax.axhline(-np.log10(GENOME_WIDE), c="tab:red", ls=":", lw=1, label="genome-wide 5e-8")
    if selected:
        keys = list(zip(frame["contig"], frame["pos"], strict=True))
        mask = np.array([k in selected for k in keys])
        if mask.any():
            ax.scatter(x[mask] / 1e6, -np.log10(np.clip(frame["p"].to_numpy()[mask], 1e-300, 1)), s=28,
                       facecolors="none", edgecolors="tab:red", lw=0.8, label=f"selected as features ({mask.sum()})")
    if len(labels) > 1:
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("contig")
    else:
        ax.set_xlabel(f"{labels[0] if labels else ''} position (Mb)")
    ax.set_ylabel("-log10 p")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    return _png(fig)


def qq_png(p_values, *, title: str) -> bytes:
    """Observed vs expected -log10 p with a 95% band of the uniform order statistics; lambda in the title."""
    from scipy import stats

    plt = _plt()
    p = np.sort(np.asarray(p_values, dtype=float)[np.isfinite(p_values)])
    n = len(p)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    if n:
        expected = expected_log10_p(n)
        i = np.arange(1, n + 1)
        lo = -np.log10(stats.beta.ppf(0.975, i, n - i + 1))
        hi = -np.log10(stats.beta.ppf(0.025, i, n - i + 1))
        ax.fill_between(expected, lo, hi, color="lightgrey", label="95% band under the null")
        ax.scatter(expected, -np.log10(np.clip(p, 1e-300, 1)), s=6, c=_COLOURS[0], lw=0, label="variants")
        top = expected.max()
        ax.plot([0, top], [0, top], c="tab:red", lw=1)
    ax.set(xlabel="expected -log10 p", ylabel="observed -log10 p",
           title=f"{title}\nlambda_GC = {genomic_inflation(p):.3f}")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def roc_png(curves: list[dict], *, title: str) -> bytes:
    """ROC curves; each dict: ``label``, ``fpr``, ``tpr``, ``auc``, ``family``, ``highlight``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for c in curves:
        ax.plot(c["fpr"], c["tpr"], lw=2.4 if c.get("highlight") else 1.2, c=_FAMILY_COLOURS.get(c.get("family")),
                label=f"{c['label']} (AUC {c['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=7)
    return _png(fig)


def pr_png(curves: list[dict], *, prevalence: float, title: str) -> bytes:
    """Precision-recall curves (step), each dict: ``label``, ``scores``, ``labels``, ``auc_pr``, ``family``."""
    from genoflow.evaluation.metrics import pr_points

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for c in curves:
        recall, precision = pr_points(c["labels"], c["scores"])
        # "pre": the precision reached at recall r holds on the step up to r, the rectangles whose area is
        # the average precision.
        ax.step(recall, precision, where="pre",
                lw=2.4 if c.get("highlight") else 1.2, c=_FAMILY_COLOURS.get(c.get("family")),
                label=f"{c['label']} (AUC-PR {c['auc_pr']:.3f})")
    ax.axhline(prevalence, ls="--", c="grey", lw=1, label=f"prevalence {prevalence:.2f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right", fontsize=7)
    return _png(fig)


def calibration_png(scores, labels, *, title: str, n_bins: int = 10) -> bytes:
    """Observed rate vs mean prediction in equal-count bins (95% Wilson intervals), and the diagonal."""
    plt = _plt()
    bins = calibration_bins(scores, labels, n_bins)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    yerr = np.vstack([bins["observed"] - bins["lo"], bins["hi"] - bins["observed"]])
    ax.errorbar(bins["predicted"], bins["observed"], yerr=yerr, fmt="o-", c=_COLOURS[0], ms=4,
                capsize=2, label=f"{len(bins['n'])} bins of ~{int(np.median(bins['n'])) if len(bins['n']) else 0}")
    ax.set(xlabel="mean predicted risk", ylabel="observed fraction positive", title=title, xlim=(0, 1),
           ylim=(-0.02, 1.02))
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)

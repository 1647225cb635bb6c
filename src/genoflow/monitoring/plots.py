"""The drift report's figure: allele-frequency shift, feature PSI and score distributions (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_drift_report"]


def plot_drift_report(af, psi: dict, reference_scores, new_scores, *, path: str, title: str,
                      p_threshold: float, psi_threshold: float, score: dict | None = None) -> None:
    """Write a 2x2 PNG to ``path``.

    Parameters
    ----------
    af : pandas.DataFrame
        One row per variant compared: ``pos``, ``af_ref``, ``af_new``, ``p``.
    psi : dict
        Feature -> PSI (None when the feature was not observed in the batch).
    reference_scores, new_scores : array-like
        The model's scores on the reference (held-out) and new patients.
    p_threshold, psi_threshold : float
        The significance line of the variant tests and the PSI alert line.
    score : dict, optional
        :func:`genoflow.monitoring.drift.score_drift` output, quoted on the score panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), dpi=100)
    fig.suptitle(title, fontsize=12)
    significant = (af["p"] < p_threshold).to_numpy()

    ax = axes[0, 0]
    ax.scatter(af["af_ref"][~significant], af["af_new"][~significant], s=5, alpha=0.4, c="tab:blue",
               label="not significant")
    ax.scatter(af["af_ref"][significant], af["af_new"][significant], s=7, alpha=0.8, c="tab:red",
               label=f"p < {p_threshold:.1e} ({int(significant.sum())})")
    ax.plot([0, 1], [0, 1], c="grey", lw=1, ls="--")
    ax.set(xlabel="ALT frequency, training patients", ylabel="ALT frequency, new batch",
           title="Allele frequencies", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[0, 1]
    logp = -np.log10(np.clip(af["p"].to_numpy(dtype=float), 1e-300, 1))
    ax.scatter(af["pos"] / 1e6, logp, s=5, c=np.where(significant, "tab:red", "tab:blue"), alpha=0.6)
    ax.axhline(-np.log10(p_threshold), c="tab:red", ls="--", lw=1, label="Bonferroni threshold")
    ax.set(xlabel="position (Mb)", ylabel="-log10 p (2x2 allelic test)",
           title="Allele-frequency shift along the contig")
    ax.legend(loc="upper right", fontsize=8)

    ax = axes[1, 0]
    observed = sorted(((v, k) for k, v in psi.items() if v is not None), reverse=True)[:15]
    if observed:
        values = [v for v, _ in observed][::-1]
        names = [k for _, k in observed][::-1]
        ax.barh(names, values, color=["tab:red" if v >= psi_threshold else "tab:blue" for v in values])
        ax.axvline(psi_threshold, c="tab:red", ls="--", lw=1, label=f"alert {psi_threshold}")
        ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set(xlabel="PSI (reference-quantile bins)", title="Model inputs: population stability index (top 15)")

    ax = axes[1, 1]
    ref = np.asarray(reference_scores, dtype=float)
    new = np.asarray(new_scores, dtype=float)
    bins = np.linspace(0, 1, 26)
    if ref.size:
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"held-out training patients (n={ref.size})")
    if new.size:
        ax.hist(new, bins=bins, density=True, alpha=0.5, label=f"new batch (n={new.size})")
    note = f"PSI {score['psi']:.3f}, KS {score['ks']:.3f} (p={score['ks_p']:.2g})" if score else ""
    ax.set(xlabel="predicted risk", ylabel="density", title=f"Model scores  {note}".strip())
    ax.legend(loc="upper right", fontsize=8)

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

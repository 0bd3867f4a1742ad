"""Figures the classifier and detector reports share.

One convention for every confusion matrix the project writes: rows are the true class, columns
the predicted class; two panels side by side: the counts (left, text = count) and the
row-normalised rates (right, each row with samples sums to 1, recall on the diagonal). Colours of
labels in line charts (PR curves) come from ``edge/plot_style.py``: one colour per class, the same
in every chart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def row_normalised(counts) -> np.ndarray:
    """Each row divided by its total (rows without samples stay 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confusion_figure(counts, labels: list[str], title: str):
    """``counts[true, predicted]``: counts (left) and row-normalised rates (right)."""
    plt = _pyplot()
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {len(labels)} labels")
    rates = row_normalised(counts)
    size = len(labels)
    fontsize = 6 if size > 10 else 8
    fig, (ax_counts, ax_rates) = plt.subplots(1, 2, figsize=(2.5 + 1.0 * size, 1.4 + 0.5 * size))
    peak = max(float(counts.max()), 1.0)
    ax_counts.imshow(counts, cmap="Blues", vmin=0, vmax=peak)
    ax_rates.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            if counts[i, j]:
                ax_counts.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=fontsize,
                               color="white" if counts[i, j] > peak / 2 else "black")
                ax_rates.text(j, i, f"{rates[i, j]:.2f}" if rates[i, j] >= 0.005 else "<.01", ha="center", va="center", fontsize=fontsize,
                              color="white" if rates[i, j] > 0.5 else "black")
    for ax, what in ((ax_counts, "counts (samples)"), (ax_rates, "row-normalised (fraction of the true class)")):
        ax.set_xticks(range(size), labels, rotation=45, ha="right")
        ax.set_yticks(range(size), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(what, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(counts, labels: list[str], path: Path, title: str) -> None:
    """``counts[true, predicted]`` as a PNG at ``path`` (counts beside the row-normalised rates)."""
    plt = _pyplot()
    fig = confusion_figure(counts, labels, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pr_figure(curves: dict[str, dict[str, tuple]], title: str):
    """Precision-recall curves, one panel per model (``curves[model][label] = (recall, precision,
    ap50)``); each class keeps its colour from ``edge.plot_style`` in every panel and chart."""
    from edge.plot_style import distinct_colours

    plt = _pyplot()
    labels = sorted({label for per_model in curves.values() for label in per_model})
    colours = distinct_colours(labels)
    fig, axes = plt.subplots(1, len(curves), figsize=(7 * len(curves), 6), squeeze=False)
    for ax, (name, per_model) in zip(axes[0], curves.items()):
        for label in labels:
            if label not in per_model:
                continue
            recall, precision, ap50 = per_model[label]
            ax.plot(recall, precision, label=f"{label} AP50 {ap50:.3f}", linewidth=1.2, color=colours[label])
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall (fraction of true boxes found)")
        ax.set_ylabel("precision (fraction of boxes that are right)")
        ax.set_title(f"{title} - {name}")
        if per_model:
            ax.legend(fontsize=7, loc="lower left")
        else:
            ax.text(0.5, 0.5, "no class with boxes", transform=ax.transAxes, ha="center", va="center")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

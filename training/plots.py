"""Figures the classifier and detector reports share.

One convention for every confusion matrix the project writes: rows are the true class, columns
the predicted class, colour is the row-normalised rate (recall on the diagonal), text is the count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_confusion_matrix(counts, labels: list[str], path: Path, title: str) -> None:
    """``counts[true, predicted]`` as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {len(labels)} labels")
    row_totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = len(labels)
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * size, 1.0 + 0.55 * size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            if counts[i, j]:
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7 if size > 10 else 8,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(size), labels, rotation=45, ha="right")
    ax.set_yticks(range(size), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Metrics and plots of a classifier's probabilities on the validation images.

``top-1``/``top-3`` over all product labels; per-class precision/recall/F1; confusion matrix;
``ten_class_accuracy``: on the validation images of the ten classic classes, the argmax over
those ten classes only (the dataset's usual 10-way benchmark); ``ten_class_accuracy_any`` keeps
the argmax over every label (what the daemon does), for comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.plots import plot_confusion_matrix

KEY_CLASSES = ("dress", "blazer")  # recall targets of the issue


def summary(metrics: dict) -> dict:
    """The headline figures of ``evaluate``'s record (for metrics.json and ship-rule tables)."""
    out = {k: metrics[k] for k in ("n", "top1", "top3", "macro_f1", "ten_class_accuracy", "ten_class_accuracy_any", "ten_class_n") if k in metrics}
    out["recall"] = {c: metrics["per_class"][c]["recall"] for c in KEY_CLASSES if c in metrics["per_class"]}
    return out


def evaluate(probabilities: np.ndarray, truth: np.ndarray, labels: list[str], ten_classes: list[str]) -> dict:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(truth)
    n = len(labels)
    predicted = probabilities.argmax(axis=1)
    top3 = np.argsort(-probabilities, axis=1)[:, :3]
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {}
    for i, label in enumerate(labels):
        tp = confusion[i, i]
        support = int(confusion[i].sum())
        predicted_count = int(confusion[:, i].sum())
        precision = tp / predicted_count if predicted_count else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": support}
    present = [label for label in labels if per_class[label]["support"] > 0]
    result = {
        "n": int(len(truth)),
        "top1": float((predicted == truth).mean()) if len(truth) else 0.0,
        "top3": float((top3 == truth[:, None]).any(axis=1).mean()) if len(truth) else 0.0,
        "macro_f1": float(np.mean([per_class[label]["f1"] for label in present])) if present else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "labels": list(labels),
    }
    ten_idx = [labels.index(c) for c in ten_classes if c in labels]
    if ten_idx:
        mask = np.isin(truth, ten_idx)
        if mask.any():
            restricted = np.array(ten_idx)[probabilities[mask][:, ten_idx].argmax(axis=1)]
            result["ten_class_n"] = int(mask.sum())
            result["ten_class_accuracy"] = float((restricted == truth[mask]).mean())
            result["ten_class_accuracy_any"] = float((predicted[mask] == truth[mask]).mean())
    return result


def classification_report(metrics: dict, title: str = "") -> str:
    """A plain-text table like the usual ``classification_report``."""
    lines = [title] if title else []
    width = max(len(label) for label in metrics["labels"]) + 2
    lines.append(f"{'':{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for label in metrics["labels"]:
        c = metrics["per_class"][label]
        lines.append(f"{label:{width}}{c['precision']:10.3f}{c['recall']:10.3f}{c['f1']:10.3f}{c['support']:10d}")
    lines.append("")
    lines.append(f"{'top-1 accuracy':{width}}{metrics['top1']:30.4f}{metrics['n']:10d}")
    lines.append(f"{'top-3 accuracy':{width}}{metrics['top3']:30.4f}")
    lines.append(f"{'macro F1':{width}}{metrics['macro_f1']:30.4f}")
    if "ten_class_accuracy" in metrics:
        lines.append(f"{'ten-class acc':{width}}{metrics['ten_class_accuracy']:30.4f}{metrics['ten_class_n']:10d}")
        lines.append(f"{'ten-class (any)':{width}}{metrics['ten_class_accuracy_any']:30.4f}")
    return "\n".join(lines) + "\n"


def plot_confusion(metrics: dict, path: Path, title: str) -> None:
    plot_confusion_matrix(metrics["confusion"], metrics["labels"], path, title)


def plot_history(history: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.plot(epochs, history[key], label=f"train {key}")
        ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        stages = history.get("stage", [])
        if "finetune" in stages and "head" in stages:
            ax.axvline(stages.index("finetune") + 0.5, color="grey", linestyle="--", label="fine-tune starts")
        ax.set_xlabel("epoch (one pass over the training crops)")
        ax.set_ylabel({"accuracy": "top-1 accuracy (fraction of crops)", "loss": "loss (cross-entropy per crop)"}[key])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Multi-label metrics on known labels only: ROC AUC, average precision, recall at a precision."""

from __future__ import annotations

import numpy as np


def _known(scores, truth):
    scores, truth = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    keep = truth >= 0
    return scores[keep], truth[keep] > 0.5


def roc_auc(scores, truth) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); nan without both classes."""
    s, y = _known(scores, truth)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    # average ranks for ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _pr_points(scores, truth):
    s, y = _known(scores, truth)
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # keep the last index of each run of equal scores (a threshold takes all ties at once)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], int)
    return tp[last], fp[last], int(y.sum()), s[last]


def average_precision(scores, truth) -> float:
    tp, fp, n_pos, _ = _pr_points(scores, truth)
    if n_pos == 0:
        return float("nan")
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def recall_at_precision(scores, truth, min_precision: float = 0.9) -> tuple[float, float]:
    """(best recall with precision >= min_precision, the score threshold that gives it); (0, inf) if none."""
    tp, fp, n_pos, thresholds = _pr_points(scores, truth)
    if n_pos == 0:
        return float("nan"), float("nan")
    precision = tp / np.maximum(tp + fp, 1)
    ok = precision >= min_precision
    if not ok.any():
        return 0.0, float("inf")
    i = np.flatnonzero(ok)[np.argmax((tp / n_pos)[ok])]
    return float(tp[i] / n_pos), float(thresholds[i])


def summary(scores, truth, min_precision: float = 0.9) -> dict:
    s, y = _known(scores, truth)
    r, thr = recall_at_precision(scores, truth, min_precision)
    return {"n": int(len(y)), "positives": int(y.sum()), "auc": roc_auc(scores, truth),
            "ap": average_precision(scores, truth), f"recall_at_p{int(min_precision * 100)}": r,
            "threshold_at_p": thr}

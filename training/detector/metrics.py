"""Detection metrics without Ultralytics: per-class AP (COCO 101-point), PR curves, confusion matrix.

Used to evaluate the float PyTorch model and the int8 TFLite model through *the same* letterbox,
decode and NMS as the daemon (``edge.detect.yolo``), so the two numbers are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.boxes import iou_matrix

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass
class DetectionEvaluator:
    """Accumulates per-image predictions and ground truth; computes AP per class."""

    num_classes: int
    # per prediction: score, class, and a true-positive flag for each IoU threshold
    scores: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    tp: list = field(default_factory=list)
    gt_counts: np.ndarray = None
    confusion: np.ndarray = None  # (nc+1) x (nc+1): rows predicted (last = background), cols true
    confusion_conf: float = 0.25
    confusion_iou: float = 0.45

    def __post_init__(self):
        self.gt_counts = np.zeros(self.num_classes, np.int64)
        self.confusion = np.zeros((self.num_classes + 1, self.num_classes + 1), np.int64)

    def add(self, pred_xyxy, pred_scores, pred_classes, gt_xyxy, gt_classes) -> None:
        pred_xyxy = np.asarray(pred_xyxy, np.float32).reshape(-1, 4)
        pred_scores = np.asarray(pred_scores, np.float32).reshape(-1)
        pred_classes = np.asarray(pred_classes, np.int64).reshape(-1)
        gt_xyxy = np.asarray(gt_xyxy, np.float32).reshape(-1, 4)
        gt_classes = np.asarray(gt_classes, np.int64).reshape(-1)
        np.add.at(self.gt_counts, gt_classes, 1)
        order = np.argsort(-pred_scores)
        pred_xyxy, pred_scores, pred_classes = pred_xyxy[order], pred_scores[order], pred_classes[order]
        iou = iou_matrix(pred_xyxy, gt_xyxy)
        tp = np.zeros((len(pred_scores), len(IOU_THRESHOLDS)), bool)
        for t, threshold in enumerate(IOU_THRESHOLDS):
            taken = np.zeros(len(gt_xyxy), bool)
            for i in range(len(pred_scores)):  # greedy by score, same-class GT only
                candidates = (gt_classes == pred_classes[i]) & ~taken & (iou[i] >= threshold)
                if candidates.any():
                    j = int(np.argmax(np.where(candidates, iou[i], -1)))
                    taken[j] = True
                    tp[i, t] = True
        self.scores.append(pred_scores)
        self.classes.append(pred_classes)
        self.tp.append(tp)
        self._add_confusion(pred_xyxy, pred_scores, pred_classes, gt_xyxy, gt_classes, iou)

    def _add_confusion(self, pred_xyxy, pred_scores, pred_classes, gt_xyxy, gt_classes, iou) -> None:
        bg = self.num_classes
        keep = pred_scores >= self.confusion_conf
        iou, pred_classes = iou[keep], pred_classes[keep]
        matched_pred, matched_gt = set(), set()
        if iou.size:
            pairs = np.argwhere(iou >= self.confusion_iou)
            pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]])]
            for i, j in pairs:
                if i in matched_pred or j in matched_gt:
                    continue
                matched_pred.add(i)
                matched_gt.add(j)
                self.confusion[pred_classes[i], gt_classes[j]] += 1
        for i in range(len(pred_classes)):
            if i not in matched_pred:
                self.confusion[pred_classes[i], bg] += 1
        for j in range(len(gt_classes)):
            if j not in matched_gt:
                self.confusion[bg, gt_classes[j]] += 1

    def results(self) -> dict:
        """Per class: ap50, ap50_95, precision/recall curves (for plots), n_gt."""
        scores = np.concatenate(self.scores) if self.scores else np.zeros(0)
        classes = np.concatenate(self.classes) if self.classes else np.zeros(0, np.int64)
        tp = np.concatenate(self.tp) if self.tp else np.zeros((0, len(IOU_THRESHOLDS)), bool)
        out = {}
        for c in range(self.num_classes):
            sel = classes == c
            n_gt = int(self.gt_counts[c])
            order = np.argsort(-scores[sel])
            ctp = tp[sel][order]
            aps = []
            curve = None
            for t in range(len(IOU_THRESHOLDS)):
                ap, recall, precision = average_precision(ctp[:, t], n_gt)
                aps.append(ap)
                if t == 0:
                    curve = (recall, precision)
            out[c] = {"ap50": aps[0], "ap50_95": float(np.mean(aps)), "n_gt": n_gt, "curve": curve}
        return out


def average_precision(tp_sorted: np.ndarray, n_gt: int) -> tuple[float, np.ndarray, np.ndarray]:
    """COCO-style AP: precision envelope sampled at 101 recall points."""
    if n_gt == 0:
        return float("nan"), np.zeros(0), np.zeros(0)
    tpc = np.cumsum(tp_sorted)
    fpc = np.cumsum(~tp_sorted)
    recall = tpc / n_gt
    precision = tpc / np.maximum(tpc + fpc, 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    points = np.linspace(0, 1, 101)
    ap = float(np.trapezoid(np.interp(points, mrec, mpre), points))
    return ap, recall, precision

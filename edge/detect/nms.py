"""Non-maximum suppression in numpy (the exported YOLO graphs carry none).

Class-aware: boxes of different classes never suppress each other (a person and the jacket
they wear overlap almost completely). Implemented with the usual "offset per class" trick:
shifting every class into its own far-away region of the plane makes one greedy NMS pass
class-aware without a Python loop per class.
"""

from __future__ import annotations

import numpy as np

from ..boxes import box_iou, iou_matrix  # noqa: F401  (iou_matrix: edge.detect's public name)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS; indices of kept boxes, highest score first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if max_keep is not None and len(keep) >= max_keep:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest], np.float64) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_aware_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_keep: int | None = None,
) -> np.ndarray:
    """NMS within each class only; indices of kept boxes, highest score first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    # Offset each class by more than the whole extent of all boxes so classes cannot overlap.
    extent = float(np.abs(boxes).max()) * 2 + 1
    shifted = boxes + (np.asarray(class_ids, np.float64) * extent)[:, None]
    return nms(shifted, scores, iou_threshold, max_keep)

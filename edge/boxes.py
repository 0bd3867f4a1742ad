"""Box overlap, once: every xyxy box comparison of the daemon, the scenario scoring and training.

Boxes are ``[x1, y1, x2, y2]`` in pixels (rows of an ``(N, 4)`` array). ``dtype``: the NMS and the
crop stage work in float32 like the detector's boxes; the tracker and the scoring in float64.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-9  # no division by zero for empty boxes


def _pairs(a, b, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype).reshape(-1, 4)
    b = np.asarray(b, dtype).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return a, b, np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou_matrix(a, b, dtype=np.float32) -> np.ndarray:
    """Pairwise IoU, shape (len(a), len(b)); zeros for an empty side."""
    a, b, inter = _pairs(a, b, dtype)
    return inter / np.maximum(areas(a)[:, None] + areas(b)[None, :] - inter, EPS)


def box_iou(box, boxes, dtype=np.float32) -> np.ndarray:
    """IoU of one box with each row of ``boxes``."""
    return iou_matrix(np.asarray(box)[None, :4], boxes, dtype)[0]


def containment(inner, outer, dtype=np.float32) -> np.ndarray:
    """(len(inner), len(outer)): the fraction of each inner box's area inside each outer box."""
    inner, _, inter = _pairs(inner, outer, dtype)
    return inter / np.maximum(areas(inner)[:, None], EPS)


def overlap_fraction(boxes, dtype=np.float32) -> np.ndarray:
    """For each box, the largest fraction of its area covered by one other box of ``boxes``."""
    boxes = np.asarray(boxes, dtype).reshape(-1, 4)
    if len(boxes) < 2:
        return np.zeros(len(boxes), dtype)
    covered = containment(boxes, boxes, dtype)
    np.fill_diagonal(covered, 0)
    return covered.max(axis=1)


def centre_distance(box, boxes) -> np.ndarray:
    """(len(boxes),): the distance in pixels from ``box``'s centre to each box's centre (float64)."""
    a = np.asarray(box[:4], np.float64)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.hypot((a[0] + a[2] - b[:, 0] - b[:, 2]) / 2, (a[1] + a[3] - b[:, 1] - b[:, 3]) / 2)

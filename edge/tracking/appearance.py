"""A cheap colour appearance of a person: is this box the customer we were following?

What it is: two colour histograms, upper body (15-50 % of the box height) and lower body
(50-90 %), each over the central 60 % of the box width (the edges are mostly background). A pixel
with colour (HSV saturation >= ``CHROMA_MIN_S`` and value >= ``CHROMA_MIN_V``) falls in one of
12 hue x 3 saturation bins; a grey, black or white pixel (where hue is noise) falls in one of 6
brightness bins. Each part is normalised to sum 1. The person crop is resized to 16 x 48 first,
so the cost does not grow with the person's size (about 0.1 ms per person on this machine).

The distance between two appearances is the Hellinger distance (0 = the same colours, 1 = no
colour in common) of the part that differs most: two customers in the same coral jacket, one
over a pink dress and one over black shorts, are told apart by the lower body (the mean of the
two parts would let the jackets hide the difference). Measured by
``scripts/appearance_distances.py``, the max accepts 5 % of other people at 0.6 where the mean
accepts 10 %, for the same 0.5 % of the same person refused.

Unreliable crops give no appearance (``None``): a box shorter than ``min_height_px`` (too few
pixels), or one covered by another person's box for more than ``max_overlap`` of its area (the
histogram would mix two people). A track then keeps the appearance it had.

Why colour and not an embedding: the tracker needs "same person as 0.5 s ago or someone else",
not recognition across days; colour of clothes is what changes when one customer replaces
another, it costs ~0.1 ms instead of a second network per person, and it stores nothing that
identifies a person (it lives in memory for the track's life only).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..boxes import overlap_fraction

PARTS = ((0.15, 0.50), (0.50, 0.90))  # (top, bottom) fractions of the person box height
WIDTH = (0.20, 0.80)  # central part of the box width
HUE_BINS, SAT_BINS, GREY_BINS = 12, 3, 6
CHROMA_MIN_S, CHROMA_MIN_V = 50, 40
BINS = HUE_BINS * SAT_BINS + GREY_BINS
_SIZE = (16, 48)  # (width, height) the person's crop is resized to


def _part_histograms(hsv: np.ndarray) -> np.ndarray:
    h = hsv[..., 0].astype(np.int32)  # 0..179
    s = hsv[..., 1].astype(np.int32)
    v = hsv[..., 2].astype(np.int32)
    chroma = (s >= CHROMA_MIN_S) & (v >= CHROMA_MIN_V)
    colour_bin = (h * HUE_BINS // 180) * SAT_BINS + np.minimum((s - CHROMA_MIN_S) * SAT_BINS // (256 - CHROMA_MIN_S),
                                                               SAT_BINS - 1)
    grey_bin = HUE_BINS * SAT_BINS + v * GREY_BINS // 256
    bins = np.where(chroma, colour_bin, grey_bin)
    rows = hsv.shape[0]
    out = np.zeros((len(PARTS), BINS), np.float32)
    for i, (top, bottom) in enumerate(PARTS):
        part = bins[int(top * rows):int(bottom * rows)].ravel()
        counts = np.bincount(part, minlength=BINS).astype(np.float32)
        out[i] = counts / max(counts.sum(), 1.0)
    return out


def describe(frame_bgr: np.ndarray, box) -> np.ndarray | None:
    """Appearance (len(PARTS), BINS) of the person in ``box`` (xyxy frame pixels), or None for an
    empty crop."""
    fh, fw = frame_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w = x2 - x1
    cx1 = int(np.clip(x1 + WIDTH[0] * w, 0, fw))
    cx2 = int(np.clip(x1 + WIDTH[1] * w, 0, fw))
    cy1, cy2 = int(np.clip(y1, 0, fh)), int(np.clip(y2, 0, fh))
    if cx2 - cx1 < 2 or cy2 - cy1 < 4:
        return None
    crop = cv2.resize(frame_bgr[cy1:cy2, cx1:cx2], _SIZE, interpolation=cv2.INTER_AREA)
    return _part_histograms(cv2.cvtColor(crop, cv2.COLOR_BGR2HSV))


def describe_people(frame_bgr: np.ndarray, boxes: np.ndarray, rows, min_height_px: int,
                    max_overlap: float) -> dict[int, np.ndarray]:
    """Appearances of the boxes at ``rows`` (indices into ``boxes``) that are reliable: tall
    enough and not covered by another box of ``boxes``. Row -> appearance."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    covered = overlap_fraction(boxes)
    out: dict[int, np.ndarray] = {}
    for row in rows:
        row = int(row)
        box = boxes[row]
        if box[3] - box[1] < min_height_px or covered[row] > max_overlap:
            continue
        appearance = describe(frame_bgr, box)
        if appearance is not None:
            out[row] = appearance
    return out


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger distance of the most different part: 0 identical colours .. 1 nothing in common."""
    bc = np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None)).sum(axis=-1)  # Bhattacharyya coefficient
    return float(np.sqrt(np.clip(1.0 - bc, 0.0, 1.0)).max())


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``distance`` of every appearance in ``a`` (k, parts, bins) with every one in ``b`` (n, parts,
    bins), as a (k, n) array in one product (the identity stage compares a whole gallery)."""
    bc = np.einsum("kpb,npb->knp", np.sqrt(np.clip(a, 0, None)), np.sqrt(np.clip(b, 0, None)))
    return np.sqrt(np.clip(1.0 - bc, 0.0, 1.0)).max(axis=2)


def blend(old: np.ndarray | None, new: np.ndarray, momentum: float) -> np.ndarray:
    """Exponential smoothing of a track's appearance (``momentum`` = weight of the old value)."""
    if old is None:
        return new
    return momentum * old + (1.0 - momentum) * new

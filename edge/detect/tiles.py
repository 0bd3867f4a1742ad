"""Tiled detection for large frames: the whole frame once, plus overlapping tiles at full detail.

A 1080p frame letterboxed into a 416 px detector input is shrunk 4.6x: a far customer 80 px tall
is 17 px to the detector and mostly missed. Tiles cut the frame into ``cols`` x ``rows`` overlapping
windows that each go through the same detector, so small people are shrunk far less; the whole-frame
pass keeps the people who are larger than a tile's overlap (a tile cuts them) found whole.

Merging: a tile box near an inner tile border is dropped as cut (the overlap makes sure a person
smaller than it lies whole in the neighbouring tile, and a larger one is the whole-frame pass's),
so is one taller than most of the tile (the whole-frame pass sees it) and one that is a part of
an object the whole-frame pass found (mostly inside its box, of comparable height); then
class-aware NMS over everything.
"""

from __future__ import annotations

import numpy as np

from ..detections import Detections
from .nms import class_aware_nms
from .yolo import YoloDetector

BORDER = 0.02  # a tile box within this fraction of the tile's size (+2 px) of an inner border is cut by it
MAX_TILE_HEIGHT = 0.6  # tile boxes taller than this fraction of the tile are left to the whole-frame pass
PART_INSIDE = 0.7  # a tile box this much inside a whole-frame box of its class and at least
PART_HEIGHT = 0.5  # this fraction of its height is a part of that object (a torso, the legs)


def tile_windows(width: int, height: int, cols: int, rows: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``cols`` x ``rows`` windows ``(x1, y1, x2, y2)`` covering the frame, neighbours overlapping by
    ``overlap`` of a window's size."""
    def spans(length: int, count: int) -> list[tuple[int, int]]:
        if count == 1:
            return [(0, length)]
        size = length / (count - (count - 1) * overlap)
        step = size * (1 - overlap)
        return [(int(round(i * step)), min(length, int(round(i * step + size)))) for i in range(count)]

    return [(x1, y1, x2, y2) for y1, y2 in spans(height, rows) for x1, x2 in spans(width, cols)]


class TiledDetector:
    """``detect(frame)`` like ``YoloDetector``: the whole frame plus ``cols`` x ``rows`` tiles.

    Frames smaller than ``min_frame_px`` on their long side go through the whole-frame pass only
    (tiles would upscale nothing there)."""

    def __init__(self, detector: YoloDetector, cols: int, rows: int, overlap: float = 0.2,
                 min_frame_px: int | None = None):
        if cols < 1 or rows < 1 or not 0 <= overlap < 0.5:
            raise ValueError("tiles need cols, rows >= 1 and 0 <= overlap < 0.5")
        self.detector = detector
        self.cols, self.rows, self.overlap = cols, rows, overlap
        self.min_frame_px = detector.input_size * 1.5 if min_frame_px is None else min_frame_px
        self.calls_per_frame = 1 + cols * rows

    # the detector's description, so the pipeline can use either
    def __getattr__(self, name):
        return getattr(self.detector, name)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        whole = self.detector.detect(frame_bgr)
        h, w = frame_bgr.shape[:2]
        if max(h, w) < self.min_frame_px or self.cols * self.rows == 1:
            return whole
        boxes, scores, classes = [whole.xyxy], [whole.scores], [whole.class_ids]
        for x1, y1, x2, y2 in tile_windows(w, h, self.cols, self.rows, self.overlap):
            found = self.detector.detect(frame_bgr[y1:y2, x1:x2])
            if len(found) == 0:
                continue
            xyxy = found.xyxy + np.array([x1, y1, x1, y1], np.float32)
            mx, my = BORDER * (x2 - x1) + 2, BORDER * (y2 - y1) + 2
            # cut by an inner border of this tile (frame borders cut nothing the whole pass sees better)
            cut = ((x1 > 0) & (xyxy[:, 0] <= x1 + mx)) | ((x2 < w) & (xyxy[:, 2] >= x2 - mx)) \
                | ((y1 > 0) & (xyxy[:, 1] <= y1 + my)) | ((y2 < h) & (xyxy[:, 3] >= y2 - my))
            cut |= (xyxy[:, 3] - xyxy[:, 1]) > MAX_TILE_HEIGHT * (y2 - y1)
            cut |= _part_of(xyxy, found.class_ids, whole)
            boxes.append(xyxy[~cut])
            scores.append(found.scores[~cut])
            classes.append(found.class_ids[~cut])
        xyxy = np.concatenate(boxes).astype(np.float32)
        score = np.concatenate(scores).astype(np.float32)
        class_ids = np.concatenate(classes).astype(np.int32)
        if len(score) == len(whole):
            return whole
        kept = class_aware_nms(xyxy, score, class_ids, self.detector.iou, self.detector.max_detections)
        return Detections(xyxy[kept], score[kept], class_ids[kept], self.detector.labels)


def _part_of(xyxy: np.ndarray, class_ids: np.ndarray, whole: Detections) -> np.ndarray:
    """Tile boxes that are a part of an object the whole-frame pass found (mostly inside its box,
    of a comparable height); a far person standing inside a near one's box is much smaller: kept."""
    if len(whole) == 0 or len(xyxy) == 0:
        return np.zeros(len(xyxy), bool)
    big = whole.xyxy
    iw = np.clip(np.minimum(xyxy[:, None, 2], big[None, :, 2]) - np.maximum(xyxy[:, None, 0], big[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(xyxy[:, None, 3], big[None, :, 3]) - np.maximum(xyxy[:, None, 1], big[None, :, 1]), 0, None)
    area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-6)
    inside = iw * ih / area[:, None] >= PART_INSIDE
    comparable = (xyxy[:, None, 3] - xyxy[:, None, 1]) >= PART_HEIGHT * (big[None, :, 3] - big[None, :, 1])
    same = class_ids[:, None] == whole.class_ids[None, :]
    return (inside & comparable & same).any(axis=1)

"""YOLO label files (``class cx cy w h`` normalised), read and written with validation.

Every problem is a one-line ``DatasetError`` naming the file and the line, e.g.
``labels/12.txt: line 3: class id 14 is not in 0..9``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EDGE_TOLERANCE = 1e-3  # some exporters write 1.0000001; anything further out is a real error


@dataclass(frozen=True)
class Box:
    cls: int
    cx: float
    cy: float
    w: float
    h: float

    def line(self) -> str:
        return f"{self.cls} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


def check_box(box: Box, num_classes: int, path: Path | str, where: str) -> Box:
    """Range checks shared by the reader and the converters; clips tiny overshoots."""
    if not 0 <= box.cls < num_classes:
        raise DatasetError(f"{where}: class id {box.cls} is not in 0..{num_classes - 1}", path=path)
    x1, y1 = box.cx - box.w / 2, box.cy - box.h / 2
    x2, y2 = box.cx + box.w / 2, box.cy + box.h / 2
    if box.w <= 0 or box.h <= 0:
        raise DatasetError(f"{where}: box has non-positive size (w={box.w:g}, h={box.h:g})", path=path)
    lo, hi = -EDGE_TOLERANCE, 1 + EDGE_TOLERANCE
    if min(x1, y1) < lo or max(x2, y2) > hi:
        raise DatasetError(
            f"{where}: box out of range (x1={x1:.4f} y1={y1:.4f} x2={x2:.4f} y2={y2:.4f}; expected 0..1)", path=path
        )
    x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)
    return Box(box.cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)


def read_labels(path: Path, num_classes: int) -> list[Box]:
    """Read and validate one YOLO label file (empty file = image without objects)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DatasetError(f"cannot read label file ({exc.strerror})", path=path) from None
    boxes = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        where = f"line {number}"
        if len(fields) != 5:
            raise DatasetError(f"{where}: expected 'class cx cy w h', got {len(fields)} fields", path=path)
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise DatasetError(f"{where}: not numbers: {raw.strip()!r}", path=path) from None
        boxes.append(check_box(Box(cls, cx, cy, w, h), num_classes, path, where))
    return boxes


def write_labels(path: Path, boxes: list[Box]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(b.line() + "\n" for b in boxes))


def find_image(images_dir: Path, stem: str, label_path: Path | None = None) -> Path:
    """The image for a label stem; a label without an image is an error naming both."""
    for suffix in IMAGE_SUFFIXES:
        candidate = images_dir / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DatasetError(f"no image {stem}.* in {images_dir} for this label", path=label_path or stem)


def xyxy_pixels_to_box(cls: int, xyxy, width: int, height: int) -> Box:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return Box(cls, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def boxes_to_xyxy(boxes: list[Box], width: int, height: int) -> np.ndarray:
    if not boxes:
        return np.zeros((0, 4), np.float32)
    b = np.array([[x.cx, x.cy, x.w, x.h] for x in boxes], np.float32)
    return np.stack([(b[:, 0] - b[:, 2] / 2) * width, (b[:, 1] - b[:, 3] / 2) * height,
                     (b[:, 0] + b[:, 2] / 2) * width, (b[:, 1] + b[:, 3] / 2) * height], 1)

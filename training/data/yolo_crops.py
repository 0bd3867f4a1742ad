"""Garment crops cut from a YOLO-labelled detection dataset (e.g. colorful-fashion).

Layout: ``images/<id>.jpg``, ``labels/<id>.txt`` (``class cx cy w h`` normalised),
``classes.txt`` (one name a line) and ``splits/<split>.txt`` (ids). Crops of worn garments teach
the classifier the in-store domain (garments on people, not laid flat).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import cv2

from edge.errors import DatasetError

from .samples import Sample, require_file


def _image_size(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_2)  # only the size matters; decode small
    if image is None:
        raise DatasetError("cannot decode image (unreadable or not an image)", path=path)
    return image.shape[1] * 2, image.shape[0] * 2


def load_yolo_crops(
    root: Path,
    split: str = "train",
    min_side_px: int = 32,
    margin: float = 0.05,
    max_per_class: int | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> list[Sample]:
    """One sample per labelled box of the split (boxes smaller than ``min_side_px`` skipped).

    ``image_size`` (w, h) skips reading every image for its size when all images share one.
    ``max_per_class`` keeps a seeded random subset so a frequent class (shoes) does not swamp
    the others.
    """
    root = Path(root)
    names = [n.strip() for n in require_file(root / "classes.txt", "classes file").read_text().splitlines() if n.strip()]
    if not names:
        raise DatasetError("classes file is empty", path=root / "classes.txt")
    split_path = require_file(root / "splits" / f"{split}.txt", f"split '{split}'")
    ids = [line.strip() for line in split_path.read_text().splitlines() if line.strip()]
    per_class: dict[str, list[Sample]] = defaultdict(list)
    for image_id in ids:
        image_path = root / "images" / f"{image_id}.jpg"
        label_path = root / "labels" / f"{image_id}.txt"
        if not image_path.is_file():
            raise DatasetError(f"image of split id {image_id!r} not found", path=image_path)
        if not label_path.is_file():
            continue  # an image without boxes has nothing to crop
        w, h = image_size or _image_size(image_path)
        for line_no, line in enumerate(label_path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                cls, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
            except (ValueError, IndexError):
                raise DatasetError("expected 'class cx cy w h'", path=label_path, field=f"line {line_no}") from None
            if not 0 <= cls < len(names):
                raise DatasetError(f"class id {cls} not in classes.txt (0..{len(names) - 1})", path=label_path, field=f"line {line_no}")
            bw_px, bh_px = bw * w, bh * h
            if min(bw_px, bh_px) < min_side_px:
                continue
            mx, my = bw_px * margin, bh_px * margin
            box = (
                int(round(cx * w - bw_px / 2 - mx)),
                int(round(cy * h - bh_px / 2 - my)),
                int(round(cx * w + bw_px / 2 + mx)),
                int(round(cy * h + bh_px / 2 + my)),
            )
            per_class[names[cls]].append(
                Sample(path=image_path, label=names[cls], key=f"{image_id}#{line_no}", group=image_id, box=box, source=root.name)
            )
    samples: list[Sample] = []
    rng = random.Random(seed)
    for name in sorted(per_class):
        items = per_class[name]
        if max_per_class is not None and len(items) > max_per_class:
            items = rng.sample(items, max_per_class)
            items.sort(key=lambda s: s.key)
        samples.extend(items)
    if not samples:
        raise DatasetError(f"no boxes of at least {min_side_px}px in split '{split}'", path=split_path)
    return samples

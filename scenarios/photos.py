"""People from the colorful-fashion photos: the person's crop and the garments it wears.

The dataset has garment boxes but no person box. The person is the union of the garment boxes
(bags left out: they hang away from the body), widened by 10 % each side, raised by 15 % of its
height for the head and lowered by 2 % for the soles, clipped to the photo. Only the split file
given is read (``val`` for scenarios: never evaluate on what the models trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

BAG = "bag"


@dataclass
class Person:
    photo_id: str
    image: np.ndarray  # BGR crop around the person
    garments: frozenset[str]  # garment classes labelled in the photo


def read_classes(root: Path) -> list[str]:
    return [line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip()]


def person_crop(image: np.ndarray, boxes_cxcywh: np.ndarray) -> np.ndarray | None:
    h, w = image.shape[:2]
    if not len(boxes_cxcywh):
        return None
    b = boxes_cxcywh * np.array([w, h, w, h], np.float32)
    x1 = (b[:, 0] - b[:, 2] / 2).min()
    x2 = (b[:, 0] + b[:, 2] / 2).max()
    y1 = (b[:, 1] - b[:, 3] / 2).min()
    y2 = (b[:, 1] + b[:, 3] / 2).max()
    bw, bh = x2 - x1, y2 - y1
    x1, x2 = int(max(0, x1 - 0.10 * bw)), int(min(w, x2 + 0.10 * bw))
    y1, y2 = int(max(0, y1 - 0.15 * bh)), int(min(h, y2 + 0.02 * bh))
    if x2 - x1 < 20 or y2 - y1 < 60:
        return None
    return image[y1:y2, x1:x2].copy()


def load_people(root: Path, split: str, limit: int | None = None) -> list[Person]:
    """People of ``root/splits/<split>.txt`` in file order (photos with no usable box skipped)."""
    classes = read_classes(root)
    ids = [line.strip() for line in (root / "splits" / f"{split}.txt").read_text().splitlines() if line.strip()]
    people: list[Person] = []
    for photo_id in ids:
        label_file = root / "labels" / f"{photo_id}.txt"
        image = cv2.imread(str(root / "images" / f"{photo_id}.jpg"))
        if image is None or not label_file.exists():
            continue
        rows = np.array([[float(v) for v in line.split()] for line in label_file.read_text().splitlines()
                         if line.strip()], np.float32).reshape(-1, 5)
        names = [classes[int(c)] for c in rows[:, 0]]
        body = np.array([n != BAG for n in names], bool)
        crop = person_crop(image, rows[body, 1:])
        if crop is None:
            continue
        people.append(Person(photo_id, crop, frozenset(names)))
        if limit is not None and len(people) >= limit:
            break
    return people

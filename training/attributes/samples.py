"""A set of person crops with clothing targets (``Samples``) and the helpers every source loader
shares: the seeded validation hash and the base-image shrink. Its own module so that the loaders
(``data.py`` for the public sets, ``store_data.py`` for a store's folder) import it without
importing each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import labels as L

MAX_SIDE = 256  # base images are stored at most this tall: the model input is smaller


@dataclass
class Samples:
    images: list = field(default_factory=list)  # BGR uint8 base images
    boxes: list = field(default_factory=list)  # person box xyxy in the base image
    targets: list = field(default_factory=list)  # labels.TARGET_WIDTH floats
    keys: list = field(default_factory=list)  # "<source>:<id>"
    sources: list = field(default_factory=list)
    heights: list = field(default_factory=list)  # person height in the original image, px

    def add(self, image, box, target, key, source, height):
        self.images.append(image)
        self.boxes.append(np.asarray(box, np.float32))
        self.targets.append(np.asarray(target, np.float32))
        self.keys.append(key)
        self.sources.append(source)
        self.heights.append(float(height))

    def __len__(self):
        return len(self.keys)

    def target_matrix(self) -> np.ndarray:
        return np.stack(self.targets) if self.targets else np.zeros((0, L.TARGET_WIDTH), np.float32)

    def subset(self, mask) -> "Samples":
        out = Samples()
        for i in np.flatnonzero(mask):
            out.add(self.images[i], self.boxes[i], self.targets[i], self.keys[i], self.sources[i], self.heights[i])
        return out


def in_validation(group: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha1(f"{seed}|{group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _shrink(image: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    h = image.shape[0]
    box = np.asarray(box, np.float32)
    if h <= MAX_SIDE:
        return image, box
    s = MAX_SIDE / h
    small = cv2.resize(image, (max(1, round(image.shape[1] * s)), MAX_SIDE), interpolation=cv2.INTER_AREA)
    return small, box * s

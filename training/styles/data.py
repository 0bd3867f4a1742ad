"""Embeddings of the datasets' photos through the daemon's own classifier, cached under .cache/.

Two kinds of item:

* a **product** photo of the clothing dataset (one garment, the whole photo is the crop);
* a **person** photo of colorful-fashion: every labelled garment box (``classes``, at least
  ``min_side_px``) is cropped with the same margin as training, embedded, and the crops' embeddings
  are pooled (mean, L2-normalised) - what the daemon does with a customer's good garment crops.

``embed_items`` returns an ``Embedded`` bundle (one row per item) and caches it as
``<cache_dir>/<name>-<model sha256[:12]>-<n items>.npz``: a new classifier gets new embeddings.
Each item also carries its labels (product label, or the garment classes seen on the person) and
a coarse colour name of its crops' centres, used to name the style clusters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.classify.classifier import GarmentClassifier, l2_normalise
from edge.errors import DatasetError
from edge.runtime import sha256_file
from training.data.clothing import apply_split, load_clothing
from training.data.yolo_crops import load_yolo_crops
from training.labels import load_label_map

GARMENT_BOXES = ("hat", "jacket", "shirt", "pants", "shorts", "skirt", "dress", "shoe")


@dataclass
class Item:
    path: Path
    labels: list[str]  # product label (clothing) or garment classes on the person (colorful-fashion)
    boxes: list[tuple[int, int, int, int]] | None  # None: the whole photo
    source: str  # 'product' or 'worn'


@dataclass
class Embedded:
    items: list[Item]
    embeddings: np.ndarray  # (n, d) float32, L2-normalised
    colours: list[str]  # dominant colour name per item


def clothing_items(root: Path, split_file: Path, label_map: Path, side: str) -> list[Item]:
    """Product photos of one side ('train' / 'validation') of the committed sender-grouped split."""
    samples = load_label_map(label_map).apply(load_clothing(root, check_images=False), "clothing")
    split = json.loads(Path(split_file).read_text())
    train, val = apply_split(samples, split)
    chosen = train if side == "train" else val
    return [Item(s.path, [s.label], None, "product") for s in chosen]


def worn_items(root: Path, split: str, min_side_px: int = 40, classes=GARMENT_BOXES, per_box: bool = False) -> list[Item]:
    """colorful-fashion photos of a split: one item per photo (its garment boxes pooled), or with
    ``per_box`` one item per box (worn-crop queries)."""
    crops = [s for s in load_yolo_crops(root, split, min_side_px=min_side_px, margin=0.05, image_size=(400, 600))
             if s.label in classes]
    if per_box:
        return [Item(s.path, [s.label], [s.box], "worn") for s in crops]
    by_photo: dict[Path, Item] = {}
    for s in sorted(crops, key=lambda c: c.key):
        item = by_photo.setdefault(s.path, Item(s.path, [], [], "worn"))
        item.labels.append(s.label)
        item.boxes.append(s.box)
    return list(by_photo.values())


def crop(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    return image[y1:y2, x1:x2]


# Coarse colour names from the median HSV of a crop's centre (OpenCV hue 0..180).
_HUES = ((10, "red"), (22, "orange"), (34, "yellow"), (78, "green"), (100, "teal"), (130, "blue"),
         (150, "purple"), (170, "pink"), (181, "red"))


def colour_name(crop_bgr: np.ndarray) -> str:
    h, w = crop_bgr.shape[:2]
    centre = crop_bgr[h // 4: max(h // 4 + 1, 3 * h // 4), w // 4: max(w // 4 + 1, 3 * w // 4)]
    hsv = cv2.cvtColor(centre, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    hue, sat, val = np.median(hsv, axis=0)
    if val < 60:
        return "black"
    if sat < 45:
        return "white" if val > 190 else "grey"
    return next(name for limit, name in _HUES if hue < limit)


def _cache_path(cache_dir: Path, name: str, items: list[Item], sha: str) -> Path:
    token = hashlib.sha1("\n".join(f"{i.path}|{i.boxes}" for i in items).encode()).hexdigest()[:10]
    return Path(cache_dir) / f"{name}-{sha[:12]}-{len(items)}-{token}.npz"


def embed_items(classifier: GarmentClassifier, items: list[Item], cache_dir: Path, name: str,
                desc: str | None = None) -> Embedded:
    sha = sha256_file(classifier.model_path)
    cache = _cache_path(cache_dir, name, items, sha)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return Embedded(items, data["embeddings"], [str(c) for c in data["colours"]])
    vectors, colours = [], []
    for item in tqdm(items, desc=desc or f"embedding {name}", unit="photo", mininterval=2):
        image = cv2.imread(str(item.path))
        if image is None:
            raise DatasetError("cannot decode image (unreadable or not an image)", path=item.path)
        pieces = [image] if item.boxes is None else [crop(image, b) for b in item.boxes]
        pieces = [p for p in pieces if p.size and min(p.shape[:2]) >= 8]
        if not pieces:
            pieces = [image]
        pooled = np.mean([classifier.embed(p) for p in pieces], axis=0)
        vectors.append(l2_normalise(pooled))
        # The largest crop's colour stands for the outfit (the main garment).
        colours.append(colour_name(max(pieces, key=lambda p: p.shape[0] * p.shape[1])))
    embedded = Embedded(items, np.stack(vectors).astype(np.float32), colours)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "wb") as fh:
        np.savez(fh, embeddings=embedded.embeddings, colours=np.array(colours))
    return embedded

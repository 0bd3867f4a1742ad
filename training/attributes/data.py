"""Person crops with clothing targets from PETA, colorful-fashion and Clothing Co-Parsing.

Each sample is a *base image* (BGR uint8, at most ``MAX_SIDE`` px high) and the person box in
it; the training loop frames it like the daemon does (person box + margin, jittered) after the
camera degradations. Splits:

* PETA: by identity (labels are per identity, and an identity has up to 4 views), a seeded hash
  puts ``val_fraction`` of each subset's identities in validation.
* Clothing Co-Parsing: by image, the same seeded hash.
* colorful-fashion: its own ``splits/train.txt`` / ``splits/val.txt``.

Decoded samples are cached (``cache_dir``, keyed by the source files and settings) so a resumed
run does not decode 10,000 JPEGs again.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import DatasetError

from . import labels as L
from .samples import MAX_SIDE, Samples, _shrink, in_validation  # noqa: F401 - imported from here too


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError("cannot read image", path=str(path))
    return image


def _csv_rows(path: Path, what: str) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"{what} not found", path=str(path))
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def load_peta(root: Path, split: str, val_fraction: float, seed: int, limit: int | None = None) -> Samples:
    root = Path(root)
    rows = _csv_rows(root / "labels.csv", "PETA labels.csv")
    out = Samples()
    for row in tqdm(rows[:limit] if limit else rows, desc=f"PETA {split}", unit="img", leave=False):
        if in_validation(row["identity"], val_fraction, seed) != (split == "val"):
            continue
        image = _read(root / row["image"])
        h, w = image.shape[:2]
        small, box = _shrink(image, [0, 0, w, h])  # a PETA image is the person crop itself
        out.add(small, box, L.peta_target(row), f"peta:{row['image']}", f"peta/{row['subset']}", h)
    return out


def load_colorful_fashion(root: Path, split: str, limit: int | None = None) -> Samples:
    root = Path(root)
    split_file = root / "splits" / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError("colorful-fashion split not found", path=str(split_file))
    ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    out = Samples()
    for image_id in tqdm(ids[:limit] if limit else ids, desc=f"colorful-fashion {split}", unit="img", leave=False):
        image = _read(root / "images" / f"{image_id}.jpg")
        h, w = image.shape[:2]
        label_file = root / "labels" / f"{image_id}.txt"
        rows = [line.split() for line in label_file.read_text().splitlines() if line.strip()] if label_file.is_file() else []
        if not rows:
            continue
        classes = [int(r[0]) for r in rows]
        xywh = np.array([[float(v) for v in r[1:5]] for r in rows], np.float32)
        # no person box in these labels: the person spans the photo's height; across, the garments'
        # extent grown by 15 % of the photo's width
        x1 = max(0.0, float((xywh[:, 0] - xywh[:, 2] / 2).min()) * w - 0.15 * w)
        x2 = min(float(w), float((xywh[:, 0] + xywh[:, 2] / 2).max()) * w + 0.15 * w)
        small, box = _shrink(image, [x1, 0, x2, h])
        out.add(small, box, L.colorful_fashion_target(classes), f"colorful-fashion:{image_id}", "colorful-fashion", h)
    return out


def load_co_parsing(root: Path, split: str, val_fraction: float, seed: int, limit: int | None = None) -> Samples:
    import scipy.io

    root = Path(root)
    rows = _csv_rows(root / "tags.csv", "Clothing Co-Parsing tags.csv")
    names = [str(x[0]) for x in scipy.io.loadmat(root / "label_list.mat")["label_list"][0]]
    out = Samples()
    for row in tqdm(rows[:limit] if limit else rows, desc=f"co-parsing {split}", unit="img", leave=False):
        if in_validation(row["image"], val_fraction, seed) != (split == "val"):
            continue
        image = _read(root / "images" / row["image"])
        h, w = image.shape[:2]
        box, matches = [0, 0, w, h], None
        mat = root / "annotations_pixel_level" / (Path(row["image"]).stem + ".mat")
        if row.get("annotation_type") == "pixel" and mat.is_file():
            gt = scipy.io.loadmat(mat)["groundtruth"]
            # masks are at the original size; the photo was resized: bring the labels to the photo
            gt = cv2.resize(gt.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
            regions = L.mask_regions(gt, names)
            person = L.box_of(regions["person"])
            if person is not None:
                box = person
            jacket = regions.get("suit", regions.get("blazer"))
            if jacket is not None and "pants" in regions:
                matches = L.colours_match(image, jacket, regions["pants"])
        small, sbox = _shrink(image, box)
        out.add(small, sbox, L.co_parsing_target(row, matches), f"co-parsing:{row['image']}", "co-parsing", box[3] - box[1])
    return out


def _cache_key(sources: list[dict], split: str) -> str:
    digest = hashlib.sha1(f"v1|{MAX_SIDE}|{split}".encode())
    for s in sources:
        digest.update(repr(sorted(s.items())).encode())
        root = Path(s["root"])
        for name in ("labels.csv", "tags.csv", "splits/train.txt"):
            p = root / name
            if p.is_file():
                digest.update(f"{name}:{p.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def load_split(sources: list[dict], split: str, seed: int, cache_dir: Path | None = None) -> Samples:
    """All sources' samples of ``split`` ('train' or 'val'); cached in ``cache_dir``."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"attributes-{split}-{_cache_key(sources, split)}.pkl"
        if path.is_file():
            with path.open("rb") as f:
                return pickle.load(f)
    out = Samples()
    for s in sources:
        fmt, root, limit = s["format"], Path(s["root"]), s.get("limit")
        if fmt == "peta":
            part = load_peta(root, split, s.get("val_fraction", 0.2), seed, limit)
        elif fmt == "colorful_fashion":
            part = load_colorful_fashion(root, split, limit)
        elif fmt == "co_parsing":
            part = load_co_parsing(root, split, s.get("val_fraction", 0.2), seed, limit)
        elif fmt == "folder":
            from .store_data import load_store_folder

            part = load_store_folder(root, split, s.get("val_fraction", 0.2), seed, limit)
        else:
            raise DatasetError(f"unknown data format {fmt!r}", field="data.format")
        for i in range(len(part)):
            out.add(part.images[i], part.boxes[i], part.targets[i], part.keys[i], part.sources[i], part.heights[i])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return out

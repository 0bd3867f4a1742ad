"""The camera-scale training set: prepared train images, most of them degraded like a store crop.

``build_camera_train(source, out, ...)`` reads a prepared dataset (``training.detector_data.prepare``
output, e.g. ``runs/detector_data_finetune``: colorful-fashion train + teacher person boxes + store
frames) and writes ``out`` (Ultralytics layout):

* ``images/train``: each colorful-fashion training image (dress images twice, as prepared) becomes
  either a ``camera_augment`` sample (``p_degrade``; written as JPEG q95 after its own random JPEG
  step) or stays full resolution (a symlink: nothing is lost at the top end); then a random subset of
  ``max_fashion`` of them is kept. Store frames (teacher person boxes, already camera images) are
  linked every ``store_step``-th; with a ``store_teacher`` their labels also get the garments a
  garment detector finds on each person crop (``training.detector_data.pseudo_labels``).
  Everything is seeded (``seed``): the same call writes the same files.
* ``images/val``, ``images/store_val``: links to the source's clean val split (Ultralytics'
  per-epoch validation, the export's parity evaluation) and store_val frames.
* ``summary.json``: counts, settings, and the list of source images used.

Only the source's ``train`` split is read: no validation image (nor anything derived from one)
reaches ``images/train``; the builder checks it against ``val_ids``.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import DatasetError

from . import PRODUCT_CLASSES
from .camera import AugmentSettings, camera_augment
from .pseudo_labels import garment_pseudo_labels
from .yolo_labels import Box, boxes_to_xyxy, read_labels, write_labels, xyxy_pixels_to_box


def source_id(name: str) -> str:
    """colorful-fashion id of a prepared file name (cf_<id>, cfx2_<id>, cam_<id>...), else the name."""
    stem = Path(name).stem
    for prefix in ("cfx", "cf_", "cam"):
        if stem.startswith(prefix):
            return stem.split("_", 1)[1]
    return stem


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(os.path.relpath(src.resolve(), dst.parent.resolve()), dst)


def link_split(source: Path, out: Path, split: str) -> int:
    """Link a source split (clean val, store_val) unchanged: per-epoch validation and the export's
    float-vs-int8 evaluation read them from ``out``."""
    folder = source / "images" / split
    if not folder.is_dir():
        return 0
    for sub in ("images", "labels"):
        d = out / sub / split
        if d.is_dir():
            for f in d.iterdir():
                f.unlink()
    files = sorted(folder.iterdir())
    for f in files:
        _link(f, out / "images" / split / f.name)
        _link(source / "labels" / split / f"{f.stem}.txt", out / "labels" / split / f"{f.stem}.txt")
    return len(files)


def build_camera_train(source: Path, out: Path, val_ids: set[str], seed: int = 0, p_degrade: float = 0.7,
                       max_fashion: int | None = None, store_step: int = 1,
                       settings: AugmentSettings = AugmentSettings(), limit: int | None = None,
                       store_teacher=None, store_teacher_conf: float = 0.5) -> dict:
    """``store_teacher`` (a predictor, see ``training.detector_data.pseudo_labels``) adds garment
    boxes scored >= ``store_teacher_conf`` on each store frame's person crops; None keeps the store
    frames' person-only labels."""
    images_dir, labels_dir = source / "images" / "train", source / "labels" / "train"
    if not images_dir.is_dir():
        raise DatasetError("prepared train split not found (run the prepare step)", path=images_dir)
    for split in ("train",):
        for sub in ("images", "labels"):
            d = out / sub / split
            if d.is_dir():
                for f in d.iterdir():
                    f.unlink()
    files = sorted(images_dir.iterdir())[:limit]
    fashion = [f for f in files if f.name.startswith("cf")]
    store = [f for f in files if not f.name.startswith("cf")][::store_step]
    leaked = sorted({source_id(f.name) for f in fashion} & set(val_ids))
    if leaked:
        raise DatasetError(f"{len(leaked)} validation ids in the training source, e.g. {leaked[:3]}", path=images_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(fashion))
    if max_fashion is not None:
        order = order[:max_fashion]
    chosen = [fashion[i] for i in sorted(order)]
    counts = {name: 0 for name in PRODUCT_CLASSES}
    person_h, degraded = [], 0
    for f in tqdm(chosen, desc="camera train", unit="img"):
        boxes = read_labels(labels_dir / f"{f.stem}.txt", len(PRODUCT_CLASSES))
        item_rng = np.random.default_rng([seed, zlib.crc32(f.name.encode())])
        if item_rng.random() < p_degrade:
            frame = cv2.imread(str(f))
            if frame is None:
                raise DatasetError("cannot decode image", path=f)
            h, w = frame.shape[:2]
            xyxy = boxes_to_xyxy(boxes, w, h)
            cls = np.array([b.cls for b in boxes], np.int64)
            img, xyxy, cls, info = camera_augment(frame, xyxy, cls, item_rng, settings)
            name = f"cam_{f.stem.split('_', 1)[1]}" if not f.stem.startswith("cfx") else f"cam{f.stem[3]}_{f.stem.split('_', 1)[1]}"
            dst = out / "images" / "train" / f"{name}.jpg"
            dst.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            ih, iw = img.shape[:2]
            new = [xyxy_pixels_to_box(int(c), b, iw, ih) for b, c in zip(xyxy, cls)]
            write_labels(out / "labels" / "train" / f"{name}.txt", new)
            person_h.append(info["person_h"])
            degraded += 1
        else:
            new = boxes
            _link(f, out / "images" / "train" / f.name)
            write_labels(out / "labels" / "train" / f"{f.stem}.txt", boxes)
        for b in new:
            counts[PRODUCT_CLASSES[b.cls]] += 1
    pseudo = {name: 0 for name in PRODUCT_CLASSES[1:]}
    for f in tqdm(store, desc="store frames", unit="frame"):
        _link(f, out / "images" / "train" / f.name)
        boxes = read_labels(labels_dir / f"{f.stem}.txt", len(PRODUCT_CLASSES))
        if store_teacher is not None:
            frame = cv2.imread(str(f))
            if frame is None:
                raise DatasetError("cannot decode image", path=f)
            h, w = frame.shape[:2]
            people = boxes_to_xyxy([b for b in boxes if b.cls == 0], w, h)
            xyxy, cls = garment_pseudo_labels(frame, people, store_teacher, store_teacher_conf)
            boxes = list(boxes) + [xyxy_pixels_to_box(int(c), b, w, h) for b, c in zip(xyxy, cls)]
            for c in cls:
                pseudo[PRODUCT_CLASSES[int(c)]] += 1
        write_labels(out / "labels" / "train" / f"{f.stem}.txt", boxes)
        for b in boxes:
            counts[PRODUCT_CLASSES[b.cls]] += 1
    for split in ("val", "store_val"):
        link_split(source, out, split)
    import yaml

    (out / "data.yaml").write_text(yaml.safe_dump({"path": str(out.resolve()), "train": "images/train",
                                                   "val": "images/val", "names": dict(enumerate(PRODUCT_CLASSES))},
                                                  sort_keys=False))
    summary = {"source": str(source), "seed": seed, "p_degrade": p_degrade, "max_fashion": max_fashion,
               "store_step": store_step, "settings": asdict(settings),
               "images": {"fashion_degraded": degraded, "fashion_full": len(chosen) - degraded, "store": len(store),
                          "train_total": len(chosen) + len(store)},
               "boxes": counts,
               "store_pseudo_labels": ({"conf": store_teacher_conf, "boxes": pseudo}
                                       if store_teacher is not None else None),
               "person_h": {"min": float(np.min(person_h)) if person_h else None,
                            "max": float(np.max(person_h)) if person_h else None,
                            "median": float(np.median(person_h)) if person_h else None}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary

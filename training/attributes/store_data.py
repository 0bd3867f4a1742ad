"""A store's own labelled person crops (format ``folder``): retraining without research-only data.

Layout::

    <root>/labels.csv        image,group,suit,dress,skirt,pants,shorts,outwear[,dress_or_skirt][,x1,y1,x2,y2]
    <root>/<image paths named in labels.csv>

* ``image``: path relative to ``root``; the image is the person crop, or a frame with the person
  box in ``x1,y1,x2,y2`` (pixels).
* ``group``: what must not be split between train and validation (one visit, one person in one
  clip); empty = the image itself.
* attribute columns: ``1`` worn, ``0`` not worn, empty = not labelled (skipped by the loss, never
  a guessed negative). A column may be left out entirely. ``dress_or_skirt`` = 1 says "a dress or
  a skirt, not sure which" (the set label).

A bad row names the file, line and column and stops (nothing is trained on half-read labels).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DatasetError

from . import labels as L
from .samples import Samples, _shrink, in_validation

BOX_COLUMNS = ("x1", "y1", "x2", "y2")


def _value(text: str, path: Path, line: int, column: str) -> float | None:
    text = (text or "").strip()
    if text == "":
        return None
    if text in ("0", "1"):
        return float(text)
    raise DatasetError(f"line {line}: {column} must be 1, 0 or empty, not {text!r}", path=str(path), field=column)


def load_store_folder(root: Path, split: str, val_fraction: float, seed: int, limit: int | None = None) -> Samples:
    root = Path(root)
    labels_csv = root / "labels.csv"
    if not labels_csv.is_file():
        raise DatasetError("labels.csv not found (see training/attributes/store_data.py for the layout)", path=str(labels_csv))
    with labels_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if "image" not in columns:
            raise DatasetError("no 'image' column", path=str(labels_csv), field="image")
        if not any(c in columns for c in L.ATTRIBUTES + ("dress_or_skirt",)):
            raise DatasetError(f"no attribute column (expected some of {', '.join(L.ATTRIBUTES)})", path=str(labels_csv))
        rows = list(reader)
    out = Samples()
    for line, row in enumerate(rows[:limit] if limit else rows, start=2):
        target = L.empty_target()  # every row is checked, whichever split it falls in
        for k, name in enumerate(L.ATTRIBUTES):
            value = _value(row.get(name, ""), labels_csv, line, name)
            if value is not None:
                target[k] = value
        if _value(row.get("dress_or_skirt", ""), labels_csv, line, "dress_or_skirt") == 1.0:
            target[L.SET_COLUMN] = 1.0
        group = (row.get("group") or "").strip() or row["image"]
        if in_validation(group, val_fraction, seed) != (split == "val"):
            continue
        path = root / row["image"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"line {line}: cannot read image", path=str(path), field="image")
        h, w = image.shape[:2]
        box = [0.0, 0.0, float(w), float(h)]
        if all((row.get(c) or "").strip() for c in BOX_COLUMNS):
            try:
                box = [float(row[c]) for c in BOX_COLUMNS]
            except ValueError:
                raise DatasetError(f"line {line}: x1,y1,x2,y2 must be numbers", path=str(labels_csv), field="x1") from None
            if not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
                raise DatasetError(f"line {line}: box {box} is not inside the {w}x{h} image", path=str(labels_csv), field="x1")
        small, sbox = _shrink(image, box)
        out.add(small, sbox, target, f"store:{row['image']}", "store", box[3] - box[1])
    return out

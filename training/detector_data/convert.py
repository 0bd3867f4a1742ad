"""Converters for datasets users bring: DeepFashion2 and ModaNet -> the detector's YOLO layout.

A class map YAML (``configs/detector_classmap_*.yaml``) maps each source category (by id or by
name) to a product class, or to ``null`` to drop it. A category that appears in the data but
not in the map is an error - silently dropping garments would bias training.

* DeepFashion2: ``<src>/image/<id>.jpg`` and ``<src>/annos/<id>.json`` with ``item1``,
  ``item2``, ... each having ``category_id`` (1..13), ``category_name``, ``bounding_box``
  ``[x1, y1, x2, y2]`` in pixels.
* ModaNet: one COCO JSON (``images`` with ``file_name``/``width``/``height``, ``annotations`` with
  ``bbox`` ``[x, y, w, h]`` in pixels, ``categories``) plus an images folder.

Output (same as ``prepare``): ``<out>/images/<split>/<stem>.jpg`` (symlinks) and
``<out>/labels/<split>/<stem>.txt`` with product class ids.

``python -m training.detector_data.convert deepfashion2 --src DF2/train --out runs/df2 --split train``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import yaml
from tqdm import tqdm

from edge.errors import ConfigError, DatasetError, FashionEdgeError
from edge.paths import repo_root

from . import PRODUCT_CLASSES
from .prepare import _link
from .yolo_labels import Box, check_box, find_image, write_labels

PIXEL_TOLERANCE = 1.0  # annotation tools round; a box 1 px past the border is not an error


class ClassMap:
    """Source category (id or name) -> product class id, or None to drop."""

    def __init__(self, mapping: dict, path: Path | str = "class map"):
        self.path = path
        self.by_key: dict[str, int | None] = {}
        for key, target in mapping.items():
            if target is None:
                self.by_key[str(key).strip().lower()] = None
                continue
            if target not in PRODUCT_CLASSES:
                raise ConfigError(f"{target!r} is not a product class {PRODUCT_CLASSES}", path=path, field=f"map.{key}")
            self.by_key[str(key).strip().lower()] = PRODUCT_CLASSES.index(target)

    @classmethod
    def load(cls, path: Path) -> "ClassMap":
        if not path.is_file():
            raise ConfigError("class map not found", path=path)
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data.get("map"), dict):
            raise ConfigError("missing or not a mapping", path=path, field="map")
        return cls(data["map"], path)

    def lookup(self, category_id, category_name, source: Path, where: str) -> int | None:
        """Product class id for a source category; unknown category -> DatasetError."""
        for key in (category_id, category_name):
            if key is not None and str(key).strip().lower() in self.by_key:
                return self.by_key[str(key).strip().lower()]
        raise DatasetError(
            f"{where}: unknown class id {category_id!r} ({category_name!r}) - add it to {self.path}", path=source
        )


def pixel_box(cls: int, xyxy, width: int, height: int, source: Path, where: str) -> Box:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    if x1 < -PIXEL_TOLERANCE or y1 < -PIXEL_TOLERANCE or x2 > width + PIXEL_TOLERANCE or y2 > height + PIXEL_TOLERANCE:
        raise DatasetError(
            f"{where}: box out of range [{x1:g}, {y1:g}, {x2:g}, {y2:g}] for a {width}x{height} image", path=source
        )
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    box = Box(cls, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)
    return check_box(box, len(PRODUCT_CLASSES), source, where)


def _image_size(path: Path) -> tuple[int, int]:
    frame = cv2.imread(str(path))
    if frame is None:
        raise DatasetError("cannot decode image", path=path)
    return frame.shape[1], frame.shape[0]


def convert_deepfashion2(src: Path, out: Path, split: str, class_map: ClassMap) -> int:
    annos = src / "annos"
    if not annos.is_dir():
        raise DatasetError("annos/ folder not found (expected DeepFashion2 layout)", path=src)
    files = sorted(annos.glob("*.json"))
    for anno in tqdm(files, desc=f"deepfashion2 {split}", unit="img"):
        image = find_image(src / "image", anno.stem, anno)
        try:
            data = json.loads(anno.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=anno) from None
        width, height = _image_size(image)
        boxes = []
        for key in sorted(k for k in data if k.startswith("item")):
            item = data[key]
            if "bounding_box" not in item:
                raise DatasetError(f"{key}: missing bounding_box", path=anno)
            cls = class_map.lookup(item.get("category_id"), item.get("category_name"), anno, key)
            if cls is not None:
                boxes.append(pixel_box(cls, item["bounding_box"], width, height, anno, f"{key}.bounding_box"))
        _link(image, out / "images" / split / f"df2_{anno.stem}{image.suffix}")
        write_labels(out / "labels" / split / f"df2_{anno.stem}.txt", boxes)
    return len(files)


def convert_modanet(annotations: Path, images_dir: Path, out: Path, split: str, class_map: ClassMap) -> int:
    try:
        data = json.loads(annotations.read_text())
    except OSError as exc:
        raise DatasetError(f"cannot read ({exc.strerror})", path=annotations) from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=annotations) from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError("missing or not a list", path=annotations, field=key)
    names = {c["id"]: c.get("name") for c in data["categories"]}
    per_image: dict = {img["id"]: [] for img in data["images"]}
    for n, ann in enumerate(data["annotations"]):
        where = f"annotations[{n}]"
        if ann.get("image_id") not in per_image:
            raise DatasetError(f"{where}: image_id {ann.get('image_id')!r} is not in images", path=annotations)
        cat = ann.get("category_id")
        cls = class_map.lookup(cat, names.get(cat), annotations, where)
        if cls is not None:
            per_image[ann["image_id"]].append((cls, ann.get("bbox"), where))
    for img in tqdm(data["images"], desc=f"modanet {split}", unit="img"):
        path = images_dir / img["file_name"]
        if not path.is_file():
            raise DatasetError(f"no image {img['file_name']} in {images_dir} for image id {img['id']}", path=annotations)
        width, height = int(img.get("width") or 0), int(img.get("height") or 0)
        if not width or not height:
            width, height = _image_size(path)
        boxes = []
        for cls, bbox, where in per_image[img["id"]]:
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DatasetError(f"{where}.bbox: expected [x, y, w, h]", path=annotations)
            x, y, w, h = (float(v) for v in bbox)
            boxes.append(pixel_box(cls, (x, y, x + w, y + h), width, height, annotations, f"{where}.bbox"))
        stem = Path(img["file_name"]).stem
        _link(path, out / "images" / split / f"modanet_{stem}{path.suffix}")
        write_labels(out / "labels" / split / f"modanet_{stem}.txt", boxes)
    return len(data["images"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.detector_data.convert", description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=["deepfashion2", "modanet"])
    parser.add_argument("--src", type=Path, required=True, help="DeepFashion2 split folder, or ModaNet images folder")
    parser.add_argument("--annotations", type=Path, help="ModaNet COCO JSON")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--classmap", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        class_map = ClassMap.load(args.classmap or repo_root() / f"configs/detector_classmap_{args.format}.yaml")
        if args.format == "deepfashion2":
            n = convert_deepfashion2(args.src, args.out, args.split, class_map)
        else:
            if args.annotations is None:
                raise ConfigError("ModaNet needs --annotations (the COCO JSON)", field="--annotations")
            n = convert_modanet(args.annotations, args.src, args.out, args.split, class_map)
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"converted {n} images into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the detector's Ultralytics dataset from colorful-fashion and store-like media.

Layout written under ``out`` (default ``runs/detector_data``, ignored by git)::

    images/{train,val,store_val}/*.jpg   (colorful-fashion images are symlinks into ../shared)
    labels/{train,val,store_val}/*.txt   (product class ids, see PRODUCT_CLASSES)
    data.yaml                            (Ultralytics dataset file; 'store_val' is ours)
    summary.json                         (counts per split and class, teacher thresholds)

* colorful-fashion garment ids 0..9 become 1..10; person boxes (id 0) come from the teacher.
* Store-like frames: every ``frame_step``-th frame of the Intel sample clip, split by time
  (the first ``store_train_fraction`` of the clip trains, the rest is ``store_val``) so no
  neighbouring frame leaks into evaluation; the GIF (another scene) is ``store_val`` only.
  These frames carry person boxes only. ``train_frame_step`` samples the training part more
  densely than ``store_val`` (whose sampling stays ``frame_step``) to give the store domain more
  weight without changing the evaluation frames.
* ``oversample``: a training image that holds a box of a listed class is linked that many times
  (``cfx2_<id>``, ...) so rare or confused classes (dress) are seen more often per epoch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from edge.errors import DatasetError

from . import GARMENT_CLASSES, PRODUCT_CLASSES
from .teacher import PersonTeacher, TeacherSettings
from .yolo_labels import Box, find_image, read_labels, write_labels, xyxy_pixels_to_box


@dataclass
class PrepareSettings:
    fashion_dir: Path  # ../shared/datasets/colorful-fashion
    media_dir: Path  # ../shared/media
    out: Path
    teacher: TeacherSettings
    store_video: str = "one-by-one-person-detection.mp4"
    store_gif: str = "people-detection.gif"
    frame_step: int = 10
    store_train_fraction: float = 0.8
    train_frame_step: int | None = None  # None: frame_step
    oversample: dict[str, int] = field(default_factory=dict)  # class name -> copies of its train images
    limit: int | None = None  # first N ids per split (tests)
    counts: dict = field(default_factory=dict)


def read_split(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError("split file not found", path=path)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _check_fashion_classes(fashion_dir: Path) -> None:
    path = fashion_dir / "classes.txt"
    if not path.is_file():
        raise DatasetError("classes.txt not found", path=path)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if names != GARMENT_CLASSES:
        raise DatasetError(f"classes {names} differ from the product's garment classes {GARMENT_CLASSES}", path=path)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(os.path.relpath(src.resolve(), dst.parent.resolve()), dst)


def _person_boxes(teacher: PersonTeacher, frame) -> list[Box]:
    h, w = frame.shape[:2]
    xyxy, _ = teacher.people(frame)
    return [xyxy_pixels_to_box(0, b, w, h) for b in xyxy]


def _copies(settings: PrepareSettings, split: str, boxes: list[Box]) -> int:
    """How many times a training image is linked (1 + oversampling of its rarest listed class)."""
    if split != "train":
        return 1
    present = {PRODUCT_CLASSES[b.cls] for b in boxes}
    return max([1] + [int(n) for name, n in settings.oversample.items() if name in present])


def check_oversample(oversample: dict) -> dict[str, int]:
    for name, copies in oversample.items():
        if name not in PRODUCT_CLASSES:
            raise DatasetError(f"oversample: unknown class {name!r}; expected one of {PRODUCT_CLASSES}")
        if not isinstance(copies, int) or copies < 1:
            raise DatasetError(f"oversample: {name}: copies must be an integer >= 1, got {copies!r}")
    return dict(oversample)


def prepare_fashion(settings: PrepareSettings, teacher: PersonTeacher, split: str) -> int:
    fashion = settings.fashion_dir
    ids = read_split(fashion / "splits" / f"{split}.txt")[: settings.limit]
    counts = settings.counts.setdefault(split, {name: 0 for name in PRODUCT_CLASSES})
    for stem in tqdm(ids, desc=f"colorful-fashion {split}", unit="img"):
        label_path = fashion / "labels" / f"{stem}.txt"
        if not label_path.is_file():
            raise DatasetError(f"split {split}.txt lists id {stem!r} but it has no label file", path=label_path)
        image_path = find_image(fashion / "images", stem, label_path)
        garments = read_labels(label_path, len(GARMENT_CLASSES))
        frame = cv2.imread(str(image_path))
        if frame is None:
            raise DatasetError("cannot decode image", path=image_path)
        boxes = _person_boxes(teacher, frame) + [Box(b.cls + 1, b.cx, b.cy, b.w, b.h) for b in garments]
        for copy in range(_copies(settings, split, boxes)):
            name = f"cf_{stem}" if copy == 0 else f"cfx{copy + 1}_{stem}"
            _link(image_path, settings.out / "images" / split / f"{name}{image_path.suffix}")
            write_labels(settings.out / "labels" / split / f"{name}.txt", boxes)
            for b in boxes:
                counts[PRODUCT_CLASSES[b.cls]] += 1
    return len(ids)


def _store_frames(settings: PrepareSettings):
    """(name, frame, split) for the sampled store-like frames."""
    video = settings.media_dir / settings.store_video
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError("cannot open video", path=video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cut = int(total * settings.store_train_fraction)
    train_step = settings.train_frame_step or settings.frame_step
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        split = "train" if index < cut else "store_val"
        if index % (train_step if split == "train" else settings.frame_step) == 0:
            yield f"store_{index:05d}", frame, split
        index += 1
    cap.release()
    gif = settings.media_dir / settings.store_gif
    cap = cv2.VideoCapture(str(gif))
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        yield f"gif_{index:03d}", frame, "store_val"
        index += 1
    cap.release()


def prepare_store(settings: PrepareSettings, teacher: PersonTeacher) -> int:
    n = 0
    for name, frame, split in tqdm(_store_frames(settings), desc="store frames", unit="frame"):
        if settings.limit is not None and n >= settings.limit:
            break
        image_path = settings.out / "images" / split / f"{name}.jpg"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image_path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        boxes = _person_boxes(teacher, frame)
        write_labels(settings.out / "labels" / split / f"{name}.txt", boxes)
        counts = settings.counts.setdefault(split, {c: 0 for c in PRODUCT_CLASSES})
        counts["person"] += len(boxes)
        n += 1
    return n


def write_data_yaml(out: Path) -> Path:
    import yaml

    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "store_val": "images/store_val",
        "names": dict(enumerate(PRODUCT_CLASSES)),
    }
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def prepare(settings: PrepareSettings, include_store: bool = True) -> Path:
    """Write the whole dataset; returns the data.yaml path."""
    _check_fashion_classes(settings.fashion_dir)
    settings.oversample = check_oversample(settings.oversample)
    teacher = PersonTeacher(settings.teacher)
    images = {"train": prepare_fashion(settings, teacher, "train"), "val": prepare_fashion(settings, teacher, "val")}
    if include_store:
        images["store"] = prepare_store(settings, teacher)
    data_yaml = write_data_yaml(settings.out)
    summary = {
        "images": images,
        "boxes": settings.counts,
        "teacher": {"model": str(settings.teacher.model), "conf": settings.teacher.conf,
                    "min_area": settings.teacher.min_area, "iou": settings.teacher.iou},
        "store": {"frame_step": settings.frame_step, "train_frame_step": settings.train_frame_step or settings.frame_step,
                  "train_fraction": settings.store_train_fraction},
        "oversample": settings.oversample,
    }
    (settings.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return data_yaml

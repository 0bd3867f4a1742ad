"""The input loop shared by ``fashion-edge detect`` and ``classify`` (what ``yolo predict`` accepts).

Each argument is an image file, a video file (every ``vid_stride``-th frame is used) or a folder
(its image and video files, sorted by name, not recursive). An unreadable input prints one error
line naming it on stderr; the other inputs are still processed, and the exit code is 1 at the end.
``--save DIR`` writes one annotated JPEG per image or sampled frame (``<stem>.jpg``,
``<stem>_f<frame>.jpg`` for video frames; ``_2``, ``_3`` ... when a name repeats).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FashionEdgeError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".gif", ".ts"}


@dataclass(frozen=True)
class Item:
    """One image to run the model on: a file, or one frame of a video (``frame`` is its index)."""

    path: str
    image: np.ndarray
    frame: int | None = None

    @property
    def name(self) -> str:
        return self.path if self.frame is None else f"{self.path} frame {self.frame}"


def read_image(path: str):
    """``(BGR image, None)`` or ``(None, why)``."""
    if not Path(path).is_file():
        return None, "image file not found"
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or not image.size:
        return None, "cannot decode image"
    return image, None


def video_frames(path: str, stride: int) -> Iterator[Item]:
    """Every ``stride``-th frame of a video; ``Unreadable`` when it opens to nothing."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise Unreadable("cannot open video")
        index = delivered = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % stride == 0:
                delivered += 1
                yield Item(path, image, index)
            index += 1
        if not delivered:
            raise Unreadable("no readable frame in the video")
    finally:
        capture.release()


class Unreadable(Exception):
    pass


def expand(paths: list[str]) -> list[str]:
    """Folders replaced by their image and video files (sorted); other paths kept as given."""
    out: list[str] = []
    for path in paths:
        folder = Path(path)
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            out.extend(str(p) for p in files) if files else out.append(path)
        else:
            out.append(path)
    return out


class Saver:
    """Writes annotated images into ``folder`` under unique names."""

    def __init__(self, folder: str | None):
        self.folder = Path(folder) if folder else None
        self._used: set[str] = set()
        if self.folder is not None:
            if self.folder.exists() and not self.folder.is_dir():
                raise FashionEdgeError("exists and is not a folder", path=self.folder, field="--save")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FashionEdgeError(f"cannot create the folder ({exc.strerror})", path=self.folder,
                                       field="--save") from None

    def save(self, item: Item, image: np.ndarray) -> Path | None:
        if self.folder is None:
            return None
        stem = Path(item.path).stem + ("" if item.frame is None else f"_f{item.frame:06d}")
        name, n = stem, 1
        while name in self._used:
            n += 1
            name = f"{stem}_{n}"
        self._used.add(name)
        target = self.folder / f"{name}.jpg"
        if not cv2.imwrite(str(target), image):
            raise FashionEdgeError("cannot write the annotated image", path=target, field="--save")
        return target


def draw_label(image: np.ndarray, text: str, x: int, y: int, colour) -> None:
    """A filled label box with ``text`` whose bottom-left corner is at (x, y)."""
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(y, h + base)
    cv2.rectangle(image, (x, y - h - base), (x + w, y), colour, -1)
    cv2.putText(image, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                cv2.LINE_AA)


def colour_for(index: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class index."""
    hue = (index * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 220]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def for_each_image(command: str, paths: list[str], handle: Callable[[Item], None], vid_stride: int = 1) -> int:
    """Calls ``handle(item)`` for every readable image and sampled video frame; returns the exit code."""
    failed = 0
    for path in expand(paths):
        suffix = Path(path).suffix.lower()
        if Path(path).is_dir():
            print(f"fashion-edge {command}: error: {path}: no image or video files in the folder", file=sys.stderr)
            failed += 1
            continue
        if suffix in VIDEO_SUFFIXES and Path(path).is_file():
            try:
                for item in video_frames(path, vid_stride):
                    handle(item)
            except Unreadable as exc:
                print(f"fashion-edge {command}: error: {path}: {exc}", file=sys.stderr)
                failed += 1
            continue
        image, why = read_image(path)
        if image is None:
            print(f"fashion-edge {command}: error: {path}: {why}", file=sys.stderr)
            failed += 1
            continue
        handle(Item(path, image))
    return 1 if failed else 0

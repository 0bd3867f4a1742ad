"""``fashion-edge attributes [--config C | --model M] [--manifest J] [--detect] [--every N] [--json] SOURCE...``.

What a person wears, read from the whole person crop by the person-attribute model
(``edge/attributes``): one score in 0..1 per attribute (suit, dress, skirt, pants, shorts, outwear,
and the derived dress_or_skirt when the model's manifest names the pair).

SOURCE is an image, a video or a folder of them (not recursive). An image is taken as one person
crop, as in a person-attribute dataset (PETA); with ``--detect``, and always for a video (every
``--every`` N-th frame, default 10), the config's person detector finds the people and each person
box is framed as the daemon frames it (``edge.preprocess.person_box_with_margin`` with the model's
margin) before it is read.

Which model: ``--model M`` (its manifest beside it, or ``--manifest``), else ``--config``'s
``attributes`` section (model, manifest, threads, thresholds), else the home's demo config's
(``configs/demo.yaml``) when it names one, else the home's ``models/person-attributes.tflite``.
The person detector is always the config's ``detector`` (``--config``, else the demo config).

Output: a table, one row per image or person, the attributes at or above the model's operating
point (manifest ``thresholds``, overridden by ``attributes.thresholds``) marked ``*`` and listed in
the ``worn`` column. ``--json``: one object per line and image,
``{"path": ..., "attributes": {"suit": 0.91, ...}}``; a person found by the detector adds
``"frame"`` (videos) and ``"box"`` ([x1, y1, x2, y2] in image pixels, before the margin).
Bad input (a missing or unreadable file, a folder without images, a model without manifest, a
config without ``attributes.model``) is one line naming it, and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SourceError
from ..preprocess import person_box_with_margin
from . import images
from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, expand

DEFAULT_MODEL = Path("models") / "person-attributes.tflite"
NAME_WIDTH = 8  # score columns: wide enough for "outwear" and a "0.91*"


@dataclass(frozen=True)
class Reading:
    """One person crop's scores: a whole image, or one detected person of an image or frame."""

    path: str
    scores: dict[str, float]
    frame: int | None = None
    box: tuple[float, float, float, float] | None = None  # the detector's person box (detected persons only)

    @property
    def name(self) -> str:
        where = self.path if self.frame is None else f"{self.path} frame {self.frame}"
        if self.box is None:
            return where
        x1, y1, x2, y2 = self.box
        return f"{where} person [{x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}]"

    def to_json(self) -> dict:
        line: dict = {"path": self.path, "attributes": {k: round(v, 4) for k, v in self.scores.items()}}
        if self.frame is not None:
            line["frame"] = self.frame
        if self.box is not None:
            line["box"] = [round(v, 1) for v in self.box]
        return line


# -- models ----------------------------------------------------------------------------------------
def _config(args):
    """``(config, its path)``: ``--config``, else the home's demo config (``ConfigError`` without one)."""
    from ..config import load_config

    if args.config:
        return load_config(args.config), Path(args.config)
    from ..resources import demo_config

    path = demo_config()
    return load_config(path), path


def load_reader(args):
    """The person-attribute model the flags name (see the module docstring)."""
    from ..attributes.model import PersonAttributeModel

    if args.model:
        return PersonAttributeModel(args.model, manifest_path=args.manifest, field="--model")
    if args.config:
        config, path = _config(args)
        attrs = config.attributes
        if attrs.model is None:
            raise ConfigError("not set: name the person-attribute model (e.g. ../models/person-attributes.tflite) "
                              "or pass --model", path=path, field="attributes.model")
        return PersonAttributeModel(attrs.model, manifest_path=args.manifest or attrs.manifest,
                                    threads=attrs.threads, thresholds=attrs.thresholds)
    from ..resources import find_home

    home = find_home()
    try:
        config, _ = _config(args)
    except ConfigError:
        config = None
    if config is not None and config.attributes.model is not None:
        attrs = config.attributes
        return PersonAttributeModel(attrs.model, manifest_path=args.manifest or attrs.manifest,
                                    threads=attrs.threads, thresholds=attrs.thresholds)
    return PersonAttributeModel(home / DEFAULT_MODEL, manifest_path=args.manifest, field="--model")


def load_person_detector(args):
    """The config's person detector, built with the config's thresholds (people only are used)."""
    from ..detect.yolo import YoloDetector

    config, _ = _config(args)
    det = config.detector
    detector = YoloDetector(det.model, manifest_path=det.manifest, conf=det.conf, class_conf=det.class_conf,
                            iou=det.iou, max_detections=det.max_detections, threads=det.threads,
                            class_conf_field="detector.class_conf")
    if det.person_label not in detector.labels:
        raise ConfigError(f"the detector has no {det.person_label!r} class", path=det.model, field="detector.person_label")
    return detector, det.person_label


# -- sources ---------------------------------------------------------------------------------------
def check_sources(sources: list[str]) -> list[str]:
    """Files to read, folders expanded; a missing path or an empty folder is ``SourceError``."""
    files = expand(sources)
    for path in files:
        if Path(path).is_dir():
            raise SourceError("no image or video files in the folder", path=path)
        if not Path(path).is_file():
            raise SourceError("file not found", path=path)
    return files


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str) -> np.ndarray:
    image, why = images.read_image(path)
    if image is None:
        known = Path(path).suffix.lower() in IMAGE_SUFFIXES
        raise SourceError(why + ("" if known else " (not an image or video file)"), path=path)
    return image


def video_frames(path: str, every: int) -> Iterator[tuple[int, np.ndarray]]:
    """``images.video_frames`` (the detect/classify input loop), stopping the run on a bad video."""
    try:
        for item in images.video_frames(path, every):
            yield item.frame, item.image
    except images.Unreadable as exc:
        raise SourceError(str(exc), path=path) from None


# -- reading ---------------------------------------------------------------------------------------
def read_persons(reader, detector, person_label: str, path: str, image: np.ndarray,
                 frame: int | None = None) -> list[Reading]:
    """Every detected person of ``image``, framed as the daemon frames it, read by ``reader``."""
    persons = detector.detect(image).with_label(person_label)
    out = []
    for box in persons.xyxy:
        x1, y1, x2, y2 = person_box_with_margin(box, reader.margin, image.shape)
        scores = reader.read(image[y1:y2, x1:x2]).scores
        out.append(Reading(path, scores, frame, tuple(float(v) for v in box)))
    return out


def readings(reader, files: list[str], detect: bool, every: int, load_detector) -> Iterator[Reading | str]:
    """Readings in input order; a string is a note for the table (a frame or image without people)."""
    detector = person_label = None
    for path in files:
        if is_video(path) or detect:
            if detector is None:
                detector, person_label = load_detector()
            if is_video(path):
                found = 0
                for index, frame in video_frames(path, every):
                    persons = read_persons(reader, detector, person_label, path, frame, index)
                    found += len(persons)
                    yield from persons
                if not found:
                    yield f"{path}: no person found"
                continue
            persons = read_persons(reader, detector, person_label, path, read_image(path))
            yield from persons if persons else [f"{path}: no person found"]
            continue
        yield Reading(path, reader.read(read_image(path)).scores)


# -- output ----------------------------------------------------------------------------------------
def header(names: tuple[str, ...], thresholds: dict[str, float]) -> list[str]:
    widths = [max(NAME_WIDTH, len(n) + 1) for n in names]
    titles = "".join(f"{n:>{w - 1}} " for n, w in zip(names, widths))  # a score's mark column follows it
    points = "".join(f"{thresholds[n]:>{w - 1}.2f} " for n, w in zip(names, widths))
    return [f"{titles}  worn / person crop", f"{points}  <- operating points (* = at or above)"]


def row(reading: Reading, names: tuple[str, ...], thresholds: dict[str, float]) -> str:
    widths = [max(NAME_WIDTH, len(n) + 1) for n in names]
    cells, worn = [], []
    for name, width in zip(names, widths):
        score = reading.scores[name]
        mark = "*" if score >= thresholds[name] else " "
        if mark == "*":
            worn.append(name)
        cells.append(f"{score:>{width - 1}.2f}{mark}")
    return f"{''.join(cells)}  {', '.join(worn) or '-'} / {reading.name}"


def main(args) -> int:
    if args.model and args.config:
        raise ConfigError("give either --model or --config, not both", field="--model")
    files = check_sources(args.images)
    reader = load_reader(args)
    names, thresholds = tuple(reader.names), reader.thresholds
    headed = args.json  # the table's header comes with its first line (nothing on stdout when the first input is bad)
    for item in readings(reader, files, args.detect, args.every, lambda: load_person_detector(args)):
        if not headed:
            print(f"model: {reader.model_path}  (person box + {reader.margin:.0%} margin)")
            print("\n".join(header(names, thresholds)))
            headed = True
        if isinstance(item, str):
            if not args.json:
                print(f"  {item}", flush=True)
        elif args.json:
            print(json.dumps(item.to_json()), flush=True)
        else:
            print(row(item, names, thresholds), flush=True)
    return 0

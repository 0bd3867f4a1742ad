"""Top-down garment crops: for each tracked person, the image regions the classifier should see.

Two sources of garment boxes:

* **garment detector** (the project's own YOLO with garment classes): each garment box belongs to
  the person box that contains the largest fraction of it, if that fraction is at least
  ``GarmentsConfig.min_overlap`` and clearly larger (by ``AMBIGUITY_MARGIN``) than any other
  person's: a box that two people's boxes contain alike is given to neither (Frigate's rule for
  attributes), never silently to the first. When the garment detector ran on person crops, the
  caller passes which crop each box came from (``origin``); a box is kept only when that crop's
  person is also its owner (another person's shirt seen through a crop's margin is theirs, and
  their own scan finds it), and a box that touches a side of its crop where the crop runs into
  another person's box is dropped too (the neighbour's dress cut by the crop's edge). The crop's
  ``slot`` is the detector's label.
* **body regions** (a person-only detector such as COCO YOLO): fixed bands of the person box,
  full width, as fractions of its height from the top (``BODY_REGIONS``):
  ``upper`` 15-55 % (torso: shirts, jackets; below the head), ``lower`` 45-95 % (hips to ankles:
  pants, skirts; the small overlap with ``upper`` keeps the waist in both), ``full`` 10-95 %
  (dresses, suits, coats: a whole outfit without most of the head and the shoes).

``garments is None`` selects body regions (the pipeline passes None when the detector has no
garment classes or ``mode`` is ``body_regions``); a Detections object, even an empty one,
selects detector boxes. A crop is ``good`` when its short side is at least ``min_crop_px`` and
it is not cut by the frame edge (no side within ``edge_margin_px`` of the border): a cut garment
gives the classifier half a jacket, so the caller should skip it and wait for a better frame.
Each garment is judged by its own box, not its person's: a top fully inside the frame is a good
crop even when the person's feet are cut off by the bottom of the frame.

``crop_weight`` says how much a vote from a crop is worth (0.1..1): its size (short side over
``FULL_WEIGHT_PX``) times its sharpness (variance of the Laplacian, a standard focus measure).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .boxes import containment
from .config import GarmentsConfig
from .detections import Detections

# (top, bottom) as fractions of the person box height, measured from its top edge.
BODY_REGIONS: dict[str, tuple[float, float]] = {
    "upper": (0.15, 0.55),
    "lower": (0.45, 0.95),
    "full": (0.10, 0.95),
}

AMBIGUITY_MARGIN = 0.25  # the owner must contain a garment box by this much more than anyone else
FULL_WEIGHT_PX = 96  # a crop with this short side (or more) votes at full size weight
SHARP_LAPLACIAN_VAR = 100.0  # Laplacian variance of a crop in focus (8-bit grey, at most 64 px)

@dataclass
class GarmentCrop:
    track_id: int | None  # the person's track id (None if the persons were not tracked)
    slot: str  # 'upper' / 'lower' / 'full', or the garment detector's label
    box: np.ndarray  # (4,) float32 xyxy in frame pixels, clipped to the frame
    crop: np.ndarray  # BGR pixels of ``box`` (a copy: frames are reused by sources)
    good: bool  # big enough and not cut by the frame edge
    detector_label: str | None = None
    detector_score: float | None = None
    person_index: int = -1  # row in ``persons``


def foot_point(box) -> tuple[float, float]:
    """Bottom centre of an xyxy box: where the person stands (used for zones)."""
    x1, _, x2, y2 = (float(v) for v in box[:4])
    return (x1 + x2) / 2.0, y2


def body_region_boxes(person_box) -> dict[str, np.ndarray]:
    """The ``BODY_REGIONS`` of one person box (unclipped, frame pixels)."""
    x1, y1, x2, y2 = (float(v) for v in person_box[:4])
    height = y2 - y1
    return {
        slot: np.array([x1, y1 + top * height, x2, y1 + bottom * height], np.float32)
        for slot, (top, bottom) in BODY_REGIONS.items()
    }


def assign_garments(persons_xyxy: np.ndarray, garments_xyxy: np.ndarray, min_overlap: float) -> np.ndarray:
    """Person row for each garment box: the one containing the largest fraction of it, if that is
    at least ``min_overlap`` and ``AMBIGUITY_MARGIN`` more than any other person's; else -1."""
    if len(garments_xyxy) == 0:
        return np.zeros(0, np.int64)
    if len(persons_xyxy) == 0:
        return np.full(len(garments_xyxy), -1, np.int64)
    inside = containment(garments_xyxy, persons_xyxy)
    best = inside.argmax(axis=1)
    rows = np.arange(len(best))
    best_share = inside[rows, best]
    runner_up = np.sort(inside, axis=1)[:, -2] if inside.shape[1] > 1 else np.zeros(len(best))
    clear = (best_share >= min_overlap) & (best_share - runner_up >= AMBIGUITY_MARGIN)
    return np.where(clear, best, -1).astype(np.int64)


def cut_by_a_neighbour(persons_xyxy: np.ndarray, garments_xyxy: np.ndarray, origin: np.ndarray,
                       margin: float) -> np.ndarray:
    """For each garment box found on person ``origin[g]``'s crop: does it touch a side of that
    crop where the crop runs into another person's box? Then it is, most likely, the neighbour's
    garment cut by the crop (a dress beside a skirt), and nobody's for sure."""
    out = np.zeros(len(garments_xyxy), bool)
    persons = np.asarray(persons_xyxy, np.float32).reshape(-1, 4)
    for g, (box, row) in enumerate(zip(np.asarray(garments_xyxy, np.float32).reshape(-1, 4), origin)):
        own = persons[row]
        y = (box[1] + box[3]) / 2
        for side, touches in ((own[0], box[0] <= own[0] + margin), (own[2], box[2] >= own[2] - margin)):
            if not touches:
                continue
            for other, person in enumerate(persons):
                if other != row and person[0] < side < person[2] and person[1] <= y <= person[3]:
                    out[g] = True
    return out


def refined_names(refinements: dict[str, list[str]], detector_label: str) -> tuple[set[str], str]:
    """(labels the classifier may give a garment-detector box of class ``detector_label``, the plain
    label the box keeps otherwise). ``refinements`` is ``garments.refinements``; an unlisted class
    refines to itself, and a class with one refinement is always called by it."""
    finer = set(refinements.get(detector_label, [detector_label]))
    plain = next(iter(finer)) if len(finer) == 1 else detector_label
    return finer, plain


class GarmentNaming:
    """How a garment crop gets its name, in one place for the pipeline (which names crops) and the
    pre-flight (which asks what names can come out, to check the rules against them).

    A garment-detector box of class L is named by the classifier only within
    ``garments.refinements[L]`` (jacket -> blazer); an answer outside that set is overruled by the
    detector's own (plain) label, and a box whose refinements the classifier cannot name keeps its
    plain label without a classifier call. A body-region crop (no detector label) is named by the
    classifier alone."""

    def __init__(self, refinements: dict[str, list[str]], classifier_labels):
        self.refinements = refinements
        self.classifier_labels = set(classifier_labels)

    def name(self, crop: "GarmentCrop", classify) -> tuple[str, float, bool, np.ndarray | None]:
        """(label, score, whether the classifier ran, its embedding or None); ``classify(pixels)``
        returns a ``Classification``."""
        if crop.detector_label is None:
            result = classify(crop.crop)
            return result.label, result.score, True, result.embedding
        finer, plain = refined_names(self.refinements, crop.detector_label)
        if not finer & self.classifier_labels:
            return plain, crop.detector_score, False, None
        result = classify(crop.crop)
        if result.label in finer:
            return result.label, result.score, True, result.embedding
        return plain, crop.detector_score, True, result.embedding

    def producible(self, detector_garment_labels: list[str] | None) -> set[str]:
        """Lower-case names a crop can get: from the garment detector's classes (refined where the
        classifier can), or, without garment boxes (None), the classifier's labels."""
        classifier = {label.lower() for label in self.classifier_labels}
        if detector_garment_labels is None:
            return classifier
        out: set[str] = set()
        for label in detector_garment_labels:
            finer, plain = refined_names(self.refinements, label)
            out |= {plain.lower()} | ({name.lower() for name in finer} & classifier)
        return out


def crop_weight(crop: np.ndarray) -> float:
    """Worth of one vote from ``crop`` (BGR): size x sharpness, within 0.1..1."""
    if not crop.size:
        return 0.1
    short_side = min(crop.shape[0], crop.shape[1])
    size = min(1.0, short_side / FULL_WEIGHT_PX)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    scale = 64.0 / max(grey.shape)
    if scale < 1.0:  # the focus measure at a fixed resolution, and cheap
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sharpness = min(1.0, float(cv2.Laplacian(grey, cv2.CV_32F).var()) / SHARP_LAPLACIAN_VAR)
    return float(np.clip(size * (0.3 + 0.7 * sharpness), 0.1, 1.0))


def _make_crop(frame: np.ndarray, box: np.ndarray, cfg: GarmentsConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    """Clip ``box`` to the frame; return (clipped box, pixel copy, good)."""
    h, w = frame.shape[:2]
    margin = cfg.edge_margin_px
    cut = box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin
    clipped = np.array([np.clip(box[0], 0, w), np.clip(box[1], 0, h), np.clip(box[2], 0, w), np.clip(box[3], 0, h)],
                       np.float32)
    x1, y1 = int(np.floor(clipped[0])), int(np.floor(clipped[1]))
    x2, y2 = int(np.ceil(clipped[2])), int(np.ceil(clipped[3]))
    crop = frame[y1:y2, x1:x2].copy()
    short_side = min(crop.shape[0], crop.shape[1]) if crop.size else 0
    return clipped, crop, bool(short_side >= cfg.min_crop_px and not cut)


def garment_crops(
    frame_bgr: np.ndarray,
    persons: Detections,
    garments: Detections | None,
    cfg: GarmentsConfig,
) -> list[GarmentCrop]:
    """Garment crops of every person in ``persons`` (see the module docstring for the two modes).
    ``garments.data["origin"]`` (when there): for each garment box, the row in ``persons`` whose crop
    the detector ran on.

    Crops of zero area are dropped; small or edge-cut ones are returned with ``good=False`` so
    the caller can count them. Garment boxes that belong to no person are dropped.
    """
    track_ids = persons.track_ids
    out: list[GarmentCrop] = []

    def track_of(row: int) -> int | None:
        return None if track_ids is None else int(track_ids[row])

    if garments is None:
        for row, person_box in enumerate(persons.xyxy):
            for slot, region in body_region_boxes(person_box).items():
                clipped, crop, good = _make_crop(frame_bgr, region, cfg)
                if crop.size:
                    out.append(GarmentCrop(track_of(row), slot, clipped, crop, good, person_index=row))
        return out

    owners = assign_garments(persons.xyxy, garments.xyxy, cfg.min_overlap)
    origin = garments.data.get("origin")
    if origin is not None:  # seen in one person's crop but owned by another: not this crop's
        origin = np.asarray(origin, np.int64)
        owners = np.where(owners == origin, owners, -1)
        owners = np.where(cut_by_a_neighbour(persons.xyxy, garments.xyxy, origin, cfg.edge_margin_px), -1, owners)
    names = garments.names()
    for g, owner in enumerate(owners):
        if owner < 0:
            continue
        clipped, crop, good = _make_crop(frame_bgr, garments.xyxy[g], cfg)
        if crop.size:
            out.append(
                GarmentCrop(
                    track_of(int(owner)), names[g], clipped, crop, good,
                    detector_label=names[g], detector_score=float(garments.scores[g]), person_index=int(owner),
                )
            )
    return out

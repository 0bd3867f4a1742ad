"""A second look for people the tracker expects but the whole-frame pass missed.

The person detector sees a 960 px frame at 416 px: a shopper half hidden behind a counter, or far
and small, scores too low in some frames and the track loses them for a moment (on the browsing
scenario the detector boxes 86 % of the truth boxes, the tracks 72 %). Frigate runs its detector
on regions around tracked objects rather than the whole frame; this stage does the same for the
tracks the whole-frame pass left without a box: for each, a square crop ``crop_heights`` person
heights wide around where its Kalman filter expects the person goes through the same detector,
at 416 / crop the zoom of the whole frame. A box found there counts only if it overlaps the
expected box (IoU >= ``MATCH_IOU``): a crop shows neighbours too, and they have their own tracks.
The boxes join the frame's detections before tracking (NMS); the tracker's usual rules decide
(a low score keeps a track, only a high one starts or brings back one). The boxes are marked
(``data["second_look"]``) and a track is looked for only while the whole-frame pass saw it within
``lost_s``: the second look bridges a gap, it never carries a track on its own (a mannequin that
only a zoomed crop finds cannot keep a customer in the store).

Cost: one detector call per track missed in this frame, at most ``max_crops``; nothing when every
expected person was found (measured in docs/identity.md: 0.3-0.8 calls a frame on the scenarios).
"""

from __future__ import annotations

import numpy as np

from ..boxes import iou_matrix
from ..config import SecondLookConfig
from ..detections import FROM_SECOND_LOOK, Detections
from .nms import class_aware_nms

MATCH_IOU = 0.3  # a box of the crop is the expected person's when it overlaps the expected box this much
MIN_CROP_PX = 16  # a crop narrower than this (a track almost out of the frame) is not looked at


class SecondLook:
    """``look(image, persons, expected) -> Detections``: ``persons`` (the whole-frame pass, person
    class only) plus the boxes found in crops around the ``expected`` boxes (xyxy, the tracker's
    predictions) that no box of ``persons`` overlaps."""

    def __init__(self, detector, cfg: SecondLookConfig, person_label: str = "person"):
        self.detector = detector  # the plain detector (not tiled): a crop is already zoomed in
        self.cfg = cfg
        self.person_label = person_label
        self.crops = 0  # detector calls made so far (benchmarks report calls per frame)

    def look(self, image: np.ndarray, persons: Detections, expected: np.ndarray) -> Detections:
        expected = np.asarray(expected, np.float64).reshape(-1, 4)
        if not len(expected) or self.cfg.max_crops <= 0:
            return persons
        if len(persons):
            overlap = iou_matrix(expected, np.asarray(persons.xyxy, np.float64), np.float64).max(axis=1)
            missed = expected[overlap < MATCH_IOU]
        else:
            missed = expected
        height, width = image.shape[:2]
        boxes, scores, classes = [persons.xyxy], [persons.scores], [persons.class_ids]
        for box in missed[: self.cfg.max_crops]:
            x1, y1, x2, y2 = box
            side = self.cfg.crop_heights * max(y2 - y1, 1.0)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
            if right - left < MIN_CROP_PX or bottom - top < MIN_CROP_PX:
                continue
            self.crops += 1
            found = self.detector.detect(image[top:bottom, left:right]).with_label(self.person_label)
            if not len(found):
                continue
            xyxy = found.xyxy + np.array([left, top, left, top], np.float32)
            theirs = iou_matrix(box[None], xyxy.astype(np.float64), np.float64)[0] >= MATCH_IOU
            boxes.append(xyxy[theirs])
            scores.append(found.scores[theirs])
            classes.append(found.class_ids[theirs])
        if not any(len(b) for b in boxes[1:]):  # no crop found anybody
            return persons
        xyxy = np.concatenate(boxes).astype(np.float32)
        score = np.concatenate(scores).astype(np.float32)
        class_ids = np.concatenate(classes).astype(np.int32)
        from_crop = np.arange(len(score)) >= len(persons)
        kept = class_aware_nms(xyxy, score, class_ids, self.detector.iou, self.detector.max_detections)
        found = Detections(xyxy[kept], score[kept], class_ids[kept], persons.labels)
        found.data[FROM_SECOND_LOOK] = from_crop[kept]  # the tracker bridges gaps with these, no longer
        return found

"""COCO teacher: person pseudo-labels from the third-party YOLO11n int8 TFLite model.

colorful-fashion has no person boxes, and store footage has no labels at all, so the person
class is learnt from the teacher's detections. Thresholds (documented in docs/detector.md):

* ``conf`` 0.40: at 640 px the teacher's persons above 0.4 are almost always real people; lower
  scores add partial people and reflections that would be learnt as positives.
* ``min_area`` 0.002 of the image: tiny far-away people are unreliable and not useful in-store.
* NMS IoU 0.5 (class-aware, the daemon's own NMS in ``edge.detect``).

It runs through ``edge.detect.yolo.YoloDetector``: the same letterbox, decode and NMS as the
daemon, so pseudo-labels match what the product sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_TEACHER = "models/coco-yolo/yolo11n_full_integer_quant.tflite"  # relative to ../shared


@dataclass(frozen=True)
class TeacherSettings:
    model: Path
    conf: float = 0.40
    min_area: float = 0.002
    iou: float = 0.5


class PersonTeacher:
    def __init__(self, settings: TeacherSettings, threads: int = 2):
        from edge.detect.yolo import YoloDetector

        self.settings = settings
        self.detector = YoloDetector(settings.model, conf=settings.conf, iou=settings.iou, threads=threads)
        self.person_id = self.detector.labels.index("person")

    def people(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (xyxy, frame pixels) and scores above the documented thresholds."""
        det = self.detector.detect(frame_bgr)
        keep = det.class_ids == self.person_id
        xyxy, scores = det.xyxy[keep], det.scores[keep]
        h, w = frame_bgr.shape[:2]
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]) / float(w * h) if len(xyxy) else np.zeros(0)
        big = area >= self.settings.min_area
        return xyxy[big], scores[big]

"""Per-camera processing: frame -> detections -> tracks -> garment votes -> alerts + analytics.

``CameraPipeline.process(frame)`` is pure processing with no I/O besides the models and the
analytics SQLite file; it returns what happened in that frame (``FrameResult``). The daemon
(``edge.daemon``) feeds it frames and turns results into MQTT messages. The benchmark runs the
same class, so the figures in docs/performance.md measure the code the store runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .analytics import Analytics
from .classify.classifier import GarmentClassifier
from .config import CameraConfig, Config
from .consensus import Consensus
from .detect.yolo import YoloDetector
from .detections import Detections
from .errors import ConfigError, ModelError
from .garments import foot_point, garment_crops
from .rules import RuleEngine, RuleMatch
from .sources import Frame
from .stats import StageTimer
from .tracking.bytetrack import ByteTracker

log = logging.getLogger(__name__)


@dataclass
class Alert:
    """A rule that fired for one customer in one frame (the payload is built by the daemon)."""

    camera: str
    track_id: int
    rule: str
    garments: list[tuple[str, float]]
    box: list[float]
    frame_index: int
    source_time_s: float | None
    timestamp: float
    crop_box: tuple[int, int, int, int]


@dataclass
class FrameResult:
    frame: Frame
    tracks: Detections
    alerts: list[Alert] = field(default_factory=list)
    closed_windows: list[dict] = field(default_factory=list)
    classified: int = 0  # classifier calls in this frame


class Models:
    """The TFLite models of one camera (an interpreter is not thread-safe: one set per camera)."""

    def __init__(self, config: Config):
        det = config.detector
        # ByteTrack's second association needs the low-score person boxes too, so the person
        # class is decoded down to tracker.low_score unless the config sets its own threshold.
        class_conf = {det.person_label: config.tracker.low_score, **det.class_conf}
        self.detector = YoloDetector(
            det.model,
            manifest_path=det.manifest,
            conf=det.conf,
            class_conf=class_conf,
            iou=det.iou,
            max_detections=det.max_detections,
            threads=det.threads,
            class_conf_field="detector.class_conf",
        )
        # Garments are found top-down: a garment YOLO runs on each person crop (people in a
        # store camera are small; on a person crop the garments are big enough to detect).
        garments = config.garments
        self.garment_detector: YoloDetector | None = None
        if garments.detector is not None:
            self.garment_detector = YoloDetector(
                garments.detector, manifest_path=garments.manifest, conf=garments.conf,
                class_conf=garments.class_conf, iou=det.iou, threads=garments.threads,
                class_conf_field="garments.class_conf",
            )
            if not self.garment_detector.garment_labels:
                raise ModelError("the garment detector has no garment classes", path=garments.detector,
                                 field="garments.detector")
        elif self.detector.garment_labels:
            self.garment_detector = self.detector
        cls = config.classifier
        self.classifier = GarmentClassifier(
            cls.model, manifest_path=cls.manifest, label_map=cls.label_map, threads=cls.threads
        )


class CameraPipeline:
    """Everything that happens to one camera's frames, in order."""

    def __init__(self, config: Config, camera: CameraConfig, models: Models | None = None,
                 state_dir: Path | None = None, timer: StageTimer | None = None):
        self.config = config
        self.camera = camera
        self.models = models or Models(config)
        self.timer = timer or StageTimer()
        self.tracker = ByteTracker(config.tracker)
        self.consensus = Consensus(config.consensus)
        self.rules = RuleEngine(config.rules, camera.name)
        state_dir = state_dir or config.state_dir()
        state_dir.mkdir(parents=True, exist_ok=True)
        self.analytics = Analytics(
            state_dir / "analytics.sqlite",
            site=config.site,
            camera=camera.name,
            window_s=config.analytics.window_s,
            min_dwell_s=config.analytics.min_dwell_s,
        )
        person = config.detector.person_label
        labels = self.models.detector.labels
        if person not in labels:
            raise ModelError(f"detector has no {person!r} class (detector.person_label)", path=config.detector.model)
        mode = config.garments.mode
        has_garment_detector = self.models.garment_detector is not None
        if mode == "detector" and not has_garment_detector:
            raise ConfigError("no garment detector: set garments.detector, or use mode auto or body_regions",
                              field="garments.mode")
        self.use_garment_boxes = has_garment_detector and mode != "body_regions"
        self._last_scan: dict[int, int] = {}  # track id -> frame index of its last garment scan
        self.classifier_labels = set(self.models.classifier.labels)
        self.last_timestamp: float | None = None

    # -- one frame -------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        timer = self.timer
        t0 = time.perf_counter()
        detections = self.models.detector.detect(frame.image)
        t1 = time.perf_counter()
        timer.add("detect", t1 - t0)

        persons = detections.with_label(self.config.detector.person_label)
        tracks = self.tracker.update(persons)
        t2 = time.perf_counter()
        timer.add("track", t2 - t1)

        ts = frame.timestamp
        self.last_timestamp = ts
        for track_id in tracks.track_ids if tracks.track_ids is not None else []:
            self.analytics.track_seen(int(track_id), ts)
        for track_id in self.tracker.ended_ids():
            self.analytics.track_ended(track_id, ts)
            self.consensus.drop(track_id)
            self.rules.forget(track_id)
            self._last_scan.pop(track_id, None)

        classified = self._classify(frame, tracks)
        t3 = time.perf_counter()
        if classified:
            timer.add("garments", t3 - t2)  # garment detection on person crops + classification

        alerts = self._evaluate_rules(frame, tracks)
        closed = self.analytics.poll(ts)
        t4 = time.perf_counter()
        timer.add("rules+analytics", t4 - t3)
        timer.add("total", t4 - t0)
        return FrameResult(frame, tracks, alerts, closed, classified)

    def _persons_to_scan(self, frame: Frame, tracks: Detections) -> Detections:
        """Tracked people whose garments are still open, not cut by the frame edge, last scanned
        at least every_k_frames ago: the garment detector's cost per customer is bounded."""
        h, w = frame.image.shape[:2]
        margin = self.config.garments.edge_margin_px
        every_k = self.config.consensus.every_k_frames
        keep = []
        for row, (box, track_id) in enumerate(zip(tracks.xyxy, tracks.track_ids)):
            track_id = int(track_id)
            cut = box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin
            due = frame.index - self._last_scan.get(track_id, -every_k) >= every_k
            if due and not cut and not self.consensus.is_settled(track_id):
                keep.append(row)
                self._last_scan[track_id] = frame.index
        return tracks[keep]

    def _garments_on_persons(self, frame: Frame, persons: Detections) -> Detections:
        """Run the garment detector on each person crop; boxes come back in frame pixels."""
        detector = self.models.garment_detector
        found = []
        for box in persons.xyxy:
            x1, y1, x2, y2 = (int(v) for v in box)
            garments = detector.detect(frame.image[y1:y2, x1:x2]).with_label(*detector.garment_labels)
            garments.xyxy[:, [0, 2]] += x1
            garments.xyxy[:, [1, 3]] += y1
            found.append(garments)
        if not found:
            return Detections.empty(detector.labels)
        return Detections(np.concatenate([g.xyxy for g in found]), np.concatenate([g.scores for g in found]),
                          np.concatenate([g.class_ids for g in found]), detector.labels)

    def _classify(self, frame: Frame, tracks: Detections) -> int:
        if not len(tracks):
            return 0
        if self.use_garment_boxes:
            persons = self._persons_to_scan(frame, tracks)
            if not len(persons):
                return 0
            t0 = time.perf_counter()
            garments = self._garments_on_persons(frame, persons)
            self.timer.add("garment_detect", time.perf_counter() - t0)  # part of 'garments'
            crops = garment_crops(frame.image, persons, garments, self.config.garments)
        else:
            crops = garment_crops(frame.image, tracks, None, self.config.garments)
        calls = 0
        for crop in crops:
            if not crop.good or not self.consensus.wants(crop.track_id, crop.slot, frame.index):
                continue
            if crop.detector_label is None:  # body region: the classifier alone names it
                result = self.models.classifier.classify(crop.crop)
                self.consensus.vote(crop.track_id, crop.slot, result.label, result.score, frame.index)
                calls += 1
                continue
            # A garment-detector box: the classifier may name it more finely (jacket -> blazer),
            # but an answer that contradicts the detector's class is overruled by the detector.
            finer = set(self.config.garments.refinements.get(crop.detector_label, [crop.detector_label]))
            plain = next(iter(finer)) if len(finer) == 1 else crop.detector_label
            label, score = plain, crop.detector_score
            if finer & self.classifier_labels:
                result = self.models.classifier.classify(crop.crop)
                calls += 1
                if result.label in finer:
                    label, score = result.label, result.score
            self.consensus.vote(crop.track_id, crop.slot, label, score, frame.index)
        return calls

    def _evaluate_rules(self, frame: Frame, tracks: Detections) -> list[Alert]:
        alerts: list[Alert] = []
        if tracks.track_ids is None:
            return alerts
        when = datetime.fromtimestamp(frame.timestamp, tz=timezone.utc).astimezone()
        h, w = frame.image.shape[:2]
        for box, track_id in zip(tracks.xyxy, tracks.track_ids):
            track_id = int(track_id)
            settled = self.consensus.settled(track_id)
            if not settled:
                continue
            garments: dict[str, float] = {}
            for garment in settled.values():
                garments[garment.label] = max(garments.get(garment.label, 0.0), float(garment.score))
            self.analytics.track_garments(track_id, garments)
            matches: list[RuleMatch] = self.rules.evaluate(track_id, garments, foot_point(box), when,
                                                           pending=self.consensus.pending(track_id))
            for match in matches:
                self.analytics.track_alert(track_id, match.rule_name)
                x1, y1, x2, y2 = (int(round(v)) for v in box)
                alerts.append(
                    Alert(
                        camera=self.camera.name,
                        track_id=track_id,
                        rule=match.rule_name,
                        garments=[(label, round(float(score), 3)) for label, score in match.garments],
                        box=[round(float(v), 1) for v in box],
                        frame_index=frame.index,
                        source_time_s=frame.source_time_s,
                        timestamp=frame.timestamp,
                        crop_box=(max(0, x1), max(0, y1), min(w, x2), min(h, y2)),
                    )
                )
        return alerts

    def counts(self) -> dict:
        return self.analytics.counts()

    def finish(self) -> list[dict]:
        """End of a file source or shutdown: close every open track and window."""
        ts = self.last_timestamp if self.last_timestamp is not None else time.time()
        return self.analytics.flush(ts)

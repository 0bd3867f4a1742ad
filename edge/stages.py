"""The stages of a camera's pipeline: what each one promises (Protocols) and how the daemon builds them.

``CameraPipeline`` is written against these interfaces only: a detector, a garment detector, a
crop classifier, a person tracker, a person-attribute reader (``edge.attributes.reader``) and
the sinks of customer events (``edge.customer_events``). The concrete classes (the int8 YOLO
interpreter, the TFLite classifier, ByteTrack) are named here, in the factory, and nowhere in the
pipeline; the pre-flight builds the models through the same functions. A new stage (or another
tracker, another detector backend) implements its Protocol and is built here; tests give the
pipeline small stub stages with the same methods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .attributes import PersonAttributeReader
from .catalog import CatalogIndex
from .classify.classifier import Classification, GarmentClassifier
from .config import CameraConfig, Config
from .detect.second_look import SecondLook
from .detect.yolo import YoloDetector
from .detections import Detections
from .errors import ModelError
from .styles import StyleMap
from .tracking.bytetrack import ByteTracker, TrackEvent


@runtime_checkable
class Detector(Protocol):
    """Finds labelled boxes in an image (a frame, or a person crop)."""

    labels: list[str]

    def detect(self, image_bgr: np.ndarray) -> Detections: ...


@runtime_checkable
class GarmentDetector(Detector, Protocol):
    """A detector whose ``garment_labels`` are the garments it finds on a person crop."""

    garment_labels: list[str]


@runtime_checkable
class CropClassifier(Protocol):
    """Names one garment crop; ``embedding`` in the result when the model has one."""

    labels: list[str]

    def classify(self, crop_bgr: np.ndarray) -> Classification: ...


@runtime_checkable
class SecondLookStage(Protocol):
    """Looks again, closer, where the tracker expects people the whole-frame pass found no box for."""

    def look(self, image: np.ndarray, persons: Detections, expected: np.ndarray) -> Detections:
        """``persons`` plus the boxes found on the ``expected`` (xyxy) that no box of ``persons`` covers."""
        ...


@runtime_checkable
class PersonTracker(Protocol):
    """Keeps one id per person across frames and says what happened to the ids (``events``)."""

    def update(self, detections: Detections, now_s: float,
               appearances: dict[int, np.ndarray] | None = None) -> Detections:
        """The frame's tracked boxes (``track_ids`` set); ``now_s``: source time."""
        ...

    def events(self) -> list[TrackEvent]:
        """Started / reacquired / ended since the previous call, each once."""
        ...

    def end_all(self) -> list[TrackEvent]: ...

    def split(self, track_id: int) -> int | None:
        """The track turned out to be somebody else: a new id for it (None if not alive)."""
        ...

    def forget(self, track_id: int) -> bool:
        """Drop the track without an event (its customer continues on another track)."""
        ...

    def appearance_of(self, track_id: int) -> np.ndarray | None: ...

    def expected_boxes(self, now_s: float, max_lost_s: float) -> np.ndarray:
        """(n, 4) xyxy: where the tracks seen at most ``max_lost_s`` ago are expected next frame."""
        ...


def build_tracker(config: Config) -> PersonTracker:
    """The tracker the daemon runs (ByteTrack with colour appearance, ``tracker`` section)."""
    return ByteTracker(config.tracker)


def build_detector(config: Config, camera: CameraConfig | None = None, threads: int | None = None) -> YoloDetector:
    """The person detector as the daemon loads it (before class selection and tiling); the pre-flight
    loads it here too (``threads=1``), so both build it with the same thresholds."""
    det = config.detector
    # A camera may have its own person-detector input (another input size, tiles: issue 26).
    view = camera.detector if camera is not None else None
    # ByteTrack's second association needs the low-score person boxes too, so the person
    # class is decoded down to tracker.low_score unless the config sets its own threshold.
    class_conf = {det.person_label: config.tracker.low_score, **det.class_conf}
    return YoloDetector(
        view.model if view is not None and view.model is not None else det.model,
        manifest_path=view.manifest if view is not None and view.manifest is not None else det.manifest,
        conf=det.conf,
        class_conf=class_conf,
        iou=det.iou,
        max_detections=det.max_detections,
        threads=det.threads if threads is None else threads,
        class_conf_field="detector.class_conf",
    )


def build_garment_detector(config: Config, threads: int | None = None) -> YoloDetector | None:
    """``garments.detector`` as the daemon and the pre-flight load it, or None when the config has none."""
    garments = config.garments
    if garments.detector is None:
        return None
    return YoloDetector(
        garments.detector, manifest_path=garments.manifest, conf=garments.conf,
        class_conf=garments.class_conf, iou=config.detector.iou,
        threads=garments.threads if threads is None else threads,
        class_conf_field="garments.class_conf",
    )


def build_classifier(config: Config, threads: int | None = None) -> GarmentClassifier:
    """The garment classifier as the daemon and the pre-flight load it."""
    cls = config.classifier
    return GarmentClassifier(cls.model, manifest_path=cls.manifest, label_map=cls.label_map,
                             threads=cls.threads if threads is None else threads)


class Models:
    """The model stages of one camera (an interpreter is not thread-safe: one set per camera); the
    attribute types are the Protocols above, so a test may hand the pipeline stubs instead."""

    def __init__(self, config: Config, camera: CameraConfig | None = None):
        det = config.detector
        view = camera.detector if camera is not None else None
        self.detector: GarmentDetector = build_detector(config, camera)
        # Garments are found top-down: a garment YOLO runs on each person crop (people in a
        # store camera are small; on a person crop the garments are big enough to detect).
        garments = config.garments
        self.garment_detector: GarmentDetector | None = build_garment_detector(config)
        if self.garment_detector is not None:
            if not self.garment_detector.garment_labels:
                raise ModelError("the garment detector has no garment classes", path=garments.detector,
                                 field="garments.detector")
        elif self.detector.garment_labels:
            self.garment_detector = self.detector
        # Decode only the classes used (issue 26): the person row (and the garment rows of a detector
        # that finds both); the boxes of those classes are the same as decoding every class.
        if det.person_label in self.detector.labels:
            used = [det.person_label]
            if self.garment_detector is self.detector:
                used += self.detector.garment_labels
            self.detector.use_classes(used)
        if self.garment_detector is not None and self.garment_detector is not self.detector:
            self.garment_detector.use_classes(self.garment_detector.garment_labels)
        # A second look at the people the tracker expects and the whole-frame pass missed, in crops
        # around them through the plain detector (a crop is zoomed in already; no tiles).
        self.second_look: SecondLookStage | None = (SecondLook(self.detector, det.second_look, det.person_label)
                                                    if det.second_look.enabled else None)
        if view is not None and view.tiles is not None:  # garments on crops keep the plain detector
            from .detect.tiles import TiledDetector

            self.detector = TiledDetector(self.detector, *view.tiles, overlap=view.tile_overlap)
        cls = config.classifier
        self.classifier: CropClassifier = build_classifier(config)
        # Outfit embedding consumers (issue 14): both must come from this classifier's embedding.
        self.styles: StyleMap | None = None
        self.catalog: CatalogIndex | None = None
        if config.styles.enabled or config.catalog.enabled:
            if self.classifier.embedding_size is None:
                raise ModelError("styles/catalog need a classifier with an embedding output "
                                 "(python -m export.embedding)", path=cls.model, field="classifier.model")
            from .runtime import sha256_file

            digest = sha256_file(cls.model)
            if config.styles.enabled:
                self.styles = StyleMap.load(config.styles.map, model_sha256=digest)
            if config.catalog.enabled:
                self.catalog = CatalogIndex.load(config.catalog.index, model_sha256=digest)
        # Person attributes (issue 20): clothing of the whole person crop, one call per scanned customer.
        self.attributes: PersonAttributeReader | None = None
        if config.attributes.enabled:
            from .attributes.model import PersonAttributeModel

            self.attributes = PersonAttributeModel.from_config(config.attributes)

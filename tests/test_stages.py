"""Stage interfaces (issue 25, edge/stages.py): the pipeline is written against Protocols, the real
models and ByteTrack implement them, the small stub stages of the pipeline tests implement the same
ones, and another tracker put in behind the interface runs the whole pipeline (customers, rules,
alerts, customer events) without a change to the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from edge.attributes import PersonAttributeReader
from edge.config import RuleConfig, load_config
from edge.customer_events import (CustomerAlerted, CustomerEnded, CustomerEventLog, CustomerSeen, CustomerSettled,
                                  CustomerStarted)
from edge.detections import Detections
from edge.pipeline import CameraPipeline
from edge.stages import (CropClassifier, Detector, GarmentDetector, Models, PersonTracker, SecondLookStage,
                         build_tracker)
from edge.tracking.bytetrack import TrackEvent
from test_customers import BLUE, RED, StubModels, canvas, run

REPO = Path(__file__).resolve().parents[1]


def test_the_daemons_stages_implement_the_interfaces():
    config = load_config(REPO / "configs" / "demo.yaml")
    models = Models(config, config.cameras[0])
    assert isinstance(models.detector, Detector)
    assert isinstance(models.garment_detector, GarmentDetector)
    assert isinstance(models.classifier, CropClassifier)
    assert isinstance(models.attributes, PersonAttributeReader)
    assert isinstance(build_tracker(config), PersonTracker)
    assert isinstance(models.second_look, SecondLookStage)
    # and something that is not a stage is not taken for one
    assert not isinstance(object(), Detector) and not isinstance(models.detector, PersonTracker)


def test_the_stub_stages_of_the_pipeline_tests_implement_the_same_interfaces():
    stubs = StubModels()
    assert isinstance(stubs.detector, Detector)
    assert isinstance(stubs.garment_detector, GarmentDetector)
    assert isinstance(stubs.classifier, CropClassifier)


def test_the_pipeline_names_no_concrete_stage():
    """Only the factory (edge/stages.py) knows the YOLO interpreter, the classifier and ByteTrack."""
    tree = ast.parse((REPO / "edge" / "pipeline.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    concrete = {"YoloDetector", "TiledDetector", "SecondLook", "GarmentClassifier", "ByteTracker", "PersonAttributeModel"}
    assert not imported & concrete, imported & concrete


class ColumnTracker:
    """Another tracker behind the interface: a person's id is the 200 px column their box starts
    in (ids 101, 102, ...); an id not seen in a frame ends."""

    def __init__(self):
        self.alive: set[int] = set()
        self._events: list[TrackEvent] = []
        self.updates = 0

    def update(self, detections: Detections, now_s: float, appearances=None) -> Detections:
        self.updates += 1
        ids = np.array([101 + int(box[0]) // 200 for box in detections.xyxy], np.int64)
        now = set(ids.tolist())
        self._events += [TrackEvent("started", i) for i in sorted(now - self.alive)]
        self._events += [TrackEvent("ended", i) for i in sorted(self.alive - now)]
        self.alive = now
        tracked = detections[np.arange(len(detections))]
        tracked.track_ids = ids
        return tracked

    def events(self) -> list[TrackEvent]:
        events, self._events = self._events, []
        return events

    def end_all(self) -> list[TrackEvent]:
        self._events += [TrackEvent("ended", i) for i in sorted(self.alive)]
        self.alive = set()
        return self.events()

    def split(self, track_id: int) -> int | None:
        return None

    def forget(self, track_id: int) -> bool:
        return False

    def appearance_of(self, track_id: int):
        return None

    def expected_boxes(self, now_s: float, max_lost_s: float) -> np.ndarray:
        return np.zeros((0, 4))  # no prediction: no second look


def test_another_tracker_behind_the_interface_runs_the_pipeline(tmp_path):
    config = load_config(REPO / "configs" / "demo.yaml")
    config.attributes.enabled = False
    config.identity.enabled = False
    config.rules = [RuleConfig(name="dress", when=["dress"], unless=["pants", "shorts"])]
    tracker, events = ColumnTracker(), CustomerEventLog()
    assert isinstance(tracker, PersonTracker)
    pipe = CameraPipeline(config, config.cameras[0], models=StubModels(), state_dir=tmp_path,
                          customer_sinks=[events], tracker=tracker)
    # one person in blue (the stub garment detector: trousers) at x 60 (column 0), then a second in
    # red (a dress) at x 460 (column 2) joins
    frames = [canvas((60, BLUE, BLUE))] * 10 + [canvas((60, BLUE, BLUE), (460, RED, RED))] * 15
    alerts, ids = run(pipe, frames)
    assert tracker.updates == len(frames)
    assert {i for frame_ids in ids for i in frame_ids} == {101, 103}
    assert [(a.track_id, a.rule) for a in alerts] == [(103, "dress")]
    # the customer events, in order, for the customer who got the alert
    mine = [e for e in events.events if e.customer_id == 103]
    assert isinstance(mine[0], CustomerStarted) and isinstance(mine[1], CustomerSeen)
    assert isinstance(mine[-1], CustomerEnded)
    kinds = [type(e) for e in mine]
    settled = kinds.index(CustomerSettled)
    assert kinds.index(CustomerAlerted) > settled
    assert mine[settled].garments.get("dress", 0) > 0 and "dress" in mine[settled].matched
    assert kinds.count(CustomerAlerted) == 1
    trousers = [e for e in events.events if e.customer_id == 101 and isinstance(e, CustomerSettled)]
    assert trousers and all("dress" not in e.matched for e in trousers)

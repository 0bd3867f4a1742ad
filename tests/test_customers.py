"""Customers through CameraPipeline with small stub stages (same interfaces as the real models)
on painted frames: the swap at the same spot, re-acquisition, the exit decision, the scan budget.

The stub detector finds painted people (non-grey pixels) in the frame; the stub garment detector
names a person crop's upper half by its colour (red -> dress, blue -> pants, green -> dress);
the stub classifier is never needed (refinements of dress/pants are the detector's own labels).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.classify.classifier import Classification
from edge.config import ConsensusConfig, RuleConfig, load_config
from edge.customer import Customer
from edge.consensus import GarmentVotes
from edge.detections import Detections
from edge.pipeline import CameraPipeline
from edge.scheduler import ScanRequest, ScanScheduler
from edge.sources import Frame

REPO = Path(__file__).resolve().parents[1]
GREY = 120
LABELS = ["person", "dress", "pants"]
RED, BLUE, GREEN = (40, 40, 220), (200, 60, 30), (40, 200, 40)


class PaintedPeople:
    """Detector: every connected non-grey blob taller than 40 px is a person (score 0.9)."""

    labels = LABELS
    garment_labels: list[str] = []

    def detect(self, image: np.ndarray) -> Detections:
        mask = (np.abs(image.astype(np.int16) - GREY).max(axis=2) > 30).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:] if h > 40]
        if not boxes:
            return Detections.empty(LABELS)
        return Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                          np.zeros(len(boxes), np.int32), LABELS)


class ColourGarments:
    """Garment detector on a person crop: the upper half's colour names one garment box."""

    labels = LABELS
    garment_labels = ["dress", "pants"]

    def __init__(self, score: float = 0.9):
        self.score = score

    def detect(self, crop: np.ndarray) -> Detections:
        h, w = crop.shape[:2]
        b, g, r = crop[: h // 2].reshape(-1, 3).mean(axis=0)
        label = 2 if b > r and b > g else 1
        box = np.array([[0.1 * w, 0.1 * h, 0.9 * w, 0.8 * h]], np.float32)
        return Detections(box, np.array([self.score], np.float32), np.array([label], np.int32), LABELS)

    def with_label(self, *names):  # pragma: no cover - not used on the stub itself
        raise NotImplementedError


class NoClassifier:
    labels: list[str] = []

    def classify(self, crop):  # pragma: no cover - dress/pants are never refined
        raise AssertionError("the classifier should not be asked")


class StubModels:
    def __init__(self, garment_score: float = 0.9):
        self.detector = PaintedPeople()
        self.garment_detector = ColourGarments(garment_score)
        self.classifier = NoClassifier()
        self.styles = None  # the outfit-embedding consumers of Models: off
        self.catalog = None
        self.attributes = None  # the person-attribute stage: off


def pipeline(tmp_path, garment_score: float = 0.9, **consensus) -> CameraPipeline:
    config = load_config(REPO / "configs" / "demo.yaml")
    # identity tests: the garment-only dress rule (the shipped one also needs the person-attribute
    # reading; its fusion has tests of its own in test_attribute_fusion.py)
    config.attributes.enabled = False
    config.rules = [RuleConfig(name="dress", when=["dress"], unless=["pants", "shorts"])]
    for key, value in consensus.items():
        setattr(config.consensus, key, value)
    return CameraPipeline(config, config.cameras[0], models=StubModels(garment_score), state_dir=tmp_path)


def canvas(*people) -> np.ndarray:
    """``people``: (x, colour_upper, colour_lower); 80 x 200 px each, standing at y 100..300."""
    image = np.full((400, 640, 3), GREY, np.uint8)
    for x, upper, lower in people:
        image[100:200, x:x + 80] = upper
        image[200:300, x:x + 80] = lower
    return image


def run(pipe: CameraPipeline, frames: list[np.ndarray], fps: float = 10.0):
    alerts, ids = [], []
    for index, image in enumerate(frames):
        result = pipe.process(Frame(image, index, 1_767_225_600.0 + index / fps, index / fps))
        alerts += result.alerts
        ids.append([int(t) for t in result.tracks.track_ids])
    final = pipe.finish()
    return alerts + (final.alerts if final else []), ids


def test_the_next_customer_at_the_same_spot_gets_a_new_id_and_is_classified(tmp_path):
    # One person in a red dress for 15 frames, 4 empty frames, a different person (green dress,
    # blue trousers... no: a green dress) 20 px away: before, the second inherited the first's
    # id, settled garments and fired rule, and got no alert.
    pipe = pipeline(tmp_path)
    frames = [canvas((300, RED, RED))] * 15 + [canvas()] * 4 + [canvas((320, GREEN, GREEN))] * 20
    alerts, ids = run(pipe, frames)
    assert {i for frame_ids in ids[:15] for i in frame_ids} == {1}
    assert {i for frame_ids in ids[19:] for i in frame_ids} == {2}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress"), (2, "dress")]


def test_the_same_customer_back_after_an_occlusion_keeps_the_id_and_one_alert(tmp_path):
    pipe = pipeline(tmp_path)
    frames = [canvas((300, RED, BLUE))] * 15 + [canvas()] * 10 + [canvas((305, RED, BLUE))] * 15
    alerts, ids = run(pipe, frames)
    assert {i for frame_ids in ids for i in frame_ids} == {1}
    assert [(a.track_id, a.rule) for a in alerts] == [(1, "dress")]


def test_a_reacquired_customer_whose_garments_contradict_is_split(tmp_path):
    # Same colours overall (the tracker cannot tell), but the garment detector now sees pants
    # where the customer had a settled dress: the re-verification splits the customer.
    pipe = pipeline(tmp_path, min_votes=2, early_votes=100)
    person_a = canvas((300, RED, BLUE))
    person_b = canvas((300, BLUE, RED))  # the same two colours, swapped: the appearance is close
    frames = [person_a] * 12 + [canvas()] * 6 + [person_b] * 15
    pipe.config.tracker.reacquire_distance = 0.99  # let the tracker re-acquire on colour alone
    alerts, ids = run(pipe, frames)
    seen = [i for frame_ids in ids for i in frame_ids]
    assert seen[0] == 1 and seen[-1] != 1  # the second person ends up as a new customer
    assert [a.rule for a in alerts if a.track_id == 1] == ["dress"]


def test_a_customer_who_leaves_before_consensus_is_decided_at_exit(tmp_path):
    # Visible for 5 frames (0.5 s) with dress scores of 0.7: confirmed on the 3rd frame, then 3
    # votes taken 0.1 s apart would settle; show only 4 so 2 votes are taken, below min_votes 3
    # and below the early score. The exit rule (2 votes, mean >= 0.65) decides when it leaves.
    pipe = pipeline(tmp_path, garment_score=0.7)
    frames = [canvas((300, RED, RED))] * 4 + [canvas()] * 40
    alerts, _ = run(pipe, frames)
    assert [(a.track_id, a.rule, a.decided) for a in alerts] == [(1, "dress", "exit")]
    # Without the exit decision that customer never gets a decision.
    pipe = pipeline(tmp_path / "off", garment_score=0.7, exit_decision=False)
    assert run(pipe, frames)[0] == []


def test_an_exit_decision_s_picture_shows_the_customer_not_the_empty_frame(tmp_path):
    """snapshots.enabled: the alert decided as the customer left carries the pixels of the last frame
    they were in (the frame of the decision shows nobody); without snapshots no pixels are kept."""
    pipe = pipeline(tmp_path, garment_score=0.7)
    pipe.keep_pictures = True  # what snapshots.enabled sets
    frames = [canvas((300, RED, RED))] * 4 + [canvas()] * 40
    alerts, _ = run(pipe, frames)
    [alert] = alerts
    assert alert.decided == "exit" and alert.picture is not None
    assert alert.picture.shape[:2] == (200, 80)  # the painted person's box
    assert np.abs(alert.picture.reshape(-1, 3).mean(axis=0) - RED).max() < 1  # their red, not the grey floor
    assert all(c.last_picture is None for c in pipe.customers.gallery._left.values())  # gone with the customer
    assert len(pipe.customers.gallery) == 1
    off, _ = run(pipeline(tmp_path / "off", garment_score=0.7), frames)
    assert off[0].decided == "exit" and off[0].picture is None


def test_a_person_cut_by_the_frame_edge_is_still_scanned(tmp_path):
    pipe = pipeline(tmp_path)
    image = np.full((260, 640, 3), GREY, np.uint8)  # feet below the bottom edge all along
    image[100:200, 300:380] = RED
    image[200:260, 300:380] = RED
    alerts, _ = run(pipe, [image] * 10)
    assert [a.rule for a in alerts] == ["dress"]


# -- the scan budget ----------------------------------------------------------------------------

def customer(track_id: int, votes: int = 0, last_scan: float | None = None) -> Customer:
    garments = GarmentVotes(ConsensusConfig(min_votes=100))
    for i in range(votes):
        garments.vote(f"slot{i}", "shirt", 0.9, 0.0)
    return Customer(track_id, 0.0, 0.0, garments, last_scan=last_scan)


def request(c: Customer, x: float = 300) -> ScanRequest:
    return ScanRequest(c, c.id, np.array([x, 100, x + 80, 300], np.float32))


def test_budget_serves_the_neediest_customers_first():
    scheduler = ScanScheduler(ConsensusConfig(scan_budget_ms=25))
    scheduler.scan_ms = 10.0
    many = [customer(1, votes=3), customer(2, votes=0), customer(3, votes=1), customer(4, votes=0, last_scan=5.0)]
    chosen = scheduler.choose([request(c) for c in many], scheduler.budget_ms(True, 0.0), (400, 640))
    assert [r.customer.id for r in chosen] == [2, 4]  # fewest votes; never scanned before scanned
    near_edge = customer(5, votes=0, last_scan=9.0)
    chosen = scheduler.choose([request(customer(6, votes=0, last_scan=1.0)), request(near_edge, x=2)], 25, (400, 640))
    assert chosen[0].customer.id == 5  # about to leave: served first among equals


def test_a_budget_smaller_than_a_scan_still_scans_at_the_budgeted_rate():
    # 6 ms a frame, 10 ms a scan: 6 scans in 10 frames, never more than one a frame.
    scheduler = ScanScheduler(ConsensusConfig(scan_budget_ms=6))
    scheduler.scan_ms = 10.0
    served = [len(scheduler.choose([request(customer(1))], 6, (400, 640))) for _ in range(10)]
    assert served[0] == 0 and sum(served) == 6 and max(served) == 1


def test_live_budget_follows_the_frame_period_and_files_are_unlimited():
    scheduler = ScanScheduler(ConsensusConfig(scan_budget_share=0.6), fps_cap=10)
    assert scheduler.budget_ms(live=True, spent_ms=15.0) == pytest.approx(45.0)  # 60 % of 100 ms - 15
    assert scheduler.budget_ms(live=False, spent_ms=15.0) is None
    measured = ScanScheduler(ConsensusConfig())
    for i in range(5):
        measured.observe(100.0 + i / 15)  # a 15 fps camera
    assert measured.budget_ms(live=True, spent_ms=0.0) == pytest.approx(40.0, rel=0.01)


def test_pipeline_on_a_live_camera_keeps_to_its_budget(tmp_path):
    pipe = pipeline(tmp_path, scan_budget_ms=0.0)  # no time at all for garments
    for index in range(10):
        result = pipe.process(Frame(canvas((300, RED, RED)), index, time.time(), None))
        assert result.scanned == 0 and result.scan_budget_ms == 0.0


def test_the_staff_console_says_when_an_alert_was_decided_at_exit():
    from edge.commands.alerts import format_alert

    alert = {"time": "2026-12-02T10:00:00Z", "site": "s", "camera": "c", "rule": "dress", "track_id": 3,
             "garments": [{"label": "dress", "score": 0.7}], "frame_index": 9, "source_time_s": None}
    assert "decided as the customer left" in format_alert({**alert, "decided": "exit"})
    assert "decided" not in format_alert(alert) and "decided" not in format_alert({**alert, "decided": "consensus"})


def test_a_customer_on_whom_nothing_is_found_does_not_starve_the_others():
    scheduler = ScanScheduler(ConsensusConfig(scan_budget_ms=10))
    scheduler.scan_ms = 10.0
    empty, other = customer(1), customer(2)
    served = []
    for frame in range(6):
        chosen = scheduler.choose([request(empty), request(other, x=400)], 10, (400, 640))
        for r in chosen:
            r.customer.votes.look()  # a scan
            r.customer.last_scan = float(frame)
        served += [r.customer.id for r in chosen]
    assert sorted(served) == [1, 1, 1, 2, 2, 2]


def test_nothing_found_in_max_votes_looks_ends_the_scans():
    votes = GarmentVotes(ConsensusConfig(max_votes=5))
    for _ in range(4):
        votes.look()
    assert not votes.all_decided()
    votes.look()
    assert votes.all_decided()

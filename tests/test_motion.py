"""The idle gate (edge/motion.py, issue 26): the person detector skips frames of an empty, still
floor, and nothing it would have found is found later. Real frames of the demo clip: nobody is in
view for its first 60 frames (10 fps); the first customer is detected at frame 60 and alerted at 71."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from edge.motion import EveryFrame, MotionGate, build_gate
from edge.pipeline import CameraPipeline

from conftest import demo_clip_frames

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_frames(shared_dir):
    return list(demo_clip_frames(shared_dir, 80))


def test_a_still_empty_floor_is_not_motion_and_a_person_coming_in_is(demo_frames):
    gate = MotionGate(idle_interval_s=0.5)
    gate.detected(demo_frames[0].image, 0.0, found=False)
    assert not gate.moved(demo_frames[30].image)  # three seconds later, still nobody: compression noise only
    assert gate.moved(demo_frames[62].image)  # the first customer walking in


def test_an_unchanged_empty_frame_is_still_detected_every_interval(demo_frames):
    """A person too small or too slow to move enough pixels is found at most ``idle_interval_s`` late."""
    gate = MotionGate(idle_interval_s=0.5)
    image = demo_frames[0].image
    ran = []
    for index in range(40):  # 4 s of the same frame at 10 fps
        now = index / 10
        if gate.should_detect(image, now, in_view=False):
            ran.append(now)
            gate.detected(image, now, found=False)
    gaps = [b - a for a, b in zip(ran, ran[1:])]
    assert len(ran) >= 8 and max(gaps) <= 0.5 + 1e-9, ran
    assert gate.skipped == 40 - len(ran)


def test_somebody_in_view_or_found_last_time_is_detected_on_every_frame(demo_frames):
    gate = MotionGate(idle_interval_s=5.0)
    image = demo_frames[0].image
    gate.detected(image, 0.0, found=False)
    assert not gate.should_detect(image, 0.1, in_view=False)
    assert gate.should_detect(image, 0.2, in_view=True)  # the tracker still shows somebody
    gate.detected(image, 0.2, found=True)
    assert gate.should_detect(image, 0.3, in_view=False)  # the last detection found somebody
    assert gate.should_detect(image, 0.05, in_view=False)  # the clock went back (a new source): no skipping


def test_the_gate_is_off_with_interval_zero():
    assert isinstance(build_gate(0, 25, 0.002), EveryFrame)
    assert isinstance(build_gate(0.5, 25, 0.002), MotionGate)


def _run(config, frames, tmp_path, gate=None):
    """Alerts (customer, rule, frame, box) and the frames the person detector ran on, each with
    whether it found a person."""
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path, gate=gate)
    detector, person = pipeline.models.detector, config.detector.person_label
    original, runs, alerts = detector.detect, {}, []
    for frame in frames:
        def counting_detect(image, index=frame.index):
            found = original(image)
            runs[index] = len(found.with_label(person)) > 0
            return found
        detector.detect = counting_detect
        result = pipeline.process(frame)
        alerts += [(alert.track_id, alert.rule, alert.frame_index, tuple(alert.box)) for alert in result.alerts]
    return alerts, runs


def test_the_demo_gives_the_same_alert_with_fewer_detector_runs(demo_frames, tmp_path):
    """The shipped default gates: the first 60 empty frames are mostly skipped, the first customer is
    detected on the same frame as with the detector on every frame, and the same alert comes out
    with the same box."""
    config = load_config(REPO / "configs" / "demo.yaml")
    assert config.detector.idle_interval_s == 0.5
    gated_alerts, gated_runs = _run(config, demo_frames, tmp_path / "gated")
    every_alerts, every_runs = _run(config, demo_frames, tmp_path / "every", gate=EveryFrame())
    assert sorted(every_runs) == list(range(80))
    assert gated_alerts == every_alerts and [rule for _, rule, *_ in gated_alerts] == ["outwear"]
    assert len(gated_runs) <= 80 - 40, len(gated_runs)  # 60 empty frames: about one in five detected
    assert set(range(60, 80)) <= set(gated_runs)  # from the first customer on: every frame

    # the first customer is detected on frame 60 in both runs, not one idle interval later
    assert min(i for i, found in gated_runs.items() if found) == 60
    assert min(i for i, found in every_runs.items() if found) == 60

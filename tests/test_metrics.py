"""Prometheus metrics: a real HTTP scrape of /metrics parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from edge.metrics import METRIC_NAMES, Metrics
from edge.stats import StageTimer


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from a real GET of /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


@dataclass
class FakeAlert:
    rule: str


@dataclass
class FakeResult:
    classified: int = 0
    scanned: int = 0
    alerts: list = field(default_factory=list)
    detected: bool = True


@dataclass
class FakeCustomer:
    id: int
    first_seen: float = 0.0
    last_seen: float = 0.0


class FakePipeline:
    use_garment_boxes = True

    def __init__(self):
        self.customers = []


def test_scrape_reports_daemon_state_and_per_frame_counters():
    snap = {"cameras": [{"name": "entrance", "frames": 120, "frames_dropped": 3, "corrupt_frames": 1,
                         "state": "streaming", "people_now": 2}],
            "outbox_depth": 4, "outbox_dropped": 1, "connected": True,
            "events": {("entrance", "dress"): {"alerts": 5, "false": 2}, ("entrance", "suit"): {"alerts": 0, "false": 0}}}
    metrics = Metrics(lambda: snap)
    timer = StageTimer()
    metrics.wrap_timer(timer)
    metrics.declare_rules("entrance", ["dress", "suit"])
    pipeline = FakePipeline()
    seen: dict[int, FakeCustomer] = {}
    for i in range(10):
        now = i * 0.2  # 1 in view for 0.8 s, 2 for 1.8 s, 3 for 0.8 s (min_dwell_s 1.0)
        ids = (1, 2) if i < 5 else (2, 3)
        for cid in ids:
            seen.setdefault(cid, FakeCustomer(cid, first_seen=now)).last_seen = now
        pipeline.customers = [seen[cid] for cid in ids]
        timer.add("detect", 0.02)
        timer.add("garments", 0.004)
        alerts = [FakeAlert("dress")] if i == 7 else []
        metrics.on_frame("entrance", FakeResult(classified=2, scanned=1, alerts=alerts, detected=i not in (3, 4)),
                         pipeline)
    port = metrics.start("127.0.0.1", 0)
    try:
        m = scrape(port)
    finally:
        metrics.stop()
    cam = (("camera", "entrance"),)
    for name in METRIC_NAMES:  # every documented metric is exposed
        assert any(k.startswith(name) for k in m), name
    assert m["fashion_edge_frames_processed_total"][cam] == 120
    assert m["fashion_edge_frames_dropped_total"][cam] == 3
    assert m["fashion_edge_corrupt_frames_total"][cam] == 1
    assert m["fashion_edge_camera_state"][(("camera", "entrance"), ("state", "streaming"))] == 1
    assert m["fashion_edge_camera_state"][(("camera", "entrance"), ("state", "stuck"))] == 0
    assert m["fashion_edge_people_in_view"][cam] == 2
    assert m["fashion_edge_outbox_depth"][()] == 4
    assert m["fashion_edge_outbox_dropped_total"][()] == 1
    assert m["fashion_edge_mqtt_connected"][()] == 1
    assert m["fashion_edge_events_stored"][(("camera", "entrance"), ("rule", "dress"))] == 5
    assert m["fashion_edge_alerts_marked_false"][(("camera", "entrance"), ("rule", "dress"))] == 2
    assert m["fashion_edge_alerts_marked_false"][(("camera", "entrance"), ("rule", "suit"))] == 0
    assert m["fashion_edge_classifier_calls_total"][cam] == 20
    assert m["fashion_edge_garment_detector_calls_total"][cam] == 10
    assert m["fashion_edge_person_detector_calls_total"][cam] == 8  # two frames skipped by the idle gate
    assert m["fashion_edge_tracks_total"][cam] == 3  # ids 1, 2, 3
    assert m["fashion_edge_customers_total"][cam] == 1  # only 2 stayed analytics.min_dwell_s (1 s)
    assert m["fashion_edge_alerts_total"][(("camera", "entrance"), ("rule", "dress"))] == 1
    assert m["fashion_edge_alerts_total"][(("camera", "entrance"), ("rule", "suit"))] == 0
    assert m["fashion_edge_stage_seconds_count"][(("stage", "detect"),)] == 10
    assert abs(m["fashion_edge_stage_seconds_sum"][(("stage", "detect"),)] - 0.2) < 1e-9
    assert m["fashion_edge_stage_seconds_bucket"][(("le", "0.025"), ("stage", "detect"))] == 10
    assert m["fashion_edge_stage_seconds_bucket"][(("le", "0.01"), ("stage", "detect"))] == 0
    assert timer.summary()["detect"]["n"] == 10  # the daemon's own figures still work


def test_a_failing_snapshot_does_not_break_the_scrape():
    def broken():
        raise RuntimeError("boom")

    metrics = Metrics(broken)
    port = metrics.start("127.0.0.1", 0)
    try:
        m = scrape(port)
    finally:
        metrics.stop()
    assert "fashion_edge_frames_processed_total" not in m


def test_camera_state_gauge_has_every_published_state_failed_included():
    from edge.mqtt.payloads import CAMERA_STATES

    snap = {"cameras": [{"name": "door", "state": "failed"}], "outbox_depth": 0, "outbox_dropped": 0,
            "connected": False}
    metrics = Metrics(lambda: snap)
    port = metrics.start("127.0.0.1", 0)
    try:
        m = scrape(port)
    finally:
        metrics.stop()
    gauge = m["fashion_edge_camera_state"]
    assert {dict(k)["state"] for k in gauge} == set(CAMERA_STATES) and "failed" in CAMERA_STATES
    assert gauge[(("camera", "door"), ("state", "failed"))] == 1
    assert sum(gauge.values()) == 1  # a dead camera is failed, not ended


def test_customers_total_is_the_analytics_customer_count(shared_dir, tmp_path):
    """The real pipeline on the demo clip: for any analytics.min_dwell_s the metric counts the
    customers the analytics would store (tracks seen that long, last seen - first seen), and
    fashion_edge_tracks_total every confirmed track. The analytics runs at min_dwell_s 0, so it
    stores every track's dwell; each threshold's count follows from those."""
    from conftest import demo_config_data

    from edge.analytics import read_windows
    from edge.config import parse_config
    from edge.pipeline import CameraPipeline
    from edge.sources import open_source

    data = demo_config_data(shared_dir)
    # windows longer than the run: the analytics counts a track still in view one window after its
    # window's end with its dwell so far, so with short windows a long visit is cut there
    data["analytics"] = {"window_s": 600, "min_dwell_s": 0}
    config = parse_config(data)
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path)
    thresholds = [0.0, 1.0, 4.0, 8.0, 14.0, 20.0]
    by_threshold = {t: Metrics(min_dwell_s=t) for t in thresholds}
    with open_source(config.cameras[0].source) as source:
        for index, frame in enumerate(source):
            if index >= 400:
                break
            result = pipeline.process(frame)
            for metrics in by_threshold.values():
                metrics.on_frame("entrance", result, pipeline)
    pipeline.finish()
    pipeline.analytics.close()
    windows = read_windows(tmp_path / "analytics.sqlite")
    dwells = [d for w in windows for d in _dwells(tmp_path / "analytics.sqlite", w["window_start"])]
    assert len(dwells) == sum(w["tracks"] for w in windows) >= 2
    for threshold, metrics in by_threshold.items():
        expected = sum(1 for d in dwells if d >= threshold)
        assert metrics.customers.labels("entrance")._value.get() == expected, (threshold, dwells)
        assert metrics.tracks.labels("entrance")._value.get() == len(dwells)
    assert len({sum(1 for d in dwells if d >= t) for t in thresholds}) >= 2, ("no threshold told tracks apart", dwells)


def _dwells(db, window_start) -> list[float]:
    import json
    import sqlite3

    with sqlite3.connect(db) as conn:
        (raw,) = conn.execute("SELECT dwell_s FROM windows WHERE window_start = ?", (window_start,)).fetchone()
    return json.loads(raw)

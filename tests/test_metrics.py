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


@dataclass
class FakeCustomer:
    id: int


class FakePipeline:
    use_garment_boxes = True

    def __init__(self):
        self.customers = []


def test_scrape_reports_daemon_state_and_per_frame_counters():
    snap = {"cameras": [{"name": "entrance", "frames": 120, "frames_dropped": 3, "corrupt_frames": 1,
                         "state": "streaming", "people_now": 2}],
            "outbox_depth": 4, "outbox_dropped": 1, "connected": True}
    metrics = Metrics(lambda: snap)
    timer = StageTimer()
    metrics.wrap_timer(timer)
    metrics.declare_rules("entrance", ["dress", "suit"])
    pipeline = FakePipeline()
    for i in range(10):
        pipeline.customers = [FakeCustomer(1), FakeCustomer(2)] if i < 5 else [FakeCustomer(2), FakeCustomer(3)]
        timer.add("detect", 0.02)
        timer.add("garments", 0.004)
        alerts = [FakeAlert("dress")] if i == 7 else []
        metrics.on_frame("entrance", FakeResult(classified=2, scanned=1, alerts=alerts), pipeline)
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
    assert m["fashion_edge_classifier_calls_total"][cam] == 20
    assert m["fashion_edge_garment_detector_calls_total"][cam] == 10
    assert m["fashion_edge_customers_total"][cam] == 3  # ids 1, 2, 3
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

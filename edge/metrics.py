"""Prometheus metrics of the daemon (``service.metrics``), served by the standard prometheus-client.

Counters that the daemon already keeps (frames, dropped frames, outbox, MQTT link) are read at
scrape time by a collector, so nothing is counted twice; what only exists per frame (stage
latencies, classifier and garment-detector calls, alerts per rule, new customers) is counted here.
Each ``Metrics`` has its own registry (no process-global state: two daemons in one test process
do not collide).

Metric names (all prefixed ``fashion_edge_``) are listed in docs/mqtt.md's metrics section and in
``METRIC_NAMES`` below.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server

from .mqtt.payloads import CAMERA_STATES  # every state the daemon publishes, "failed" included

log = logging.getLogger(__name__)

# Latency buckets in seconds: 1 ms .. 5 s (a Pi's detector runs 40-200 ms a frame).
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

METRIC_NAMES = (
    "fashion_edge_frames_processed_total", "fashion_edge_frames_dropped_total", "fashion_edge_corrupt_frames_total",
    "fashion_edge_camera_state", "fashion_edge_people_in_view", "fashion_edge_stage_seconds",
    "fashion_edge_classifier_calls_total", "fashion_edge_garment_detector_calls_total",
    "fashion_edge_person_detector_calls_total",
    "fashion_edge_alerts_total", "fashion_edge_customers_total", "fashion_edge_tracks_total",
    "fashion_edge_outbox_depth",
    "fashion_edge_outbox_dropped_total", "fashion_edge_mqtt_connected",
    "fashion_edge_events_stored", "fashion_edge_alerts_marked_false",
)


class _DaemonCollector:
    """Reads a snapshot dict at scrape time (``snapshot()``: see ``metrics_snapshot``)."""

    def __init__(self, snapshot: Callable[[], dict]):
        self.snapshot = snapshot

    def describe(self):
        return []  # dynamic: do not let the registry call collect() at registration

    def collect(self):
        try:
            snap = self.snapshot()
        except Exception:  # a scrape must never take the daemon down
            log.exception("metrics snapshot failed")
            return
        frames = CounterMetricFamily("fashion_edge_frames_processed", "Frames processed by the pipeline",
                                     labels=["camera"])
        dropped = CounterMetricFamily("fashion_edge_frames_dropped", "Frames the source dropped (newest frame wins)",
                                      labels=["camera"])
        corrupt = CounterMetricFamily("fashion_edge_corrupt_frames", "Frames that could not be decoded",
                                      labels=["camera"])
        state = GaugeMetricFamily("fashion_edge_camera_state", "1 for the camera's current state",
                                  labels=["camera", "state"])
        people = GaugeMetricFamily("fashion_edge_people_in_view", "Customers tracked in view now", labels=["camera"])
        for cam in snap.get("cameras", []):
            name = cam["name"]
            frames.add_metric([name], cam.get("frames", 0))
            dropped.add_metric([name], cam.get("frames_dropped", 0))
            corrupt.add_metric([name], cam.get("corrupt_frames", 0))
            current = cam.get("state")
            for s in CAMERA_STATES:
                state.add_metric([name, s], 1.0 if s == current else 0.0)
            people.add_metric([name], cam.get("people_now", 0))
        yield from (frames, dropped, corrupt, state, people)
        yield GaugeMetricFamily("fashion_edge_outbox_depth", "Alerts and analytics windows in the durable outbox not yet acknowledged",
                                value=snap.get("outbox_depth", 0))
        yield CounterMetricFamily("fashion_edge_outbox_dropped", "Alerts dropped because the outbox was full",
                                  value=snap.get("outbox_dropped", 0))
        yield GaugeMetricFamily("fashion_edge_mqtt_connected", "1 while connected to the MQTT broker",
                                value=1.0 if snap.get("connected") else 0.0)
        # the device's event list (edge/events): a gauge, since a person can clear a false-alert mark
        stored = GaugeMetricFamily("fashion_edge_events_stored", "Alerts kept in the device's event list "
                                   "(events.retention_days)", labels=["camera", "rule"])
        marked = GaugeMetricFamily("fashion_edge_alerts_marked_false", "Stored alerts a person marked as a false "
                                   "alert on the web page", labels=["camera", "rule"])
        for (camera, rule), counts in sorted((snap.get("events") or {}).items()):
            stored.add_metric([camera, rule], counts["alerts"])
            marked.add_metric([camera, rule], counts["false"])
        yield from (stored, marked)


class Metrics:
    def __init__(self, snapshot: Callable[[], dict] | None = None, min_dwell_s: float = 1.0):
        self.registry = CollectorRegistry(auto_describe=False)
        self.stage_seconds = Histogram("fashion_edge_stage_seconds", "Pipeline stage latency", ["stage"],
                                       buckets=STAGE_BUCKETS, registry=self.registry)
        self.classifier_calls = Counter("fashion_edge_classifier_calls", "Garment classifier calls", ["camera"],
                                        registry=self.registry)
        self.garment_detector_calls = Counter("fashion_edge_garment_detector_calls",
                                              "Garment detector runs (one per scanned person crop)", ["camera"],
                                              registry=self.registry)
        # frames processed minus these: frames of an empty, still floor the idle gate skipped (edge/motion.py)
        self.person_detector_calls = Counter("fashion_edge_person_detector_calls",
                                             "Frames the person detector ran on", ["camera"], registry=self.registry)
        self.alerts = Counter("fashion_edge_alerts", "Alerts raised", ["camera", "rule"], registry=self.registry)
        # One definition of a customer with the analytics (edge/analytics/windows.py): a confirmed track
        # seen for at least analytics.min_dwell_s (last seen - first seen). Every confirmed track,
        # the shorter ones too, is fashion_edge_tracks_total (the analytics' "tracks").
        self.min_dwell_s = float(min_dwell_s)
        self.customers = Counter("fashion_edge_customers",
                                 f"Customers: confirmed tracks seen for at least analytics.min_dwell_s "
                                 f"({self.min_dwell_s:g} s), as in the analytics", ["camera"], registry=self.registry)
        self.tracks = Counter("fashion_edge_tracks", "Confirmed tracks (customers and passers-by shorter than "
                              "analytics.min_dwell_s)", ["camera"], registry=self.registry)
        # ids already counted per camera, newest last (a returning customer keeps its id: not counted twice)
        self._counted: dict[str, collections.OrderedDict[int, None]] = {}
        self._tracked: dict[str, collections.OrderedDict[int, None]] = {}
        self._lock = threading.Lock()
        if snapshot is not None:
            self.registry.register(_DaemonCollector(snapshot))
        self._server = None
        self._thread = None
        self.port: int | None = None

    # -- feeding -------------------------------------------------------------------------------
    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(max(0.0, float(seconds)))

    def wrap_timer(self, timer) -> None:
        """Every ``timer.add(stage, seconds)`` (edge.stats.StageTimer) also feeds the histogram."""
        original = timer.add

        def add(stage: str, seconds: float) -> None:
            original(stage, seconds)
            self.observe_stage(stage, seconds)

        timer.add = add

    def on_frame(self, camera: str, result, pipeline=None) -> None:
        """Per-frame counters from a FrameResult (and the pipeline's customers)."""
        if result.classified:
            self.classifier_calls.labels(camera).inc(result.classified)
        else:
            self.classifier_calls.labels(camera)  # the series exists from the first frame
        uses_detector = bool(getattr(pipeline, "use_garment_boxes", False))
        self.garment_detector_calls.labels(camera).inc(result.scanned if uses_detector else 0)
        self.person_detector_calls.labels(camera).inc(1 if result.detected else 0)
        for alert in result.alerts:
            self.alerts.labels(camera, alert.rule).inc()
        if pipeline is not None:
            with self._lock:
                tracked = self._tracked.setdefault(camera, collections.OrderedDict())
                counted = self._counted.setdefault(camera, collections.OrderedDict())
                tracks, customers = self.tracks.labels(camera), self.customers.labels(camera)
                for customer in pipeline.customers:
                    if _remember(tracked, customer.id):
                        tracks.inc()
                    if customer.last_seen - customer.first_seen >= self.min_dwell_s and _remember(counted, customer.id):
                        customers.inc()

    def declare_rules(self, camera: str, rules: list[str]) -> None:
        """Zero series for every rule, so a dashboard shows 0 rather than nothing."""
        for rule in rules:
            self.alerts.labels(camera, rule)

    # -- serving -------------------------------------------------------------------------------
    def start(self, host: str, port: int) -> int:
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        log.info("Prometheus metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# Ids remembered per camera: far more than the customers edge.identity can bring back (at most
# identity.max_customers), so a returning customer is never counted twice.
MAX_REMEMBERED_IDS = 10_000


def _remember(seen: collections.OrderedDict, customer_id: int) -> bool:
    """True the first time ``customer_id`` is seen (then remembered, the oldest forgotten first)."""
    if customer_id in seen:
        return False
    seen[customer_id] = None
    if len(seen) > MAX_REMEMBERED_IDS:
        seen.popitem(last=False)
    return True


def metrics_snapshot(status: dict, config, pipelines: dict | None = None, events=None) -> dict:
    """What the collector reads at scrape time: the daemon's ``status_snapshot()`` (cameras, mqtt),
    the people in view from the pipelines, and per camera and rule the event list's counts (every
    rule of the config from 0, as fashion_edge_alerts_total)."""
    pipelines = pipelines or {}
    cameras = []
    for name, cam in status.get("cameras", {}).items():
        stats = cam.get("source_stats") or {}
        pipeline = pipelines.get(name)
        cameras.append({
            "name": name,
            "frames": cam.get("frames", 0),
            "frames_dropped": int(stats.get("frames_dropped", 0) or 0),
            "corrupt_frames": int(stats.get("corrupt_frames", 0) or 0),
            "state": (cam.get("status") or {}).get("state"),
            "people_now": len(pipeline.customers) if pipeline is not None else 0,
        })
    counts = {}
    if events is not None:
        counts = events.rule_counts()
        for name in status.get("cameras", {}):
            for rule in config.rules:
                if not rule.cameras or name in rule.cameras:
                    counts.setdefault((name, rule.name), {"alerts": 0, "false": 0})
    mqtt = status.get("mqtt", {})
    return {
        "cameras": cameras,
        "outbox_depth": mqtt.get("outbox_depth", 0),
        "outbox_dropped": mqtt.get("outbox_dropped", 0),
        "connected": bool(mqtt.get("connected")),
        "events": counts,  # {(camera, rule): {"alerts": n, "false": m}}
    }

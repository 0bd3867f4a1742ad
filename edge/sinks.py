"""Where a camera's results go: typed sinks instead of the daemon calling each consumer by name.

The daemon hands every result to its sinks, in order: MQTT (the durable outbox) first, then the
event list on the device, the console, and the integrations' metrics and web page. A sink
overrides the hooks it takes; the base class does nothing. ``required``: a failure stops the
camera (an alert the outbox cannot take must never be dropped quietly); any other sink's failure
is one log line and the camera goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

from .alerts import Alert

if TYPE_CHECKING:  # annotations only: the pipeline imports the models, a sink needs none of them
    from .events import EventStore
    from .mqtt.publisher import MqttPublisher
    from .pipeline import CameraPipeline, FrameResult

log = logging.getLogger("fashion-edge")


class ResultSink:
    name = "sink"
    required = False

    def on_alert(self, alert: Alert, payload: dict, picture: bytes | None) -> None:
        """An alert (``payload``: its MQTT message; ``picture``: a JPEG only with snapshots.enabled)."""

    def on_window(self, camera: str, window: dict) -> None:
        """A closed analytics window."""

    def on_counts(self, camera: str, counts: dict) -> None:
        """The live counts changed."""

    def on_frame(self, camera: str, result: "FrameResult", pipeline: "CameraPipeline") -> None:
        """After each processed frame (camera thread), once its alerts and windows went out."""

    def on_status(self, camera: str, status: dict) -> None:
        """The camera's state (streaming, reconnecting, stuck, failed, ended)."""

    def on_stats(self, stats: dict) -> None:
        """The daemon's stats, every ``mqtt.stats_interval_s``."""


def deliver(sinks: list[ResultSink], hook: Callable[[ResultSink], None]) -> None:
    """Call ``hook`` on every sink, in order; only a required sink's failure is raised."""
    for sink in sinks:
        if sink.required:
            hook(sink)
            continue
        try:
            hook(sink)
        except Exception:
            log.exception("%s: a result could not be handed over (the camera goes on)", sink.name)


class MqttSink(ResultSink):
    """Everything to the broker through the durable outbox. ``pictures``: snapshots.enabled *and*
    snapshots.mqtt (a broker may be on another host: nothing leaves the device unless both say so)."""

    name = "MQTT"
    required = True

    def __init__(self, publisher: "MqttPublisher", pictures: bool):
        self.publisher = publisher
        self.pictures = pictures
        self._lock = threading.Lock()  # one SQLite outbox + paho client shared by the camera threads

    def on_alert(self, alert: Alert, payload: dict, picture: bytes | None) -> None:
        with self._lock:
            if picture and self.pictures:
                self.publisher.publish_snapshot(alert.camera, picture)
            self.publisher.publish_alert(payload)

    def on_window(self, camera: str, window: dict) -> None:
        with self._lock:
            self.publisher.publish_analytics(camera, window)

    def on_counts(self, camera: str, counts: dict) -> None:
        with self._lock:
            self.publisher.publish_counts(camera, counts)

    def on_status(self, camera: str, status: dict) -> None:
        with self._lock:
            self.publisher.publish_status(camera, status)

    def on_stats(self, stats: dict) -> None:
        with self._lock:
            self.publisher.publish_stats(stats)


class EventListSink(ResultSink):
    """Every alert as an event on the device (edge/events), after the outbox took it."""

    name = "event list"

    def __init__(self, store: "EventStore"):
        self.store = store

    def on_alert(self, alert: Alert, payload: dict, picture: bytes | None) -> None:
        self.store.record(alert.id, alert.camera, alert.track_id, alert.rule, alert.timestamp, alert.decided,
                          alert.garments, picture)


class ConsoleSink(ResultSink):
    """One line per alert: the demo's console callback prints it, or the log has it."""

    name = "console"

    def __init__(self, on_alert: Callable[[dict], None] | None = None):
        self.callback = on_alert

    def on_alert(self, alert: Alert, payload: dict, picture: bytes | None) -> None:
        level = logging.DEBUG if self.callback is not None else logging.INFO
        log.log(level, "alert %s: camera %s customer #%d %s", alert.id, alert.camera, alert.track_id, alert.rule)
        if self.callback is not None:
            self.callback(payload)

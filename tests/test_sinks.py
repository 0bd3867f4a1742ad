"""Result sinks (issue 25, edge/sinks.py): every sink gets every result in order, a failing optional
sink is one log line and the others still get theirs, a failing required sink (MQTT's outbox) is
raised; the one Alert renders the payload and the event list's row under the same id."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge.alerts import Alert
from edge.events import EventStore
from edge.mqtt.payloads import validate_alert
from edge.sinks import ConsoleSink, EventListSink, ResultSink, deliver


def an_alert(**changes) -> Alert:
    values = dict(camera="door", track_id=7, rule="dress", garments=[("dress", 0.91)], box=[10.0, 20.0, 110.0, 320.0],
                  frame_index=42, source_time_s=4.2, timestamp=1_800_000_000.0)
    values.update(changes)
    return Alert(**values)


class Recorder(ResultSink):
    def __init__(self, name: str, log: list, fail: bool = False, required: bool = False):
        self.name, self.log, self.fail, self.required = name, log, fail, required

    def on_alert(self, alert, payload, picture):
        self.log.append((self.name, "alert", alert.id))
        if self.fail:
            raise OSError("disk full")

    def on_window(self, camera, window):
        self.log.append((self.name, "window", camera))


def test_every_sink_gets_every_result_in_order_and_a_failing_optional_one_is_logged(caplog):
    log: list = []
    sinks = [Recorder("mqtt", log, required=True), Recorder("events", log, fail=True), Recorder("web", log)]
    alert = an_alert()
    with caplog.at_level(logging.ERROR):
        deliver(sinks, lambda sink: sink.on_alert(alert, {}, None))
        deliver(sinks, lambda sink: sink.on_window("door", {"customers": 1}))
    assert log == [("mqtt", "alert", alert.id), ("events", "alert", alert.id), ("web", "alert", alert.id),
                   ("mqtt", "window", "door"), ("events", "window", "door"), ("web", "window", "door")]
    assert [r for r in caplog.records if "events" in r.getMessage()], caplog.text
    # the base class takes everything and does nothing: a sink overrides only its hooks
    deliver([ResultSink()], lambda sink: sink.on_stats({"fps": 1.0}))


def test_a_failing_required_sink_stops_the_delivery():
    log: list = []
    sinks = [Recorder("mqtt", log, fail=True, required=True), Recorder("events", log)]
    with pytest.raises(OSError, match="disk full"):
        deliver(sinks, lambda sink: sink.on_alert(an_alert(), {}, None))
    assert [name for name, *_ in log] == ["mqtt"]  # nothing after an alert the outbox did not take


def test_one_alert_one_id_in_the_payload_the_event_list_and_the_web_entry(tmp_path):
    alert = an_alert(decided="exit", picture=np.zeros((4, 4, 3), np.uint8))
    payload = alert.payload("store-1")
    validate_alert(payload)
    assert payload["id"] == alert.id and payload["decided"] == "exit" and payload["site"] == "store-1"
    assert "picture" not in payload and "snapshot" not in payload  # pixels never go into the message
    assert an_alert().id != alert.id
    entry = alert.web_entry()
    assert entry["id"] == alert.id and entry["garments"] == [["dress", 0.91]] and entry["decided"] == "exit"

    store = EventStore(tmp_path, "store-1")
    try:
        deliver([EventListSink(store), ConsoleSink()], lambda sink: sink.on_alert(alert, payload, None))
        row = store.get(alert.id)
        assert row is not None and row["rule"] == "dress" and row["camera"] == "door"
    finally:
        store.close()

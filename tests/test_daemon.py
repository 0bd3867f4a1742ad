"""End-to-end: the daemon on the real clip against a real mosquitto (started by a fixture).

These run `python -m edge run ...` as a subprocess, exactly as systemd would, and watch the
broker with a real paho subscriber.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml

from conftest import Mosquitto

REPO = Path(__file__).resolve().parents[1]
ALERT_ID = re.compile(r"alert ([0-9a-f-]{36}):")


def write_config(tmp_path: Path, shared: Path, **overrides) -> Path:
    """A config for the clip whose rule fires on what the people in it wear."""
    from conftest import demo_config_data

    base = demo_config_data(shared)
    base["service"] = {"state_dir": str(tmp_path / "state"), "log_level": "INFO"}
    base["mqtt"] = {"host": "127.0.0.1", "port": 1883, "stats_interval_s": 1.0}
    base["rules"] = any_garment_rule(base)
    # a quick consensus so the first customers of the clip settle within a few hundred frames
    base["consensus"] = {"min_vote_interval_s": 0.3, "min_votes": 3, "min_agreement": 0.6, "min_score": 0.3}
    base.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def any_garment_rule(config: dict) -> list[dict]:
    """One rule that fires on any settled garment of the configured classifier.

    These tests check the plumbing (outbox, broker, payloads), not what the people in the clip
    wear, so they must not depend on which classifier is the default. Rule semantics (suit as a
    combination, zones, cooldown) are covered in tests/test_rules.py.
    """
    from edge.classify.classifier import GarmentClassifier

    from edge.config import GarmentsConfig

    cls = config["classifier"]
    labels = set(GarmentClassifier(cls["model"], manifest_path=cls.get("manifest"),
                                   label_map=cls.get("label_map")).labels)
    # with a garment detector, its own (refined) labels can be votes too
    for detector_label, finer in GarmentsConfig().refinements.items():
        labels |= {detector_label, *finer}
    return [{"name": "any-garment", "when": sorted(labels), "min_confidence": 0.0}]


class Collector:
    """A real MQTT subscriber that records every message under the prefix (persistent session)."""

    def __init__(self, port: int, prefix: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def topics(self, pattern: str) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return [m for m in self.messages if re.fullmatch(pattern, m[0])]

    def alerts(self) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.topics(r".*/alerts/.*")]

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def run_daemon(config: Path, port: int, *extra: str, wait: bool = True, timeout: float = 240):
    cmd = [sys.executable, "-m", "edge", "run", "--config", str(config), "--mqtt-host", "127.0.0.1",
           "--mqtt-port", str(port), *extra]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def alert_schema():
    return json.loads((REPO / "edge" / "schemas" / "alert.schema.json").read_text())


def test_daemon_on_clip_publishes_availability_counts_stats_and_valid_alerts(
        tmp_path, shared_dir, mosquitto, alert_schema):
    config = write_config(tmp_path, shared_dir)
    prefix = "fashion-edge/demo-store"
    watcher = Collector(mosquitto.port, prefix)
    code, out = run_daemon(config, mosquitto.port, "--max-frames", "420")
    time.sleep(0.5)
    watcher.stop()
    assert code == 0, out

    availability = [p.decode() for _, p, _ in watcher.topics(rf"{prefix}/availability")]
    assert availability[0] == "online" and availability[-1] == "offline", availability
    counts = watcher.topics(rf"{prefix}/cameras/entrance/counts")
    assert counts, "no retained counts published"
    first_counts = json.loads(counts[0][1])
    assert first_counts.get("people_now", 0) == 0, f"counts must be zeroed at start: {first_counts}"
    assert watcher.topics(rf"{prefix}/stats"), "no stats published"
    stats = json.loads(watcher.topics(rf"{prefix}/stats")[-1][1])
    assert stats["fps"] >= 0 and "detect" in stats["latency"] and "outbox_depth" in stats

    alerts = watcher.alerts()
    logged = set(ALERT_ID.findall(out))
    assert alerts, f"no alerts on the clip:\n{out[-3000:]}"
    for alert in alerts:
        jsonschema.validate(alert, alert_schema)
        assert alert["camera"] == "entrance" and alert["site"] == "demo-store"
        assert 0 <= alert["frame_index"] < 420 and alert["source_time_s"] == pytest.approx(alert["frame_index"] / 10, abs=0.2)
        assert "snapshot" not in alert  # privacy: snapshots are off by default
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids)) and set(ids) == logged
    # one alert per customer per rule
    per_track_rule = [(a["track_id"], a["rule"]) for a in alerts]
    assert len(per_track_rule) == len(set(per_track_rule))


def test_broker_outage_mid_run_loses_no_alert(tmp_path, shared_dir):
    persistent = tmp_path / "broker"
    persistent.mkdir()
    broker = Mosquitto(persistent, extra_conf=f"persistence true\npersistence_location {persistent}/\n").start()
    prefix = "fashion-edge/demo-store"
    config = write_config(tmp_path, shared_dir)
    watcher = Collector(broker.port, prefix)
    try:
        proc = run_daemon(config, broker.port, "--max-frames", "900", wait=False)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        wait_until(lambda: any(ALERT_ID.search(l) for l in lines), 180, "a first alert")
        broker.stop()  # outage: alerts raised now wait in the outbox
        time.sleep(4)
        broker.start()
        proc.wait(timeout=240)
        reader.join(timeout=5)
        out = "".join(lines)
        assert proc.returncode == 0, out
        raised = ALERT_ID.findall(out)
        wait_until(lambda: len(watcher.alerts()) >= len(raised), 20, "every alert after the outage")
        received = [a["id"] for a in watcher.alerts()]
        assert sorted(set(received)) == sorted(raised), (raised, received)
        assert len(raised) >= 2, "the clip should raise several alerts"
    finally:
        watcher.stop()
        broker.stop()


def test_kill9_with_alerts_in_outbox_delivers_them_after_restart(tmp_path, shared_dir, mosquitto):
    from edge.mqtt.outbox import Outbox

    prefix = "fashion-edge/demo-store"
    config = write_config(tmp_path, shared_dir)
    outbox_file = tmp_path / "state" / "outbox.sqlite"
    mosquitto.stop()  # broker down: every alert stays in the outbox

    proc = run_daemon(config, mosquitto.port, wait=False)

    def queued() -> int:
        if not outbox_file.exists():
            return 0
        try:
            with sqlite3.connect(outbox_file, timeout=1) as db:
                # alerts only: closed analytics windows share the outbox ({prefix}/windows/{camera})
                return db.execute("select count(*) from outbox where topic like '%/alerts/%'").fetchone()[0]
        except sqlite3.Error:
            return 0

    try:
        wait_until(lambda: queued() >= 2, 180, "two alerts in the outbox")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    pending_ids = [json.loads(row.payload)["id"] for row in Outbox(outbox_file).pending(1000)
                   if "/alerts/" in row.topic]
    assert len(pending_ids) >= 2

    mosquitto.start()
    watcher = Collector(mosquitto.port, prefix)
    try:
        code, out = run_daemon(config, mosquitto.port, "--max-frames", "1")
        assert code == 0, out
        wait_until(lambda: len(watcher.alerts()) >= len(pending_ids), 20, "the queued alerts")
        received = [a["id"] for a in watcher.alerts()]
        assert received[: len(pending_ids)] == pending_ids  # delivered in order
        assert len(received) == len(set(received))  # none duplicated
        assert Outbox(outbox_file).depth == 0
    finally:
        watcher.stop()


def test_unreachable_broker_keeps_alerts_and_exits_nonzero(tmp_path, shared_dir):
    from conftest import free_port

    config = write_config(tmp_path, shared_dir)
    code, out = run_daemon(config, free_port(), "--max-frames", "420")
    assert code == 3, out
    last = [l for l in out.splitlines() if l.strip()][-1]
    assert "broker unreachable" in out and "kept in" in out, out[-2000:]
    from edge.mqtt.outbox import Outbox

    assert Outbox(tmp_path / "state" / "outbox.sqlite").depth >= 1
    assert last  # a final line is printed


def test_sigterm_flushes_and_publishes_offline(tmp_path, shared_dir, mosquitto):
    """systemd stops the service with SIGTERM: the daemon must end cleanly, nothing left behind."""
    from edge.mqtt.outbox import Outbox

    prefix = "fashion-edge/demo-store"
    config = write_config(tmp_path, shared_dir)
    watcher = Collector(mosquitto.port, prefix)
    proc = run_daemon(config, mosquitto.port, "--loop", wait=False)  # would run forever
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(ALERT_ID.search(l) for l in lines), 180, "a first alert")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=5)
    time.sleep(0.5)
    watcher.stop()
    availability = [p.decode() for _, p, _ in watcher.topics(rf"{prefix}/availability")]
    assert availability[-1] == "offline"
    assert Outbox(tmp_path / "state" / "outbox.sqlite").depth == 0
    raised = set(ALERT_ID.findall("".join(lines)))
    assert raised <= {a["id"] for a in watcher.alerts()}


def test_camera_drop_is_reported_and_the_daemon_resumes(tmp_path, shared_dir, mosquitto):
    """A live camera (a real MJPEG HTTP server fed with clip frames) dies and comes back."""
    from conftest import free_port, write_clip_frames
    from test_sources import MJPEGCamera

    camera = MJPEGCamera(write_clip_frames(shared_dir, tmp_path / "camera", 40), free_port())
    camera.start()

    prefix = "fashion-edge/demo-store"
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["cameras"][0].update(source=f"http://127.0.0.1:{camera.port}/stream.mjpg",
                              reconnect={"initial_s": 0.2, "max_s": 1.0})
    config.write_text(yaml.safe_dump(data))
    watcher = Collector(mosquitto.port, prefix)

    def states() -> list[str]:
        return [json.loads(p)["state"] for _, p, _ in watcher.topics(rf"{prefix}/cameras/entrance/status")]

    def frames_processed() -> int:
        stats = watcher.topics(rf"{prefix}/stats")
        return json.loads(stats[-1][1])["frames"]["entrance"] if stats else 0

    proc = run_daemon(config, mosquitto.port, wait=False)
    try:
        wait_until(lambda: frames_processed() > 5, 120, "frames from the live camera")
        camera.kill()
        wait_until(lambda: "reconnecting" in states(), 30, "status 'reconnecting'")
        before = frames_processed()
        camera.start()
        wait_until(lambda: states()[-1] == "streaming" and frames_processed() > before + 5, 60,
                   "status 'streaming' and new frames after the camera came back")
        assert proc.poll() is None, "the daemon must survive a camera drop"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if camera.process.poll() is None:
            camera.kill()
        watcher.stop()


def test_corrupt_frame_is_skipped_and_counted(tmp_path, shared_dir, mosquitto):
    from conftest import write_clip_frames

    folder = write_clip_frames(shared_dir, tmp_path / "frames", 12)
    (folder / "005.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")  # a corrupt frame mid-stream
    config = write_config(tmp_path, shared_dir)
    code, out = run_daemon(config, mosquitto.port, "--source", str(folder))
    assert code == 0, out
    assert "11 frames" in out and "corrupt 1" in out, out[-2000:]

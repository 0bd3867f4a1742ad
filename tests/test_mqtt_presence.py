"""One MQTT client id per running daemon, and per-device availability (edge/mqtt/presence.py), against
a real mosquitto with real paho clients (one of them in another process, killed with SIGKILL)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.config import MQTTConfig
from edge.errors import ConfigError
from edge.mqtt.presence import ClientIdInUse, Presence, device_availability_topic, lock_topic
from edge.mqtt.publisher import MqttPublisher

REPO = Path(__file__).resolve().parents[1]
PREFIX = "fashion-edge/store-042"


def presence(port: int, client_id: str, device: str = "box-a") -> Presence:
    return Presence(MQTTConfig(), "127.0.0.1", port, client_id, PREFIX, device)


class Watch:
    """A subscriber recording every message (retained flag included) under ``topic``."""

    def __init__(self, port: int, topic: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:6]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.messages.append((m.topic, m.payload, bool(m.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait(self, predicate, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained(port: int, topic: str, wait_s: float = 0.5) -> bytes | None:
    w = Watch(port, topic)
    time.sleep(wait_s)
    w.stop()
    held = [p for t, p, r in w.messages if r and t == topic]
    return held[-1] if held else None


def test_second_daemon_with_the_same_client_id_is_refused_before_it_takes_the_session(mosquitto, tmp_path):
    client_id = f"fashion-edge-store-042-{uuid.uuid4().hex[:6]}"
    first = presence(mosquitto.port, client_id)
    first.claim()
    assert first.checked
    # the first daemon's publisher, connected with that client id
    pub = MqttPublisher(MQTTConfig(), PREFIX, client_id, tmp_path / "outbox.sqlite", "127.0.0.1", mosquitto.port,
                        reconnect_min_s=0.1, reconnect_max_s=0.5)
    pub.start()
    try:
        deadline = time.monotonic() + 10
        while not pub.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.connected
        lock = json.loads(retained(mosquitto.port, lock_topic(PREFIX, client_id)))
        assert lock["client_id"] == client_id and lock["instance"] == first.instance

        second = presence(mosquitto.port, client_id, device="box-b")
        with pytest.raises(ClientIdInUse) as refused:
            second.claim()
        assert isinstance(refused.value, ConfigError)  # the CLI prints one line and exits 2
        text = str(refused.value)
        assert text.startswith("mqtt.client_id: MQTT client id") and "\n" not in text
        assert f"pid {lock['pid']}" in text
        # the first publisher kept its session: never disconnected by a takeover
        time.sleep(0.5)
        assert pub.connected and pub.last_error is None
        # the refused one holds nothing: no availability of box-b
        assert retained(mosquitto.port, device_availability_topic(PREFIX, "box-b")) is None
    finally:
        pub.stop(flush_timeout_s=1)
        first.release()
    # released: the lock is gone and the id is free again at once
    assert retained(mosquitto.port, lock_topic(PREFIX, client_id)) is None
    assert retained(mosquitto.port, device_availability_topic(PREFIX, "box-a")) == b"offline"
    again = presence(mosquitto.port, client_id)
    started = time.monotonic()
    again.claim()
    assert time.monotonic() - started < 2.0, "no stale lock to wait for"
    again.release()


def test_a_stale_lock_of_a_killed_daemon_is_taken_over(mosquitto):
    client_id = f"fashion-edge-killed-{uuid.uuid4().hex[:6]}"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from edge.config import MQTTConfig
        from edge.mqtt.presence import Presence
        p = Presence(MQTTConfig(), "127.0.0.1", {mosquitto.port}, {client_id!r}, {PREFIX!r}, "box-a")
        p.claim()
        print("held", flush=True)
        time.sleep(60)
    """)
    watch = Watch(mosquitto.port, f"{PREFIX}/availability/#")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        avail = device_availability_topic(PREFIX, "box-a")
        assert watch.wait(lambda: b"online" in watch.payloads(avail))
        # alive: refused
        with pytest.raises(ClientIdInUse):
            presence(mosquitto.port, client_id).claim()
        proc.kill()  # SIGKILL: no clean stop, the retained lock stays behind
        proc.wait(10)
        # the broker publishes the Last Will: Home Assistant sees this device offline
        assert watch.wait(lambda: watch.payloads(avail)[-1:] == [b"offline"])
        assert retained(mosquitto.port, lock_topic(PREFIX, client_id)) is not None, "stale lock left behind"
        successor = presence(mosquitto.port, client_id)
        successor.claim()  # nobody answers the ping: the stale lock is taken over
        lock = json.loads(retained(mosquitto.port, lock_topic(PREFIX, client_id)))
        assert lock["instance"] == successor.instance
        assert watch.wait(lambda: watch.payloads(avail)[-1:] == [b"online"])
        successor.release()
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.stop()


def test_two_boxes_of_one_site_keep_their_own_availability(mosquitto):
    a = presence(mosquitto.port, f"fe-a-{uuid.uuid4().hex[:6]}", device="store-042-aaaa")
    b = presence(mosquitto.port, f"fe-b-{uuid.uuid4().hex[:6]}", device="store-042-bbbb")
    a.claim()
    b.claim()
    try:
        a.release()  # box A stops: B stays online
        assert retained(mosquitto.port, device_availability_topic(PREFIX, "store-042-aaaa")) == b"offline"
        assert retained(mosquitto.port, device_availability_topic(PREFIX, "store-042-bbbb")) == b"online"
    finally:
        b.release()


def test_unreachable_broker_skips_the_check():
    from conftest import free_port

    p = presence(free_port(), "fe-nobody")
    started = time.monotonic()
    p.claim()  # nothing listens: no refusal, the holder retries in the background like the publisher
    assert not p.checked and time.monotonic() - started < 8
    p.release()

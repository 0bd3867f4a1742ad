"""MQTT publisher against a real mosquitto (and the embedded amqtt broker).

Subscribers are plain paho clients; publisher processes that must die hard are real
subprocesses killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import MQTTConfig, OutboxConfig
from edge.errors import ConfigError
from edge.mqtt import EmbeddedBroker, MqttPublisher, Outbox, make_alert, make_status, validate_alert
from edge.mqtt.broker import BrokerError
from edge.mqtt.payloads import load_alert_schema

REPO = Path(__file__).resolve().parents[1]
PREFIX = "fashion-edge/test-site"


# ----------------------------------------------------------------------------- helpers


class Subscriber:
    """A paho subscriber recording (topic, payload, retain) in arrival order."""

    def __init__(self, port: int, topic: str = "fashion-edge/#", client_id: str | None = None, clean: bool = True):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or "", clean_session=clean, protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[tuple[bytes, bool]]:
        with self._lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def alerts(self) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, r in self.messages if "/alerts/" in t]

    def wait_for(self, condition, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def alert(i: int, camera: str = "cam1", rule: str = "suit_alert") -> dict:
    return make_alert("test-site", camera, i, rule, [("suit", 0.9), ("tie", 0.75)], [10, 20, 110, 320], i, i / 25)


def unique_in_order(alerts: list[dict]) -> list[str]:
    seen, ids = set(), []
    for a in alerts:
        if a["id"] not in seen:
            seen.add(a["id"])
            ids.append(a["id"])
    return ids


def wait(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def publisher(port: int, outbox: Path, cfg: MQTTConfig | None = None, client_id: str = "fe-test") -> MqttPublisher:
    # Short reconnect back-off keeps the tests fast; the daemon uses the defaults (1 s doubling to 30 s).
    return MqttPublisher(cfg or MQTTConfig(keepalive_s=5), PREFIX, client_id, outbox, "127.0.0.1", port,
                         reconnect_min_s=0.25, reconnect_max_s=1)


# A publisher in its own process, so the test can SIGKILL it. Prints one JSON line per event.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from edge.config import MQTTConfig
    from edge.mqtt import MqttPublisher, make_alert
    port, outbox, n_alerts = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    pub = MqttPublisher(MQTTConfig(keepalive_s=5), "PREFIX", "fe-child", outbox, "127.0.0.1", port)
    pub.start()
    deadline = time.monotonic() + 5
    while n_alerts == 0 and not pub.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    ids = []
    for i in range(n_alerts):
        payload = make_alert("test-site", "cam1", i, "suit_alert", [("suit", 0.9)], [1, 2, 3, 4], i, None)
        pub.publish_alert(payload)
        ids.append(payload["id"])
    print(json.dumps({"connected": pub.connected, "ids": ids, "depth": pub.outbox_depth}), flush=True)
    time.sleep(60)
    """
).replace("PREFIX", PREFIX)


def spawn_child(tmp_path: Path, port: int, outbox: Path, n_alerts: int) -> tuple[subprocess.Popen, dict]:
    script = tmp_path / "child_publisher.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, str(script), str(port), str(outbox), str(n_alerts)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
    )
    line = child.stdout.readline()
    assert line, "child publisher died"
    return child, json.loads(line)


# ----------------------------------------------------------------------------- payloads


def test_alert_payload_validates_against_the_json_schema():
    schema = load_alert_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    payload = alert(7)
    validator.validate(payload)
    assert "snapshot" not in payload  # privacy: absent unless enabled
    assert payload["source_time_s"] == pytest.approx(0.28)
    assert alert(1)["id"] != alert(1)["id"]

    older = {**payload, "snapshot": "/9j/2Q=="}  # an alert of a version before pictures moved off alerts
    validator.validate(older)
    validate_alert(older)

    bad_payloads = [
        {**payload, "extra": 1},
        {k: v for k, v in payload.items() if k != "id"},
        {**payload, "track_id": "7"},
        {**payload, "garments": [{"label": "suit", "score": 1.5}]},
        {**payload, "garments": []},
        {**payload, "box": [1, 2, 3]},
        {**payload, "id": "not-a-uuid"},
        {**payload, "time": "yesterday"},
        {**payload, "source_time_s": "3"},
    ]
    for bad in bad_payloads:
        assert not validator.is_valid(bad), bad
        with pytest.raises(ValueError, match=r"^alert\."):
            validate_alert(bad)


def test_status_payload_states():
    status = make_status("reconnecting", fps=12.345, detail="rtsp timeout")
    assert status["state"] == "reconnecting" and status["fps"] == 12.35 and status["since"] > 1e9  # epoch seconds, as the daemon sends
    with pytest.raises(ValueError):
        make_status("sleeping")


# ----------------------------------------------------------------------------- availability / LWT


def test_availability_online_retained_then_last_will_offline_on_kill9(mosquitto, tmp_path):
    child, info = spawn_child(tmp_path, mosquitto.port, tmp_path / "outbox.sqlite", 0)
    try:
        assert info["connected"] is True
        late = Subscriber(mosquitto.port, f"{PREFIX}/availability")
        assert late.wait_for(lambda: late.on(f"{PREFIX}/availability") == [(b"online", True)], 5)
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        # The broker sees the socket close and publishes the Last Will (retained, so ``retain`` is
        # False for a live subscriber but True for the next one).
        assert late.wait_for(lambda: (b"offline", False) in late.on(f"{PREFIX}/availability"), 5)
        later = Subscriber(mosquitto.port, f"{PREFIX}/availability")
        assert later.wait_for(lambda: later.on(f"{PREFIX}/availability") == [(b"offline", True)], 5)
        late.close()
        later.close()
    finally:
        child.kill()
        child.wait()


def test_clean_stop_publishes_offline_and_retained_state_is_republished_on_reconnect(mosquitto, tmp_path):
    pub = publisher(mosquitto.port, tmp_path / "outbox.sqlite")
    pub.start()
    assert wait(lambda: pub.connected, 5)
    pub.publish_counts("cam1", {"people": 0, "suit": 0})
    pub.publish_counts("cam1", {"people": 3, "suit": 1})
    pub.publish_status("cam1", make_status("streaming", fps=10))
    pub.publish_analytics("cam1", {"window_start": "2026-11-22T05:00:00Z", "visitors": 4})

    # A broker without persistence forgets every retained message on restart ...
    mosquitto.stop()
    assert wait(lambda: not pub.connected, 5)
    pub.publish_counts("cam1", {"people": 4, "suit": 2})  # while disconnected: remembered, sent on reconnect
    mosquitto.start()
    assert wait(lambda: pub.connected, 10)
    # ... and the publisher restores the latest state as soon as it reconnects.
    sub = Subscriber(mosquitto.port)
    topics = [f"{PREFIX}/availability", f"{PREFIX}/cameras/cam1/counts", f"{PREFIX}/cameras/cam1/status",
              f"{PREFIX}/cameras/cam1/analytics"]
    assert sub.wait_for(lambda: all(sub.on(t) for t in topics), 5)
    assert sub.on(topics[0]) == [(b"online", True)]
    assert [json.loads(p) for p, _ in sub.on(topics[1])] == [{"people": 4, "suit": 2}]
    assert json.loads(sub.on(topics[2])[0][0])["state"] == "streaming"
    assert json.loads(sub.on(topics[3])[0][0])["visitors"] == 4

    pub.publish_stats({"fps": 9.5, "latency_ms": {"detector": {"p50": 20.0, "p95": 31.0}}, "dropped_frames": 2})
    assert sub.wait_for(lambda: sub.on(f"{PREFIX}/stats"), 5)
    stats, retained = sub.on(f"{PREFIX}/stats")[0]
    stats = json.loads(stats)
    assert not retained and stats["fps"] == 9.5 and stats["outbox_depth"] == 0 and stats["connected"] is True

    pub.publish_snapshot("cam1", b"\xff\xd8jpeg\xff\xd9")
    assert sub.wait_for(lambda: sub.on(f"{PREFIX}/cameras/cam1/snapshot") == [(b"\xff\xd8jpeg\xff\xd9", False)], 5)

    pub.stop(flush_timeout_s=2)
    assert not pub.connected
    assert sub.wait_for(lambda: (b"offline", False) in sub.on(topics[0]), 5)
    sub.close()


# ----------------------------------------------------------------------------- delivery guarantees


def test_broker_restart_mid_stream_delivers_every_alert_once_in_order(mosquitto_factory, tmp_path):
    # A persistent broker and a persistent (clean_session=False) subscriber session: what a staff
    # consumer uses so that alerts sent while it reconnects are queued for it.
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    broker = mosquitto_factory(f"persistence true\npersistence_location {store}/\n")
    sub = Subscriber(broker.port, f"{PREFIX}/alerts/#", client_id="staff-console", clean=False)
    pub = publisher(broker.port, tmp_path / "outbox.sqlite")
    pub.start()
    assert wait(lambda: pub.connected, 5)

    sent = []
    for i in range(30):
        payload = alert(i)
        pub.publish_alert(payload)
        sent.append(payload["id"])
        if i == 10:
            broker.stop()  # mid-stream: some alerts may be in flight
        if i == 20:
            assert pub.outbox_depth > 0  # kept durably while the broker is down
            broker.start()
        time.sleep(0.01)

    assert sub.wait_for(lambda: len(unique_in_order(sub.alerts())) >= 30, 20)
    assert unique_in_order(sub.alerts()) == sent  # every alert, in order
    assert wait(lambda: pub.outbox_depth == 0, 5)
    pub.stop(flush_timeout_s=1)
    sub.close()


def test_outbox_survives_kill9_and_the_next_publisher_delivers_without_duplicates(mosquitto, tmp_path):
    outbox = tmp_path / "state" / "outbox.sqlite"
    mosquitto.stop()  # broker down: the child can only queue
    child, info = spawn_child(tmp_path, mosquitto.port, outbox, 12)
    assert info["connected"] is False and info["depth"] == 12
    child.send_signal(signal.SIGKILL)
    child.wait(5)
    with Outbox(outbox) as box:
        assert box.depth == 12

    mosquitto.start()
    sub = Subscriber(mosquitto.port, f"{PREFIX}/alerts/#")
    pub = publisher(mosquitto.port, outbox)
    pub.start()
    assert sub.wait_for(lambda: len(sub.alerts()) >= 12, 10)
    time.sleep(0.3)  # a duplicate would arrive now
    received = [a["id"] for a in sub.alerts()]
    assert received == info["ids"]  # all of them, in order, none twice
    assert wait(lambda: pub.outbox_depth == 0, 5)
    pub.stop(flush_timeout_s=1)
    sub.close()


def test_bounded_outbox_counts_drops_while_the_broker_is_down(mosquitto, tmp_path):
    mosquitto.stop()
    cfg = MQTTConfig(keepalive_s=5, outbox=OutboxConfig(max_messages=5, drop="oldest"))
    pub = publisher(mosquitto.port, tmp_path / "outbox.sqlite", cfg)
    pub.start()
    sent = [alert(i) for i in range(8)]
    for payload in sent:
        pub.publish_alert(payload)
    assert pub.outbox_depth == 5 and pub.outbox_dropped == 3

    mosquitto.start()
    sub = Subscriber(mosquitto.port, f"{PREFIX}/alerts/#")
    assert sub.wait_for(lambda: len(sub.alerts()) >= 5, 10)
    assert [a["id"] for a in sub.alerts()] == [p["id"] for p in sent[3:]]  # the 3 oldest were dropped
    pub.stop(flush_timeout_s=1)
    assert pub.outbox_depth == 0 and pub.outbox_dropped == 3  # still readable after stop
    sub.close()


# ----------------------------------------------------------------------------- authentication


def test_refused_connack_never_counts_as_connected(mosquitto_factory, tmp_path, monkeypatch):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "fashion-edge", "right-secret"], check=True)
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {passwords}\n")

    monkeypatch.setenv("FE_TEST_MQTT_PASSWORD", "wrong-secret")
    cfg = MQTTConfig(keepalive_s=5, username="fashion-edge", password_env="FE_TEST_MQTT_PASSWORD")
    wrong = publisher(broker.port, tmp_path / "wrong.sqlite", cfg, client_id="fe-wrong")
    wrong.start()
    assert wait(lambda: wrong.last_error is not None, 5)
    assert "refused" in wrong.last_error and "password" in wrong.last_error.lower()
    wrong.publish_alert(alert(1))
    time.sleep(1.0)  # covers retries (back-off 0.25 s doubling to 1 s)
    assert not wrong.connected and not wrong.ever_connected
    assert wrong.outbox_depth == 1  # kept, not lost
    wrong.stop(flush_timeout_s=0)

    password_file = tmp_path / "mqtt-password"
    password_file.write_text("right-secret\n")
    cfg = MQTTConfig(keepalive_s=5, username="fashion-edge", password_file=password_file)
    right = publisher(broker.port, tmp_path / "wrong.sqlite", cfg, client_id="fe-right")
    right.start()
    assert wait(lambda: right.connected, 5)
    assert wait(lambda: right.outbox_depth == 0, 5)  # the alert queued under the wrong password goes out
    right.stop(flush_timeout_s=1)


def test_missing_password_source_is_a_one_line_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FE_TEST_UNSET_PASSWORD", raising=False)
    cfg = MQTTConfig(username="u", password_env="FE_TEST_UNSET_PASSWORD")
    with pytest.raises(ConfigError, match=r"^mqtt\.password_env: environment variable FE_TEST_UNSET_PASSWORD"):
        publisher(1883, tmp_path / "o.sqlite", cfg)
    cfg = MQTTConfig(username="u", password_file=tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read"):
        publisher(1883, tmp_path / "o.sqlite", cfg)


def test_unreachable_broker_at_start_is_not_fatal(tmp_path):
    from conftest import free_port

    pub = publisher(free_port(), tmp_path / "outbox.sqlite")
    pub.start()
    pub.publish_alert(alert(1))
    assert wait(lambda: pub.last_error is not None, 5)
    assert "cannot reach" in pub.last_error and not pub.connected
    started = time.monotonic()
    pub.stop(flush_timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert pub.outbox_depth == 1


# ----------------------------------------------------------------------------- embedded broker


def test_embedded_broker_round_trip(tmp_path):
    with EmbeddedBroker(port=0) as broker:
        assert broker.port > 0 and broker.kind in ("amqtt", "mosquitto")
        pub = publisher(broker.port, tmp_path / "outbox.sqlite")
        pub.start()
        assert wait(lambda: pub.connected, 5)
        pub.publish_counts("cam1", {"people": 2})
        sub = Subscriber(broker.port)
        assert sub.wait_for(lambda: sub.on(f"{PREFIX}/cameras/cam1/counts") == [(b'{"people":2}', True)], 5)
        assert sub.on(f"{PREFIX}/availability") == [(b"online", True)]
        payload = alert(3)
        pub.publish_alert(payload)
        assert sub.wait_for(lambda: [a["id"] for a in sub.alerts()] == [payload["id"]], 5)
        assert wait(lambda: pub.outbox_depth == 0, 5)

        with pytest.raises(BrokerError, match="already in use"):
            EmbeddedBroker(port=broker.port).start()
        pub.stop(flush_timeout_s=1)
        sub.close()


# ----------------------------------------------------------------------------- TLS and the example ACL


def make_certs(folder: Path, name: str = "ca") -> dict[str, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1 (the commands of docs/mqtt.md)."""
    folder.mkdir(parents=True, exist_ok=True)

    def ssl_cmd(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl_cmd("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-sha256", "-days", "2", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.crt", "-subj", f"/CN=fashion-edge test {name}")
    ssl_cmd("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=localhost")
    (folder / "broker.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    ssl_cmd("x509", "-req", "-in", "broker.csr", "-CA", f"{name}.crt", "-CAkey", f"{name}.key", "-CAcreateserial",
            "-days", "2", "-sha256", "-extfile", "broker.ext", "-out", "broker.crt")
    return {"ca": folder / f"{name}.crt", "cert": folder / "broker.crt", "key": folder / "broker.key"}


def test_tls_connects_with_the_right_ca_and_reports_a_wrong_one(mosquitto_factory, tmp_path):
    from conftest import free_port

    from edge.config import TLSConfig

    certs = make_certs(tmp_path / "tls")
    other_ca = make_certs(tmp_path / "other", "otherca")["ca"]
    tls_port = free_port()
    broker = mosquitto_factory(
        f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"
    )
    good = publisher(tls_port, tmp_path / "good.sqlite", MQTTConfig(keepalive_s=5, tls=TLSConfig(ca=certs["ca"])))
    bad = publisher(tls_port, tmp_path / "bad.sqlite", MQTTConfig(keepalive_s=5, tls=TLSConfig(ca=other_ca)),
                    client_id="fe-bad")
    sub = Subscriber(broker.port, f"{PREFIX}/alerts/#")  # the plain listener of the same broker
    good.start()
    bad.start()
    assert wait(lambda: good.connected, 5)
    payload = alert(1)
    good.publish_alert(payload)
    assert sub.wait_for(lambda: [a["id"] for a in sub.alerts()] == [payload["id"]], 5)
    assert wait(lambda: bad.last_error is not None, 5)
    assert "TLS handshake" in bad.last_error and "CERTIFICATE_VERIFY_FAILED" in bad.last_error
    assert not bad.connected
    for pub in (good, bad):
        pub.stop(flush_timeout_s=0.5)
    sub.close()

    with pytest.raises(ConfigError, match=r"mqtt\.tls\.ca: file not found"):
        publisher(tls_port, tmp_path / "x.sqlite", MQTTConfig(tls=TLSConfig(ca=tmp_path / "missing.crt")))


def test_example_acl_staff_reads_alerts_only(mosquitto_factory, tmp_path, monkeypatch):
    passwords = tmp_path / "passwd"
    for i, user in enumerate(("store-042", "staff", "store-043")):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *create, str(passwords), user, f"{user}-pw"], check=True)
    acl = REPO / "configs" / "mosquitto" / "fashion-edge.acl"
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n")

    def login(user: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}")
        client.username_pw_set(user, f"{user}-pw")
        return client

    staff_seen: list[str] = []
    staff = login("staff")
    staff.on_message = lambda c, u, m: staff_seen.append(m.topic)
    staff.connect("127.0.0.1", broker.port)
    staff.subscribe("fashion-edge/#", qos=1)  # allowed, but only readable topics are delivered
    staff.loop_start()
    daemon_seen: list[str] = []
    watcher = login("store-042")
    watcher.on_message = lambda c, u, m: daemon_seen.append(m.topic)
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("fashion-edge/#", qos=1)
    watcher.loop_start()
    time.sleep(0.3)

    monkeypatch.setenv("FE_TEST_DAEMON_PW", "store-042-pw")
    cfg = MQTTConfig(keepalive_s=5, username="store-042", password_env="FE_TEST_DAEMON_PW")
    pub = MqttPublisher(cfg, "fashion-edge/store-042", "fe-acl", tmp_path / "o.sqlite", "127.0.0.1", broker.port)
    pub.start()
    assert wait(lambda: pub.connected, 5)
    pub.publish_counts("cam1", {"people_now": 1})
    payload = make_alert("store-042", "cam1", 1, "suit_alert", [("suit", 0.9)], [1, 2, 3, 4], 1, None)
    pub.publish_alert(payload)
    staff.publish("fashion-edge/store-042/alerts/cam1/fake", b"{}", qos=1)  # staff may not write
    assert wait(lambda: "fashion-edge/store-042/alerts/cam1/suit_alert" in staff_seen, 5)
    time.sleep(0.3)
    assert sorted(set(staff_seen)) == ["fashion-edge/store-042/alerts/cam1/suit_alert",
                                       "fashion-edge/store-042/availability"]
    assert "fashion-edge/store-042/cameras/cam1/counts" in daemon_seen
    assert "fashion-edge/store-042/alerts/cam1/fake" not in daemon_seen
    # another store's daemon account may not write (or read) store-042's topics (issue 12)
    other_seen: list[str] = []
    other = login("store-043")
    other.on_message = lambda c, u, m: other_seen.append(m.topic)
    other.connect("127.0.0.1", broker.port)
    other.subscribe("fashion-edge/#", qos=1)
    other.loop_start()
    time.sleep(0.3)
    other.publish("fashion-edge/store-042/alerts/cam1/forged", b"{}", qos=1)
    other.publish("fashion-edge/store-043/alerts/cam1/own", b"{}", qos=1)
    assert wait(lambda: "fashion-edge/store-043/alerts/cam1/own" in other_seen, 5)
    time.sleep(0.3)
    assert "fashion-edge/store-042/alerts/cam1/forged" not in daemon_seen + staff_seen
    assert not [t for t in other_seen if t.startswith("fashion-edge/store-042/")]
    other.disconnect()
    other.loop_stop()
    pub.stop(flush_timeout_s=1)
    for client in (staff, watcher):
        client.disconnect()
        client.loop_stop()

"""Home Assistant MQTT discovery against a real mosquitto: retained configs, expected keys, removal."""

from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from edge.config import parse_config
from edge.mqtt.discovery import Discovery, device_id, discovery_configs, node_id
from edge.mqtt.payloads import CAMERA_STATES, make_alert
from edge.mqtt.publisher import MqttPublisher

# Keys Home Assistant's MQTT discovery accepts for these platforms (home-assistant.io/integrations/
# sensor.mqtt, event.mqtt, binary_sensor.mqtt, mqtt#discovery-messages); anything else is a typo HA
# would reject. (The `homeassistant` package, whose platform schemas would be the better judge, needs
# a newer Python than this project's 3.11: the table is taken from those pages.)
COMMON = {"name", "unique_id", "availability", "device", "origin", "state_topic", "value_template", "icon", "qos",
          "entity_category"}
SENSOR = COMMON | {"state_class", "unit_of_measurement", "device_class", "options", "json_attributes_topic"}
EVENT = COMMON | {"event_types", "device_class", "json_attributes_topic"}
BINARY = COMMON | {"payload_on", "payload_off", "device_class"}
# image.mqtt: the picture comes from image_topic (raw bytes of content_type) or url_topic; no state_topic
IMAGE = (COMMON - {"state_topic", "value_template", "qos"}) | {"image_topic", "content_type", "image_encoding",
                                                                 "url_topic", "url_template", "json_attributes_topic"}
DEVICE = {"identifiers", "name", "manufacturer", "model", "sw_version", "configuration_url"}
ORIGIN = {"name", "sw_version", "support_url"}
AVAILABILITY = {"topic", "payload_available", "payload_not_available", "value_template"}
ENTITY_CATEGORIES = {"config", "diagnostic"}


def config(enabled: bool, rules=("dress", "suit"), cameras=("entrance", "till"), site="store-042", **extra):
    return parse_config({
        "site": site,
        "cameras": [{"name": c, "source": "0"} for c in cameras],
        "detector": {"model": "x.tflite"}, "classifier": {"model": "y.tflite"},
        "rules": [{"name": r, "when": [r]} for r in rules],
        "mqtt": {"discovery": {"enabled": enabled, **extra.pop("discovery", {})}},
        **extra,
    })


NODE = node_id(config(True))
AVAILABLE = f"fashion-edge/store-042/availability/devices/{device_id(config(True))}"


class Retained:
    """A fresh subscriber: collects what the broker holds retained under homeassistant/#."""

    def __init__(self, port: int, topic: str = "homeassistant/#"):
        self.got: dict[str, bytes] = {}
        self.live: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}")
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_message = self._msg
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def _msg(self, client, userdata, m):
        with self.lock:
            if m.retain:
                self.got[m.topic] = m.payload
            self.live.append((m.topic, m.payload))

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained_now(port: int, wait_s: float = 0.5, topic: str = "homeassistant/#") -> dict[str, bytes]:
    r = Retained(port, topic)
    time.sleep(wait_s)
    r.stop()
    return {t: p for t, p in r.got.items() if p}


def retained_once_published(port: int, count: int, timeout_s: float = 10) -> dict[str, bytes]:
    """The retained messages once ``count`` of them are held (the publisher sends its queue at
    CONNACK, asynchronously: on a loaded machine that can take longer than one read)."""
    deadline = time.monotonic() + timeout_s
    held = retained_now(port, 0.3)
    while len(held) < count and time.monotonic() < deadline:
        held = retained_now(port, 0.3)
    return held


def publisher(cfg, tmp_path, port, name="pub"):
    return MqttPublisher(cfg.mqtt, prefix=cfg.topic_prefix, client_id=f"fe-{name}-{uuid.uuid4().hex[:6]}",
                         outbox_path=tmp_path / f"{name}.sqlite", host="127.0.0.1", port=port,
                         reconnect_min_s=0.1, reconnect_max_s=0.5)


def wait_connected(pub, timeout=10):
    deadline = time.monotonic() + timeout
    while not pub.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.connected


def test_configs_follow_home_assistant_format():
    cfg = config(True)
    configs = discovery_configs(cfg)
    # the daemon's connectivity + 2 cameras x (customers, people now, dress share, suit share, status)
    # + 2 x 2 rule events
    assert len(configs) == 1 + 2 * 5 + 4
    uniques = [c["unique_id"] for c in configs.values()]
    assert len(set(uniques)) == len(uniques)
    assert discovery_configs(config(True)) == configs, "unique ids and payloads must be stable across restarts"
    assert NODE.startswith("fashion_edge_store_042_") and len(NODE) == len("fashion_edge_store_042_") + 8
    for topic, c in configs.items():
        parts = topic.split("/")
        assert parts[0] == "homeassistant" and parts[-1] == "config" and len(parts) == 5
        component = parts[1]
        assert component in ("sensor", "event", "binary_sensor")
        assert parts[2] == NODE
        allowed = {"sensor": SENSOR, "event": EVENT, "binary_sensor": BINARY}[component]
        assert set(c) <= allowed, set(c) - allowed
        assert {"name", "unique_id", "state_topic", "device"} <= set(c)
        assert c["unique_id"].startswith(NODE + "_")
        assert c.get("entity_category", "diagnostic") in ENTITY_CATEGORIES
        assert set(c["device"]) <= DEVICE and c["device"]["identifiers"] == [NODE]
        assert "configuration_url" not in c["device"], "the web page is off"
        if component == "binary_sensor":  # the device's own online/offline: its availability topic is the state
            assert c["state_topic"] == AVAILABLE and "availability" not in c
            assert (c["payload_on"], c["payload_off"], c["device_class"]) == ("online", "offline", "connectivity")
            assert c["entity_category"] == "diagnostic"
            continue
        assert c["device"]["name"] == "fashion-edge store-042 (entrance, till)"
        assert set(c["origin"]) <= ORIGIN
        assert c["availability"] == [{"topic": AVAILABLE, "payload_available": "online",
                                      "payload_not_available": "offline"}]
        assert all(set(a) <= AVAILABILITY for a in c["availability"])
        assert c["state_topic"].startswith("fashion-edge/store-042/")
        if component == "event":
            assert c["event_types"] and "/alerts/" in c["state_topic"]
            assert c["qos"] == 1, "HA must subscribe at QoS 1: the outbox's at-least-once delivery reaches it"
            assert "entity_category" not in c, "alerts are a primary entity"
        if c.get("device_class") == "enum":
            # every state the daemon publishes, "failed" too (else HA: "Ignoring invalid option")
            assert c["options"] == list(CAMERA_STATES) and "failed" in c["options"]
            assert c["entity_category"] == "diagnostic"
        if parts[3].endswith(("customers", "people_now", "share")):
            assert "entity_category" not in c


@pytest.mark.parametrize("snapshots", [{}, {"enabled": True}, {"mqtt": True}, {"enabled": True, "mqtt": True}])
def test_an_image_entity_per_camera_only_with_both_picture_opt_ins(snapshots):
    configs = discovery_configs(config(True, snapshots=snapshots))
    images = {t: c for t, c in configs.items() if t.startswith("homeassistant/image/")}
    if not (snapshots.get("enabled") and snapshots.get("mqtt")):
        assert images == {} and len(configs) == 1 + 2 * 5 + 4  # nothing about pictures without both
        return
    assert len(configs) == 1 + 2 * 5 + 4 + 2
    assert sorted(images) == [f"homeassistant/image/{NODE}/{cam}_last_alert_picture/config"
                              for cam in ("entrance", "till")]
    for topic, c in images.items():
        camera = topic.split("/")[3].removesuffix("_last_alert_picture")
        assert set(c) <= IMAGE, set(c) - IMAGE
        assert c["image_topic"] == f"fashion-edge/store-042/cameras/{camera}/snapshot"
        assert c["content_type"] == "image/jpeg" and "url_topic" not in c  # HA: one of image_topic / url_topic
        assert c["unique_id"] == f"{NODE}_{camera}_last_alert_picture"
        assert c["availability"][0]["topic"] == AVAILABLE and c["device"]["identifiers"] == [NODE]
        assert "entity_category" not in c  # the picture is a primary entity


def test_two_boxes_of_one_site_do_not_clash():
    entrance, till = config(True, cameras=("entrance",)), config(True, cameras=("till",))
    a, b = discovery_configs(entrance), discovery_configs(till)
    assert not set(a) & set(b)
    assert not {c["unique_id"] for c in a.values()} & {c["unique_id"] for c in b.values()}
    avail = {c["availability"][0]["topic"] for c in a.values() if "availability" in c}
    assert len(avail) == 1 and avail.isdisjoint(c["availability"][0]["topic"] for c in b.values() if "availability" in c)
    # the same cameras on two boxes: mqtt.discovery.device_id tells them apart
    left = config(True, discovery={"device_id": "left-box"})
    right = config(True, discovery={"device_id": "right-box"})
    assert node_id(left) == "fashion_edge_left_box" and node_id(right) == "fashion_edge_right_box"
    assert not {c["unique_id"] for c in discovery_configs(left).values()} & {
        c["unique_id"] for c in discovery_configs(right).values()}


def test_configuration_url_when_the_web_page_is_on():
    on = config(True, service={"web": {"enabled": True, "listen": "127.0.0.1:8088"}})
    devices = [c["device"] for c in discovery_configs(on).values()]
    assert all(d["configuration_url"] == "http://127.0.0.1:8088/" for d in devices)


def test_event_template_renders_the_alert_payload():
    jinja2 = pytest.importorskip("jinja2")
    cfg = config(True)
    event = next(c for t, c in discovery_configs(cfg).items() if t.startswith("homeassistant/event/"))
    alert = make_alert("store-042", "entrance", 17, event["event_types"][0], [("dress", 0.9), ("shoe", 0.7)],
                       [1, 2, 3, 4], 10, 1.5, decided="exit")
    env = jinja2.Environment()
    env.filters["tojson"] = lambda v: json.dumps(v)  # Home Assistant's tojson (jinja2's own escapes for HTML)
    rendered = json.loads(env.from_string(event["value_template"]).render(value_json=alert))
    assert rendered == {"event_type": alert["rule"], "camera": "entrance", "time": alert["time"], "customer": 17,
                        "garments": alert["garments"], "decided": "exit", "id": alert["id"]}
    assert rendered["event_type"] in event["event_types"]


def test_discovery_retained_republished_on_reconnect_and_removed_when_off(tmp_path, mosquitto):
    cfg = config(True)
    expected = discovery_configs(cfg)
    state = tmp_path / "state"
    pub = publisher(cfg, tmp_path, mosquitto.port)
    Discovery(cfg, state).start(pub)  # before connect: goes out at CONNACK
    pub.start()
    wait_connected(pub)
    held = retained_once_published(mosquitto.port, len(expected))
    assert set(held) == set(expected)
    for topic, payload in held.items():
        assert json.loads(payload) == expected[topic]

    # broker restart (no persistence: retained messages are lost): republished after reconnect
    mosquitto.stop()
    mosquitto.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (not pub.connected or len(retained_now(mosquitto.port, 0.3)) < len(expected)):
        time.sleep(0.2)
    assert set(retained_now(mosquitto.port)) == set(expected)
    discovery = Discovery(cfg, state)
    pub.stop(flush_timeout_s=1)

    # a restart with one rule fewer removes only that rule's events
    fewer = config(True, rules=("dress",))
    pub2 = publisher(fewer, tmp_path, mosquitto.port, "pub2")
    d2 = Discovery(fewer, state)
    d2.start(pub2)
    pub2.start()
    wait_connected(pub2)
    time.sleep(0.3)
    d2.stop(pub2)
    pub2.stop(flush_timeout_s=1)
    held = retained_now(mosquitto.port)
    assert set(held) == set(discovery_configs(fewer))
    assert not any("suit_alert" in t for t in held)

    # discovery turned off: every config topic is emptied (Home Assistant removes the entities)
    off = config(False)
    watcher = Retained(mosquitto.port)
    pub3 = publisher(off, tmp_path, mosquitto.port, "pub3")
    d3 = Discovery(off, state)
    d3.start(pub3)
    pub3.start()
    wait_connected(pub3)
    time.sleep(0.5)
    d3.stop(pub3)
    pub3.stop(flush_timeout_s=1)
    watcher.stop()
    emptied = {t for t, p in watcher.live if p == b""}
    assert emptied == set(discovery_configs(fewer))
    assert retained_now(mosquitto.port) == {}
    assert not (state / "ha-discovery.json").exists()
    del discovery

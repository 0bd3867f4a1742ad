"""Home Assistant MQTT discovery: config payloads for the daemon's entities (docs/mqtt.md).

Home Assistant reads ``<discovery prefix>/<component>/<node_id>/<object_id>/config`` (retained
JSON). One device per daemon with a ``binary_sensor`` (connectivity, diagnostic) and per camera:

* ``sensor``  customers in the current window  (state: ``{prefix}/cameras/<camera>/counts``)
* ``sensor``  people in view now                (same topic)
* ``sensor``  dress share, suit share of the last closed window, in % (``.../analytics``)
* ``sensor``  camera status (diagnostic enum: ``payloads.CAMERA_STATES``, ``failed`` included; ``.../status``)
* ``event``   one per rule that applies to the camera, fed by ``{prefix}/alerts/<camera>/<rule>`` at
  QoS 1 (the outbox's at-least-once delivery reaches Home Assistant), with the alert's camera,
  time, customer, garments and ``decided`` as event attributes
* ``image``   the last alert's picture (``{prefix}/cameras/<camera>/snapshot``, JPEG), only when both
  ``snapshots.enabled`` and ``snapshots.mqtt`` are true (pictures leave the device only then)

The node id (``device_id``) is ``mqtt.discovery.device_id``, else the site plus a short hash of the
topic prefix and the camera names: two boxes of one site with different cameras get their own
device, unique ids and availability. Every entity's availability is this device's topic
``{prefix}/availability/devices/<device_id>`` (``online``; ``offline`` as the Last Will), held by
``edge.mqtt.presence``. Unique ids are built from the device id, camera and rule names only, so
they are stable across restarts. With the web page on, the device links to it
(``configuration_url``). The configs go through the publisher's retained-state path: remembered
and published again after every CONNACK.

The topics published are recorded in ``state_dir/ha-discovery.json``: a later start with
discovery turned off (or without a camera or rule that is gone) publishes an empty retained
payload on each of them, which is how Home Assistant removes an entity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from pathlib import Path

from .. import __version__
from ..config import Config
from .payloads import CAMERA_STATES
from .presence import device_availability_topic
from .topics import Topics

log = logging.getLogger(__name__)

RECORD_NAME = "ha-discovery.json"
STATUS_STATES = list(CAMERA_STATES)  # every state the daemon publishes, "failed" included
EVENT_QOS = 1


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text.lower())


def device_id(config: Config) -> str:
    """``mqtt.discovery.device_id``, else ``<site>-<8 hex>`` of the topic prefix and camera names."""
    if config.mqtt.discovery.device_id:
        return config.mqtt.discovery.device_id
    cameras = ",".join(sorted(c.name for c in config.cameras))
    digest = hashlib.sha256(f"{config.topic_prefix}|{cameras}".encode()).hexdigest()[:8]
    return f"{config.site}-{digest}"


def node_id(config: Config) -> str:
    return f"fashion_edge_{_slug(device_id(config))}"


def availability_topic(config: Config) -> str:
    return device_availability_topic(config.topic_prefix, device_id(config))


def configuration_url(config: Config) -> str | None:
    """The web page's address when it is on (a wildcard listen address: this host's name)."""
    web = config.service.web
    if not web.enabled:
        return None
    host, port = web.address
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def device(config: Config) -> dict:
    out = {
        "identifiers": [node_id(config)],
        "name": f"fashion-edge {config.site} ({', '.join(c.name for c in config.cameras)})",
        "manufacturer": "fashion-edge",
        "model": "in-store camera daemon",
        "sw_version": __version__,
    }
    url = configuration_url(config)
    if url:
        out["configuration_url"] = url
    return out


# An alert payload (docs/mqtt.md) -> Home Assistant's event: event_type plus the attributes
# a person or an automation wants (which camera, when, which customer, what they wear, how decided).
EVENT_TEMPLATE = (
    '{"event_type": {{ value_json.rule | tojson }}, "camera": {{ value_json.camera | tojson }}, '
    '"time": {{ value_json.time | tojson }}, "customer": {{ value_json.track_id }}, '
    '"garments": {{ value_json.garments | tojson }}, "decided": {{ value_json.decided | default(\'consensus\') | tojson }}, '
    '"id": {{ value_json.id | tojson }}}')


def pictures_over_mqtt(config: Config) -> bool:
    """Both opt-ins: pictures are taken (snapshots.enabled) and may leave the device (snapshots.mqtt)."""
    return bool(config.snapshots.enabled and config.snapshots.mqtt)


def _rules_of(config: Config, camera: str) -> list[str]:
    return [r.name for r in config.rules if not r.cameras or camera in r.cameras]


def discovery_configs(config: Config) -> dict[str, dict]:
    """Discovery topic -> config payload for every entity of this daemon."""
    topics = Topics(config.topic_prefix)
    prefix = config.mqtt.discovery.prefix.rstrip("/")
    node = node_id(config)
    available = availability_topic(config)
    common = {
        "availability": [{"topic": available, "payload_available": "online",
                          "payload_not_available": "offline"}],
        "device": device(config),
        "origin": {"name": "fashion-edge", "sw_version": __version__},
    }
    out: dict[str, dict] = {}

    def add(component: str, object_id: str, payload: dict) -> None:
        unique = f"{node}_{object_id}"
        out[f"{prefix}/{component}/{node}/{object_id}/config"] = {
            **payload, "unique_id": unique, **common}

    # the daemon itself: online/offline from the availability topic (its Last Will), so no availability of its own
    out[f"{prefix}/binary_sensor/{node}/online/config"] = {
        "name": "online", "unique_id": f"{node}_online", "state_topic": available,
        "payload_on": "online", "payload_off": "offline", "device_class": "connectivity",
        "entity_category": "diagnostic", "device": common["device"], "origin": common["origin"]}
    for cam in config.cameras:
        c = cam.name
        cid = _slug(c)
        add("sensor", f"{cid}_customers", {
            "name": f"{c} customers (window)", "state_topic": topics.counts(c),
            "value_template": "{{ value_json.customers_window }}", "state_class": "measurement",
            "unit_of_measurement": "customers", "icon": "mdi:account-group"})
        add("sensor", f"{cid}_people_now", {
            "name": f"{c} people now", "state_topic": topics.counts(c),
            "value_template": "{{ value_json.people_now }}", "state_class": "measurement",
            "unit_of_measurement": "people", "icon": "mdi:account-multiple"})
        for label in ("dress", "suit"):
            add("sensor", f"{cid}_{label}_share", {
                "name": f"{c} {label} share", "state_topic": topics.analytics(c),
                "value_template": "{{ (value_json.%s_share * 100) | round(1) }}" % label,
                "state_class": "measurement", "unit_of_measurement": "%", "icon": "mdi:hanger"})
        add("sensor", f"{cid}_status", {
            "name": f"{c} camera status", "state_topic": topics.status(c),
            "value_template": "{{ value_json.state }}", "device_class": "enum", "options": STATUS_STATES,
            "json_attributes_topic": topics.status(c), "entity_category": "diagnostic", "icon": "mdi:cctv"})
        if pictures_over_mqtt(config):
            # HA's MQTT image platform: the raw JPEG bytes of each message on image_topic are the picture
            add("image", f"{cid}_last_alert_picture", {
                "name": f"{c} last alert picture", "image_topic": topics.snapshot(c),
                "content_type": "image/jpeg", "icon": "mdi:image"})
        for rule in _rules_of(config, c):
            add("event", f"{cid}_{_slug(rule)}_alert", {
                "name": f"{c} {rule} alert", "state_topic": topics.alert(c, rule),
                "event_types": [rule], "qos": EVENT_QOS,
                # the alert payload has no event_type: give it one; every other key becomes an event attribute
                "value_template": EVENT_TEMPLATE, "icon": "mdi:bell-ring"})
    return out


class Discovery:
    """Publishes (or removes) the discovery configs through an ``MqttPublisher``."""

    def __init__(self, config: Config, state_dir: Path):
        self.config = config
        self.record = Path(state_dir) / RECORD_NAME
        self.published: list[str] = []
        self.removed: list[str] = []

    def _previous(self) -> list[str]:
        try:
            data = json.loads(self.record.read_text())
            return [t for t in data.get("topics", []) if isinstance(t, str)]
        except (OSError, ValueError, AttributeError):
            return []

    def start(self, publisher) -> None:
        """Called once the publisher runs; its retained state goes out now and after each reconnect."""
        # the publisher's retained state: remembered and published again after every CONNACK
        send = getattr(publisher, "publish_retained", None) or publisher._publish_retained
        previous = self._previous()
        configs = discovery_configs(self.config) if self.config.mqtt.discovery.enabled else {}
        self.removed = [t for t in previous if t not in configs]
        for topic in self.removed:  # an empty retained payload deletes the entity in Home Assistant
            send(topic, b"")
        for topic, payload in configs.items():
            send(topic, json.dumps(payload, sort_keys=True).encode())
        self.published = list(configs)
        if configs or previous:
            try:
                self.record.parent.mkdir(parents=True, exist_ok=True)
                # removed topics stay in the record until a broker has acknowledged a connect
                self.record.write_text(json.dumps({"topics": sorted(set(configs) | set(self.removed))}))
            except OSError as exc:
                log.warning("cannot write %s (%s)", self.record, exc)
        if configs:
            log.info("Home Assistant discovery: %d entities under %s/", len(configs),
                     self.config.mqtt.discovery.prefix)
        if self.removed:
            log.info("Home Assistant discovery: removing %d entities", len(self.removed))

    def stop(self, publisher) -> None:
        """Forget removed topics once they reached a broker (their empty payloads went out at CONNACK)."""
        if not self.removed or not getattr(publisher, "ever_connected", False):
            return
        try:
            if self.published:
                self.record.write_text(json.dumps({"topics": sorted(self.published)}))
            else:
                self.record.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot update %s (%s)", self.record, exc)

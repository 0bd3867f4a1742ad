"""This daemon's presence on the broker: one MQTT client id per running daemon, and a per-device
availability topic for Home Assistant (docs/mqtt.md, "Presence").

An MQTT broker lets a second client with the same client id take the first one's session: the
first daemon is disconnected, reconnects, takes it back, and the two knock each other off for as
long as both run (a copied config on a second box with the same ``site`` does exactly this, as the
default client id is ``fashion-edge-<site>-<hostname>``). MQTT itself has no "is this id in use"
request, so the daemon asks: before its publisher connects, ``claim()`` connects a probe with a
random client id and

1. subscribes to the lock topic ``{prefix}/availability/clients/<hash of the client id>`` (retained
   JSON of the holder: client id, host, pid, instance) and to its ``/ping`` and ``/pong``;
2. publishes a ping. When the probe receives its own ping back, the broker has already delivered
   the retained lock (it queues retained messages at SUBSCRIBE, before the later PUBLISH);
3. no lock, or one whose holder does not answer the ping within ``PING_TIMEOUT_S`` (a box that lost
   power leaves its retained lock behind): the id is free. A holder that answers is a live daemon:
   ``ClientIdInUse`` (a ConfigError, exit 2) before anything touched the first one's session.

Once claimed, a small holder connection (client id ``<client id>-presence``) keeps the lock
retained, answers pings, and owns the per-device availability topic
``{prefix}/availability/devices/<device id>``: retained ``online`` on connect, ``offline`` as its
Last Will and on a clean stop. Two boxes with the same site therefore never overwrite each
other's availability (``{prefix}/availability``, the publisher's own, stays as documented).

A broker that cannot be reached at start is not an error here: the check is skipped (logged) and
the holder connects in the background, like the publisher. Two daemons started within the same
second can both pass the check; the lock then names the last one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..config import MQTTConfig
from ..errors import ConfigError
from .connection import configure_client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # the probe gives up on an unreachable broker after this (the check is skipped)
PING_TIMEOUT_S = 2.0  # a live holder answers a ping well within this
QOS = 1


class ClientIdInUse(ConfigError):
    """Another running daemon is connected with this MQTT client id."""


def lock_topic(prefix: str, client_id: str) -> str:
    """Retained lock of a client id (hashed: a client id may hold characters a topic level cannot)."""
    digest = hashlib.sha256(client_id.encode("utf-8")).hexdigest()[:16]
    return f"{prefix.rstrip('/')}/availability/clients/{digest}"


def device_availability_topic(prefix: str, device_id: str) -> str:
    return f"{prefix.rstrip('/')}/availability/devices/{device_id}"


def _new_client(client_id: str, cfg: MQTTConfig) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         protocol=mqtt.MQTTv311)
    configure_client(client, cfg)
    client.suppress_exceptions = True
    return client


class Presence:
    def __init__(self, cfg: MQTTConfig, host: str, port: int, client_id: str, prefix: str, device_id: str):
        self.cfg, self.host, self.port = cfg, host, int(port)
        self.client_id = client_id
        self.lock = lock_topic(prefix, client_id)
        self.availability = device_availability_topic(prefix, device_id)
        self.instance = uuid.uuid4().hex
        self.identity = {"client_id": client_id, "host": socket.gethostname(), "pid": os.getpid(),
                         "instance": self.instance}
        self._holder: mqtt.Client | None = None
        self.checked = False  # the probe reached the broker and looked (False: skipped, broker unreachable)

    # ------------------------------------------------------------------ the check
    def holder_alive(self) -> dict | None:
        """The live holder's identity when another daemon answers for this client id, else None."""
        probe = _new_client(f"fashion-edge-probe-{uuid.uuid4().hex[:12]}", self.cfg)
        nonce = uuid.uuid4().hex
        connected, synced, answered, failed = (threading.Event() for _ in range(4))
        found: dict = {}

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:  # refused (credentials): the publisher reports it
                failed.set()
                return
            client.subscribe([(self.lock, QOS), (self.lock + "/ping", QOS), (self.lock + "/pong", QOS)])

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            connected.set()
            client.publish(self.lock + "/ping", nonce.encode(), qos=QOS)

        def on_message(client, userdata, message):
            if message.topic == self.lock:
                found["lock"] = _json(message.payload)
            elif message.topic == self.lock + "/ping" and message.payload == nonce.encode():
                synced.set()
            elif message.topic == self.lock + "/pong":
                pong = _json(message.payload)
                if pong and pong.get("nonce") == nonce:
                    found["pong"] = pong
                    answered.set()

        probe.on_connect, probe.on_subscribe, probe.on_message = on_connect, on_subscribe, on_message
        probe.on_connect_fail = lambda client, userdata: failed.set()  # nothing listens there (yet)
        try:
            probe.connect_async(self.host, self.port, keepalive=max(5, self.cfg.keepalive_s))
            probe.loop_start()
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while not (connected.is_set() or failed.is_set()) and time.monotonic() < deadline:
                connected.wait(0.05)
            if not connected.is_set() or not synced.wait(CONNECT_TIMEOUT_S):
                log.info("MQTT client id check skipped: %s:%d not reachable yet", self.host, self.port)
                return None
            self.checked = True
            lock = found.get("lock")
            if not lock:
                return None  # nobody announced this client id
            if answered.wait(PING_TIMEOUT_S):
                return found["pong"]
            log.info("MQTT client id %s: a stale lock of %s (pid %s) did not answer; taking it over",
                     self.client_id, lock.get("host"), lock.get("pid"))
            return None
        finally:
            probe.disconnect()
            probe.loop_stop()

    def claim(self) -> None:
        """Refuse (``ClientIdInUse``) when a live daemon holds the client id; else hold it."""
        other = self.holder_alive()
        if other is not None:
            raise ClientIdInUse(
                f"MQTT client id {self.client_id!r} is in use by a running fashion-edge (host {other.get('host')}, "
                f"pid {other.get('pid')}); a second connection would take over its session: give this daemon its "
                "own mqtt.client_id (or its own site)", field="mqtt.client_id")
        self._hold()

    # ------------------------------------------------------------------ holding
    def _hold(self) -> None:
        holder = _new_client(f"{self.client_id}-presence", self.cfg)
        holder.will_set(self.availability, b"offline", qos=QOS, retain=True)
        holder.reconnect_delay_set(1, 5)

        held = threading.Event()
        lock_mids: set[int] = set()

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                return
            info = client.publish(self.lock, json.dumps(self.identity).encode(), qos=QOS, retain=True)
            lock_mids.add(info.mid)
            client.publish(self.availability, b"online", qos=QOS, retain=True)
            client.subscribe(self.lock + "/ping", qos=QOS)

        def on_publish(client, userdata, mid, reason_code, properties):
            if mid in lock_mids:
                held.set()

        def on_message(client, userdata, message):
            nonce = message.payload.decode("utf-8", "replace")
            client.publish(self.lock + "/pong", json.dumps({**self.identity, "nonce": nonce}).encode(), qos=QOS)

        holder.on_connect, holder.on_message, holder.on_publish = on_connect, on_message, on_publish
        try:
            holder.connect_async(self.host, self.port, keepalive=self.cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            log.warning("MQTT presence: cannot connect to %s:%d (%s)", self.host, self.port, exc)
        holder.loop_start()
        self._holder = holder
        if self.checked:  # the broker answered the probe: the lock is in place before our publisher connects
            held.wait(CONNECT_TIMEOUT_S)

    def release(self, timeout_s: float = 1.0) -> None:
        """Clean stop: availability ``offline``, the lock removed, disconnect."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        try:
            if holder.is_connected():
                infos = [holder.publish(self.availability, b"offline", qos=QOS, retain=True),
                         holder.publish(self.lock, b"", qos=QOS, retain=True)]  # empty retained: deleted
                deadline = time.monotonic() + timeout_s
                for info in infos:
                    try:
                        info.wait_for_publish(timeout=max(0.05, deadline - time.monotonic()))
                    except (RuntimeError, ValueError):
                        pass
            holder.disconnect()
        finally:
            holder.loop_stop()


def _json(payload: bytes) -> dict | None:
    try:
        value = json.loads(payload.decode("utf-8")) if payload else None
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None

"""MQTT: durable outbox, publisher, embedded broker, payloads and topic tree (docs/mqtt.md).

The names below are imported on first use (PEP 562): the pipeline needs only the payloads, and
importing the embedded broker pulls in asyncio (~2.5 MB of a daemon that talks to mosquitto)."""

from __future__ import annotations

import importlib

_WHERE = {
    "BrokerError": "broker",
    "EmbeddedBroker": "broker",
    "Outbox": "outbox",
    "OutboxRow": "outbox",
    "OutboxWriteError": "outbox",
    "make_alert": "payloads",
    "make_status": "payloads",
    "validate_alert": "payloads",
    "MqttPublisher": "publisher",
    "Topics": "topics",
    "default_prefix": "topics",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)

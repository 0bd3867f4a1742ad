"""MQTT: durable outbox, publisher, embedded broker, payloads and topic tree (docs/mqtt.md)."""

from .broker import BrokerError, EmbeddedBroker
from .outbox import Outbox, OutboxRow, OutboxWriteError
from .payloads import make_alert, make_status, validate_alert
from .publisher import MqttPublisher
from .topics import Topics, default_prefix

__all__ = [
    "BrokerError",
    "EmbeddedBroker",
    "MqttPublisher",
    "Outbox",
    "OutboxRow",
    "OutboxWriteError",
    "Topics",
    "default_prefix",
    "make_alert",
    "make_status",
    "validate_alert",
]

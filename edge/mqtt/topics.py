"""The MQTT topic tree, in one place (documented in docs/mqtt.md).

Every topic lives under a prefix, by default ``fashion-edge/<site>`` (``Config.topic_prefix``).
"""

from __future__ import annotations

from dataclasses import dataclass


def default_prefix(site: str) -> str:
    return f"fashion-edge/{site}"


@dataclass(frozen=True)
class Topics:
    prefix: str

    def __post_init__(self):
        object.__setattr__(self, "prefix", self.prefix.rstrip("/"))

    @property
    def availability(self) -> str:
        """Retained "online"; Last Will "offline"."""
        return f"{self.prefix}/availability"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"

    @property
    def alerts_filter(self) -> str:
        """Subscription filter for every alert of this prefix."""
        return f"{self.prefix}/alerts/#"

    def alert(self, camera: str, rule: str) -> str:
        return f"{self.prefix}/alerts/{camera}/{rule}"

    def status(self, camera: str) -> str:
        return f"{self.prefix}/cameras/{camera}/status"

    def counts(self, camera: str) -> str:
        return f"{self.prefix}/cameras/{camera}/counts"

    def analytics(self, camera: str) -> str:
        return f"{self.prefix}/cameras/{camera}/analytics"

    def windows(self, camera: str) -> str:
        """Every closed analytics window, QoS 1 from the durable outbox, not retained (the head office's copy)."""
        return f"{self.prefix}/windows/{camera}"

    def snapshot(self, camera: str) -> str:
        return f"{self.prefix}/cameras/{camera}/snapshot"

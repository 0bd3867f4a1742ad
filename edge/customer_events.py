"""What happens to a customer, as events: the pipeline emits them, aggregators (the analytics) take them.

One record per customer lives in ``edge.customer``; these events are the only way the rest of the
daemon learns about it, so an aggregator never reaches into the pipeline's records and the order
of its updates is the order of the events (issue 25: analytics fed by customer events instead of
six calls interleaved with rule evaluation).

Events carry ids, times, garment labels, rule and zone names: never an image or an appearance.

* ``CustomerStarted``: a new customer record (a new track); ``ts`` its first sighting.
* ``CustomerSeen``: the customer is in view in this frame; ``zones``: the camera's named zones its
  foot point (bottom centre of the box) is in.
* ``CustomerSettled``: the customer's garments as they stand now (settled labels and scores), the
  rules whose garment test accepts them (``RuleEngine.garment_verdicts``) and the nearest style
  (None: no style assigned). Sent again whenever the rules look at the customer; the latest counts.
* ``CustomerAlerted``: a rule fired for the customer.
* ``CustomerEnded``: the customer left the view (or the source ended).
* ``CustomerMerged``: the record ``customer_id`` turned out to be the returning customer ``into``
  (``edge.identity``); it was never a customer of its own.
* ``CustomerIsStaff``: the record ``customer_id`` was seen in one of the camera's ``staff_only``
  zones: it is a member of staff, no customer; no other event follows for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Union


@dataclass(frozen=True)
class CustomerStarted:
    customer_id: int
    ts: float


@dataclass(frozen=True)
class CustomerSeen:
    customer_id: int
    ts: float
    zones: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CustomerSettled:
    customer_id: int
    garments: dict[str, float]
    matched: frozenset[str] = frozenset()
    style: str | None = None


@dataclass(frozen=True)
class CustomerAlerted:
    customer_id: int
    rule: str


@dataclass(frozen=True)
class CustomerEnded:
    customer_id: int
    ts: float


@dataclass(frozen=True)
class CustomerMerged:
    customer_id: int
    into: int


@dataclass(frozen=True)
class CustomerIsStaff:
    customer_id: int
    ts: float


CustomerEvent = Union[CustomerStarted, CustomerSeen, CustomerSettled, CustomerAlerted, CustomerEnded,
                      CustomerMerged, CustomerIsStaff]


class CustomerEventSink(Protocol):
    """Anything that aggregates customer events (the analytics; a test's recorder)."""

    def record(self, event: CustomerEvent) -> None: ...


@dataclass
class CustomerEventLog:
    """Keeps every event (tests, and a place to look when a number seems wrong)."""

    events: list = field(default_factory=list)

    def record(self, event: CustomerEvent) -> None:
        self.events.append(event)

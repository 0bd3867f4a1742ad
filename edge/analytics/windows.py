"""What a window counts: customers, garment mix, rules, styles, zones and dwell, from customer events.

Windows are ``window_s`` long and aligned to multiples of ``window_s`` since the epoch (900 s ->
:00, :15, :30, :45 UTC). Timestamps are epoch seconds from the events (file sources pass
synthetic times), never the wall clock.

Semantics (decided here, relied on by the daemon and ``fashion-edge report``):

* A **customer** is a record that stayed at least ``min_dwell_s`` (last seen - first seen); shorter
  ones are counted only as ``tracks``. A customer belongs to the window in which it was
  **first seen** (footfall = arrivals).
* **Dwell** is last seen - first seen; the tracker's lost-frame grace after the last sighting is
  not included.
* A window is summarised once it has ended *and* every customer that arrived in it has ended, so
  that dwell, garments and alerts are complete - but at the latest one window length after its
  end; customers still in view then are counted with their dwell so far (``open_tracks`` says how
  many). Summaries therefore come out in window order, possibly one window late.
* **Garment mix** ``garments``: customers per settled garment label (a customer counts once per
  label), *before* the rules: a dress that a rule vetoed (``unless: [pants]``) is still here.
* ``customers_matched``: customers per rule whose garment test accepted them (``when`` satisfied
  and no ``unless`` garment; ``RuleEngine.garment_verdicts``), judged on the customer's last
  settled garments (so a dress vetoed by trousers that settled later does not count); zone,
  schedule and cooldown are not applied (they decide alerts, not what is worn).
* ``customers_alerted``: customers per rule who got the alert (``rules`` is the same map under its
  old name, kept for schema-1 consumers).
* ``dress_share`` / ``suit_share``: ``customers_matched`` of the rule named ``dress`` (``suit``) /
  customers; 0 when no rule has that name. ``schema_version`` 2 says the shares are counted this
  way; a row stored by an older version (``schema_version`` 1, ``customers_matched`` null) counted
  every settled ``dress`` garment or alert, vetoed or not.
* ``zones``: customers per named zone of the camera (``cameras[].zones``) whose foot point was in
  it in at least one frame; a customer counts once per zone, and may count in several zones.
* Windows without anyone are summarised too (zero customers), from the first timestamp seen on;
  a gap of more than ``MAX_EMPTY_WINDOWS`` empty windows (the daemon was off) is skipped.
* ``flush(now)`` (shutdown, end of a file) ends every customer and closes every window up to now;
  the last one is marked ``partial``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..customer_events import (CustomerAlerted, CustomerEnded, CustomerEvent, CustomerIsStaff, CustomerMerged,
                               CustomerSeen, CustomerSettled, CustomerStarted)

MAX_EMPTY_WINDOWS = 96
# 2: shares from the rules' garment verdicts (customers_matched); 1: from settled garments.
SCHEMA_VERSION = 2


@dataclass
class CustomerTally:
    """What one window needs to know about one customer (labels and names only)."""

    first_seen: float
    last_seen: float
    window: float  # start of the window it is attributed to
    garments: dict[str, float] = field(default_factory=dict)
    rules: set[str] = field(default_factory=set)  # rules that alerted
    matched: set[str] = field(default_factory=set)  # rules whose garment test accepts it (latest verdict)
    style: str | None = None  # nearest style name (edge.styles), latest assignment
    zones: set[str] = field(default_factory=set)  # named zones its feet were in
    ended: bool = False

    @property
    def dwell(self) -> float:
        return self.last_seen - self.first_seen


class WindowCounter:
    """Customer events in, closed window rows out (``close_ready``). Not thread-safe: ``Analytics``
    calls it under its lock."""

    def __init__(self, site: str, camera: str, window_s: float, min_dwell_s: float):
        self.site, self.camera = site, camera
        self.window_s, self.min_dwell_s = float(window_s), float(min_dwell_s)
        self.customers: dict[int, CustomerTally] = {}
        self._window_customers: dict[float, list[int]] = {}
        self._next_window: float | None = None  # earliest window not yet summarised
        self.last_ts: float | None = None

    def window_start(self, ts: float) -> float:
        return math.floor(ts / self.window_s) * self.window_s

    def note(self, ts: float) -> None:
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if self._next_window is None:
            self._next_window = self.window_start(ts)

    # -- events ------------------------------------------------------------------------------
    def record(self, event: CustomerEvent) -> None:
        if isinstance(event, (CustomerStarted, CustomerSeen)):
            self._seen(event.customer_id, event.ts, getattr(event, "zones", ()))
            return
        if isinstance(event, CustomerEnded):
            self._ended(event.customer_id, event.ts)
            return
        if isinstance(event, (CustomerMerged, CustomerIsStaff)):  # no customer of its own / no customer
            self._forget(event.customer_id)
            return
        tally = self.customers.get(event.customer_id)
        if tally is None:
            return
        if isinstance(event, CustomerSettled):
            tally.garments.update({label: float(score) for label, score in event.garments.items()})
            tally.matched = set(event.matched)  # the latest verdict replaces the previous one
            if event.style is not None:
                tally.style = event.style
        elif isinstance(event, CustomerAlerted):
            tally.rules.add(event.rule)
        else:
            raise TypeError(f"not a customer event: {event!r}")

    def _seen(self, customer_id: int, ts: float, zones) -> None:
        self.note(ts)
        tally = self.customers.get(customer_id)
        if tally is None:
            # A window already summarised cannot take arrivals: give them to the next open one.
            window = max(self.window_start(ts), self._next_window)
            tally = self.customers[customer_id] = CustomerTally(ts, ts, window)
            self._window_customers.setdefault(window, []).append(customer_id)
        else:
            tally.last_seen = max(tally.last_seen, ts)
            tally.ended = False
        tally.zones.update(zones)

    def _forget(self, customer_id: int) -> None:
        """A record that turned out to be a returning customer was never a customer of its own."""
        tally = self.customers.pop(customer_id, None)
        if tally is not None and customer_id in self._window_customers.get(tally.window, []):
            self._window_customers[tally.window].remove(customer_id)

    def _ended(self, customer_id: int, ts: float) -> None:
        self.note(ts)
        tally = self.customers.get(customer_id)
        if tally is None:
            return
        tally.ended = True
        if tally.window < (self._next_window or 0):  # its window is already summarised
            del self.customers[customer_id]

    # -- windows -----------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._next_window is not None

    def end_all(self) -> None:
        for tally in self.customers.values():
            tally.ended = True

    def reset(self) -> None:
        """After a flush: nothing open, the next event starts afresh."""
        self.customers.clear()
        self._window_customers.clear()
        self._next_window = None

    def close_ready(self, now: float, final: bool) -> list[dict]:
        """Rows of the windows that can be summarised at ``now`` (all up to ``now`` when ``final``)."""
        closed: list[dict] = []
        while self._next_window is not None:
            start = self._next_window
            end = start + self.window_s
            if final:
                if start >= now and not self._window_customers:
                    break  # nothing was seen in it
            elif end > now:
                break
            ids = self._window_customers.get(start, [])
            if not ids:
                start = self._skip_empty_gap(start, now)
                if start != self._next_window:
                    self._next_window = start
                    continue
            still_open = [i for i in ids if not self.customers[i].ended]
            if still_open and not final and now < end + self.window_s:
                break  # wait for the customers who arrived in it to leave
            closed.append(self._row(start, end, ids, partial=final and now < end))
            for i in ids:
                if self.customers[i].ended:
                    del self.customers[i]
            self._window_customers.pop(start, None)
            self._next_window = end
        return closed

    def _skip_empty_gap(self, start: float, now: float) -> float:
        """Start of the next window to summarise when ``start`` is empty: itself, unless a run of
        more than MAX_EMPTY_WINDOWS empty windows begins there (then the end of that run)."""
        later = [w for w in self._window_customers if w > start]
        target = min(later) if later else self.window_start(now)
        if (target - start) / self.window_s > MAX_EMPTY_WINDOWS:
            return target
        return start

    def _row(self, start: float, end: float, ids: list[int], partial: bool) -> dict:
        tallies = [self.customers[i] for i in ids]
        customers = [t for t in tallies if t.dwell >= self.min_dwell_s]
        mixes: dict[str, dict[str, int]] = {"garments": {}, "rules": {}, "matched": {}, "styles": {}, "zones": {}}

        def count(mix: str, names) -> None:
            for name in names:
                mixes[mix][name] = mixes[mix].get(name, 0) + 1

        for t in customers:
            count("garments", t.garments)
            count("rules", t.rules)
            count("matched", t.matched)
            count("styles", [t.style] if t.style is not None else [])
            count("zones", t.zones)
        return {
            "site": self.site,
            "camera": self.camera,
            "window_start": start,
            "window_end": end,
            "tracks": len(tallies),
            "customers": len(customers),
            **mixes,
            "dress_customers": mixes["matched"].get("dress", 0),
            "suit_customers": mixes["matched"].get("suit", 0),
            "dwell_s": [round(t.dwell, 2) for t in customers],
            "open_tracks": sum(1 for t in tallies if not t.ended),
            "partial": int(partial),
            "schema_version": SCHEMA_VERSION,
        }

    # -- live --------------------------------------------------------------------------------
    def live(self) -> tuple[float | None, list[CustomerTally], int]:
        """(current window start, its customers so far, people in view now)."""
        current = self.window_start(self.last_ts) if self.last_ts is not None else None
        in_window = [self.customers[i] for i in self._window_customers.get(current, []) if i in self.customers]
        customers = [t for t in in_window if t.dwell >= self.min_dwell_s]
        return current, customers, sum(1 for t in self.customers.values() if not t.ended)

"""Footfall analytics per camera, aggregated from customer events (``edge.customer_events``).

Two parts: ``windows`` decides what a window counts (customers, garment mix, rules, styles, zones,
dwell; the semantics are written there), ``store`` keeps the closed windows in SQLite and never
loses one on a failed write. ``Analytics`` joins them for one camera under one lock, because the
web thread reads ``counts()`` while the camera thread records events.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from ..customer_events import CustomerEvent
from ..errors import FashionEdgeError
from .store import WindowStore, _iso, read_windows, summary_from_row
from .windows import MAX_EMPTY_WINDOWS, SCHEMA_VERSION, WindowCounter

__all__ = ["Analytics", "read_windows", "summary_from_row", "MAX_EMPTY_WINDOWS", "SCHEMA_VERSION"]


class Analytics:
    """One camera's windows: ``record`` customer events, ``poll`` for windows that closed."""

    def __init__(self, db_path: str | Path, site: str, camera: str, window_s: float = 900.0,
                 min_dwell_s: float = 1.0):
        if not math.isfinite(window_s) or window_s <= 0:
            raise FashionEdgeError("window_s must be finite and > 0", field="analytics.window_s")
        self.camera = camera
        self._store = WindowStore(db_path)
        self._windows = WindowCounter(site, camera, window_s, min_dwell_s)
        self._lock = threading.Lock()

    # -- customer events ---------------------------------------------------------------------
    def record(self, event: CustomerEvent) -> None:
        with self._lock:
            self._windows.record(event)

    # -- windows -----------------------------------------------------------------------------
    def poll(self, now_ts: float) -> list[dict]:
        """Summaries of the windows that closed (also stored in SQLite), oldest first."""
        with self._lock:
            self._windows.note(now_ts)
            closed = [self._store.store(row) for row in self._windows.close_ready(now_ts, final=False)]
            if self._store.retry_due():
                self._store.write_unstored()
            return closed

    def flush(self, now_ts: float) -> list[dict]:
        """End every customer at its last sighting and close every window up to ``now_ts``."""
        with self._lock:
            if not self._windows.started:
                return []
            self._windows.note(now_ts)
            self._windows.end_all()
            closed = [self._store.store(row) for row in self._windows.close_ready(now_ts, final=True)]
            self._windows.reset()
            return closed

    # -- storage health (failures never reach the camera) ------------------------------------
    @property
    def unstored(self) -> int:
        """Closed windows kept in memory because their write failed (written on a later retry)."""
        return self._store.unstored

    @property
    def store_errors(self) -> int:
        return self._store.store_errors

    @property
    def windows_lost(self) -> int:
        return self._store.windows_lost

    @property
    def last_store_error(self) -> str | None:
        return self._store.last_store_error

    def retry_unstored(self, timeout_s: float = 0.0) -> int:
        """Try to write the kept rows until none is left or ``timeout_s`` passed; returns what is left."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._store.unstored:
                if self._store.write_unstored() or time.monotonic() + 0.5 > deadline:
                    break
                time.sleep(0.5)
            return self._store.unstored

    # -- live --------------------------------------------------------------------------------
    def counts(self) -> dict:
        """Live counts for the retained counts topic: people in view now and the current window's
        customers and garment mix so far."""
        with self._lock:
            current, customers, people_now = self._windows.live()
            garments: dict[str, int] = {}
            for t in customers:
                for label in t.garments:
                    garments[label] = garments.get(label, 0) + 1
            return {
                "camera": self.camera,
                "people_now": people_now,
                "window_start": _iso(current) if current is not None else None,
                "customers_window": len(customers),
                "garments_window": dict(sorted(garments.items())),
            }

    def close(self) -> None:
        with self._lock:
            self._store.close()

"""Footfall analytics per camera: customers, garment mix, dress/suit share and dwell time per window.

Windows are ``window_s`` long and aligned to multiples of ``window_s`` since the epoch (900 s ->
:00, :15, :30, :45 UTC). Timestamps are epoch seconds from the caller (file sources pass
synthetic times), never the wall clock.

Semantics (decided here, relied on by the daemon and ``fashion-edge report``):

* A **customer** is a track that stayed at least ``min_dwell_s`` (last seen - first seen); shorter
  tracks are counted only as ``tracks``. A customer belongs to the window in which it was
  **first seen** (footfall = arrivals).
* **Dwell** is last seen - first seen; the tracker's lost-frame grace after the last sighting is
  not included.
* A window is summarised once it has ended *and* every track that arrived in it has ended, so that
  dwell, garments and alerts are complete - but at the latest one window length after its end;
  tracks still in view then are counted with their dwell so far (``open_tracks`` says how many).
  Summaries therefore come out in window order, possibly one window late.
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
* Windows without anyone are summarised too (zero customers), from the first timestamp seen on;
  a gap of more than ``MAX_EMPTY_WINDOWS`` empty windows (the daemon was off) is skipped.
* ``flush(now)`` (shutdown, end of a file) ends every track and closes every window up to now;
  the last one is marked ``partial``.

SQLite (WAL; one connection per camera, cameras may share the file): table ``windows`` with one
row per (site, camera, window_start). If a row exists - the daemon restarted within a window -
the new counts are **merged** into it (customers and garment counts added, dwell samples joined),
so reopening appends and never loses or duplicates a window.

A write that fails (database locked by another process, read-only file, disk full, a table
changed under the daemon) never stops the camera: the window's summary is still returned (and
published), the row is kept in memory, in order, and written again with back-off
(``STORE_RETRY_MIN_S`` doubling to ``STORE_RETRY_MAX_S``, on the next ``poll``/``flush``), the
connection re-opened first. ``unstored`` says how many windows wait in memory (at most
``MAX_UNSTORED_WINDOWS``; beyond that the oldest is dropped and counted in ``windows_lost``),
``store_errors`` how many writes failed and ``last_store_error`` the last reason. A database whose
``windows`` table has other columns is refused at open (one-line ``FashionEdgeError``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import FashionEdgeError

log = logging.getLogger(__name__)

MAX_EMPTY_WINDOWS = 96
# The camera thread waits at most this long for a lock held by another process, then keeps the
# window in memory and retries later (a long wait would stall the camera).
BUSY_TIMEOUT_S = 2.0
STORE_RETRY_MIN_S = 1.0
STORE_RETRY_MAX_S = 60.0
MAX_UNSTORED_WINDOWS = 1000  # 10 days of 15-minute windows
SHARE_LABELS = ("dress", "suit")
# 2: shares from the rules' garment verdicts (customers_matched); 1: from settled garments.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    tracks INTEGER NOT NULL,
    customers INTEGER NOT NULL,
    garments TEXT NOT NULL,        -- JSON {label: customers}
    rules TEXT NOT NULL,           -- JSON {rule: customers}
    dress_customers INTEGER NOT NULL,
    suit_customers INTEGER NOT NULL,
    dwell_s TEXT NOT NULL,         -- JSON [seconds per customer], kept for exact merges
    open_tracks INTEGER NOT NULL,
    partial INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    matched TEXT,                  -- JSON {rule: customers the rule's garment test accepted}
    schema_version INTEGER NOT NULL DEFAULT 1,
    styles TEXT,                   -- JSON {style name: customers} (styles.enabled; issue 14)
    PRIMARY KEY (site, camera, window_start)
)
"""
# Columns added after the first release: a database without them gets them at open (old rows keep
# NULL / the default, and say so through schema_version). Later per-window fields go here too.
_ADDED_COLUMNS = {
    "matched": "TEXT",
    "schema_version": "INTEGER NOT NULL DEFAULT 1",
    "styles": "TEXT",
}


@dataclass
class _Track:
    first_seen: float
    last_seen: float
    window: float  # start of the window it is attributed to
    garments: dict[str, float] = field(default_factory=dict)
    rules: set[str] = field(default_factory=set)  # rules that alerted
    matched: set[str] = field(default_factory=set)  # rules whose garment test accepts it (latest verdict)
    style: str | None = None  # nearest style name (edge.styles), latest assignment
    ended: bool = False

    @property
    def dwell(self) -> float:
        return self.last_seen - self.first_seen


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_COLUMNS = ("site", "camera", "window_start", "window_end", "tracks", "customers", "garments", "rules",
            "dress_customers", "suit_customers", "dwell_s", "open_tracks", "partial", "updated_at")


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = None
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        # another program's database is refused before anything (journal mode, tables) is written into it
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if tables and "windows" not in tables:
            conn.close()
            raise FashionEdgeError(
                f"not a fashion-edge analytics database: it holds table(s) {', '.join(sorted(tables)[:5])} of "
                "another program and no 'windows' table; nothing was written to it (move the file away or set "
                "service.state_dir)", path=db_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(windows)").fetchall()]
        if all(c in columns for c in _COLUMNS):
            for name, kind in _ADDED_COLUMNS.items():
                if name not in columns:
                    conn.execute(f"ALTER TABLE windows ADD COLUMN {name} {kind}")
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise FashionEdgeError(f"cannot open the analytics database ({exc})", path=db_path) from None
    missing = [c for c in _COLUMNS if c not in columns]
    if missing:
        conn.close()
        raise FashionEdgeError(
            f"not a fashion-edge analytics database: table 'windows' lacks {', '.join(missing)} "
            "(move the file away or set service.state_dir)", path=db_path)
    return conn


def summary_from_row(row: sqlite3.Row | dict) -> dict:
    """The summary dict of one stored window (what ``poll`` returns and the report prints)."""
    dwells = json.loads(row["dwell_s"])
    customers = int(row["customers"])
    keys = row.keys()
    version = int(row["schema_version"]) if "schema_version" in keys and row["schema_version"] else 1
    matched = row["matched"] if "matched" in keys else None
    alerted = json.loads(row["rules"])

    def share(n: int) -> float:
        return round(n / customers, 4) if customers else 0.0

    return {
        "site": row["site"],
        "camera": row["camera"],
        "window_start": float(row["window_start"]),
        "window_end": float(row["window_end"]),
        "start": _iso(row["window_start"]),
        "tracks": int(row["tracks"]),
        "customers": customers,
        "garments": json.loads(row["garments"]),
        "customers_matched": json.loads(matched) if matched is not None and version >= 2 else None,
        "customers_alerted": alerted,
        "rules": alerted,
        "dress_share": share(int(row["dress_customers"])),
        "suit_share": share(int(row["suit_customers"])),
        "dwell_mean_s": round(float(np.mean(dwells)), 2) if dwells else None,
        "dwell_p50_s": round(float(np.percentile(dwells, 50)), 2) if dwells else None,
        "dwell_p95_s": round(float(np.percentile(dwells, 95)), 2) if dwells else None,
        "open_tracks": int(row["open_tracks"]),
        "partial": bool(row["partial"]),
        "schema_version": version,
        # Style mix {style: customers}; {} when styles are off, None in rows older than issue 14.
        "styles": json.loads(row["styles"]) if "styles" in keys and row["styles"] is not None else None,
    }


def read_windows(db_path: str | Path, camera: str | None = None) -> list[dict]:
    """All stored window summaries, oldest first (optionally one camera)."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise FashionEdgeError("analytics database not found", path=db_path)
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM windows" + (" WHERE camera = ?" if camera else "") + " ORDER BY window_start, camera"
        rows = conn.execute(query, (camera,) if camera else ()).fetchall()
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise FashionEdgeError(f"not an analytics database ({exc})", path=db_path) from None
    return [summary_from_row(row) for row in rows]


class Analytics:
    def __init__(self, db_path: str | Path, site: str, camera: str, window_s: float = 900.0,
                 min_dwell_s: float = 1.0):
        if not math.isfinite(window_s) or window_s <= 0:
            raise FashionEdgeError("window_s must be finite and > 0", field="analytics.window_s")
        self.db_path = Path(db_path)
        self.site, self.camera = site, camera
        self.window_s, self.min_dwell_s = float(window_s), float(min_dwell_s)
        self._conn = _connect(self.db_path)
        self._conn.row_factory = sqlite3.Row
        self._identity = _file_identity(self.db_path)
        self._lock = threading.Lock()
        self._tracks: dict[int, _Track] = {}
        self._window_tracks: dict[float, list[int]] = {}
        self._next_window: float | None = None  # earliest window not yet summarised
        self._last_ts: float | None = None
        self._unstored: list[dict] = []  # rows whose write failed, oldest first (written on retry)
        self._retry_at = 0.0  # monotonic time of the next write attempt while rows wait
        self._retry_s = STORE_RETRY_MIN_S
        self.store_errors = 0  # writes that failed
        self.windows_lost = 0  # rows dropped from memory (more than MAX_UNSTORED_WINDOWS waited)
        self.last_store_error: str | None = None

    # -- events from the pipeline ------------------------------------------------------------
    def window_start(self, ts: float) -> float:
        return math.floor(ts / self.window_s) * self.window_s

    def _note(self, ts: float) -> None:
        self._last_ts = ts if self._last_ts is None else max(self._last_ts, ts)
        if self._next_window is None:
            self._next_window = self.window_start(ts)

    def track_seen(self, track_id: int, ts: float) -> None:
        with self._lock:
            self._note(ts)
            track = self._tracks.get(track_id)
            if track is None:
                # A window already summarised cannot take arrivals: give them to the next open one.
                window = max(self.window_start(ts), self._next_window)
                self._tracks[track_id] = _Track(ts, ts, window)
                self._window_tracks.setdefault(window, []).append(track_id)
            else:
                track.last_seen = max(track.last_seen, ts)
                track.ended = False

    def forget_track(self, track_id: int) -> None:
        """A customer that turned out to be a returning one (``edge.identity``): it was never a
        customer of its own, so it is not counted."""
        with self._lock:
            track = self._tracks.pop(track_id, None)
            if track is not None and track_id in self._window_tracks.get(track.window, []):
                self._window_tracks[track.window].remove(track_id)

    # The four below change a track that counts() (the web thread) reads: under the same lock.
    def track_garments(self, track_id: int, garments: dict[str, float]) -> None:
        with self._lock:
            track = self._tracks.get(track_id)
            if track is not None:
                track.garments.update({label: float(score) for label, score in garments.items()})

    def track_verdicts(self, track_id: int, rules: set[str]) -> None:
        """The rules whose garment test accepts the customer now (``RuleEngine.garment_verdicts``);
        each call replaces the previous verdict, so a garment settled later can withdraw one."""
        with self._lock:
            track = self._tracks.get(track_id)
            if track is not None:
                track.matched = set(rules)

    def track_style(self, track_id: int, style: str) -> None:
        """The customer's nearest style (edge.styles); the latest assignment counts."""
        with self._lock:
            track = self._tracks.get(track_id)
            if track is not None:
                track.style = style

    def track_alert(self, track_id: int, rule: str) -> None:
        with self._lock:
            track = self._tracks.get(track_id)
            if track is not None:
                track.rules.add(rule)

    def track_ended(self, track_id: int, ts: float) -> None:
        with self._lock:
            self._note(ts)
            track = self._tracks.get(track_id)
            if track is None:
                return
            track.ended = True
            if track.window < (self._next_window or 0):  # its window is already summarised
                del self._tracks[track_id]

    # -- windows -----------------------------------------------------------------------------
    def poll(self, now_ts: float) -> list[dict]:
        """Summaries of the windows that closed (also stored in SQLite), oldest first."""
        with self._lock:
            self._note(now_ts)
            closed = self._close_ready(now_ts, final=False)
            if self._unstored and time.monotonic() >= self._retry_at:
                self._write_unstored()
            return closed

    def flush(self, now_ts: float) -> list[dict]:
        """End every track at its last sighting and close every window up to ``now_ts``."""
        with self._lock:
            if self._next_window is None:
                return []
            self._note(now_ts)
            for track in self._tracks.values():
                track.ended = True
            closed = self._close_ready(now_ts, final=True)
            self._tracks.clear()
            self._window_tracks.clear()
            self._next_window = None
            return closed

    def _close_ready(self, now: float, final: bool) -> list[dict]:
        closed: list[dict] = []
        while self._next_window is not None:
            start = self._next_window
            end = start + self.window_s
            if final:
                if start >= now and not self._window_tracks:
                    break  # nothing was seen in it
            elif end > now:
                break
            ids = self._window_tracks.get(start, [])
            if not ids:
                start = self._skip_empty_gap(start, now)
                if start != self._next_window:
                    self._next_window = start
                    continue
            still_open = [i for i in ids if not self._tracks[i].ended]
            if still_open and not final and now < end + self.window_s:
                break  # wait for the tracks that arrived in it to leave
            closed.append(self._close(start, end, ids, partial=final and now < end))
            self._next_window = end
        return closed

    def _skip_empty_gap(self, start: float, now: float) -> float:
        """Start of the next window to summarise when ``start`` is empty: itself, unless a run of
        more than MAX_EMPTY_WINDOWS empty windows begins there (then the end of that run)."""
        later = [w for w in self._window_tracks if w > start]
        target = min(later) if later else self.window_start(now)
        if (target - start) / self.window_s > MAX_EMPTY_WINDOWS:
            return target
        return start

    def _close(self, start: float, end: float, ids: list[int], partial: bool) -> dict:
        tracks = [self._tracks[i] for i in ids]
        customers = [t for t in tracks if t.dwell >= self.min_dwell_s]
        garments: dict[str, int] = {}
        rules: dict[str, int] = {}
        matched: dict[str, int] = {}
        styles: dict[str, int] = {}
        for t in customers:
            if t.style is not None:
                styles[t.style] = styles.get(t.style, 0) + 1
            for label in t.garments:
                garments[label] = garments.get(label, 0) + 1
            for rule in t.rules:
                rules[rule] = rules.get(rule, 0) + 1
            for rule in t.matched:
                matched[rule] = matched.get(rule, 0) + 1
        row = {
            "site": self.site,
            "camera": self.camera,
            "window_start": start,
            "window_end": end,
            "tracks": len(tracks),
            "customers": len(customers),
            "garments": garments,
            "rules": rules,
            "matched": matched,
            "styles": styles,
            "dress_customers": matched.get("dress", 0),
            "suit_customers": matched.get("suit", 0),
            "dwell_s": [round(t.dwell, 2) for t in customers],
            "open_tracks": sum(1 for t in tracks if not t.ended),
            "partial": int(partial),
            "schema_version": SCHEMA_VERSION,
        }
        summary = self._store(row)
        for i in ids:
            if self._tracks[i].ended:
                del self._tracks[i]
        self._window_tracks.pop(start, None)
        return summary

    # -- storage (failures never reach the camera) -------------------------------------------
    @property
    def unstored(self) -> int:
        """Closed windows kept in memory because their write failed (written on a later retry)."""
        return len(self._unstored)

    def _store(self, row: dict) -> dict:
        """Store the window (or keep it for a retry); returns its summary either way."""
        self._check_file()
        if not self._unstored or time.monotonic() >= self._retry_at:
            if self._write_unstored():
                try:
                    return self._write(dict(row))
                except (sqlite3.Error, FashionEdgeError) as exc:
                    self._failed(exc)
        self._keep(row)
        return self._summary_unstored(row)

    def _keep(self, row: dict) -> None:
        self._unstored.append(row)
        if len(self._unstored) > MAX_UNSTORED_WINDOWS:
            self._unstored.pop(0)
            self.windows_lost += 1

    def _write_unstored(self) -> bool:
        """Write the rows kept from failed writes, oldest first; True when none is left."""
        if not self._unstored:
            return True
        try:
            self._reopen()
            while self._unstored:
                self._write(dict(self._unstored[0]))
                self._unstored.pop(0)
        except (sqlite3.Error, FashionEdgeError) as exc:
            self._failed(exc)
            return False
        log.info("analytics %s: stored the windows kept in memory", self.db_path)
        self._retry_s = STORE_RETRY_MIN_S
        return True

    def retry_unstored(self, timeout_s: float = 0.0) -> int:
        """Try to write the kept rows until none is left or ``timeout_s`` passed; returns what is left."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._unstored:
                if self._write_unstored() or time.monotonic() + 0.5 > deadline:
                    break
                time.sleep(0.5)
            return len(self._unstored)

    def _reopen(self) -> None:
        """A fresh connection before a retry (the file may have been fixed or replaced)."""
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        self._conn = _connect(self.db_path)
        self._conn.row_factory = sqlite3.Row
        self._identity = _file_identity(self.db_path)

    def _check_file(self) -> None:
        """The database deleted or replaced while running: writing on through the old connection
        would go to a file nobody can read any more. Say so and open (create) the file at the path."""
        try:
            identity = _file_identity(self.db_path)
        except FileNotFoundError:
            identity = None
        except OSError:
            return
        if identity == self._identity:
            return
        what = "deleted" if identity is None else "replaced by another file"
        log.error("analytics %s was %s while running: the windows stored in it before are gone from there; "
                  "the next ones go to a new file", self.db_path, what)
        try:
            self._reopen()
        except (sqlite3.Error, FashionEdgeError) as exc:  # e.g. replaced by another program's database
            self._identity = identity
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.store_errors += 1
        reason = str(exc)
        if reason != self.last_store_error:
            log.error("analytics %s: cannot store a window (%s); kept in memory, retrying in %.0f s",
                      self.db_path, reason, self._retry_s)
        self.last_store_error = reason
        self._retry_at = time.monotonic() + self._retry_s
        self._retry_s = min(self._retry_s * 2, STORE_RETRY_MAX_S)

    def _summary_unstored(self, row: dict) -> dict:
        """The summary of a window not (yet) stored: its own counts, without a previous run's row."""
        return summary_from_row({**row, "garments": json.dumps(row["garments"]), "rules": json.dumps(row["rules"]),
                                 "matched": json.dumps(row["matched"]), "styles": json.dumps(row["styles"]),
                                 "dwell_s": json.dumps(row["dwell_s"])})

    def _write(self, row: dict) -> dict:
        """Insert the window, or merge it into the row a previous run left; returns the summary."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = conn.execute(
                "SELECT * FROM windows WHERE site = ? AND camera = ? AND window_start = ?",
                (row["site"], row["camera"], row["window_start"]),
            ).fetchone()
            if old is not None:
                for key in ("tracks", "customers", "dress_customers", "suit_customers", "open_tracks"):
                    row[key] += int(old[key])
                # A row of an older version counted its shares another way: the merge says so.
                old_version = int(old["schema_version"] or 1)
                row["schema_version"] = min(row["schema_version"], old_version)
                for key in ("garments", "rules", "matched", "styles"):
                    merged = json.loads(old[key] or "{}")
                    for label, n in row[key].items():
                        merged[label] = merged.get(label, 0) + n
                    row[key] = merged
                row["dwell_s"] = json.loads(old["dwell_s"]) + row["dwell_s"]
            stored = {
                **row,
                "garments": json.dumps(dict(sorted(row["garments"].items())), sort_keys=False),
                "rules": json.dumps(dict(sorted(row["rules"].items()))),
                "matched": json.dumps(dict(sorted(row["matched"].items()))),
                "styles": json.dumps(dict(sorted(row["styles"].items()))),
                "dwell_s": json.dumps(row["dwell_s"]),
                "updated_at": time.time(),
            }
            columns = list(stored)
            conn.execute(
                f"INSERT OR REPLACE INTO windows ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [stored[c] for c in columns],
            )
            conn.execute("COMMIT")
        except BaseException:
            # The rollback can fail the same way (disk full, connection gone): the first error counts.
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        return summary_from_row(stored)

    # -- live --------------------------------------------------------------------------------
    def counts(self) -> dict:
        """Live counts for the retained counts topic: people in view now and the current window's
        customers and garment mix so far."""
        with self._lock:
            current = self.window_start(self._last_ts) if self._last_ts is not None else None
            in_window = [self._tracks[i] for i in self._window_tracks.get(current, []) if i in self._tracks]
            customers = [t for t in in_window if t.dwell >= self.min_dwell_s]
            garments: dict[str, int] = {}
            for t in customers:
                for label in t.garments:
                    garments[label] = garments.get(label, 0) + 1
            return {
                "camera": self.camera,
                "people_now": sum(1 for t in self._tracks.values() if not t.ended),
                "window_start": _iso(current) if current is not None else None,
                "customers_window": len(customers),
                "garments_window": dict(sorted(garments.items())),
            }

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

"""The analytics' SQLite store: one row per (site, camera, window), merged on restart, never lost on a failed write.

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

What a window counts is decided in ``edge.analytics.windows``; this module only stores and reads rows.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import FashionEdgeError
from ..state_db import columns_of, connect_own

log = logging.getLogger(__name__)

# The camera thread waits at most this long for a lock held by another process, then keeps the
# window in memory and retries later (a long wait would stall the camera).
BUSY_TIMEOUT_S = 2.0
STORE_RETRY_MIN_S = 1.0
STORE_RETRY_MAX_S = 60.0
MAX_UNSTORED_WINDOWS = 1000  # 10 days of 15-minute windows

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
    zones TEXT,                    -- JSON {zone name: customers who were in it} (cameras[].zones)
    PRIMARY KEY (site, camera, window_start)
)
"""
# Columns added after the first release: a database without them gets them at open (old rows keep
# NULL / the default, and say so through schema_version). Later per-window fields go here too.
_ADDED_COLUMNS = {
    "matched": "TEXT",
    "schema_version": "INTEGER NOT NULL DEFAULT 1",
    "styles": "TEXT",
    "zones": "TEXT",
}
# The {name: customers} columns of a row (JSON in SQLite), added up when a restart merges a window.
_MIXES = ("garments", "rules", "matched", "styles", "zones")


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
        conn = connect_own(db_path, "windows", "analytics database", BUSY_TIMEOUT_S)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        columns = columns_of(conn, "windows")
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
        # Customers per named zone of the camera (their feet were in it); None in rows older than zones.
        "zones": json.loads(row["zones"]) if "zones" in keys and row["zones"] is not None else None,
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




class WindowStore:
    """The windows of one camera in SQLite. Not thread-safe: ``Analytics`` calls it under its lock."""

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self._conn = _connect(self.db_path)
        self._conn.row_factory = sqlite3.Row
        self._identity = _file_identity(self.db_path)
        self._unstored: list[dict] = []  # rows whose write failed, oldest first (written on retry)
        self._retry_at = 0.0  # monotonic time of the next write attempt while rows wait
        self._retry_s = STORE_RETRY_MIN_S
        self.store_errors = 0  # writes that failed
        self.windows_lost = 0  # rows dropped from memory (more than MAX_UNSTORED_WINDOWS waited)
        self.last_store_error: str | None = None

    @property
    def unstored(self) -> int:
        """Closed windows kept in memory because their write failed (written on a later retry)."""
        return len(self._unstored)

    def store(self, row: dict) -> dict:
        """Store the window (or keep it for a retry); returns its summary either way."""
        self._check_file()
        if not self._unstored or time.monotonic() >= self._retry_at:
            if self.write_unstored():
                try:
                    return self._write(dict(row))
                except (sqlite3.Error, FashionEdgeError) as exc:
                    self._failed(exc)
        self._keep(row)
        return self._summary_unstored(row)

    def retry_due(self) -> bool:
        return bool(self._unstored) and time.monotonic() >= self._retry_at

    def _keep(self, row: dict) -> None:
        self._unstored.append(row)
        if len(self._unstored) > MAX_UNSTORED_WINDOWS:
            self._unstored.pop(0)
            self.windows_lost += 1

    def write_unstored(self) -> bool:
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

    @staticmethod
    def _summary_unstored(row: dict) -> dict:
        """The summary of a window not (yet) stored: its own counts, without a previous run's row."""
        return summary_from_row({**row, **{key: json.dumps(row[key]) for key in _MIXES}, "dwell_s": json.dumps(row["dwell_s"])})

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
                for key in _MIXES:
                    merged = json.loads(old[key] or "{}")
                    for label, n in row[key].items():
                        merged[label] = merged.get(label, 0) + n
                    row[key] = merged
                row["dwell_s"] = json.loads(old["dwell_s"]) + row["dwell_s"]
            stored = {
                **row,
                **{key: json.dumps(dict(sorted(row[key].items()))) for key in _MIXES},
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

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass

"""The event store on the device: one SQLite row per published alert, a JPEG crop only when
``snapshots.enabled`` (docs/events.md).

Where: ``<state_dir>/events.sqlite`` and ``<state_dir>/snapshots/<camera>/<alert id>.jpg``; the state
directory is the site's own (``Config.state_dir()``), and each row carries its site, so two configs
that share one folder read only their own events.

What a row holds: alert id, site, camera, customer number (the track id), rule, time (epoch s),
``decided`` (consensus / early / exit), garment labels with their scores, the picture's file name
and size (NULL / 0 without a picture), and the false-alert mark a person set on the web page.
No appearance (no embedding, no colour, no crop) is stored in a row.

How long: rows ``events.retention_days``; pictures ``snapshots.retention_days`` and at most
``snapshots.max_mb`` in all (the oldest pictures go first; their rows stay, without a picture).
Retention runs at start-up, after each write and hourly (the daemon calls ``apply_retention``).
With ``snapshots.enabled: false`` no picture is written, and the pictures of an earlier run with
snapshots on are deleted at start-up (off means no picture on the device).

Failures: the alert is published (outbox) before it is recorded here, and a write that fails
(disk full, a lock, an I/O error) is logged and counted (``failures``), never raised to the
camera thread. Opening a file that is not ours is refused with one line naming it
(``FashionEdgeError``, exit 2), before anything is written into it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import FashionEdgeError
from ..state_db import columns_of, connect_own, tables_in

log = logging.getLogger(__name__)

DB_NAME = "events.sqlite"
SNAPSHOT_DIR = "snapshots"
BUSY_TIMEOUT_S = 2.0  # a camera thread never waits longer for the web page's or report's lock
DAY_S = 86400.0
MAX_PAGE = 200  # events per page of the web page's list

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,            -- the alert id (docs/mqtt.md)
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    customer INTEGER NOT NULL,      -- the track id the alert names
    rule TEXT NOT NULL,
    time REAL NOT NULL,             -- epoch seconds (the alert's timestamp)
    decided TEXT NOT NULL,          -- consensus / early / exit
    garments TEXT NOT NULL,         -- JSON [[label, score], ...]: labels only, no appearance
    snapshot TEXT,                  -- picture file relative to snapshots/, NULL without one
    snapshot_bytes INTEGER NOT NULL DEFAULT 0,
    false_alert INTEGER NOT NULL DEFAULT 0,
    marked_at REAL                  -- when the false-alert mark was last set or cleared
);
CREATE INDEX IF NOT EXISTS events_time ON events (site, time);
"""
_COLUMNS = ("id", "site", "camera", "customer", "rule", "time", "decided", "garments", "snapshot",
            "snapshot_bytes", "false_alert", "marked_at")


@dataclass
class Retention:
    """How long events and pictures are kept (``events.retention_days``, ``snapshots.*``)."""

    events_days: float = 90.0
    snapshots_days: float = 7.0
    snapshots_max_bytes: int = 500 * 1024 * 1024

    @classmethod
    def from_config(cls, config) -> "Retention":
        snaps = config.snapshots
        return cls(events_days=float(config.events.retention_days), snapshots_days=float(snaps.retention_days),
                   snapshots_max_bytes=int(snaps.max_mb * 1024 * 1024))


def _open(db_path: Path) -> sqlite3.Connection:
    """Our database (created when missing or empty); another program's file or a damaged one is a
    one-line FashionEdgeError naming it, and nothing is written into it."""
    conn = None
    try:
        conn = connect_own(db_path, "events", "events database", BUSY_TIMEOUT_S)
        if "events" in tables_in(conn):
            columns = columns_of(conn, "events")
            missing = [c for c in _COLUMNS if c not in columns]
            if missing:
                conn.close()
                raise FashionEdgeError(f"not a fashion-edge events database: table 'events' lacks "
                                       f"{', '.join(missing)} (move the file away or set service.state_dir)",
                                       path=db_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise FashionEdgeError(f"cannot open the events database ({exc}); move the damaged file away "
                               "(its events are lost, alerts are not) or set service.state_dir", path=db_path) from None
    except OSError as exc:
        if conn is not None:
            conn.close()
        raise FashionEdgeError(f"cannot open the events database ({exc.strerror or exc})", path=db_path) from None
    return conn


def _row(row: sqlite3.Row) -> dict:
    return {"id": row["id"], "site": row["site"], "camera": row["camera"], "customer": int(row["customer"]),
            "rule": row["rule"], "time": float(row["time"]), "decided": row["decided"],
            "garments": json.loads(row["garments"]), "snapshot": bool(row["snapshot"]),
            "false_alert": bool(row["false_alert"]), "marked_at": row["marked_at"]}


class EventStore:
    """The device's events (thread-safe: camera threads write, the web page reads and marks)."""

    def __init__(self, state_dir: str | Path, site: str, retention: Retention | None = None,
                 snapshots_enabled: bool = False):
        self.state_dir = Path(state_dir)
        self.db_path = self.state_dir / DB_NAME
        self.snapshot_dir = self.state_dir / SNAPSHOT_DIR
        self.site = site
        self.retention = retention or Retention()
        self.snapshots_enabled = bool(snapshots_enabled)
        self.failures = 0  # events (or pictures) that could not be stored
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._conn = _open(self.db_path)
        self._conn.row_factory = sqlite3.Row
        try:  # retention at start-up; snapshots off: no picture stays on the device
            self.apply_retention()
            if not self.snapshots_enabled:
                self.delete_all_pictures()
        except sqlite3.Error as exc:
            self.close()
            raise FashionEdgeError(f"cannot read the events database ({exc}); move the damaged file away (its "
                                   "events are lost, alerts are not) or set service.state_dir", path=self.db_path) \
                from None

    @classmethod
    def for_config(cls, config, state_dir: str | Path | None = None) -> "EventStore":
        return cls(state_dir or config.state_dir(), config.site, Retention.from_config(config),
                   snapshots_enabled=config.snapshots.enabled)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing (camera threads) --------------------------------------------------------------
    def record(self, alert_id: str, camera: str, customer: int, rule: str, at: float, decided: str,
               garments, jpeg: bytes | None = None) -> bool:
        """Store one published alert (and its picture when snapshots are on); False when it could not be
        stored (logged; the alert itself went out through the outbox already)."""
        picture = None
        if jpeg and self.snapshots_enabled:
            try:
                picture = self._write_picture(camera, alert_id, jpeg)
            except OSError as exc:  # disk full, a folder we cannot write: the row is kept without a picture
                self.failures += 1
                self.last_error = f"picture: {exc.strerror or exc}"
                log.warning("event %s: picture not stored in %s (%s); the event is kept without it", alert_id,
                            self.snapshot_dir, exc.strerror or exc)
        try:
            labels = [[str(g[0]), round(float(g[1]), 4)] for g in garments]
            with self._lock:
                self._conn.execute(
                    "INSERT OR IGNORE INTO events (id, site, camera, customer, rule, time, decided, garments, "
                    "snapshot, snapshot_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (alert_id, self.site, camera, int(customer), rule, float(at), decided or "consensus",
                     json.dumps(labels), picture, len(jpeg) if picture else 0))
        except (sqlite3.Error, OSError, AttributeError) as exc:  # AttributeError: closed at shutdown
            if picture:
                self._unlink(self.snapshot_dir / picture)
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("event %s (camera %s, rule %s) not stored in %s: %s; the alert was published", alert_id,
                        camera, rule, self.db_path, exc)
            return False
        try:
            self.apply_retention()
        except (sqlite3.Error, OSError, AttributeError) as exc:  # tried again after the next event
            log.warning("events: retention not applied to %s (%s)", self.db_path, exc)
        return True

    def _write_picture(self, camera: str, alert_id: str, jpeg: bytes) -> str:
        """Write the JPEG beside its final name, then rename (a full disk leaves no half picture)."""
        relative = f"{_safe(camera)}/{_safe(alert_id)}.jpg"
        path = self.snapshot_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".jpg.part")
        try:
            with open(partial, "wb") as out:
                out.write(jpeg)
            os.replace(partial, path)
        except OSError:
            self._unlink(partial)
            raise
        return relative

    # -- retention -----------------------------------------------------------------------------
    def apply_retention(self, now: float | None = None) -> dict:
        """Delete events past ``events_days``, pictures past ``snapshots_days``, then the oldest pictures
        until they fit in ``snapshots_max_bytes``; returns what was removed (counts)."""
        now = time.time() if now is None else now
        removed = {"events": 0, "pictures": 0}
        with self._lock:
            if self._conn is None:
                return removed
            old_events = now - self.retention.events_days * DAY_S
            old_pictures = now - self.retention.snapshots_days * DAY_S
            doomed = [r["snapshot"] for r in self._conn.execute(
                "SELECT snapshot FROM events WHERE site = ? AND snapshot IS NOT NULL AND time < ?",
                (self.site, max(old_events, old_pictures)))]
            total = self._conn.execute("SELECT COALESCE(SUM(snapshot_bytes), 0) FROM events WHERE snapshot IS NOT NULL"
                                       " AND time >= ?", (old_pictures,)).fetchone()[0]
            if total > self.retention.snapshots_max_bytes:  # oldest first until the rest fits
                for r in self._conn.execute("SELECT snapshot, snapshot_bytes FROM events WHERE snapshot IS NOT NULL "
                                            "AND time >= ? ORDER BY time, id", (old_pictures,)):
                    if total <= self.retention.snapshots_max_bytes:
                        break
                    doomed.append(r["snapshot"])
                    total -= int(r["snapshot_bytes"])
            for relative in doomed:
                self._unlink(self.snapshot_dir / relative)
            if doomed:
                self._conn.executemany("UPDATE events SET snapshot = NULL, snapshot_bytes = 0 WHERE snapshot = ?",
                                       [(d,) for d in doomed])
            removed["pictures"] = len(doomed)
            removed["events"] = self._conn.execute("DELETE FROM events WHERE site = ? AND time < ?",
                                                   (self.site, old_events)).rowcount
        return removed

    def delete_all_pictures(self) -> int:
        """Snapshots are off: every stored picture of this site goes, and files no row names."""
        with self._lock:
            names = [r["snapshot"] for r in self._conn.execute(
                "SELECT snapshot FROM events WHERE site = ? AND snapshot IS NOT NULL", (self.site,))]
            for relative in names:
                self._unlink(self.snapshot_dir / relative)
            if names:
                self._conn.execute("UPDATE events SET snapshot = NULL, snapshot_bytes = 0 WHERE site = ?",
                                   (self.site,))
                log.info("snapshots are off: %d stored picture(s) deleted from %s", len(names), self.snapshot_dir)
            known = {r["snapshot"] for r in
                     self._conn.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL")}
        stray = 0
        if self.snapshot_dir.is_dir():  # left by a crash between the picture and its row
            for path in self.snapshot_dir.glob("*/*.jp*"):
                if path.relative_to(self.snapshot_dir).as_posix() not in known:
                    stray += self._unlink(path)
        return len(names) + stray

    @staticmethod
    def _unlink(path: Path) -> int:
        try:
            path.unlink()
            return 1
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("cannot delete %s (%s)", path, exc.strerror or exc)
            return 0

    # -- reading and marking (web page, report) -------------------------------------------------
    def events(self, limit: int = 50, before: float | None = None, camera: str | None = None) -> list[dict]:
        """This site's events, newest first (``before``: older than this time, for the next page)."""
        query, args = "SELECT * FROM events WHERE site = ?", [self.site]
        if before is not None:
            query += " AND time < ?"
            args.append(float(before))
        if camera:
            query += " AND camera = ?"
            args.append(camera)
        query += " ORDER BY time DESC, id DESC LIMIT ?"
        args.append(max(1, min(MAX_PAGE, int(limit))))
        with self._lock:
            return [_row(r) for r in self._conn.execute(query, args)]

    def get(self, alert_id: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM events WHERE id = ? AND site = ?", (alert_id, self.site)).fetchone()
        return _row(row) if row is not None else None

    def snapshot_path(self, alert_id: str) -> Path | None:
        """The event's picture file, None without one (or once retention removed it)."""
        with self._lock:
            row = self._conn.execute("SELECT snapshot FROM events WHERE id = ? AND site = ?",
                                     (alert_id, self.site)).fetchone()
        if row is None or not row["snapshot"]:
            return None
        path = self.snapshot_dir / row["snapshot"]
        return path if path.is_file() else None

    def mark_false(self, alert_id: str, false_alert: bool = True) -> dict | None:
        """Set (or clear) the false-alert mark; the event, or None when there is no such event."""
        with self._lock:
            changed = self._conn.execute("UPDATE events SET false_alert = ?, marked_at = ? WHERE id = ? AND site = ?",
                                         (1 if false_alert else 0, time.time(), alert_id, self.site)).rowcount
        return self.get(alert_id) if changed else None

    def rule_counts(self, since: float | None = None, until: float | None = None,
                    camera: str | None = None) -> dict[tuple[str, str], dict]:
        """{(camera, rule): {"alerts": n, "false": m}} of this site's stored events."""
        with self._lock:
            return rule_counts(self._conn, self.site, since, until, camera)


def rule_counts(conn: sqlite3.Connection, site: str | None, since: float | None = None, until: float | None = None,
                camera: str | None = None) -> dict[tuple[str, str], dict]:
    query = "SELECT camera, rule, COUNT(*), SUM(false_alert) FROM events WHERE 1 = 1"
    args: list = []
    for clause, value in (("site = ?", site), ("time >= ?", since), ("time < ?", until), ("camera = ?", camera)):
        if value is not None:
            query += f" AND {clause}"
            args.append(value)
    rows = conn.execute(query + " GROUP BY camera, rule ORDER BY camera, rule", args).fetchall()
    return {(r[0], r[1]): {"alerts": int(r[2]), "false": int(r[3] or 0)} for r in rows}


def read_rule_counts(db_path: str | Path, site: str | None = None, camera: str | None = None,
                     since: float | None = None, until: float | None = None) -> dict[tuple[str, str], dict] | None:
    """Read-only (the report, the web page without a running store): None when there is no events file;
    a damaged or foreign file is one FashionEdgeError line naming it."""
    db_path = Path(db_path)
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
        try:
            return rule_counts(conn, site, since, until, camera)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise FashionEdgeError(f"not a fashion-edge events database ({exc})", path=db_path) from None


def _safe(name: str) -> str:
    """A file name part from a camera name or an alert id (both are [A-Za-z0-9_-] already)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name)) or "_"

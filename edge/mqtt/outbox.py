"""Durable, bounded outbox for alerts: SQLite in WAL mode with ``synchronous=FULL``.

An alert is written and committed here *before* it is handed to MQTT and deleted only when the
broker acknowledges it (PUBACK), so a crash, a power cut or a broker outage never loses an
alert: the next start sends what is left, in insertion order. Delivery is therefore
at-least-once; consumers deduplicate on the alert ``id``.

When the outbox holds ``max_messages`` rows, ``drop="oldest"`` deletes the oldest row to make room
and ``drop="newest"`` refuses the new one; either way the ``dropped`` counter (kept in the same
database, so it survives restarts) goes up by one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('dropped', 0);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    qos: int
    created: float


class Outbox:
    """Thread-safe: the pipeline thread puts, the MQTT worker reads and acks."""

    def __init__(self, path: str | Path, max_messages: int = 10000, drop: Literal["oldest", "newest"] = "oldest"):
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if drop not in ("oldest", "newest"):
            raise ValueError("drop must be 'oldest' or 'newest'")
        self.path = Path(path)
        self.max_messages = max_messages
        self.drop = drop
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so each put is one durable transaction.
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {name: {r[1] for r in self._db.execute(f"PRAGMA table_info({name})")}
                       for name in ("outbox", "counters")}
            self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the MQTT outbox ({exc})", path=self.path) from None
        wanted = {"outbox": {"id", "topic", "payload", "qos", "created"}, "counters": {"name", "value"}}
        for table, names in wanted.items():
            if not names <= columns[table]:
                self._db.close()
                raise ConfigError(
                    f"not a fashion-edge MQTT outbox: table '{table}' lacks {', '.join(sorted(names - columns[table]))} "
                    "(move the file away; alerts in it cannot be read)", path=self.path)

    def put(self, topic: str, payload: bytes, qos: int = 1) -> int | None:
        """Store one message durably; returns its row id, or None when refused (full, drop='newest')."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                if depth >= self.max_messages:
                    db.execute("UPDATE counters SET value = value + 1 WHERE name = 'dropped'")
                    if self.drop == "newest":
                        db.execute("COMMIT")
                        log.warning("MQTT outbox full (%d): new message on %s dropped", depth, topic)
                        return None
                    excess = depth - self.max_messages + 1
                    db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                    log.warning("MQTT outbox full (%d): oldest message dropped", depth)
                cursor = db.execute(
                    "INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                    (topic, sqlite3.Binary(bytes(payload)), int(qos), time.time()),
                )
                db.execute("COMMIT")
                return int(cursor.lastrowid)
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def pending(self, limit: int = 100) -> list[OutboxRow]:
        """The oldest ``limit`` rows, in insertion order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, created FROM outbox ORDER BY id LIMIT ?", (int(limit),)
            ).fetchall()
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def ack(self, row_id: int) -> None:
        """The broker has the message: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (int(row_id),))

    @property
    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    @property
    def dropped(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

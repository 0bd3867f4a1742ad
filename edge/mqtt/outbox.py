"""Durable, bounded outbox for alerts: SQLite in WAL mode with ``synchronous=FULL``.

An alert is written and committed here *before* it is handed to MQTT and deleted only when the
broker acknowledges it (PUBACK), so a crash, a power cut or a broker outage never loses an
alert: the next start sends what is left, in insertion order. Delivery is therefore
at-least-once; consumers deduplicate on the alert ``id``.

When the outbox holds ``max_messages`` rows, ``drop="oldest"`` deletes the oldest row to make room
and ``drop="newest"`` refuses the new one; either way the ``dropped`` counter (kept in the same
database, so it survives restarts) goes up by one.

A write that fails (disk full, database locked by another program, I/O error) never leaves a
transaction half open: ``put`` rolls back and raises ``OutboxWriteError`` whose text names the file
and the cause ("disk full"), and the caller keeps the message (the publisher holds it in memory).
A row the broker acknowledged but that cannot be deleted is remembered as delivered: ``pending``
and ``depth`` leave it out (it is never sent again in this run) and the delete is retried with
back-off; only a restart before the delete succeeds sends it once more (at-least-once).
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0  # how long one write waits for another program's lock on the file
DELETE_RETRY_MIN_S = 1.0  # a delivered row that could not be deleted: retried after this, doubling
DELETE_RETRY_MAX_S = 30.0


def write_failure(path: Path, exc: BaseException) -> str:
    """'disk full (database or disk is full)' / 'database is locked' ...: the cause, in words."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc) or type(exc).__name__
    if name == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text:
        return f"disk full ({text})"
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return f"{text} (another program holds a lock on the file)"
    return text


class OutboxWriteError(Exception):
    """A message could not be stored: ``str()`` names the file and the cause (one line)."""

    def __init__(self, path: Path, exc: BaseException):
        self.path = Path(path)
        self.cause = write_failure(self.path, exc)
        super().__init__(f"cannot store in {self.path}: {self.cause}")

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
        # delivered (acked) rows whose DELETE failed: never handed again, deleted when the disk allows
        self._delivered: set[int] = set()
        self._delete_retry_at = 0.0
        self._delete_backoff_s = DELETE_RETRY_MIN_S
        self._delete_problem: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so each put is one durable transaction.
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            # another program's database is refused before anything (journal mode, tables) is written into it
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
            if tables and "outbox" not in tables:
                self._db.close()
                raise ConfigError(
                    f"not a fashion-edge MQTT outbox: it holds table(s) {', '.join(sorted(tables)[:5])} of another "
                    "program and no 'outbox' table; nothing was written to it (move the file away or set "
                    "service.state_dir)", path=self.path)
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
        """Store one message durably; returns its row id, or None when refused (full, drop='newest').
        Raises ``OutboxWriteError`` (file and cause) when the write fails; nothing is left half done."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                if depth >= self.max_messages:
                    db.execute("UPDATE counters SET value = value + 1 WHERE name = 'dropped'")
                    if self.drop == "newest":
                        db.execute("COMMIT")
                        log.warning("MQTT outbox full (%d): new message on %s dropped", depth, topic)
                        return None
                    excess = depth - self.max_messages + 1
                    # delivered rows waiting for their delete are the oldest: they go first, harmlessly
                    db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                    log.warning("MQTT outbox full (%d): oldest message dropped", depth)
                cursor = db.execute(
                    "INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                    (topic, sqlite3.Binary(bytes(payload)), int(qos), time.time()),
                )
                db.execute("COMMIT")
                row_id = int(cursor.lastrowid)
            except (sqlite3.Error, OSError) as exc:
                # SQLite ends the transaction itself on SQLITE_FULL: a second ROLLBACK would replace
                # "disk full" by "cannot rollback - no transaction is active"
                self._rollback()
                raise OutboxWriteError(self.path, exc) from None
            except BaseException:
                self._rollback()
                raise
            self._delete_delivered(force=False)
            return row_id

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the first error is the one that counts

    def pending(self, limit: int = 100) -> list[OutboxRow]:
        """The oldest ``limit`` rows not yet delivered, in insertion order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, created FROM outbox ORDER BY id LIMIT ?",
                (int(limit) + len(self._delivered),),
            ).fetchall()
            rows = [r for r in rows if r[0] not in self._delivered][: int(limit)]
        return [OutboxRow(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def ack(self, row_id: int) -> None:
        """The broker has the message: forget it. When the delete fails (disk full, locked), the row
        is remembered as delivered (not handed again) and the delete retried later; never raises."""
        with self._lock:
            self._delivered.add(int(row_id))
            self._delete_delivered(force=False)

    def retry_deletes(self) -> None:
        """Delete delivered rows whose delete failed earlier, when the back-off allows (worker loop)."""
        if self._delivered:
            with self._lock:
                self._delete_delivered(force=False)

    @property
    def undeleted(self) -> int:
        """Delivered rows still in the file because their delete failed (not counted in ``depth``)."""
        return len(self._delivered)

    def _delete_delivered(self, force: bool) -> None:
        """Under ``self._lock``."""
        if not self._delivered or (not force and time.monotonic() < self._delete_retry_at):
            return
        ids = sorted(self._delivered)
        try:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            problem = write_failure(self.path, exc)
            if problem != self._delete_problem:
                log.warning("MQTT outbox: %d delivered alert(s) cannot be deleted from %s: %s; they are not "
                            "sent again, the delete is retried", len(ids), self.path, problem)
            self._delete_problem = problem
            self._delete_retry_at = time.monotonic() + self._delete_backoff_s
            self._delete_backoff_s = min(DELETE_RETRY_MAX_S, self._delete_backoff_s * 2)
            return
        if self._delete_problem is not None:
            log.info("MQTT outbox: %d delivered alert(s) deleted from %s (the write works again)", len(ids),
                     self.path)
        self._delivered.clear()
        self._delete_problem = None
        self._delete_backoff_s = DELETE_RETRY_MIN_S
        self._delete_retry_at = 0.0

    @property
    def depth(self) -> int:
        """Rows not yet delivered."""
        with self._lock:
            total = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            ids = sorted(self._delivered)
            for start in range(0, len(ids), 500):  # delivered rows the outbox-full rule may have dropped
                chunk = ids[start:start + 500]
                total -= int(self._db.execute(
                    f"SELECT COUNT(*) FROM outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchone()[0])
            return total

    @property
    def dropped(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._delete_delivered(force=True)  # one last try; what stays is sent once more next start
            if self._delivered:
                log.warning("MQTT outbox: %d delivered alert(s) stay in %s (%s); the next start sends them once "
                            "more (consumers deduplicate on the alert id)", len(self._delivered), self.path,
                            self._delete_problem)
            self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

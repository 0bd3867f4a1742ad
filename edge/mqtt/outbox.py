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
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..state_db import columns_of, connect_own

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0  # how long one write waits for another program's lock on the file
DELETE_RETRY_MIN_S = 1.0  # a delivered row that could not be deleted: retried after this, doubling
DELETE_RETRY_MAX_S = 30.0


SQLITE_HEADER = b"SQLite format 3\x00"


def _file_identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


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
        self._recreate_problem: str | None = None
        try:
            # autocommit: we issue BEGIN/COMMIT ourselves so each put is one durable transaction
            self._db = connect_own(self.path, "outbox", "MQTT outbox", BUSY_TIMEOUT_S, error=ConfigError)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {name: columns_of(self._db, name) for name in ("outbox", "counters")}
            self._dropped_seen = int(self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])
            self._identity = _file_identity(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the MQTT outbox ({exc})", path=self.path) from None
        wanted = {"outbox": {"id", "topic", "payload", "qos", "created"}, "counters": {"name", "value"}}
        for table, names in wanted.items():
            if not names <= columns[table]:
                self._db.close()
                raise ConfigError(
                    f"not a fashion-edge MQTT outbox: table '{table}' lacks {', '.join(sorted(names - columns[table]))} "
                    "(move the file away; alerts in it cannot be read)", path=self.path)

    # -- the file under us: deleted, replaced or overwritten while running ------------------------
    def check_file(self) -> str | None:
        """None while ``path`` is still this outbox's file. Otherwise (deleted, replaced by another
        file, overwritten in place) the outbox is written again at ``path`` with every queued row
        still readable, same ids, in order (a damaged file is moved aside, never deleted), and the
        return value says what happened. Called by the publisher's worker every few seconds."""
        with self._lock:
            problem = self._file_problem()
            if problem is not None:
                self._recreate(problem)
            return problem

    def _file_problem(self) -> str | None:
        if self._identity is None:
            return "still not written again"  # the last re-creation failed: the rows wait in memory
        try:
            identity = _file_identity(self.path)
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None  # cannot look (permissions): the writes themselves will say
        if identity != self._identity:
            return "replaced by another file"
        head = self._header_through_sqlite()
        if head is None or head == SQLITE_HEADER:
            return None
        return "overwritten (its SQLite header is gone)"

    def _header_through_sqlite(self) -> bytes | None:
        """The file's first bytes, read (pread) through the descriptor SQLite itself holds. Opening and
        closing a descriptor of our own would drop SQLite's POSIX locks on the file (a known way to
        corrupt a database), and SQLite itself does not notice: the WAL still holds the pages.
        None where /proc/self/fd is not available (then only deletion and replacement are seen)."""
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            return None
        for name in names:
            try:
                fd = int(name)
                st = os.fstat(fd)
            except (ValueError, OSError):
                continue
            if (st.st_dev, st.st_ino) == self._identity:
                try:
                    return os.pread(fd, len(SQLITE_HEADER), 0)
                except OSError:
                    return None
        return None

    def _open_file(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _fill(db: sqlite3.Connection, rows: list, dropped: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO outbox (id, topic, payload, qos, created) VALUES (?, ?, ?, ?, ?)", rows)
            db.execute("UPDATE counters SET value = ? WHERE name = 'dropped'", (dropped,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _recreate(self, problem: str) -> None:
        """Under ``self._lock``."""
        old, was_file = self._db, self._identity is not None
        try:  # the open connection may still read the old rows (a deleted file lives on while open)
            rows = old.execute("SELECT id, topic, payload, qos, created FROM outbox ORDER BY id").fetchall()
            dropped = int(old.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])
            unreadable = None
        except sqlite3.Error as exc:
            rows, dropped, unreadable = [], self._dropped_seen, str(exc)
        rows = [r for r in rows if r[0] not in self._delivered]
        self._delivered.clear()
        try:
            old.close()  # before anything is created at the path: its close removes its own -wal by name
        except sqlite3.Error:
            pass
        aside = None
        if was_file and problem != "deleted" and self.path.exists():
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = None
        if was_file:
            for suffix in ("-wal", "-shm"):  # the old file's journal must not be replayed into the new one
                try:
                    os.remove(f"{self.path}{suffix}")
                except OSError:
                    pass
        try:
            new = self._open_file()
            self._fill(new, rows, dropped)
            self._identity = _file_identity(self.path)
        except (sqlite3.Error, OSError) as exc:  # e.g. deleted and the disk is full: keep them in memory
            new = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            new.executescript(_SCHEMA)
            self._fill(new, rows, dropped)
            self._identity = None
            cause = write_failure(self.path, exc)
            if cause != self._recreate_problem:
                log.error("MQTT outbox %s was %s and cannot be written again (%s): its %d queued alert(s) wait "
                          "in memory, retried", self.path, problem, cause, len(rows))
            self._recreate_problem = cause
            self._db = new
            return
        self._db = new
        self._recreate_problem = None
        where = f"; the file found there was moved to {aside.name}" if aside else ""
        if not was_file:
            log.warning("MQTT outbox %s written again with its %d queued alert(s) (they waited in memory)",
                        self.path, len(rows))
        elif unreadable is None:
            log.error("MQTT outbox %s was %s while running: written again with its %d queued alert(s)%s",
                      self.path, problem, len(rows), where)
        else:
            log.error("MQTT outbox %s was %s while running and its queued alerts cannot be read (%s): "
                      "a new outbox was started%s", self.path, problem, unreadable, where)

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
            self._dropped_seen = int(self._db.execute(
                "SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0])
            return self._dropped_seen

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

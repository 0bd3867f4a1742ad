"""Issue 12, defect 1 (storage part): an analytics write that fails never stops the camera.

Real SQLite files; the lock is held by a separate process; the full disk is a small tmpfs where this
machine lets the test mount one, else a SQLite ``max_page_count`` limit on the daemon's connection.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import edge.analytics.store as analytics_module
from edge.customer_events import CustomerEnded, CustomerSeen
from edge.analytics import Analytics, read_windows
from edge.errors import FashionEdgeError

T0 = 1_800_000_000.0  # a window boundary for 60 s windows

LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()  # hold the lock until told
    db.execute("COMMIT")
    """
)


def visit(a: Analytics, track_id: int, start: float, seconds: float = 5.0) -> None:
    a.record(CustomerSeen(track_id, start))
    a.record(CustomerSeen(track_id, start + seconds))
    a.record(CustomerEnded(track_id, start + seconds))


def stored_starts(db) -> list[float]:
    return [w["window_start"] for w in read_windows(db)]


def test_locked_database_keeps_windows_in_memory_and_stores_them_after(tmp_path, monkeypatch):
    monkeypatch.setattr(analytics_module, "BUSY_TIMEOUT_S", 0.2, raising=False)
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, T0 + 1)
    assert [w["window_start"] for w in a.poll(T0 + 61)] == [T0]  # stored normally

    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        visit(a, 2, T0 + 65)
        closed = a.poll(T0 + 121)  # before the fix: sqlite3.OperationalError (database is locked)
        visit(a, 3, T0 + 125)
        closed += a.poll(T0 + 181)
        # the summaries still come back (the daemon publishes them), each with its own counts
        assert [(w["window_start"], w["customers"]) for w in closed] == [(T0 + 60, 1), (T0 + 120, 1)]
        assert a.unstored == 2 and a.store_errors >= 1
        assert "locked" in a.last_store_error
        assert stored_starts(db) == [T0]
    finally:
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(timeout=10)
    a._store._retry_at = 0.0  # the back-off has passed
    a.poll(T0 + 182)
    assert a.unstored == 0
    assert stored_starts(db) == [T0, T0 + 60, T0 + 120]  # in order, none lost, none twice
    a.close()


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """(folder, fill(), free()): a folder whose disk can be filled up and freed again."""
    folder = tmp_path / "disk"
    if not os.environ.get("FASHION_EDGE_TEST_NO_TMPFS") and _mount_tmpfs(folder, "1m"):
        filler = folder / "filler"

        def fill():
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:  # ENOSPC: the disk is full
                    pass

        def free():
            filler.unlink()

        yield folder, fill, free
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)
        return
    # no tmpfs here: the same SQLITE_FULL error from a page limit on every analytics connection
    limit = {"pages": None}
    connect = analytics_module._connect

    def limited(path):
        conn = connect(path)
        if limit["pages"] is not None:
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    monkeypatch.setattr(analytics_module, "_connect", limited)
    holder = {}

    def fill():
        conn = sqlite3.connect(folder / "analytics.sqlite")
        limit["pages"] = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.close()
        holder["a"]._store._conn.execute(f"PRAGMA max_page_count = {limit['pages']}")

    def free():
        limit["pages"] = None

    if not folder.exists():
        folder.mkdir()
    fill.holder = holder
    yield folder, fill, free


def test_full_disk_keeps_windows_and_stores_them_when_space_is_back(small_disk, monkeypatch):
    monkeypatch.setattr(analytics_module, "BUSY_TIMEOUT_S", 0.2, raising=False)
    folder, fill, free = small_disk
    db = folder / "analytics.sqlite"
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    if hasattr(fill, "holder"):
        fill.holder["a"] = a
    visit(a, 1, T0 + 1)
    a.poll(T0 + 61)
    fill()
    # many windows with many customers: more than the last free page can take
    closed = []
    for w in range(1, 30):
        for k in range(20):
            visit(a, 1000 * w + k, T0 + 60 * w + 1 + k)
        closed += a.poll(T0 + 60 * (w + 1) + 1)
    assert len(closed) == 29 and all(w["customers"] == 20 for w in closed)  # still summarised
    assert a.unstored > 0 and a.store_errors >= 1, (a.unstored, a.last_store_error)
    assert "full" in a.last_store_error or "disk" in a.last_store_error, a.last_store_error
    free()
    a._store._retry_at = 0.0
    a.poll(T0 + 60 * 31 + 1)
    assert a.unstored == 0, a.last_store_error
    starts = stored_starts(db)
    assert starts == sorted(starts) and len(starts) == len(set(starts))
    assert starts[:30] == [T0 + 60 * w for w in range(30)]
    a.close()


def test_failed_flush_and_retry_unstored_report_what_is_left(tmp_path, monkeypatch):
    monkeypatch.setattr(analytics_module, "BUSY_TIMEOUT_S", 0.1, raising=False)
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        visit(a, 1, T0 + 1)
        windows = a.flush(T0 + 30)  # before the fix: the exception escaped flush (and the daemon's clean-up)
        assert [w["customers"] for w in windows] == [1]
        start = time.monotonic()
        assert a.retry_unstored(timeout_s=1.0) == 1
        assert time.monotonic() - start < 3
    finally:
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(timeout=10)
    assert a.retry_unstored(timeout_s=2.0) == 0
    assert stored_starts(db) == [T0]
    a.close()


def test_foreign_windows_table_is_refused_at_open_in_one_line(tmp_path):
    db = tmp_path / "analytics.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE windows (id INTEGER PRIMARY KEY, note TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(FashionEdgeError, match=r"analytics\.sqlite: not a fashion-edge analytics database") as err:
        Analytics(db, "store", "cam1", window_s=60)
    assert "\n" not in str(err.value)

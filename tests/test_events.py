"""Issue 23: the device's event list (edge/events) - retention by days and by size with real JPEG
files, snapshots off deletes pictures, a foreign or damaged file refused with one line, a failing
write never raised to the camera. Real SQLite files, real JPEGs of a real photo."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.errors import FashionEdgeError
from edge.events import EventStore, Retention
from edge.events.store import DAY_S

REPO = Path(__file__).resolve().parents[1]
NOW = time.time()


@pytest.fixture(scope="module")
def jpegs(shared_dir) -> list[bytes]:
    """Real JPEG crops of a real photo (bus.jpg: four people), each a different size."""
    image = cv2.imread(str(shared_dir / "media" / "bus.jpg"))
    assert image is not None
    out = []
    for i, width in enumerate((120, 160, 200, 240, 280)):
        crop = image[100:100 + 2 * width, 40 * i:40 * i + width]
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        out.append(buf.tobytes())
    return out


def store(tmp_path, **retention) -> EventStore:
    return EventStore(tmp_path, "store-042", Retention(**retention), snapshots_enabled=True)


def record(events: EventStore, n: int, at: float, jpeg: bytes | None, camera="entrance", rule="dress") -> str:
    alert_id = f"a{n:04d}"
    assert events.record(alert_id, camera, n, rule, at, "consensus", [("dress", 0.91), ("shoe", 0.7)], jpeg)
    return alert_id


def pictures(tmp_path) -> set[str]:
    return {p.name for p in (tmp_path / "snapshots").rglob("*.jpg")}


def test_an_event_keeps_labels_and_a_picture_that_decodes(tmp_path, jpegs):
    events = store(tmp_path)
    alert_id = record(events, 7, NOW, jpegs[0])
    row = events.get(alert_id)
    assert row["camera"] == "entrance" and row["customer"] == 7 and row["rule"] == "dress"
    assert row["garments"] == [["dress", 0.91], ["shoe", 0.7]] and row["snapshot"] and not row["false_alert"]
    path = events.snapshot_path(alert_id)
    assert path == tmp_path / "snapshots" / "entrance" / f"{alert_id}.jpg"
    decoded = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[1] == 120
    # a row holds labels only: no appearance column (embedding, colour, crop bytes)
    conn = sqlite3.connect(tmp_path / "events.sqlite")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
    conn.close()
    assert not columns & {"embedding", "appearance", "colour", "color", "image", "jpeg"}
    events.close()


def test_pictures_past_retention_days_are_deleted_oldest_first_and_rows_stay(tmp_path, jpegs):
    events = store(tmp_path, events_days=30, snapshots_days=7)
    old = record(events, 1, NOW - 10 * DAY_S, jpegs[0])  # past the picture retention already
    middle = record(events, 2, NOW - 5 * DAY_S, jpegs[1])
    new = record(events, 3, NOW, jpegs[2])
    assert pictures(tmp_path) == {f"{middle}.jpg", f"{new}.jpg"}
    assert events.get(old) is not None and not events.get(old)["snapshot"]  # the row stays, without a picture
    events.apply_retention(now=NOW + 3 * DAY_S)  # three days on: the middle one is 8 days old
    assert pictures(tmp_path) == {f"{new}.jpg"}
    assert events.snapshot_path(middle) is None and events.get(middle) is not None
    events.apply_retention(now=NOW + 21 * DAY_S)  # the 10-day-old row passes events_days (30)
    assert events.get(old) is None and events.get(middle) is not None
    events.close()


def test_the_size_cap_removes_the_oldest_pictures_first(tmp_path, jpegs):
    cap = len(jpegs[3]) + len(jpegs[4])  # room for the two newest only
    events = store(tmp_path, snapshots_max_bytes=cap)
    ids = [record(events, i, NOW - (5 - i) * 60, jpegs[i]) for i in range(5)]
    assert pictures(tmp_path) == {f"{ids[3]}.jpg", f"{ids[4]}.jpg"}
    assert sum(p.stat().st_size for p in (tmp_path / "snapshots").rglob("*.jpg")) <= cap
    assert all(events.get(i) is not None for i in ids)  # every event stays listed
    assert [e["snapshot"] for e in events.events()] == [True, True, False, False, False]  # newest first
    events.close()


def test_retention_runs_at_start_up(tmp_path, jpegs):
    events = store(tmp_path)
    ids = [record(events, i, NOW - i * DAY_S, jpegs[i]) for i in range(3)]  # 0, 1 and 2 days old
    events.close()
    again = store(tmp_path, snapshots_days=1.5, snapshots_max_bytes=len(jpegs[0]))
    assert pictures(tmp_path) == {f"{ids[0]}.jpg"}
    again.close()


def test_snapshots_off_deletes_every_picture_at_start_up(tmp_path, jpegs):
    events = store(tmp_path)
    alert_id = record(events, 1, NOW, jpegs[0])
    events.close()
    stray = tmp_path / "snapshots" / "entrance" / "left-by-a-crash.jpg"
    stray.write_bytes(jpegs[1])
    off = EventStore(tmp_path, "store-042", Retention(), snapshots_enabled=False)
    assert pictures(tmp_path) == set()
    assert off.get(alert_id) is not None and not off.get(alert_id)["snapshot"]
    # and no new picture is written while they are off, even when one is handed over
    assert off.record("b0001", "entrance", 2, "dress", NOW, "exit", [("dress", 0.8)], jpegs[2])
    assert pictures(tmp_path) == set() and not off.get("b0001")["snapshot"]
    off.close()


def test_false_alert_marks_and_counts_per_rule(tmp_path):
    events = store(tmp_path)
    for i in range(3):
        record(events, i, NOW + i, None, rule="dress")
    record(events, 9, NOW, None, rule="suit", camera="till")
    assert events.mark_false("a0001")["false_alert"] is True
    assert events.mark_false("a0002", True)["false_alert"] is True
    assert events.mark_false("a0002", False)["false_alert"] is False  # undo
    assert events.mark_false("nope") is None
    assert events.rule_counts() == {("entrance", "dress"): {"alerts": 3, "false": 1},
                                    ("till", "suit"): {"alerts": 1, "false": 0}}
    events.close()
    # another site sharing the folder sees none of them
    other = EventStore(tmp_path, "other-site", Retention(), snapshots_enabled=False)
    assert other.events() == [] and other.rule_counts() == {}
    other.close()


def test_paging_newest_first(tmp_path):
    events = store(tmp_path)
    for i in range(7):
        record(events, i, NOW + i, None)
    first = events.events(limit=3)
    assert [e["customer"] for e in first] == [6, 5, 4]
    assert [e["customer"] for e in events.events(limit=3, before=first[-1]["time"])] == [3, 2, 1]
    events.close()


def foreign(path: Path) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, sku TEXT)")
    conn.execute("INSERT INTO sales (sku) VALUES ('dress-1')")
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_or_damaged_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "events.sqlite"
    digest = foreign(path)
    with pytest.raises(FashionEdgeError) as err:
        EventStore(tmp_path, "s")
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and "another program" in text and "sales" in text, text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # nothing written into it
    path.write_bytes(b"this is no SQLite file at all " * 200)  # damaged
    with pytest.raises(FashionEdgeError) as err:
        EventStore(tmp_path, "s")
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and "not a database" in text, text


def test_a_failing_write_is_logged_not_raised(tmp_path, jpegs, caplog):
    caplog.set_level(logging.WARNING, logger="edge.events")
    events = store(tmp_path)
    # a picture folder that cannot be written (a file in its place, like a full disk): the row stays
    (tmp_path / "snapshots").write_bytes(b"not a folder")
    assert events.record("c0001", "entrance", 1, "dress", NOW, "consensus", [("dress", 0.9)], jpegs[0])
    assert events.get("c0001") is not None and not events.get("c0001")["snapshot"]
    assert events.failures == 1 and "picture not stored" in caplog.text
    # the database locked by another program: the write gives up after the busy timeout, returns False
    blocker = sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    assert events.record("c0002", "entrance", 2, "dress", NOW, "consensus", [("dress", 0.9)], None) is False
    assert time.monotonic() - started < 5
    blocker.execute("ROLLBACK")
    blocker.close()
    assert events.failures == 2 and "not stored in" in caplog.text and "locked" in caplog.text
    assert events.get("c0002") is None
    events.close()


def test_every_shipped_config_keeps_pictures_off():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict) or "cameras" not in data:
            continue  # training / export configs
        snaps = data.get("snapshots") or {}
        assert not snaps.get("enabled", False) and not snaps.get("mqtt", False), path.name


def test_concurrent_writes_and_marks(tmp_path):
    events = store(tmp_path)
    errors = []

    def writer(camera):
        try:
            for i in range(40):
                events.record(f"{camera}-{i}", camera, i, "dress", NOW + i, "consensus", [("dress", 0.9)], None)
                events.mark_false(f"{camera}-{i // 2}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c,)) for c in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and events.failures == 0
    counts = events.rule_counts()
    assert counts[("a", "dress")]["alerts"] == 40 and counts[("b", "dress")]["alerts"] == 40
    events.close()

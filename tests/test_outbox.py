"""The durable SQLite outbox: order, acks, bounds, counters that survive a reopen."""

from __future__ import annotations

import sqlite3

import pytest

from edge.mqtt.outbox import Outbox


def test_rows_come_back_in_insertion_order_and_ack_deletes(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite", max_messages=100) as box:
        ids = [box.put(f"t/{i}", f"payload {i}".encode(), qos=1) for i in range(5)]
        assert ids == sorted(ids) and len(set(ids)) == 5
        rows = box.pending(10)
        assert [r.id for r in rows] == ids
        assert [r.topic for r in rows] == [f"t/{i}" for i in range(5)]
        assert rows[2].payload == b"payload 2" and rows[2].qos == 1
        assert [r.id for r in box.pending(2)] == ids[:2]

        box.ack(ids[1])
        box.ack(ids[1])  # a second ack of the same row is harmless
        assert box.depth == 4
        assert [r.id for r in box.pending(10)] == [ids[0], ids[2], ids[3], ids[4]]


def test_put_is_committed_before_it_returns(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, max_messages=10)
    row_id = box.put("fashion-edge/s/alerts/cam/rule", b'{"id": "x"}', qos=1)
    # Another connection (another process after a crash) sees the row at once.
    other = sqlite3.connect(path)
    assert other.execute("SELECT id, payload FROM outbox").fetchall() == [(row_id, b'{"id": "x"}')]
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    box.close()


def test_full_outbox_drops_oldest_and_counts(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite", max_messages=3, drop="oldest") as box:
        ids = [box.put("t", bytes([i]), 1) for i in range(5)]
        assert box.depth == 3
        assert box.dropped == 2
        assert [r.payload for r in box.pending(10)] == [bytes([2]), bytes([3]), bytes([4])]
        assert [r.id for r in box.pending(10)] == ids[2:]


def test_full_outbox_refuses_newest_and_counts(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite", max_messages=3, drop="newest") as box:
        ids = [box.put("t", bytes([i]), 1) for i in range(5)]
        assert ids[3] is None and ids[4] is None
        assert box.depth == 3 and box.dropped == 2
        assert [r.payload for r in box.pending(10)] == [bytes([0]), bytes([1]), bytes([2])]


def test_rows_and_dropped_counter_survive_a_reopen(tmp_path):
    path = tmp_path / "state" / "outbox.sqlite"  # the folder is created
    box = Outbox(path, max_messages=2)
    for i in range(4):
        box.put("t", bytes([i]), 1)
    box.close()
    with Outbox(path, max_messages=2) as again:
        assert again.depth == 2 and again.dropped == 2
        again.put("t", b"\x09", 1)
        assert again.dropped == 3
        assert [r.payload for r in again.pending(10)] == [b"\x03", b"\x09"]


def test_bad_arguments_and_unwritable_path(tmp_path):
    with pytest.raises(ValueError):
        Outbox(tmp_path / "a.sqlite", max_messages=0)
    with pytest.raises(ValueError):
        Outbox(tmp_path / "b.sqlite", drop="random")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="outbox"):
        Outbox(blocker / "outbox.sqlite")

"""Issue 22, item 7: state files damaged while the service runs.

The outbox file deleted, replaced or overwritten is noticed within seconds and written again at its
path with every queued alert that can still be read (same ids, in order); a damaged file is moved
aside, never deleted, so the next start opens a good outbox instead of exiting 2. The analytics
database deleted is noticed at the next window: later windows go to a new file instead of a file
nobody can read. Real SQLite files (damaged from another process), a real mosquitto."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys

from edge.mqtt import Outbox
from test_mqtt import PREFIX, Subscriber, alert, publisher, wait


def stored_ids(path) -> list[str]:
    """Alert ids in the outbox file, in row order; [] when there is none (read-only: never creates it)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        return [json.loads(p)["id"] for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY id")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def test_deleted_outbox_is_written_again_with_its_queued_alerts(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    mosquitto.stop()
    path = tmp_path / "outbox.sqlite"
    pub = publisher(mosquitto.port, path)
    pub.start()
    sent = [alert(i) for i in range(3)]
    for payload in sent:
        pub.publish_alert(payload)
    os.remove(path)  # an operator cleaning up, a tmp cleaner
    # before the fix: the alerts lived on in the deleted file only and were gone at the next start
    assert wait(lambda: stored_ids(path) == [p["id"] for p in sent], 6), caplog.text[-2000:]
    assert "was deleted while running: written again with its 3 queued alert(s)" in caplog.text
    later = alert(10)
    pub.publish_alert(later)
    pub.stop(flush_timeout_s=0.2)
    assert stored_ids(path) == [p["id"] for p in sent + [later]]
    mosquitto.start()
    sub = Subscriber(mosquitto.port, f"{PREFIX}/alerts/#")
    again = publisher(mosquitto.port, path)
    again.start()
    assert sub.wait_for(lambda: len(sub.alerts()) >= 4, 10)
    assert [a["id"] for a in sub.alerts()] == [p["id"] for p in sent + [later]]
    again.stop(flush_timeout_s=1)
    sub.close()


def test_overwritten_outbox_is_moved_aside_and_the_next_start_opens(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    mosquitto.stop()
    path = tmp_path / "outbox.sqlite"
    pub = publisher(mosquitto.port, path)
    pub.start()
    sent = [alert(i) for i in range(3)]
    for payload in sent:
        pub.publish_alert(payload)
    # overwritten in place (same inode) by another process: a stray dd, a bad restore
    subprocess.run([sys.executable, "-c", "import os, sys; f = open(sys.argv[1], 'r+b'); f.write(os.urandom(8192))",
                    str(path)], check=True, timeout=30)
    line = "was overwritten (its SQLite header is gone) while running"
    assert wait(lambda: line in caplog.text, 6), caplog.text[-2000:]
    assert any(p.name.startswith("outbox.sqlite.damaged-") for p in tmp_path.iterdir())
    later = alert(10)
    pub.publish_alert(later)
    pub.stop(flush_timeout_s=0.2)
    # before the fix: this open exited 2 ("cannot open the MQTT outbox (file is not a database)")
    with Outbox(path) as box:
        rows = [json.loads(r.payload)["id"] for r in box.pending(100)]
    assert rows[-1] == later["id"]
    assert rows in ([later["id"]], [p["id"] for p in sent + [later]])  # the old rows when still readable


def test_outbox_replaced_by_another_file_is_moved_aside(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    mosquitto.stop()
    path = tmp_path / "outbox.sqlite"
    pub = publisher(mosquitto.port, path)
    pub.start()
    sent = [alert(i) for i in range(2)]
    for payload in sent:
        pub.publish_alert(payload)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    os.replace(other, path)
    line = "was replaced by another file while running: written again with its 2 queued alert(s)"
    assert wait(lambda: line in caplog.text, 6), caplog.text[-2000:]
    assert stored_ids(path) == [p["id"] for p in sent]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("outbox.sqlite.damaged-")]
    assert len(aside) == 1
    conn = sqlite3.connect(aside[0])
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]  # kept as it was
    conn.close()
    pub.stop(flush_timeout_s=0.2)


def test_deleted_analytics_database_gets_the_later_windows(tmp_path, caplog):
    from edge.analytics import Analytics, read_windows
    from test_analytics_failures import T0, visit

    caplog.set_level(logging.INFO, logger="edge")
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, T0 + 1)
    a.poll(T0 + 61)
    assert [w["window_start"] for w in read_windows(db)] == [T0]
    os.remove(db)  # before the fix: every later window went to the deleted file, silently
    for w in (1, 2):
        visit(a, 10 * w, T0 + 60 * w + 1)
        a.poll(T0 + 60 * (w + 1) + 1)
    assert db.exists(), caplog.text[-2000:]
    assert [w["window_start"] for w in read_windows(db)] == [T0 + 60, T0 + 120]
    assert "was deleted while running" in caplog.text
    assert a.unstored == 0
    a.close()

"""Issue 22, item 7 (part): another program's SQLite file given as the outbox or the analytics
database is refused at open with one line, and nothing is written into it (before: the daemon's
tables were added to it and its journal switched to WAL). Real SQLite files, the real CLI."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import pytest
import yaml

from edge.analytics import Analytics
from edge.errors import FashionEdgeError
from edge.mqtt import Outbox
from test_daemon import REPO, write_config


def foreign_database(path) -> str:
    """Another program's SQLite file (a point-of-sale export); returns its SHA-256."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, sku TEXT, amount REAL)")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO sales (sku, amount) VALUES (?, ?)", [("dress-1", 49.9), ("suit-2", 199.0)])
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["outbox", "analytics"])
def test_another_programs_database_is_refused_and_left_untouched(tmp_path, kind):
    path = tmp_path / f"{kind}.sqlite"
    digest = foreign_database(path)
    with pytest.raises(FashionEdgeError) as err:
        if kind == "outbox":
            Outbox(path)
        else:
            Analytics(path, site="s", camera="cam1")
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and "another program" in text, text
    assert "customers" in text and "sales" in text, text
    assert tables(path) == {"sales", "customers"}  # before: outbox/counters or windows were added
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # not a byte written (journal mode too)
    assert not (tmp_path / f"{kind}.sqlite-wal").exists()


def test_an_empty_file_and_our_own_database_still_open(tmp_path):
    empty = tmp_path / "outbox.sqlite"
    empty.touch()
    with Outbox(empty) as box:  # an empty file is a new database
        box.put("t", b"x")
    with Outbox(empty) as box:
        assert box.depth == 1
    a = Analytics(tmp_path / "analytics.sqlite", site="s", camera="cam1")
    a.close()
    Analytics(tmp_path / "analytics.sqlite", site="s", camera="cam1").close()


def test_run_with_a_foreign_outbox_in_the_state_dir_exits_2_with_one_line(tmp_path, shared_dir):
    state = tmp_path / "state"
    state.mkdir()
    digest = foreign_database(state / "outbox.sqlite")
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["service"]["state_dir"] = str(state)
    config.write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config), "--max-frames", "5",
                             "--mqtt-host", "127.0.0.1", "--mqtt-port", "1"], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "not a fashion-edge MQTT outbox" in result.stderr and "Traceback" not in result.stderr
    assert hashlib.sha256((state / "outbox.sqlite").read_bytes()).hexdigest() == digest

"""Issue 22, item 8 (smaller defects): one run per state directory (a second run of the same config
took the first one's MQTT session), state files not readable by other users, a TLS failure named as
such in the exit line, paho's per-retry "failed to receive on socket" kept out of the log (one line
from the publisher instead), and the demo keeping an outbox whose alerts were "kept for the next
start". Real daemon subprocesses, a real mosquitto (plain and TLS), real SQLite files."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest
import yaml

from test_daemon import REPO, Collector, run_daemon, write_config
from test_mqtt import alert, make_certs, publisher, wait


def test_a_second_run_of_the_same_state_dir_exits_2_and_leaves_the_first_alone(tmp_path, shared_dir, mosquitto):
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["loop"] = True  # the first run goes on until stopped
    config.write_text(yaml.safe_dump(data))
    prefix = "fashion-edge/demo-store"
    watcher = Collector(mosquitto.port, prefix)
    first = run_daemon(config, mosquitto.port, wait=False)
    try:
        assert wait(lambda: any(p == b"online" for _, p, _ in watcher.topics(rf"{prefix}/availability")), 60), \
            "the first run never came online"
        code, out = run_daemon(config, mosquitto.port, "--max-frames", "20", timeout=120)
        # before the fix: the second run connected with the same client id (the broker dropped the
        # first run's session) and only then failed, or ran alongside on the same outbox
        assert code == 2, out[-3000:]
        assert f"another fashion-edge run (pid {first.pid}) uses the state directory" in out, out[-3000:]
        time.sleep(1.0)
        availability = [p for _, p, _ in watcher.topics(rf"{prefix}/availability")]
        assert availability.count(b"online") == 1 and b"offline" not in availability, availability
        assert first.poll() is None  # still running
    finally:
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
        watcher.stop()
    assert first.returncode == 0, out[-3000:]
    state = tmp_path / "state"
    for name in ("outbox.sqlite", "analytics.sqlite", ".lock"):
        mode = stat.S_IMODE((state / name).stat().st_mode)
        assert mode & 0o027 == 0, (name, oct(mode))  # before: 0644 (world-readable) outside systemd


def test_tls_failure_is_named_in_the_exit_line(tmp_path, shared_dir, mosquitto_factory):
    from conftest import free_port

    certs = make_certs(tmp_path / "tls")
    other_ca = make_certs(tmp_path / "other", "otherca")["ca"]
    tls_port = free_port()
    mosquitto_factory(f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['cert']}\n"
                      f"keyfile {certs['key']}\n")
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["mqtt"]["tls"] = {"ca": str(other_ca)}  # a real CA file, but not the broker's
    config.write_text(yaml.safe_dump(data))
    code, out = run_daemon(config, tls_port, "--max-frames", "300")
    last = [line for line in out.splitlines() if line.startswith("fashion-edge:")]
    assert code == 3, out[-3000:]
    # before the fix: "fashion-edge: broker unreachable at 127.0.0.1:PORT: ..."
    assert last and last[-1].startswith(f"fashion-edge: TLS handshake with 127.0.0.1:{tls_port} failed"), last
    assert "CERTIFICATE_VERIFY_FAILED" in last[-1] and "check mqtt.tls" in last[-1] and "unreachable" not in last[-1]


@pytest.fixture
def resetting_server():
    """A TCP server that reads the CONNECT and resets the connection (not an MQTT broker)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                conn.recv(1024)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_paho_receive_failures_are_not_an_error_line_per_retry(resetting_server, tmp_path, caplog):
    from edge.daemon import setup_logging

    setup_logging("INFO")  # installs the daemon's filter on paho's logger
    caplog.set_level(logging.INFO)
    pub = publisher(resetting_server, tmp_path / "outbox.sqlite")
    pub.start()
    try:
        time.sleep(3.0)  # several retries (back-off 0.25 s doubling to 1 s)
    finally:
        pub.stop(flush_timeout_s=0.2)
    paho_errors = [r for r in caplog.records if r.name.startswith("paho") and r.levelno >= logging.ERROR]
    assert paho_errors == [], [r.getMessage() for r in paho_errors][:3]  # before: one per retry
    ours = [r.getMessage() for r in caplog.records if "closed the connection before the MQTT handshake" in r.getMessage()]
    assert len(ours) == 1, ours  # one plain line says what is wrong
    assert "closed the connection before the MQTT handshake" in (pub.last_error or "")


def test_demo_keeps_an_outbox_that_still_holds_alerts(tmp_path):
    from edge.commands.demo import start_clean
    from edge.daemon import DEMO_MARKER
    from edge.mqtt import Outbox

    state = tmp_path / "demo"
    state.mkdir()
    (state / DEMO_MARKER).write_text("demo\n")
    with Outbox(state / "outbox.sqlite") as box:  # the previous demo run: broker unreachable, 2 kept
        box.put("fashion-edge/demo-store/alerts/entrance/dress", b'{"id": "a"}')
        box.put("fashion-edge/demo-store/windows/entrance", b'{"window_start": "x"}')  # a window: no alert
        box.put("fashion-edge/demo-store/alerts/entrance/suit", b'{"id": "b"}')
    conn = sqlite3.connect(state / "analytics.sqlite")
    conn.execute("CREATE TABLE windows (x)")
    conn.commit()
    conn.close()
    line = start_clean(state, owned=True)
    # before the fix: both files removed, the two alerts with them
    assert (state / "outbox.sqlite").exists() and not (state / "analytics.sqlite").exists()
    assert "2 undelivered alert(s): kept" in line, line
    with Outbox(state / "outbox.sqlite") as box:
        assert box.depth == 3  # kept whole: the window goes out too
        for row in box.pending(10):
            box.ack(row.id)
    line = start_clean(state, owned=True)  # once delivered, the next demo starts clean again
    assert not (state / "outbox.sqlite").exists() and "kept" not in line, line


def test_demo_clears_the_previous_runs_events_and_pictures(tmp_path):
    """A demo run with snapshots on left an event list and pictures: the next demo starts without them
    (before: they piled up across demo runs); a folder that is not the demo's keeps them."""
    from edge.commands.demo import start_clean
    from edge.daemon import DEMO_MARKER

    state = tmp_path / "demo"
    pictures = state / "snapshots" / "entrance"
    pictures.mkdir(parents=True)
    (pictures / "a.jpg").write_bytes(b"\xff\xd8 picture")
    (state / "events.sqlite").write_bytes(b"")
    (state / "events.sqlite-wal").write_bytes(b"")
    (state / DEMO_MARKER).write_text("demo\n")
    start_clean(state, owned=True)
    assert not (state / "snapshots").exists() and not list(state.glob("events.sqlite*"))

    store = tmp_path / "store"
    (store / "snapshots").mkdir(parents=True)
    (store / "events.sqlite").write_bytes(b"")
    line = start_clean(store, owned=False)
    assert "not a demo state folder" in line
    assert (store / "events.sqlite").exists() and (store / "snapshots").is_dir()


# The real CLI; camera 'entrance' hangs in its 10th frame (an inference that never returns) after
# telling the test socket, so the test can send SIGTERM while it hangs.
STUCK_CAMERA = """
import os, socket, sys, time
import edge.pipeline as pipeline

process, seen = pipeline.CameraPipeline.process, {"n": 0}

def stuck_process(self, frame):
    seen["n"] += 1
    if seen["n"] == 10:
        marker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        marker.sendto(b"TEST=stuck", os.environ["NOTIFY_SOCKET"])
        time.sleep(600)
    return process(self, frame)

pipeline.CameraPipeline.process = stuck_process
from edge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_with_a_stuck_stage_names_the_camera_and_exits_1(tmp_path, shared_dir, mosquitto):
    import tempfile

    folder = tempfile.mkdtemp(prefix="sd")
    path = os.path.join(folder, "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(60)
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["loop"] = True
    config.write_text(yaml.safe_dump(data))
    wrapper = tmp_path / "stuck.py"
    wrapper.write_text(STUCK_CAMERA)
    env = dict(os.environ, NOTIFY_SOCKET=path, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(wrapper), "run", "--config", str(config), "--mqtt-host",
                             "127.0.0.1", "--mqtt-port", str(mosquitto.port)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while server.recv(4096).decode() != "TEST=stuck":
            pass
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
        os.unlink(path)
        os.rmdir(folder)
    assert time.monotonic() - started < 20  # within the unit's TimeoutStopSec
    # before the fix: exit 0 and no line, as if the run had ended well
    assert proc.returncode == 1, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("fashion-edge:")]
    assert any(line.startswith("fashion-edge: camera entrance did not stop within the stop budget "
                               "(entrance:pipeline running for") for line in lines), lines

"""Issue 12, defects 4, 5 and 6 (publisher part): values that passed validation but broke the daemon,
tracebacks where one line and exit 2 belong, and the MQTT connection's honesty about itself.

Real files, real SQLite, a real TCP server that never answers MQTT, a free port with nothing on it.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest
import yaml

from conftest import free_port
from edge.config import parse_config
from edge.errors import ConfigError
from test_cli_errors import REPO, cli, demo_config, one_error_line


def base_config() -> dict:
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    data["mqtt"] = {"host": "127.0.0.1"}
    return data


# (section, key, value, field named in the error): each passed validation before and broke the daemon
ABSURD = [
    ("mqtt", "keepalive_s", 70000, "mqtt.keepalive_s"),  # paho's network thread died, exit 0, never connected
    ("analytics", "window_s", float("inf"), "analytics.window_s"),  # spun forever
    ("analytics", "window_s", float("nan"), "analytics.window_s"),
    ("analytics", "window_s", 0.001, "analytics.window_s"),
    ("analytics", "min_dwell_s", 1e9, "analytics.min_dwell_s"),  # nobody would ever count
    ("detector", "threads", 1000000, "detector.threads"),  # blamed the video, then SIGSEGV
    ("garments", "min_crop_px", 10**30, "garments.min_crop_px"),  # no crop good enough: no alert ever
    ("garments", "threads", 1000000, "garments.threads"),
    ("tracker", "max_lost_s", float("inf"), "tracker.max_lost_s"),
    ("consensus", "scan_budget_ms", float("nan"), "consensus.scan_budget_ms"),
    ("detector", "max_detections", 10**9, "detector.max_detections"),
    ("classifier", "threads", 1000000, "classifier.threads"),
    ("mqtt", "stats_interval_s", float("inf"), "mqtt.stats_interval_s"),
    ("mqtt", "stats_interval_s", 1e-9, "mqtt.stats_interval_s"),
    ("service", "stuck_inference_s", float("inf"), "service.stuck_inference_s"),
    ("snapshots", "jpeg_quality", 1000, "snapshots.jpeg_quality"),
]


@pytest.mark.parametrize("section,key,value,field", ABSURD, ids=[f"{a[3]}={a[2]}" for a in ABSURD])
def test_absurd_values_are_refused_naming_the_field(section, key, value, field):
    data = base_config()
    data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as err:
        parse_config(data, "cfg.yaml")
    assert str(err.value).startswith(f"cfg.yaml: {field}: ") and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("camera,field", [
    ({"fps_cap": float("inf")}, "cameras[0].fps_cap"),
    ({"fps_cap": 10000}, "cameras[0].fps_cap"),
    ({"reconnect": {"initial_s": float("inf")}}, "cameras[0].reconnect.initial_s"),
    ({"reconnect": {"initial_s": 5, "max_s": 1}}, "cameras[0].reconnect"),
    ({"reconnect": {"max_s": 1e12}}, "cameras[0].reconnect.max_s"),
])
def test_absurd_camera_values_are_refused(camera, field):
    data = base_config()
    data["cameras"][0].update(camera)
    with pytest.raises(ConfigError) as err:
        parse_config(data, "cfg.yaml")
    assert str(err.value).startswith(f"cfg.yaml: {field}: "), str(err.value)


def test_absurd_rule_values_are_refused():
    data = base_config()
    data["rules"][0]["cooldown_s"] = float("inf")
    with pytest.raises(ConfigError, match=r"rules\[0\]\.cooldown_s"):
        parse_config(data, "cfg.yaml")
    data = base_config()
    data["rules"][0]["zones"] = [[[0, 0], [1e300, 0], [0, 10]]]
    with pytest.raises(ConfigError, match=r"rules\[0\]\.zones"):
        parse_config(data, "cfg.yaml")


def test_shipped_configs_stay_within_the_bounds():
    from edge.config import load_config

    for name in ("demo.yaml", "store.yaml", "jetson.yaml"):
        load_config(REPO / "configs" / name)


def test_check_config_refuses_keepalive_above_the_protocol_limit(tmp_path, shared_dir):
    path = demo_config(tmp_path, shared_dir, lambda d: d["mqtt"].update(keepalive_s=70000))
    line = one_error_line(cli("check-config", str(path)))
    assert str(path) in line and "mqtt.keepalive_s" in line


@pytest.mark.parametrize("flags,named", [
    (["--mqtt-port", "70000"], "--mqtt-port"),  # connected to 4464 (70000 mod 65536)
    (["--mqtt-port", "-1"], "--mqtt-port"),  # never retried
    (["--mqtt-port", "0"], "--mqtt-port"),
    (["--max-frames", "-5"], "--max-frames"),  # ran one frame
    (["--max-frames", "0"], "--max-frames"),
])
def test_out_of_range_flags_are_one_line_and_exit_2(flags, named, tmp_path, shared_dir):
    path = demo_config(tmp_path, shared_dir)
    line = one_error_line(cli("run", "--config", str(path), *flags, timeout=60))
    assert named in line and "outside" in line
    assert not (tmp_path / "state").exists()  # refused before anything started


# ----------------------------------------------------------------------------------- defect 5

def test_non_utf8_config_is_one_line_for_check_config_and_run(tmp_path, shared_dir):
    path = demo_config(tmp_path, shared_dir)
    path.write_bytes(path.read_bytes().replace(b"site: demo-store", b"site: caf\xe9"))
    for args in (["check-config", str(path)], ["run", "--config", str(path)]):
        line = one_error_line(cli(*args, timeout=60))  # before the fix: UnicodeDecodeError traceback
        assert str(path) in line and "UTF-8" in line and "line" in line


def test_state_dir_that_cannot_be_created_is_one_line(tmp_path, shared_dir):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state directory's parent should be")
    path = demo_config(tmp_path, shared_dir, lambda d: d["service"].update(state_dir=str(blocker / "state")))
    line = one_error_line(cli("run", "--config", str(path), "--max-frames", "1", timeout=60))
    assert "service.state_dir" in line and "not-a-folder" in line  # before: NotADirectoryError traceback


def test_state_dir_on_a_read_only_filesystem_is_one_line(tmp_path, shared_dir):
    # /proc/1 is read-only for every user, root included (a read-only parent the service cannot write)
    path = demo_config(tmp_path, shared_dir, lambda d: d["service"].update(state_dir="/proc/1/fashion-edge-state"))
    line = one_error_line(cli("run", "--config", str(path), "--max-frames", "1", timeout=60))
    assert "service.state_dir" in line


def test_foreign_outbox_is_one_line_and_exit_2(tmp_path, shared_dir):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "outbox.sqlite")
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, message TEXT)")  # another program's outbox
    db.execute("INSERT INTO outbox (message) VALUES ('theirs')")
    db.commit()
    db.close()
    path = demo_config(tmp_path, shared_dir)
    line = one_error_line(cli("run", "--config", str(path), "--max-frames", "1"))
    assert "outbox.sqlite" in line and "not a fashion-edge MQTT outbox" in line
    with sqlite3.connect(state / "outbox.sqlite") as db:  # and it is left as it was
        assert db.execute("SELECT message FROM outbox").fetchall() == [("theirs",)]


def test_foreign_analytics_database_is_one_line_and_exit_2(tmp_path, shared_dir):
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "analytics.sqlite")
    db.execute("CREATE TABLE windows (start TEXT, visitors INTEGER)")
    db.commit()
    db.close()
    path = demo_config(tmp_path, shared_dir)
    line = one_error_line(cli("run", "--config", str(path), "--max-frames", "1"))
    assert "analytics.sqlite" in line and "not a fashion-edge analytics database" in line


# ----------------------------------------------------------------------------------- defect 6

def _publisher(port, tmp_path, **kwargs):
    from edge.config import MQTTConfig
    from edge.mqtt.publisher import MqttPublisher

    return MqttPublisher(MQTTConfig(keepalive_s=5), "fashion-edge/t", "fe-t", tmp_path / "outbox.sqlite",
                         "127.0.0.1", port, reconnect_min_s=0.25, reconnect_max_s=1, **kwargs)


def test_a_server_that_never_answers_connack_is_reported(tmp_path):
    """Something accepts TCP but never speaks MQTT: the daemon now says so."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # keep it open, never answer
            except socket.timeout:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    pub = _publisher(server.getsockname()[1], tmp_path, connack_timeout_s=1.0)
    try:
        pub.start()
        deadline = time.monotonic() + 8
        while not (pub.last_error or "").startswith("no CONNACK") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (pub.last_error or "").startswith("no CONNACK"), pub.last_error
        assert not pub.connected and accepted
    finally:
        pub.stop(flush_timeout_s=1)
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        server.close()


def test_stop_while_disconnected_does_not_wait_for_the_flush_timeout(tmp_path):
    from edge.mqtt import make_alert

    pub = _publisher(free_port(), tmp_path)  # nothing listens there
    pub.start()
    pub.publish_alert(make_alert("s", "cam1", 1, "suit", [("suit", 0.9)], [1, 2, 3, 4], 1, None))
    start = time.monotonic()
    pub.stop(flush_timeout_s=10)  # before the fix: 10 s although nothing could be acknowledged
    assert time.monotonic() - start < 4
    assert pub.outbox_depth == 1  # kept for the next start


def test_reconnect_back_off_is_capped_at_5_s():
    from edge.mqtt import publisher

    assert publisher.RECONNECT_MAX_S <= 5

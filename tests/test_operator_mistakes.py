"""Mistakes a new operator makes (issue 13), run as the operator runs them: the real CLI in a
subprocess, the real models and clip, a real mosquitto holding the demo's port."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import demo_config_data, free_port

REPO = Path(__file__).resolve().parents[1]


def cli(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def demo_config(tmp_path: Path, shared: Path, name: str = "demo.yaml", **sections) -> Path:
    """configs/demo.yaml with absolute model paths, its state in tmp_path; ``sections`` replace top-level keys."""
    data = demo_config_data(shared)
    data["service"] = {"state_dir": str(tmp_path / "state")}
    data.update(sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def assert_readable_demo_output(out: str, err: str) -> None:
    """One line per alert, a labelled table instead of a JSON dump, no runtime chatter."""
    alerts = [line for line in out.splitlines() if line.startswith("ALERT ")]
    finished = re.search(r"demo finished: (\d+) frames in [\d.]+ s, [\d.]+ fps, (\d+) alert\(s\)", out)
    assert finished, out
    assert len(alerts) == int(finished.group(2))
    assert not re.search(r"alert [0-9a-f-]{36}:", err), err  # the log no longer repeats each alert
    assert not any(line.lstrip().startswith("{") for line in out.splitlines()), out
    assert re.search(r"^\s+stage\s+p50 ms\s+p95 ms", out, re.M) and re.search(r"^\s+total\s+[\d.]+\s+[\d.]+", out, re.M)
    assert "XNNPACK" not in err and "XNNPACK" not in out


def test_demo_next_to_a_busy_broker_moves_and_alerts_finds_it(tmp_path, shared_dir, mosquitto):
    """A mosquitto holds the demo's MQTT port (1883 in a store next to Frigate / Home Assistant): the demo
    says where its own broker went, and `fashion-edge alerts --config` (no --port) receives the alerts."""
    config = demo_config(tmp_path, shared_dir, mqtt={"port": mosquitto.port})
    demo = popen("demo", "--config", config, "--max-frames", 110)
    try:
        line = demo.stdout.readline()
        while line and not line.startswith("MQTT:"):
            line = demo.stdout.readline()
        assert f"port {mosquitto.port} is taken" in line, line
        port = int(re.search(r"listens on 127\.0\.0\.1:(\d+)", line).group(1))
        assert port != mosquitto.port
        recorded = json.loads((tmp_path / "state" / "broker.json").read_text())
        assert recorded["port"] == port
        alerts = cli("alerts", "--config", config, "--count", 1, "--json", timeout=120)
        out, err = demo.communicate(timeout=120)
    finally:
        demo.kill()
    assert alerts.returncode == 0, alerts.stderr
    assert f"listening on fashion-edge/demo-store/alerts/# at 127.0.0.1:{port}" in alerts.stderr
    received = json.loads(alerts.stdout.splitlines()[0])
    assert received["rule"] == "outwear" and received["camera"] == "entrance"
    assert demo.returncode == 0, err
    assert_readable_demo_output(line + out, err)
    assert not (tmp_path / "state" / "broker.json").exists()  # removed when the broker stopped


def _windows(db: Path) -> tuple[int, int]:
    """(windows, tracks counted in them): a second run in the same minute merges into the same row."""
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute("SELECT COUNT(*), COALESCE(SUM(tracks), 0) FROM windows").fetchone())


def test_demo_starts_clean_every_run_but_never_clears_a_store_folder(tmp_path, shared_dir):
    config = demo_config(tmp_path, shared_dir, mqtt={"port": free_port()})
    db = tmp_path / "state" / "analytics.sqlite"
    first = cli("demo", "--config", config, "--max-frames", 80)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("demo: clean start")
    after_first = _windows(db)
    assert after_first[0] >= 1 and after_first[1] >= 1  # customer #1 walks in within 80 frames
    second = cli("demo", "--config", config, "--max-frames", 80)
    assert second.returncode == 0, second.stderr
    assert "previous demo run's analytics and outbox" in second.stdout.splitlines()[0]
    assert _windows(db)[1] == after_first[1]  # not piled up: this run's customers only

    # `run` in that folder makes it a real one: a later demo there no longer clears it
    assert cli("run", "--config", config, "--max-frames", 80).returncode == 0
    fourth = cli("demo", "--config", config, "--max-frames", 80)
    assert fourth.returncode == 0, fourth.stderr
    assert "is not a demo state folder" in fourth.stdout.splitlines()[0]
    assert _windows(db)[1] > after_first[1]  # kept and added to

    # a folder the demo does not own (a store's state) keeps its analytics, and the demo says so
    store = tmp_path / "store-state"
    store.mkdir()
    sqlite3.connect(store / "analytics.sqlite").close()
    config = demo_config(tmp_path, shared_dir, "store.yaml", mqtt={"port": free_port()},
                         service={"state_dir": str(store)})
    third = cli("demo", "--config", config, "--max-frames", 5)
    assert third.returncode == 0, third.stderr
    assert "is not a demo state folder: its analytics are kept" in third.stdout.splitlines()[0]
    assert (store / "analytics.sqlite").exists()


def test_camera_that_never_gives_a_frame_stops_with_one_line(tmp_path, shared_dir):
    """`demo --source 9` without such a camera, `run` on an unreachable RTSP URL: exit 1 after the bound."""
    config = demo_config(tmp_path, shared_dir, mqtt={"port": free_port()})
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["reconnect"] = {"initial_s": 0.2, "max_s": 1, "first_frame_timeout_s": 2}
    config.write_text(yaml.safe_dump(data))
    url = f"rtsp://127.0.0.1:{free_port()}/x"
    for command, source in (("run", url), ("demo", "9")):
        started = time.monotonic()
        result = cli(command, "--config", config, "--source", source, timeout=120)
        assert result.returncode == 1, (command, result.returncode, result.stderr)
        assert time.monotonic() - started < 60
        final = [line for line in result.stderr.splitlines() if line.startswith("fashion-edge:")]
        assert len(final) == 1 and "camera entrance failed" in final[0] and source in final[0], result.stderr
        assert "no frame received in 2 s" in final[0]
        assert "Traceback" not in result.stderr
        assert "[ WARN" not in result.stderr and "[ERROR" not in result.stderr and "OpenCV" not in result.stderr
        assert result.stderr.count("no frame received") <= 2  # the exit line (and run's summary), not a flood
        if command == "demo":
            assert "demo stopped (exit 1) before any frame" in result.stdout and "finished" not in result.stdout


def test_run_on_a_file_prints_progress(tmp_path, shared_dir, mosquitto, caplog):
    from edge.config import load_config
    from edge.daemon import Daemon, RunOptions

    config = load_config(demo_config(tmp_path, shared_dir, mqtt={"host": "127.0.0.1", "port": mosquitto.port}))
    caplog.set_level(logging.INFO, logger="fashion-edge")
    # 100 frames: the first 60 are an empty floor the idle gate runs through in a blink; the
    # customer from frame 60 on keeps the detector busy for longer than the interval
    daemon = Daemon(config, RunOptions(max_frames=100, progress_interval_s=0.2))
    assert daemon.run() == 0
    progress = [r.getMessage() for r in caplog.records if re.match(r"camera entrance: frame \d+/1394 \(\d+ %\), "
                                                                   r"[\d.]+ fps", r.getMessage())]
    assert progress, [r.getMessage() for r in caplog.records]
    positions = [int(re.search(r"frame (\d+)/", p).group(1)) for p in progress]
    assert positions == sorted(positions) and positions[-1] <= 100


def test_paho_retry_messages_stay_out_of_the_log(tmp_path, caplog):
    """While the broker is down paho logs "Client is not connected. Socket: None)..." per retry; the
    publisher's own plain line is what the operator sees."""
    from edge.config import MQTTConfig
    from edge.daemon import setup_logging
    from edge.mqtt.publisher import MqttPublisher

    setup_logging("INFO")
    caplog.set_level(logging.INFO)
    publisher = MqttPublisher(MQTTConfig(), prefix="fashion-edge/t", client_id="t", host="127.0.0.1",
                              port=free_port(), outbox_path=tmp_path / "outbox.sqlite")
    publisher.start()
    time.sleep(4.0)
    publisher.stop(flush_timeout_s=0.5)
    assert "cannot reach the MQTT broker" in caplog.text
    assert "Client is not connected" not in caplog.text


def test_runtime_chatter_is_dropped_and_other_stderr_kept(shared_dir, capfd):
    """The interpreter's 'XNNPACK delegate' INFO line (C++ writes it to fd 2) is kept out; anything else
    written to fd 2 meanwhile still reaches stderr."""
    import os

    from edge.runtime import TFLiteModel, _quiet_runtime_stderr

    TFLiteModel(shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_224.tflite")
    with _quiet_runtime_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nsomething that matters\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err
    assert err == "something that matters\n"

"""``fashion-edge alerts`` as a staff member runs it: a real subprocess against a real mosquitto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.mqtt import make_alert
from edge.mqtt.payloads import encode

REPO = Path(__file__).resolve().parents[1]


def run_alerts(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "alerts", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )


def wait_listening(proc: subprocess.Popen) -> None:
    line = proc.stderr.readline()  # "listening on <filter> at host:port" once subscribed
    assert line.startswith("listening on"), line


def publish_raw(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-pub")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def alert(site: str, camera: str, rule: str, garments, track: int) -> dict:
    return make_alert(site, camera, track, rule, garments, [1, 2, 3, 4], 100 + track, 4.0 + track)


def test_count_2_json_receives_two_alerts_deduplicated_by_id(mosquitto):
    proc = run_alerts("--port", str(mosquitto.port), "--count", "2", "--json")
    try:
        wait_listening(proc)
        first = alert("shop1", "door", "suit_alert", [("suit", 0.91)], 4)
        second = alert("shop2", "till", "tie_alert", [("tie", 0.8)], 5)  # default --site '+': every site
        publish_raw(mosquitto.port, [
            ("fashion-edge/shop1/alerts/door/suit_alert", encode(first)),
            ("fashion-edge/shop1/alerts/door/suit_alert", encode(first)),  # QoS 1 redelivery: same id
            ("fashion-edge/shop1/cameras/door/counts", b'{"people": 1}'),  # not an alert topic
            ("fashion-edge/shop2/alerts/till/tie_alert", encode(second)),
        ])
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert [json.loads(line) for line in lines] == [first, second]


def test_readable_lines_and_label_filter(mosquitto):
    proc = run_alerts("--port", str(mosquitto.port), "--site", "shop1", "--label", "TIE", "--count", "1")
    try:
        wait_listening(proc)
        suit = alert("shop1", "door", "suit_alert", [("suit", 0.91)], 4)
        tie = alert("shop1", "door", "formal", [("suit", 0.88), ("tie", 0.77)], 9)
        publish_raw(mosquitto.port, [
            ("fashion-edge/shop1/alerts/door/suit_alert", encode(suit)),
            ("fashion-edge/shop1/alerts/door/formal", b"not json"),
            ("fashion-edge/shop1/alerts/door/formal", encode(tie)),
        ])
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        f"{tie['time']}  shop1/door  formal: suit 0.88, tie 0.77  (customer #9, frame 109 @ 13.0s)"
    ]
    assert "not JSON" in err


def test_unreachable_broker_is_one_line_and_non_zero():
    from conftest import free_port

    started = time.monotonic()
    proc = run_alerts("--port", str(free_port()), "--count", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "cannot reach the MQTT broker" in err
    assert time.monotonic() - started < 20  # no retry loop: fails at once (bound allows a loaded CI)


def test_missing_password_env_exits_2():
    env_name = "FE_TEST_ALERTS_UNSET_PASSWORD"
    os.environ.pop(env_name, None)
    proc = run_alerts("--username", "staff", "--password-env", env_name, "--count", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip() == f"fashion-edge alerts: error: --password-env: environment variable {env_name} is not set"


def _config(tmp_path: Path, shared: Path, mqtt: dict, site: str = "shop9") -> Path:
    import yaml

    from conftest import demo_config_data

    data = demo_config_data(shared)
    data["site"] = site
    data["service"] = {"state_dir": str(tmp_path / "state")}
    data["mqtt"] = mqtt
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_gives_the_broker_and_topic_prefix(mosquitto, tmp_path, shared_dir):
    config = _config(tmp_path, shared_dir, {"host": "127.0.0.1", "port": mosquitto.port})
    proc = run_alerts("--config", str(config), "--count", "1")
    try:
        assert proc.stderr.readline().strip() == f"broker 127.0.0.1:{mosquitto.port} from mqtt in {config}"
        wait_listening(proc)
        other = alert("elsewhere", "door", "suit", [("suit", 0.9)], 1)
        mine = alert("shop9", "entrance", "dress", [("dress", 0.8)], 2)
        publish_raw(mosquitto.port, [("fashion-edge/elsewhere/alerts/door/suit", encode(other)),
                                     ("fashion-edge/shop9/alerts/entrance/dress", encode(mine))])
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert len(out.splitlines()) == 1 and "shop9/entrance  dress: dress 0.80" in out  # the config's site only


def test_broker_file_of_a_dead_daemon_is_ignored(mosquitto, tmp_path, shared_dir):
    """No mqtt.host: the embedded broker recorded in the state folder, unless its daemon is gone."""
    config = _config(tmp_path, shared_dir, {"port": mosquitto.port})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = tmp_path / "state"
    state.mkdir()
    (state / "broker.json").write_text(json.dumps({"host": "127.0.0.1", "port": 1, "pid": dead.pid}))
    proc = run_alerts("--config", str(config), "--count", "1")
    try:
        wait_listening(proc)  # on the config's port, not the stale one
        publish_raw(mosquitto.port, [("fashion-edge/shop9/alerts/entrance/dress",
                                      encode(alert("shop9", "entrance", "dress", [("dress", 0.8)], 3)))])
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "customer #3" in out

    (state / "broker.json").write_text(json.dumps({"host": "127.0.0.1", "port": mosquitto.port, "pid": os.getpid()}))
    config = _config(tmp_path, shared_dir, {"port": 1})  # a live daemon's file wins over the config's port
    proc = run_alerts("--config", str(config), "--count", "1")
    try:
        assert "from the embedded broker recorded in" in proc.stderr.readline()
        wait_listening(proc)
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_no_flags_finds_the_running_demos_broker(mosquitto):
    """`fashion-edge alerts` with no flags while the demo's broker had to leave 1883: it finds it."""
    from edge.config import load_config
    from edge.daemon import BROKER_FILE, default_demo_config

    state = load_config(default_demo_config()).state_dir()
    state.mkdir(parents=True, exist_ok=True)
    record = state / BROKER_FILE
    before = record.read_text() if record.exists() else None
    record.write_text(json.dumps({"host": "127.0.0.1", "port": mosquitto.port, "pid": os.getpid()}))
    try:
        proc = run_alerts("--count", "1")
        try:
            assert proc.stderr.readline().strip() == \
                f"broker 127.0.0.1:{mosquitto.port} from the running demo's embedded broker"
            wait_listening(proc)
            publish_raw(mosquitto.port, [("fashion-edge/demo-store/alerts/entrance/dress",
                                          encode(alert("demo-store", "entrance", "dress", [("dress", 0.8)], 4)))])
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    finally:
        if before is None:
            record.unlink(missing_ok=True)
        else:
            record.write_text(before)
    assert proc.returncode == 0, err
    assert "demo-store/entrance  dress" in out


def test_config_brings_the_daemons_account(mosquitto_factory, tmp_path, shared_dir):
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "staff", "s3cret"], check=True)
    broker = mosquitto_factory(f"allow_anonymous false\npassword_file {passwords}\n")
    config = _config(tmp_path, shared_dir, {"host": "127.0.0.1", "port": broker.port, "username": "staff",
                                            "password_env": "FE_TEST_ALERTS_PW"})
    env = dict(os.environ, PYTHONPATH=str(REPO), FE_TEST_ALERTS_PW="s3cret")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "alerts", "--config", str(config), "--count", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        proc.stderr.readline()  # "broker ... from mqtt in ..."
        wait_listening(proc)  # accepted with the config's username and password
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    env["FE_TEST_ALERTS_PW"] = "wrong"
    refused = subprocess.run([sys.executable, "-m", "edge", "alerts", "--config", str(config), "--count", "1"],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert refused.returncode == 1 and "check mqtt.username and the password" in refused.stderr

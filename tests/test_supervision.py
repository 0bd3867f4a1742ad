"""Issue 22, item 2: threads that die quietly.

paho's network thread and a live camera's frame grabber are supervised: a death is logged with its
cause and restarted once; a second death fails the publisher / the source, the daemon stops feeding
the systemd watchdog and exits 1 with one line. Real mosquitto, a real MJPEG camera served by a
separate process, a real unix datagram socket standing in for systemd's NOTIFY_SOCKET.

How the threads die: paho's by a real defect (a 70,000-character topic prefix makes paho's own
CONNECT packing raise ``struct.error`` in its thread, as a 70,000-character ``site`` did); the grabber
by an exception injected into the source's own frame hand-over (``LiveSource._publish``) at chosen
frames: the camera stream itself stays real.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from conftest import free_port, write_clip_frames
from edge.config import MQTTConfig, ReconnectConfig
from edge.errors import SourceError
from edge.mqtt import MqttPublisher
from edge.sources import LiveSource
from test_daemon import REPO, write_config
from test_daemon_failures import notify_socket  # noqa: F401 - fixture
from test_mqtt import wait
from test_sources import MJPEGCamera

LONG_PREFIX = "fashion-edge/" + "x" * 70000  # longer than an MQTT string (65535 bytes)


def _next_within(source, timeout_s: float):
    """next(source) in a helper thread, so a hang fails the test; its exception is raised here."""
    import threading

    result: list = []

    def take():
        try:
            result.append(next(source))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert result, f"no frame within {timeout_s}s (stats {source.stats})"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


@pytest.fixture
def mjpeg_camera(shared_dir, tmp_path):
    camera = MJPEGCamera(write_clip_frames(shared_dir, tmp_path, 30), free_port())
    camera.start()
    yield camera
    if camera.process.poll() is None:
        camera.kill()


# ------------------------------------------------------------------------------ paho's network thread


def test_paho_network_thread_that_dies_is_restarted_once_then_the_publisher_fails(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    pub = MqttPublisher(MQTTConfig(keepalive_s=5), LONG_PREFIX, "fe-long", tmp_path / "outbox.sqlite", "127.0.0.1",
                        mosquitto.port, reconnect_min_s=0.25, reconnect_max_s=1)
    pub.start()
    try:
        # the first death: logged with the cause, restarted
        assert wait(lambda: "restarting it (1 of 1)" in caplog.text, 5), caplog.text[-2000:]
        died = [r.getMessage() for r in caplog.records if "network thread died" in r.getMessage()]
        assert "struct.error" in died[0], died
        # the second (paho gives up on the half-open socket after about 1.5 x keepalive): failed for good
        assert wait(lambda: getattr(pub, "failure", None) is not None, 15), caplog.text[-2000:]
        assert "died 2 times" in pub.failure and "struct.error" in pub.failure
        assert pub.health() == pub.failure and not pub.connected
        assert pub.network_restarts == 1
    finally:
        pub.stop(flush_timeout_s=0.5)


def test_a_healthy_publisher_reports_no_problem_also_while_the_broker_is_down(mosquitto, tmp_path):
    mosquitto.stop()
    pub = MqttPublisher(MQTTConfig(keepalive_s=5), "fashion-edge/s", "fe-ok", tmp_path / "outbox.sqlite",
                        "127.0.0.1", mosquitto.port, reconnect_min_s=0.25, reconnect_max_s=1)
    pub.start()
    try:
        time.sleep(2.0)  # several failed reconnects: paho's thread retries, it does not die
        assert pub.last_error is not None and pub.health() is None and pub.failure is None
        mosquitto.start()
        assert wait(lambda: pub.connected, 10)
        assert pub.health() is None
    finally:
        pub.stop(flush_timeout_s=0.5)
    assert pub.health() is None  # stopped on purpose: not a problem


# ------------------------------------------------------------------------------ a live camera's grabber


class GrabberDiesAt(LiveSource):
    """A live source whose grabber raises when it hands over the n-th frame (fault injection in our
    own code: the camera and the stream are real)."""

    def __init__(self, *args, die_at: tuple[int, ...] = (22,), **kwargs):
        self.die_at = set(die_at)
        self.handed = 0
        super().__init__(*args, **kwargs)

    def _publish(self, image):
        self.handed += 1
        if self.handed in self.die_at:
            raise RuntimeError(f"injected grabber fault at frame {self.handed}")
        super()._publish(image)


def test_a_grabber_that_dies_once_is_restarted_and_the_camera_goes_on(mjpeg_camera, caplog):
    caplog.set_level(logging.INFO, logger="edge.sources")
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    source = GrabberDiesAt(url, reconnect=ReconnectConfig(initial_s=0.1, max_s=0.4), die_at=(22,))
    try:
        # before the fix: the camera stopped after 21 frames and stayed 'streaming'
        frames = [_next_within(source, 5) for _ in range(40)]
        assert frames[-1].index >= 38
        assert source.grabber_restarts == 1 and source.health() is None and source.state == "streaming"
        lines = [r.getMessage() for r in caplog.records if "frame grabber died" in r.getMessage()]
        assert len(lines) == 1 and "RuntimeError: injected grabber fault at frame 22" in lines[0]
        assert "restarting it (1 of 1)" in lines[0]
    finally:
        source.close()


def test_a_grabber_that_dies_twice_fails_the_source_with_one_line(mjpeg_camera):
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    source = GrabberDiesAt(url, reconnect=ReconnectConfig(initial_s=0.1, max_s=0.4), die_at=(22, 30))
    try:
        with pytest.raises(SourceError) as err:
            for _ in range(60):
                _next_within(source, 5)  # before the fix: no frame after the 21st (a hang, not an error)
        text = str(err.value)
        assert "frame grabber died 2 times" in text and url in text and "frame 30" in text and "\n" not in text
        assert source.state == "failed" and source.health() == f"source {url}: failed"
    finally:
        source.close()
    assert source.health() is None  # closed


# ------------------------------------------------------------------------------ the daemon

# The real CLI; the grabber of camera 'entrance' raises at its 22nd and 30th frame (it first tells the
# test socket before the second, fatal one).
DYING_GRABBER = textwrap.dedent(
    """
    import os, socket, sys
    import edge.sources as sources

    publish = sources.LiveSource._publish
    count = {"n": 0}

    def dying_publish(self, image):
        count["n"] += 1
        if count["n"] in (22, 30):
            if count["n"] == 30:
                marker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                marker.sendto(b"TEST=grabber-dies", os.environ["NOTIFY_SOCKET"])
            raise RuntimeError(f"injected grabber fault at frame {count['n']}")
        return publish(self, image)

    sources.LiveSource._publish = dying_publish
    from edge.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)

# The real CLI with a topic prefix longer than MQTT allows (what a 70,000-character site gave).
LONG_TOPIC_PREFIX = textwrap.dedent(
    """
    import sys
    import edge.config as config

    config.Config.topic_prefix = property(lambda self: "fashion-edge/" + "x" * 70000)
    from edge.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _run_with_notify(script: str, config, port: int, path: str, tmp_path, timeout_s: float = 90):
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(script)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, str(wrapper), "run", "--config", str(config), "--mqtt-host",
                             "127.0.0.1", "--mqtt-port", str(port)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the daemon stayed half-alive after a supervised thread died:\n{err[-3000:]}")
    return proc.returncode, err


def test_daemon_exits_1_and_stops_the_watchdog_when_a_grabber_dies_twice(tmp_path, shared_dir, mosquitto,
                                                                          mjpeg_camera, notify_socket):
    path, messages = notify_socket
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    data["cameras"] = [{"name": "entrance", "source": url, "reconnect": {"initial_s": 0.2, "max_s": 1.0}}]
    config.write_text(yaml.safe_dump(data))
    code, err = _run_with_notify(DYING_GRABBER, config, mosquitto.port, path, tmp_path)
    assert code == 1, err[-3000:]
    assert "frame grabber died (RuntimeError: injected grabber fault at frame 22); restarting it" in err
    lines = [line for line in err.splitlines() if line.startswith("fashion-edge:")]
    assert len(lines) == 1 and lines[0].startswith(f"fashion-edge: camera entrance failed: {url}: frame grabber "
                                                   "died 2 times (RuntimeError"), err[-3000:]
    time.sleep(0.3)
    assert "TEST=grabber-dies" in messages, messages
    marker = messages.index("TEST=grabber-dies")
    assert "WATCHDOG=1" in messages[:marker]  # fed while healthy (and across the first restart)
    assert "WATCHDOG=1" not in messages[marker + 1:], messages[marker + 1:]


def test_daemon_exits_1_and_stops_the_watchdog_when_paho_thread_dies_twice(tmp_path, shared_dir, mosquitto,
                                                                           notify_socket):
    path, messages = notify_socket
    config = write_config(tmp_path, shared_dir)
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["loop"] = True  # would run forever
    data["mqtt"]["keepalive_s"] = 5
    config.write_text(yaml.safe_dump(data))
    code, err = _run_with_notify(LONG_TOPIC_PREFIX, config, mosquitto.port, path, tmp_path)
    assert code == 1, err[-3000:]
    assert "MQTT network thread died (struct.error" in err and "restarting it (1 of 1)" in err
    lines = [line for line in err.splitlines() if line.startswith("fashion-edge:")]
    assert lines and lines[0].startswith("fashion-edge: MQTT network thread died 2 times (struct.error"), lines
    assert "not feeding the watchdog" in err

"""Shared pytest fixtures: where ../shared is, and a real mosquitto broker on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    from edge.paths import shared_dir  # $FASHION_EDGE_SHARED, else the repo root's sibling shared/

    return shared_dir()


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if not (path / "README.md").is_file():
        pytest.fail(f"../shared not found at {path} (set FASHION_EDGE_SHARED)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


def demo_config_data(shared: Path) -> dict:
    """configs/demo.yaml as a dict with absolute model paths and ``shared``'s demo clip, so a test
    can change it and write it anywhere."""
    import yaml

    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    data["cameras"][0]["source"] = str(shared / "media" / "one-by-one-person-detection.mp4")
    for key in ("detector", "classifier", "garments", "attributes"):
        for field in ("model", "manifest", "detector", "reid_head"):
            value = (data.get(key) or {}).get(field)
            if isinstance(value, str) and not Path(value).is_absolute():
                data[key][field] = str((REPO / "configs" / value).resolve())
    return data


def demo_clip_frames(shared: Path, count: int, t0: float = 1_000.0):
    """The demo clip's first ``count`` frames as ``edge.sources.Frame``s, timed by the clip's fps
    from ``t0`` (epoch seconds), as a file source gives them to the pipeline."""
    import cv2

    from edge.sources import Frame

    capture = cv2.VideoCapture(str(shared / "media" / "one-by-one-person-detection.mp4"))
    fps = capture.get(cv2.CAP_PROP_FPS)
    try:
        for index in range(count):
            ok, image = capture.read()
            assert ok, f"clip has fewer than {count} frames"
            yield Frame(image, index, t0 + index / fps, index / fps)
    finally:
        capture.release()


def write_clip_frames(shared: Path, folder: Path, count: int) -> Path:
    """The first ``count`` frames of the demo clip as numbered JPGs in ``folder`` (real footage
    for image-folder sources and the MJPEG test camera)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(shared / "media" / "one-by-one-person-detection.mp4"))
    for i in range(count):
        ok, image = capture.read()
        assert ok, f"clip has fewer than {count} frames"
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), image)
    capture.release()
    return folder


class Mosquitto:
    """A real mosquitto bound to 127.0.0.1 on a free port; can be stopped and restarted (same port)."""

    def __init__(self, workdir: Path, extra_conf: str = ""):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed (apt-get install mosquitto); the MQTT tests need a real broker")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra_conf}"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=open(self.workdir / "mosquitto.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path):
    """Start extra mosquitto brokers with more config lines (auth, persistence); all stopped at teardown.

    ``mosquitto_factory("allow_anonymous false\\npassword_file /x")`` -> a started ``Mosquitto``.
    Later lines override the defaults written before them (allow_anonymous, persistence).
    Run as root, mosquitto would switch to the ``mosquitto`` user, which cannot read pytest's
    private tmp folders (password file, persistence folder): ``user root`` keeps it as is.
    """
    brokers: list[Mosquitto] = []

    def make(extra_conf: str = "") -> Mosquitto:
        workdir = tmp_path / f"mosquitto-{len(brokers)}"
        workdir.mkdir()
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            extra_conf = "user root\n" + extra_conf
        broker = Mosquitto(workdir, extra_conf).start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop()

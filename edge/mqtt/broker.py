"""Embedded MQTT broker for a zero-setup install (``mqtt.host`` unset).

amqtt 0.12 runs in a background thread with its own asyncio loop, bound to 127.0.0.1 only, and
allows anonymous clients (only local processes can reach it). A production site points
``mqtt.host`` at a real broker (mosquitto, see configs/mosquitto/ and docs/mqtt.md) instead.
If amqtt cannot be imported or started, ``EmbeddedBroker`` falls back to launching ``mosquitto``
from PATH on 127.0.0.1 when it is installed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..errors import FashionEdgeError

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


class BrokerError(FashionEdgeError):
    """The embedded broker cannot start (port in use, no broker available)."""


def _claim_port(host: str, port: int) -> int:
    """Fail early, with a clear message, when the port is taken; resolve port 0 to a free port."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"embedded MQTT broker: {host}:{port} is already in use ({exc.strerror}); another broker may be "
                "running there: set mqtt.host to use it, or mqtt.port to a free port",
                field="mqtt.port",
            ) from None
        return sock.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise BrokerError("the embedded broker only binds to the loopback address", field="mqtt.host")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = int(port)
        self.kind: str | None = None  # "amqtt" or "mosquitto" once started
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._process: subprocess.Popen | None = None
        self._tmpdir: tempfile.TemporaryDirectory | None = None

    # ------------------------------------------------------------------ public

    def start(self) -> "EmbeddedBroker":
        self.port = _claim_port(self.host, self.port)
        try:
            self._start_amqtt()
            self.kind = "amqtt"
        except ImportError as exc:
            log.warning("amqtt unavailable (%s); trying mosquitto", exc)
            self._start_mosquitto()
            self.kind = "mosquitto"
        except BrokerError:
            raise
        except Exception as exc:  # amqtt broken on this Python: fall back
            log.warning("amqtt broker failed to start (%s); trying mosquitto", exc)
            self._stop_amqtt()
            self._start_mosquitto()
            self.kind = "mosquitto"
        log.info("embedded MQTT broker (%s) on %s:%d", self.kind, self.host, self.port)
        return self

    def stop(self) -> None:
        self._stop_amqtt()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
        self.kind = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ amqtt

    def _start_amqtt(self) -> None:
        from amqtt.broker import Broker  # optional dependency (edge extra)

        for name in ("amqtt", "transitions"):  # amqtt logs every packet at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._broker = Broker(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_S):
            raise BrokerError(f"embedded MQTT broker did not start within {_START_TIMEOUT_S:.0f} s")
        if failure:
            self._thread.join(timeout=2)
            self._thread = None
            raise failure[0]
        # Broker.start() returns once asyncio's server listens: no need to probe the port
        # (a bare TCP probe would only make amqtt log a bogus client error).

    def _stop_amqtt(self) -> None:
        loop, broker, thread = self._loop, self._broker, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            if broker is not None:
                future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
                try:
                    future.result(timeout=5)
                except Exception as exc:  # shutting down anyway
                    log.debug("amqtt shutdown: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._loop = self._broker = self._thread = None

    # ------------------------------------------------------------------ mosquitto fallback

    def _start_mosquitto(self) -> None:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
        )
        if binary is None:
            raise BrokerError(
                "no embedded MQTT broker: amqtt failed and mosquitto is not installed; install one or set mqtt.host"
            )
        self._tmpdir = tempfile.TemporaryDirectory(prefix="fashion-edge-broker-")
        conf = Path(self._tmpdir.name) / "mosquitto.conf"
        conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n")
        self._process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.host, self.port, self._process)


def _wait_for_port(host: str, port: int, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"mosquitto exited (code {process.returncode}) while starting on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"embedded MQTT broker: nothing listening on {host}:{port} after {_START_TIMEOUT_S:.0f} s")

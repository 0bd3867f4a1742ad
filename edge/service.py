"""systemd glue: readiness/status/watchdog notifications, stuck-stage detection, signal handling.

* ``ServiceNotifier`` talks to systemd through ``$NOTIFY_SOCKET`` with the ``sdnotify`` package.
  Without ``NOTIFY_SOCKET`` (run by hand, in tests, in Docker) or without ``sdnotify`` every call
  is a no-op, so the daemon never needs to know how it was started.
* ``StageWatchdog`` times the stages the daemon wraps in ``with watchdog.stage('cam1:detect'):``.
  A monitor thread looks every second; a stage running longer than ``stuck_after_s`` is reported
  once through ``on_stuck(stage, seconds)`` and makes ``healthy`` False. The daemon pets systemd
  only while healthy, so a hang longer than ``WatchdogSec`` ends in a restart by systemd
  (``Restart=on-failure``) while a shorter stall is reported but survives. ``healthy`` turns True
  again when the stuck stage finishes.
* ``install_signal_handlers(stop_event)``: SIGTERM/SIGINT set the event; the daemon then flushes its
  outbox, publishes 'offline' and exits within ``TimeoutStopSec``.
* ``limit_malloc_arenas()``: at most ``MALLOC_ARENAS`` glibc malloc arenas for the daemon's threads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

try:  # part of the [edge] extra; the daemon runs without it (no systemd notifications then)
    import sdnotify
except ImportError:  # pragma: no cover - exercised only where sdnotify is missing
    sdnotify = None

log = logging.getLogger(__name__)


def watchdog_interval_s() -> float | None:
    """How often to pet systemd: half of ``WatchdogSec`` (``$WATCHDOG_USEC``), None when no watchdog is set.

    ``$WATCHDOG_PID``, when present, must be this process (systemd sets it for the main PID only).
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not an integer; watchdog disabled", usec)
        return None
    return value / 2e6 if value > 0 else None


class ServiceNotifier:
    """sd_notify messages; every method is a no-op when not started by systemd (``enabled`` False).

    ``health`` (optional) is asked before each watchdog ping; the daemon can also gate the call itself.
    """

    def __init__(self, health: Callable[[], bool] | None = None):
        self.health = health
        self._notifier = None
        self._last_ping = float("-inf")
        self._interval_s = watchdog_interval_s()
        if os.environ.get("NOTIFY_SOCKET"):
            if sdnotify is None:
                log.warning("NOTIFY_SOCKET is set but the sdnotify package is missing: no systemd notifications")
            else:
                self._notifier = sdnotify.SystemdNotifier()
                if self._notifier.socket is None:
                    log.warning("cannot connect to NOTIFY_SOCKET=%s", os.environ["NOTIFY_SOCKET"])
                    self._notifier = None

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    def _send(self, message: str) -> bool:
        if self._notifier is None:
            return False
        self._notifier.notify(message)
        return True

    def ready(self) -> bool:
        """Start-up finished (models loaded, sources opened): systemd marks the unit active."""
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status``."""
        return self._send("STATUS=" + " ".join(str(text).split()))

    def watchdog(self) -> bool:
        """Pet the systemd watchdog if healthy; returns True when WATCHDOG=1 was sent.

        Called as often as the daemon likes: with ``WatchdogSec`` set, pings are spaced at least a
        quarter of it apart (half the interval returned by ``watchdog_interval_s``).
        """
        if self._notifier is None:
            return False
        if self.health is not None and not self.health():
            return False
        now = time.monotonic()
        if self._interval_s is not None and now - self._last_ping < self._interval_s / 2:
            return False
        self._last_ping = now
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun (systemd then waits up to TimeoutStopSec)."""
        return self._send("STOPPING=1")


class StageWatchdog:
    """Reports a stage (inference, a camera's pipeline step) that runs longer than ``stuck_after_s``.

    Stages are tracked per thread, so several camera threads can each be inside one stage.
    The monitor thread starts at construction; ``close()`` (or leaving the ``with`` block) stops it.
    ``on_stuck(stage, seconds)`` is called from the monitor thread, once per stuck stage run.
    """

    def __init__(self, stuck_after_s: float, on_stuck: Callable[[str, float], None] | None = None,
                 check_every_s: float = 1.0):
        if stuck_after_s <= 0:
            raise ValueError("stuck_after_s must be positive")
        self.stuck_after_s = stuck_after_s
        self.on_stuck = on_stuck
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, float]] = {}  # thread id -> (stage, monotonic start)
        self._reported: set[int] = set()  # thread ids whose current stage was reported stuck
        self.stuck_count = 0  # how many stage runs were reported stuck since start
        self._closed = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="stage-watchdog", daemon=True)
        self._monitor.start()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        key = threading.get_ident()
        with self._lock:
            self._running[key] = (name, time.monotonic())
            self._reported.discard(key)
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(key, None)
                self._reported.discard(key)

    @property
    def healthy(self) -> bool:
        """False while a stage reported stuck is still running."""
        with self._lock:
            return not self._reported

    @property
    def monitoring(self) -> bool:
        """The monitor thread is alive (a dead one would report no stuck stage ever again)."""
        return self._monitor.is_alive() and not self._closed.is_set()

    def running(self) -> dict[str, float]:
        """Stages now running and for how many seconds."""
        now = time.monotonic()
        with self._lock:
            return {name: now - start for name, start in self._running.values()}

    def check(self) -> list[tuple[str, float]]:
        """One look at the running stages (the monitor calls this every ``check_every_s``)."""
        now = time.monotonic()
        newly_stuck = []
        with self._lock:
            for key, (name, start) in self._running.items():
                seconds = now - start
                if seconds > self.stuck_after_s and key not in self._reported:
                    self._reported.add(key)
                    self.stuck_count += 1
                    newly_stuck.append((name, seconds))
        for name, seconds in newly_stuck:  # outside the lock: the callback may publish over MQTT
            log.error("stage %s stuck for %.1f s", name, seconds)
            if self.on_stuck is not None:
                try:
                    self.on_stuck(name, seconds)
                except Exception:
                    log.exception("on_stuck callback failed")
        return newly_stuck

    def _watch(self) -> None:
        while not self._closed.wait(self.check_every_s):
            self.check()

    def close(self) -> None:
        self._closed.set()
        if self._monitor.is_alive() and threading.current_thread() is not self._monitor:
            self._monitor.join(timeout=self.check_every_s + 1)

    def __enter__(self) -> "StageWatchdog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MALLOC_ARENAS = 2  # measured on the demo: 8 per core (glibc's default) -> 2 cuts peak RSS ~3 MB, same CPU
_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas before the daemon starts its threads (camera reader, decoder,
    MQTT, broker). glibc gives each thread that allocates its own arena, and each keeps freed
    memory of its own; the daemon's threads allocate little, so the arenas are mostly idle
    memory on a Pi. ``MALLOC_ARENA_MAX`` in the environment wins (glibc read it at start).
    Returns whether the cap was set (False off glibc, e.g. musl in Alpine)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False


def install_signal_handlers(stop_event: threading.Event) -> dict[int, object]:
    """SIGTERM and SIGINT set ``stop_event``; returns the previous handlers (to restore them).

    A second signal while already stopping raises KeyboardInterrupt so a wedged shutdown can still
    be interrupted from a terminal. Must be called from the main thread (a Python rule for signals).
    """
    previous = {}

    def handle(signum, _frame):
        if stop_event.is_set():
            raise KeyboardInterrupt
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop_event.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handle)
    return previous

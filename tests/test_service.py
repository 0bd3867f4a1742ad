"""systemd glue against a real unix datagram socket standing in for systemd's NOTIFY_SOCKET,
a real stuck (sleeping) stage, and real signals sent to this process."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time

import pytest

from edge.service import ServiceNotifier, StageWatchdog, install_signal_handlers, watchdog_interval_s


@pytest.fixture
def notify_socket(monkeypatch):
    """A bound AF_UNIX datagram socket (what systemd listens on); yields a function returning received messages."""
    folder = tempfile.mkdtemp(prefix="sd")  # short path: AF_UNIX paths are limited to 108 bytes
    path = os.path.join(folder, "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    def received() -> list[str]:
        messages = []
        while True:
            try:
                messages.append(server.recv(4096).decode())
            except socket.timeout:
                return messages

    yield received
    server.close()
    os.unlink(path)
    os.rmdir(folder)


def test_messages_reach_the_notify_socket(notify_socket):
    notifier = ServiceNotifier()
    assert notifier.enabled
    assert notifier.ready()
    assert notifier.status("running 2 camera(s)\nsecond line")
    assert notifier.watchdog()
    assert notifier.stopping()
    assert notify_socket() == ["READY=1", "STATUS=running 2 camera(s) second line", "WATCHDOG=1", "STOPPING=1"]


def test_no_notify_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = ServiceNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False and notifier.status("x") is False


def test_watchdog_interval_from_environment(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # WatchdogSec=30
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval_s() is None


def test_watchdog_pings_are_spaced_when_watchdogsec_is_set(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # WatchdogSec=1 -> interval 0.5 s, pings >= 0.25 s apart
    notifier = ServiceNotifier()
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        sent += notifier.watchdog()
        time.sleep(0.02)
    assert 2 <= sent <= 3
    assert notify_socket() == ["WATCHDOG=1"] * sent


def test_stuck_stage_is_reported_once_and_stops_the_pings(notify_socket):
    reports = []
    with StageWatchdog(stuck_after_s=0.5, on_stuck=lambda stage, s: reports.append((stage, s)),
                       check_every_s=0.1) as watchdog:
        notifier = ServiceNotifier(health=lambda: watchdog.healthy)
        with watchdog.stage("cam1:detect"):
            time.sleep(0.1)
        assert notifier.watchdog()  # a quick stage: healthy
        pings_while_stuck = []

        def stuck_inference():
            with watchdog.stage("cam1:detect"):
                time.sleep(1.5)

        worker = threading.Thread(target=stuck_inference)
        worker.start()
        while worker.is_alive():
            pings_while_stuck.append(notifier.watchdog() if not watchdog.healthy else None)
            time.sleep(0.05)
        worker.join()
        assert len(reports) == 1
        stage, seconds = reports[0]
        assert stage == "cam1:detect" and 0.5 < seconds < 1.0
        # once the stage was reported, no WATCHDOG=1 left: systemd would restart the service
        assert pings_while_stuck.count(False) >= 10 and True not in pings_while_stuck
        assert watchdog.healthy  # the stage finished
        assert notifier.watchdog()
        assert watchdog.stuck_count == 1
    assert notify_socket() == ["WATCHDOG=1", "WATCHDOG=1"]


def test_stages_in_two_threads_are_tracked_separately():
    reports = []
    with StageWatchdog(stuck_after_s=0.3, on_stuck=lambda stage, s: reports.append(stage), check_every_s=0.05) as wd:
        def run(stage, seconds):
            with wd.stage(stage):
                time.sleep(seconds)

        threads = [threading.Thread(target=run, args=("cam1:pipeline", 0.7)),
                   threading.Thread(target=run, args=("cam2:pipeline", 0.1))]
        for t in threads:
            t.start()
        time.sleep(0.05)
        assert set(wd.running()) == {"cam1:pipeline", "cam2:pipeline"}
        for t in threads:
            t.join()
    assert reports == ["cam1:pipeline"]


def test_sigterm_and_sigint_set_the_stop_event():
    for signum in (signal.SIGTERM, signal.SIGINT):
        stop = threading.Event()
        previous = install_signal_handlers(stop)
        try:
            os.kill(os.getpid(), signum)
            assert stop.wait(2)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def test_malloc_arenas_are_capped_unless_the_environment_says_otherwise(monkeypatch):
    """glibc (Debian, Raspberry Pi OS): the daemon caps its malloc arenas before its threads start;
    an operator's MALLOC_ARENA_MAX (read by glibc at start) is left alone."""
    import platform

    from edge.service import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt(M_ARENA_MAX) is glibc's")
    assert limit_malloc_arenas(2) is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False

"""MQTT publisher of the daemon: alerts and closed windows through the durable outbox, retained state, stats.

Threads and who does what:

* the caller (pipeline) calls ``publish_*``; ``publish_alert`` only commits the alert to the
  SQLite outbox and wakes the worker; ``publish_analytics`` publishes the closed window retained
  (QoS 0, for Home Assistant and the web page) and commits it to the outbox too, on its own
  non-retained topic ``{prefix}/windows/{camera}`` (QoS 1), so that every window reaches the head
  office, also one closed while the store broker was down (the collector stores both copies as one row);
* paho's network thread (``loop_start``) connects, reconnects with back-off, and calls
  ``_on_connect`` / ``_on_disconnect`` / ``_on_publish``; ``_on_publish`` only queues the acked mid
  (it runs while paho holds its message lock, so it must not call back into paho or take our locks
  in the other order);
* one worker thread is the only one handing outbox rows to paho. It hands a batch of at most
  ``max_inflight`` rows, maps each paho ``mid`` to its outbox row, deletes a row when its PUBACK
  arrives, and hands the next batch only when the whole batch is acknowledged. paho keeps unacked
  QoS 1 messages across a reconnect and resends them in order, and since no newer row is handed
  while one is unacked, alerts reach the broker in order, also after a reconnect.

An alert the outbox cannot store (disk full, a lock held by another program) is not lost: it waits
in memory (at most ``MAX_ALERTS_IN_MEMORY``, oldest first), its id is logged with the file and the
cause, every later alert queues behind it (order kept), and the worker retries storing them with
back-off. While they wait, they are also sent straight from memory once every stored row is
delivered, so a full disk does not hold alerts back from a reachable broker. What is neither stored
nor delivered when the publisher stops is logged with its ids and reported by ``alerts_lost``.

Supervision: paho's network thread is watched by the worker. If it dies (an exception paho does not
catch, e.g. ``struct.error`` packing a topic longer than MQTT allows) it is logged with the cause
and restarted once; a second death sets ``failure`` (the daemon then exits non-zero) instead of
leaving alerts to pile up silently. ``health()`` is None only while paho's thread and the worker
are alive and the worker keeps looping (the daemon feeds the systemd watchdog only then).

Closed windows take the alerts' path through the outbox (the same bound and drop policy, the same
in-memory fallback; logged as ``window <camera>@<window_start>``); a window lost that way is listed
by ``windows_lost``, not ``alerts_lost`` (it is in the store's analytics SQLite in any case).

Retained state (counts, status, analytics) is remembered and published again after every
CONNACK, so a restarted broker (or a new subscriber) always gets the latest values. It goes out
at QoS 0 and only while connected: a stale value queued in paho could otherwise be replayed after
the fresh one on reconnect.
"""

from __future__ import annotations

import collections
import logging
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ..config import MQTTConfig
from .connection import configure_client, refusal_text
from .outbox import Outbox, OutboxWriteError
from .payloads import encode, validate_alert
from .topics import Topics

log = logging.getLogger(__name__)


def _drop_not_connected(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Client is not connected")


ALERT_QOS = 1
WINDOW_QOS = 1  # the durable copy of a closed window ({prefix}/windows/{camera})
AVAILABILITY_QOS = 1
RECONNECT_MIN_S = 1
# Back-off ceiling: a broker that comes back is reached again within this (was 30 s).
RECONNECT_MAX_S = 5
# A TCP connection without CONNACK for this long is reported (something that is not an MQTT broker
# listens there, or the broker is wedged); paho gives up on it after about 1.5 x keepalive.
CONNACK_TIMEOUT_S = 10.0
# stop(): while disconnected, the outbox is not waited for longer than this.
STOP_DISCONNECTED_GRACE_S = 1.0
# paho's network thread: restarted this many times, then the publisher has failed.
MAX_NETWORK_RESTARTS = 1
# The worker loops every 0.5 s; a SQLite write may wait BUSY_TIMEOUT_S (10 s). Longer: it is stuck.
WORKER_STALL_S = 60.0
# How often the worker checks that the outbox file is still there and still SQLite.
OUTBOX_CHECK_S = 2.0
# Alerts the outbox could not store wait in memory (then the oldest is lost, with a line).
MAX_ALERTS_IN_MEMORY = 1000
STORE_RETRY_MIN_S = 1.0  # storing them is retried after this, doubling up to the max
STORE_RETRY_MAX_S = 30.0


class _MemoryAlert:
    """An alert (or a closed window, ``kind`` "window") the outbox could not store yet (kept in
    memory, retried)."""

    __slots__ = ("alert_id", "topic", "payload", "handed", "kind")

    def __init__(self, alert_id: str, topic: str, payload: bytes, kind: str = "alert"):
        self.alert_id, self.topic, self.payload, self.kind = alert_id, topic, payload, kind
        self.handed = False  # sent from memory, PUBACK not seen yet

    @property
    def name(self) -> str:
        return f"{self.kind} {self.alert_id}"


class _Client(mqtt.Client):
    """paho's client, remembering why the last (re)connect attempt failed: ``on_connect_fail``
    does not say, and "connection refused" and "certificate verify failed" need different fixes;
    and why its network thread died (``thread_error``), which paho leaves to ``threading.excepthook``."""

    last_connect_error: OSError | None = None
    thread_error: BaseException | None = None

    def _thread_main(self) -> None:
        try:
            super()._thread_main()
        except BaseException as exc:  # noqa: BLE001 - the publisher's worker reports and restarts it
            self.thread_error = exc

    def reconnect(self):
        try:
            result = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return result


def _exception_text(exc: BaseException) -> str:
    """'struct.error: ...' rather than 'error: ...' for exceptions of extension modules."""
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {exc}"


def _connect_failure_text(exc: OSError | None, host: str, port: int) -> str:
    if isinstance(exc, ssl.SSLError):
        parts = [getattr(exc, "reason", None), getattr(exc, "verify_message", None)]
        reason = ": ".join(str(p) for p in parts if p) or str(exc)
        return f"TLS handshake with {host}:{port} failed ({reason}); check mqtt.tls (ca, cert, key, insecure)"
    detail = f" ({exc.strerror or exc})" if exc is not None else ""
    return f"cannot reach the MQTT broker at {host}:{port}{detail}; retrying"


class MqttPublisher:
    def __init__(
        self,
        cfg: MQTTConfig,
        prefix: str,
        client_id: str,
        outbox_path: Path,
        host: str,
        port: int,
        max_inflight: int = 20,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
        connack_timeout_s: float = CONNACK_TIMEOUT_S,
    ):
        self.cfg = cfg
        self.topics = Topics(prefix)
        self.client_id = client_id
        self.host = host
        self.port = int(port)
        self.max_inflight = max(1, int(max_inflight))
        self.outbox = Outbox(outbox_path, cfg.outbox.max_messages, cfg.outbox.drop)

        self._client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=True,
        )
        configure_client(self._client, cfg)  # ConfigError for a missing password / TLS file
        self._client.will_set(self.topics.availability, b"offline", qos=AVAILABILITY_QOS, retain=True)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)  # doubles after each failure
        self._client.max_inflight_messages_set(self.max_inflight)
        self._client.max_queued_messages_set(0)  # the outbox is the bound, not paho's memory
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self.connack_timeout_s = float(connack_timeout_s)
        self._socket_opened: float | None = None  # monotonic time the TCP connection was made, None when none
        self._connack_seen = False  # a CONNACK (accepting or refusing) came on the current connection
        # A bug in a callback must not kill paho's network thread: log it and go on.
        self._client.suppress_exceptions = True
        self._client.enable_logger(logging.getLogger("paho.mqtt"))

        self._connected = threading.Event()
        self._state_lock = threading.Lock()
        self._retained: dict[str, bytes] = {}  # topic -> latest payload, re-published on CONNACK
        self._handed: dict[int, int | _MemoryAlert] = {}  # paho mid -> outbox row id (or memory alert), unacked
        # alerts the outbox could not store, oldest first; new alerts queue behind them (order kept)
        self._in_memory: collections.deque[_MemoryAlert] = collections.deque()
        self._memory_lock = threading.Lock()  # one of: publish_alert storing, the worker moving them to disk
        self._store_retry_at = 0.0
        self._store_backoff_s = STORE_RETRY_MIN_S
        self._store_problem: str | None = None
        self._lost: list[_MemoryAlert] = []  # neither stored nor delivered (memory bound, or at stop)
        self.network_restarts = 0
        self._network_started = False  # loop_start() was called (before that no thread is expected)
        self.failure: str | None = None  # set when paho's network thread died more often than restarted
        self._worker_beat = time.monotonic()
        self._next_file_check = 0.0
        self._acked_mids: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._last_problem: str | None = None
        self._started = False
        self._ever_connected = False
        self._closed_counts: tuple[int, int] | None = None  # (depth, dropped) once stop() closed the outbox
        self._closed_windows = 0  # windows_pending once stop() closed the outbox
        self._closed_undeleted = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect in the background; an unreachable broker is retried, never fatal."""
        if self._started:
            return
        self._started = True
        self._worker = threading.Thread(target=self._work, name="mqtt-outbox", daemon=True)
        self._worker.start()
        try:
            self._client.connect_async(self.host, self.port, keepalive=self.cfg.keepalive_s)
        except (OSError, ValueError) as exc:  # e.g. bad host name: keep running, queue alerts
            self._report(f"cannot connect to {self.host}:{self.port} ({exc})")
        self._client.loop_start()
        self._network_started = True
        log.info("MQTT publisher for %s -> %s:%d (outbox %d pending)", self.topics.prefix, self.host, self.port,
                 self.outbox.depth)

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Drain the outbox for up to ``flush_timeout_s``, publish "offline", disconnect.
        Whatever is not acknowledged stays in SQLite for the next start."""
        if self._closed_counts is not None:
            return
        if not self._started:
            self._close_outbox()
            return
        start = time.monotonic()
        deadline = start + max(0.0, flush_timeout_s)
        while (self.outbox.depth or self._in_memory) and time.monotonic() < deadline:
            if not self.connected and time.monotonic() - start >= STOP_DISCONNECTED_GRACE_S:
                break  # nothing will be acknowledged: the rows stay on disk for the next start
            self._wake.set()
            time.sleep(0.05)
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
        if self.connected:
            info = self._client.publish(self.topics.availability, b"offline", qos=AVAILABILITY_QOS, retain=True)
            try:
                info.wait_for_publish(timeout=min(2.0, max(0.5, deadline - time.monotonic())))
            except (RuntimeError, ValueError):
                pass
            self._apply_acks()  # PUBACKs that came after the worker stopped (it no longer runs)
        self._store_in_memory(force=True)  # one last try: what is stored is sent at the next start
        # paho's network thread may run one more loop after disconnect() closed the socket and
        # log "Client is not connected" at ERROR: expected during a stop, so kept out of the log.
        paho_log = logging.getLogger("paho.mqtt")
        paho_log.addFilter(_drop_not_connected)
        try:
            self._client.disconnect()
            self._client.loop_stop()
        finally:
            paho_log.removeFilter(_drop_not_connected)
        self._connected.clear()
        left = self.outbox.depth
        if left:
            log.warning("MQTT stopped with %d message(s) (alerts, closed windows) still in the outbox (sent on next "
                        "start)", left)
        with self._memory_lock:
            unstored = list(self._in_memory)
            self._in_memory.clear()
        self._lost.extend(unstored)
        for kind in ("alert", "window"):
            names = [entry.alert_id for entry in unstored if entry.kind == kind]
            if names:
                log.error("MQTT: %d %s(s) lost: neither stored in %s (%s) nor delivered: %s", len(names), kind,
                          self.outbox.path, self._store_problem, ", ".join(names))
        self._close_outbox()
        self._started = False
        self._network_started = False

    def _close_outbox(self) -> None:
        try:
            self._closed_windows = self._count_windows()
            self._closed_counts = (self.outbox.depth, self.outbox.dropped)
        except Exception:  # an unreadable file must not keep the outbox open
            self._closed_counts = (0, 0)
            raise
        finally:
            self._closed_undeleted = self.outbox.undeleted
            self.outbox.close()

    # ---------------------------------------------------------------- properties

    @property
    def connected(self) -> bool:
        """True only between a successful CONNACK and the next disconnect."""
        return self._connected.is_set()

    @property
    def ever_connected(self) -> bool:
        """At least one successful CONNACK since start()."""
        return self._ever_connected

    @property
    def outbox_depth(self) -> int:
        """Alerts and closed windows not yet acknowledged by the broker (still readable after stop())."""
        return self._closed_counts[0] if self._closed_counts else self.outbox.depth

    @property
    def windows_pending(self) -> int:
        """Of ``outbox_depth``, the closed windows (``{prefix}/windows/...``); the rest are alerts."""
        return self._closed_windows if self._closed_counts else self._count_windows()

    def _count_windows(self) -> int:
        depth = self.outbox.depth
        marker = self.topics.windows("")  # '{prefix}/windows/'
        return sum(1 for row in self.outbox.pending(depth) if row.topic.startswith(marker)) if depth else 0

    @property
    def outbox_dropped(self) -> int:
        """Alerts dropped because the outbox was full (persisted across restarts)."""
        return self._closed_counts[1] if self._closed_counts else self.outbox.dropped

    @property
    def alerts_in_memory(self) -> int:
        """Alerts the outbox could not store (disk full ...), waiting in memory; 0 after stop()."""
        return len(self._in_memory)

    @property
    def alerts_lost(self) -> list[str]:
        """Ids of alerts neither stored nor delivered (memory bound exceeded, or still unstored at stop)."""
        return [entry.alert_id for entry in self._lost if entry.kind == "alert"]

    @property
    def windows_lost(self) -> list[str]:
        """'<camera>@<window_start>' of closed windows neither stored in the outbox nor delivered on
        ``{prefix}/windows/{camera}`` (they are in the store's analytics SQLite in any case)."""
        return [entry.alert_id for entry in self._lost if entry.kind == "window"]

    @property
    def store_error(self) -> str | None:
        """Why the last alert could not be stored ('cannot store in PATH: disk full (...)'), None once it works."""
        return self._store_problem

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed (refused CONNACK, unreachable), None once connected."""
        return self._last_problem

    # ---------------------------------------------------------------- publishing

    def publish_alert(self, payload: dict) -> int | None:
        """Commit the alert to the outbox, then send it (now if connected, else after reconnect).
        Returns the outbox row id, or None when the full outbox refused it (drop='newest') or when it
        could not be stored and waits in memory (``alerts_in_memory``; logged with its id)."""
        validate_alert(payload)
        return self._commit(_MemoryAlert(payload["id"], self.topics.alert(payload["camera"], payload["rule"]),
                                         encode(payload)))

    def _commit(self, entry: _MemoryAlert) -> int | None:
        """Store one message (alert or window) in the outbox and wake the worker; when it cannot be
        stored it waits in memory (behind the ones already waiting: order kept). The row id, or None."""
        row_id = None
        with self._memory_lock:
            if not self._in_memory:  # else it queues behind the ones waiting (order kept)
                try:
                    row_id = self.outbox.put(entry.topic, entry.payload, ALERT_QOS)
                except OutboxWriteError as exc:
                    self._store_failed(exc)
                    self._keep_in_memory(entry)
                    self._store_retry_at = time.monotonic() + self._store_backoff_s
            else:
                self._keep_in_memory(entry)
        self._wake.set()
        return row_id

    def _store_failed(self, exc: OutboxWriteError) -> None:
        if str(exc) != self._store_problem:
            log.error("MQTT: %s", exc)
        self._store_problem = str(exc)

    def _keep_in_memory(self, entry: _MemoryAlert) -> None:
        """Under ``_memory_lock``."""
        self._in_memory.append(entry)
        log.warning("MQTT: %s kept in memory (%d waiting): %s; storing it is retried", entry.name,
                    len(self._in_memory), self._store_problem)
        while len(self._in_memory) > MAX_ALERTS_IN_MEMORY:
            victim = next((e for e in self._in_memory if not e.handed), None)
            if victim is None:
                break
            self._in_memory.remove(victim)
            self._lost.append(victim)
            log.error("MQTT: %s lost: more than %d alerts wait in memory (%s)", victim.name,
                      MAX_ALERTS_IN_MEMORY, self._store_problem)

    def _store_in_memory(self, force: bool = False) -> None:
        """Move waiting alerts into the outbox, oldest first, when the back-off allows (worker, stop)."""
        if not self._in_memory or (not force and time.monotonic() < self._store_retry_at):
            return
        stored = []
        with self._memory_lock:
            if not force and any(e.handed for e in self._in_memory):
                return  # sent from memory, not acknowledged yet: storing it too would send it twice
            while self._in_memory:
                entry = self._in_memory[0]
                try:
                    self.outbox.put(entry.topic, entry.payload, ALERT_QOS)  # WINDOW_QOS is the same
                except OutboxWriteError as exc:
                    self._store_failed(exc)
                    self._store_retry_at = time.monotonic() + self._store_backoff_s
                    self._store_backoff_s = min(STORE_RETRY_MAX_S, self._store_backoff_s * 2)
                    break
                self._in_memory.popleft()
                stored.append(entry.name)
            else:
                self._store_problem = None
                self._store_backoff_s = STORE_RETRY_MIN_S
        if stored:
            log.info("MQTT: %d kept in memory now stored in %s: %s", len(stored), self.outbox.path,
                     ", ".join(stored))

    def publish_counts(self, camera: str, counts: dict) -> None:
        self._publish_retained(self.topics.counts(camera), counts)

    def publish_status(self, camera: str, status: dict) -> None:
        self._publish_retained(self.topics.status(camera), status)

    def publish_analytics(self, camera: str, summary: dict) -> int | None:
        """A closed window: retained at QoS 0 on ``cameras/{camera}/analytics`` (the latest, for Home
        Assistant and the web page, only while connected) and committed to the outbox on
        ``windows/{camera}`` (QoS 1, not retained: every window is delivered, also after an outage of
        the store broker). Returns the outbox row id like ``publish_alert``."""
        data = encode(summary)
        self._publish_retained(self.topics.analytics(camera), data)
        start = summary.get("window_start") if isinstance(summary, dict) else None
        return self._commit(_MemoryAlert(f"{camera}@{start}", self.topics.windows(camera), data, kind="window"))

    def publish_stats(self, stats: dict) -> None:
        """Not retained, QoS 0, dropped while disconnected. Fills in outbox_depth, outbox_dropped,
        connected and time (epoch seconds, like the daemon's own stats) when the caller did not
        give them."""
        payload = {
            "outbox_depth": self.outbox_depth,
            "outbox_dropped": self.outbox_dropped,
            "connected": self.connected,
            "time": round(time.time(), 3),
            **stats,
        }
        self._send_now(self.topics.stats, encode(payload), retain=False)

    def publish_snapshot(self, camera: str, jpeg: bytes) -> None:
        """JPEG bytes, QoS 0, not retained (the broker keeps no picture). The caller checks
        ``snapshots.enabled`` and ``snapshots.mqtt`` (privacy: both are off by default)."""
        self._send_now(self.topics.snapshot(camera), bytes(jpeg), retain=False)

    def _publish_retained(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else encode(payload)
        with self._state_lock:
            self._retained[topic] = data
        self._send_now(topic, data, retain=True)

    def _send_now(self, topic: str, data: bytes, retain: bool) -> None:
        if self.connected:
            self._client.publish(topic, data, qos=0, retain=retain)

    # ---------------------------------------------------------------- paho callbacks (network thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connack_seen = True
        if reason_code.is_failure:
            self._connected.clear()
            self._report(refusal_text(reason_code))
            return
        self._connected.set()
        self._ever_connected = True
        self._last_problem = None
        log.info("MQTT connected to %s:%d", self.host, self.port)
        client.publish(self.topics.availability, b"online", qos=AVAILABILITY_QOS, retain=True)
        with self._state_lock:
            retained = list(self._retained.items())
        for topic, data in retained:
            client.publish(topic, data, qos=0, retain=True)
        self._wake.set()

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._socket_opened = time.monotonic()
        self._connack_seen = False

    def _on_socket_close(self, client, userdata, sock) -> None:
        opened = self._socket_opened
        if (opened is not None and not self._connack_seen and not self._stopping.is_set()
                and time.monotonic() - opened < self.connack_timeout_s):  # longer: the no-CONNACK line says it
            # TCP worked, the MQTT handshake never finished: paho's own "failed to receive on socket"
            # line is kept at DEBUG (it repeats on every retry), so this is the one line about it
            self._report(f"{self.host}:{self.port} closed the connection before the MQTT handshake; not an "
                         "MQTT broker, or one that refuses this client (check mqtt.host, mqtt.port, mqtt.tls); "
                         "retrying")
        self._socket_opened = None

    def _check_connack(self) -> None:
        opened = self._socket_opened
        if opened is not None and not self.connected and time.monotonic() - opened >= self.connack_timeout_s:
            self._report(f"no CONNACK from {self.host}:{self.port} within {self.connack_timeout_s:.0f} s of the TCP "
                         "connection (not an MQTT broker, or a wedged one; check mqtt.host and mqtt.port); retrying")

    def _on_connect_fail(self, client, userdata) -> None:
        self._report(_connect_failure_text(self._client.last_connect_error, self.host, self.port))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopping.is_set():
            log.warning("MQTT disconnected from %s:%d (%s); reconnecting", self.host, self.port, reason_code)


    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Runs under paho's message lock: only record the mid and wake the worker.
        self._acked_mids.append(mid)
        self._wake.set()

    def _report(self, problem: str) -> None:
        """Log a connection problem once (not on every retry)."""
        if problem != self._last_problem:
            log.error("MQTT: %s", problem)
        self._last_problem = problem

    # ---------------------------------------------------------------- worker (only thread handing rows)

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._worker_beat = time.monotonic()
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            try:
                self._supervise_network_thread()
                self._check_connack()
                self._check_outbox_file()
                self._apply_acks()
                self.outbox.retry_deletes()
                self._store_in_memory()
                if self.connected and not self._handed:
                    self._hand_batch()
            except Exception:  # never let the worker die: alerts are safe in SQLite
                log.exception("MQTT outbox worker error")
                time.sleep(0.5)
        self._apply_acks()

    def _check_outbox_file(self) -> None:
        """Every OUTBOX_CHECK_S: the outbox file deleted, replaced or overwritten under us is written
        again (Outbox.check_file logs what happened)."""
        now = time.monotonic()
        if now < self._next_file_check:
            return
        self._next_file_check = now + OUTBOX_CHECK_S
        with self._memory_lock:  # not while publish_alert is storing
            self.outbox.check_file()

    def _supervise_network_thread(self) -> None:
        """paho's thread ended although nobody stopped it: log why, restart it once, then fail."""
        client = self._client
        if (not self._network_started or self._stopping.is_set() or self.failure is not None
                or client._thread is not None):
            return
        error = client.thread_error
        reason = _exception_text(error) if error is not None else "it ended"
        self._connected.clear()
        if self.network_restarts >= MAX_NETWORK_RESTARTS:
            self.failure = (f"MQTT network thread died {self.network_restarts + 1} times ({reason}); alerts stay "
                            f"in {self.outbox.path}")
            log.error("%s", self.failure, exc_info=error)
            return
        self.network_restarts += 1
        log.error("MQTT network thread died (%s); restarting it (%d of %d)", reason, self.network_restarts,
                  MAX_NETWORK_RESTARTS, exc_info=error)
        client.thread_error = None
        client.loop_start()  # reconnects with back-off (connect_async was called at start)

    def health(self) -> str | None:
        """None while paho's network thread and the outbox worker are alive and the worker loops;
        otherwise what is wrong (the daemon stops feeding the systemd watchdog)."""
        if not self._started or self._stopping.is_set():
            return None
        if self.failure is not None:
            return self.failure
        if self._worker is None or not self._worker.is_alive():
            return "MQTT outbox worker is not running"
        idle = time.monotonic() - self._worker_beat
        if idle > WORKER_STALL_S:
            return f"MQTT outbox worker made no progress for {idle:.0f} s"
        if self._network_started and self._client._thread is None:
            return "MQTT network thread is not running"
        return None

    def _apply_acks(self) -> None:
        while self._acked_mids:
            mid = self._acked_mids.popleft()
            row_id = self._handed.pop(mid, None)
            if isinstance(row_id, _MemoryAlert):
                with self._memory_lock:
                    if row_id in self._in_memory:
                        self._in_memory.remove(row_id)
                log.info("MQTT: %s delivered from memory (it could not be stored)", row_id.name)
            elif row_id is not None:
                self.outbox.ack(row_id)  # never raises: a failed delete is remembered, not resent
        # The caller hands the next batch right after this when nothing is left in flight.

    def _hand_batch(self) -> None:
        rows = self.outbox.pending(self.max_inflight)
        if rows:
            batch = [(row.topic, row.payload, row.qos, row.id, f"outbox row {row.id}") for row in rows]
        else:  # every stored row is delivered: alerts waiting in memory (newer than any row) go next
            with self._memory_lock:
                waiting = list(self._in_memory)[: self.max_inflight]
                for entry in waiting:
                    entry.handed = True
            batch = [(e.topic, e.payload, ALERT_QOS, e, f"{e.name} (in memory)") for e in waiting]
        for topic, data, qos, handle, name in batch:
            info = self._client.publish(topic, data, qos=qos, retain=False)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("MQTT publish of %s failed (%s); retrying later", name, info.rc)
                with self._memory_lock:  # not handed after all
                    for _, _, _, other, _ in batch:
                        if isinstance(other, _MemoryAlert) and other not in self._handed.values():
                            other.handed = False
                break
            # NO_CONN: paho keeps the QoS 1 message and sends it on reconnect, still in order.
            self._handed[info.mid] = handle

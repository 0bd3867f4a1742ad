"""``fashion-edge collect``: the head office's MQTT -> PostgreSQL collector (docs/chain.md).

Exactly once, in three parts:

* **the session keeps what is not stored.** MQTT v5, ``clean_start`` false with a session expiry
  (``mqtt.session_expiry_s``), QoS 1 subscriptions, and paho's ``manual_ack``: a message is
  acknowledged (PUBACK) only after the transaction holding it committed. A collector killed with -9,
  or a database that is down, leaves the message unacknowledged in the broker's session, which sends
  it again on the next connection. ``mqtt.receive_maximum`` bounds what the broker hands over before
  acknowledgements come back (back-pressure while the database is down).
* **a message stored twice is one row.** A re-delivered message (killed between commit and PUBACK) is
  written again: alerts are keyed by their id (``ON CONFLICT DO NOTHING``), windows by (site, camera,
  window_start) and upserted (``edge/chain/store.py``).
* **a message that can never be stored does not block the session**: it is kept in ``rejected`` with
  the reason, then acknowledged.

Threads: paho's network thread only queues what arrives (``on_message``); the main thread takes
batches (``collector.batch_max`` messages, waiting at most ``collector.batch_wait_s``), writes each in one
transaction and then acknowledges its messages in arrival order. Database errors: the batch is kept
and retried with back-off (``collector.retry_min_s`` doubling to ``retry_max_s``) on a new connection.
Broker: paho reconnects with the same back-off; a message of an earlier connection is stored but not
acknowledged on the new one (the broker sends it again: stored again, still one row).

Bad DSN, database credentials or broker credentials at start: one line, exit 2 (``FashionEdgeError``).
An unreachable database or broker is waited for (logged once per cause).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..errors import FashionEdgeError
from ..mqtt.connection import apply_tls, read_password, refusal_text
from .config import HQConfig, database_password
from .store import BatchResult, Message, migrate, reject_one, write_batch

log = logging.getLogger(__name__)

# CONNACK reasons that no retry fixes: exit at start (one line) instead of looping on them.
_FATAL_REFUSALS = ("not authorized", "bad user name", "bad username", "client identifier not valid", "banned")
# libpq messages of a DSN or account that is wrong (not of a server that is down).
_FATAL_DB = ("password authentication failed", "no password supplied", "does not exist", "invalid",
             "authentication", "pg_hba.conf", "could not translate host name", "certificate")


def subscriptions(cfg: HQConfig) -> list[str]:
    root = cfg.mqtt.topic_root
    # a closed window comes twice: retained on cameras/+/analytics (the latest only, QoS 0 at the store)
    # and on windows/+ (every window, QoS 1 from the store's outbox); both are upserted into one row
    filters = [f"{root}/+/alerts/#", f"{root}/+/cameras/+/analytics", f"{root}/+/windows/+",
               f"{root}/+/availability"]
    if cfg.mqtt.shared_group:  # several collectors: the broker hands each message to one of them
        filters = [f"$share/{cfg.mqtt.shared_group}/{f}" for f in filters]
    return filters


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class _Received:
    message: Message
    generation: int  # the connection it came on: acknowledged only on that one


class Collector:
    def __init__(self, cfg: HQConfig, config_path: str | Path = "<config>"):
        self.cfg = cfg
        self.config_path = Path(config_path)
        self.totals = BatchResult()
        self.batches = 0
        self.acked = 0
        self.stale_unacked = 0  # stored but not acknowledged: their connection is gone (sent again)
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self.stop_event = threading.Event()
        self._conn = None
        self._generation = 0  # +1 on every CONNACK
        self._connack = threading.Event()
        self._refusal: str | None = None
        self._db_problem: str | None = None
        self._mqtt_problem: str | None = None
        self._client = self._make_client()

    # ------------------------------------------------------------------------------ database

    def _connect_db(self, at_start: bool):
        import psycopg

        db = self.cfg.database
        password = database_password(db, self.config_path)
        kwargs = {"password": password} if password is not None else {}
        try:
            conn = psycopg.connect(db.dsn, connect_timeout=db.connect_timeout_s, autocommit=True,
                                   application_name="fashion-edge-collect", **kwargs)
        except psycopg.ProgrammingError as exc:  # the DSN itself does not parse
            raise FashionEdgeError(f"invalid DSN ({_first_line(exc)})", path=self.config_path,
                                   field="database.dsn") from None
        except psycopg.OperationalError as exc:
            text = _first_line(exc)
            if at_start and any(p in text.lower() for p in _FATAL_DB):
                raise FashionEdgeError(f"cannot use the database ({text})", path=self.config_path,
                                       field="database.dsn") from None
            raise
        try:
            applied = migrate(conn)
        except psycopg.OperationalError:
            conn.close()
            raise
        except psycopg.Error as exc:  # e.g. no right to create tables: no retry fixes it
            conn.close()
            raise FashionEdgeError(f"cannot create or migrate the schema ({_first_line(exc)})",
                                   path=self.config_path, field="database.dsn") from None
        if applied:
            log.info("database schema migrated to version %s", applied[-1])
        return conn

    def _close_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self._conn = None

    def _db_failed(self, exc: BaseException, wait_s: float) -> None:
        text = _first_line(exc)
        if text != self._db_problem:
            log.error("database: %s; messages stay unacknowledged in the broker session, retrying in %.0f s",
                      text, wait_s)
        self._db_problem = text

    def _store(self, batch: list[Message]) -> BatchResult | None:
        """Write the batch (retrying with back-off); None when stopped before it was stored."""
        import psycopg

        backoff = self.cfg.collector.retry_min_s
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect_db(at_start=False)
                try:
                    result = write_batch(self._conn, batch, self.cfg.mqtt.topic_root)
                except (psycopg.DataError, psycopg.IntegrityError):  # PostgreSQL refuses one of them
                    result = self._store_one_by_one(batch)
                if self._db_problem is not None:
                    log.info("database: writing again")
                    self._db_problem = None
                return result
            except psycopg.Error as exc:
                # down, restarting, or refusing every write (a privilege revoked, disk full): the batch is
                # kept and tried again; its messages stay unacknowledged meanwhile
                self._close_db()
                self._db_failed(exc, backoff)
                if self.stop_event.wait(backoff):
                    return None
                backoff = min(backoff * 2, self.cfg.collector.retry_max_s)

    def _store_one_by_one(self, batch: list[Message]) -> BatchResult:
        import psycopg

        total = BatchResult()
        for message in batch:
            try:
                total.add(write_batch(self._conn, [message], self.cfg.mqtt.topic_root))
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                reject_one(self._conn, message, f"refused by PostgreSQL: {_first_line(exc)}")
                total.rejected += 1
                log.warning("message on %s rejected by PostgreSQL: %s", message.topic, _first_line(exc))
        return total

    # ------------------------------------------------------------------------------ MQTT

    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True, reconnect_on_failure=True)
        password = read_password(m.password_env, m.password_file)
        if m.username is not None or password is not None:
            client.username_pw_set(m.username, password)
        if m.tls is not None:
            apply_tls(client, m.tls)
        client.reconnect_delay_set(self.cfg.collector.retry_min_s, self.cfg.collector.retry_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.suppress_exceptions = True
        client.enable_logger(logging.getLogger("paho.mqtt"))
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refusal = refusal_text(reason_code).replace("mqtt.username", "mqtt.username in hq.yaml")
            self._mqtt_problem = self._refusal
            log.error("MQTT: %s", self._refusal)
            self._connack.set()
            return
        self._generation += 1
        self._refusal = None
        if self._mqtt_problem is not None:
            log.info("MQTT: connected again to %s:%d", self.cfg.mqtt.host, self.cfg.mqtt.port)
        self._mqtt_problem = None
        # retainHandling 1: retained messages only on a new subscription (not on every reconnect)
        options = SubscribeOptions(qos=1, retainHandling=1)
        client.subscribe([(f, options) for f in subscriptions(self.cfg)])
        log.info("MQTT connected to %s:%d (session %s)", self.cfg.mqtt.host, self.cfg.mqtt.port,
                 "resumed" if flags.session_present else "new")
        self._connack.set()

    def _on_connect_fail(self, client, userdata) -> None:
        problem = f"cannot reach the broker at {self.cfg.mqtt.host}:{self.cfg.mqtt.port}; retrying"
        if problem != self._mqtt_problem:
            log.error("MQTT: %s", problem)
        self._mqtt_problem = problem

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self.stop_event.is_set():
            log.warning("MQTT disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        # paho's thread: only queue it; it is acknowledged once stored (main thread)
        self._inbox.put(_Received(Message(msg.topic, bytes(msg.payload), time.time(), msg.mid, msg.qos),
                                  self._generation))

    def _connect_mqtt(self, wait_s: float) -> None:
        m = self.cfg.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = m.receive_maximum
        try:
            self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s, clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            raise FashionEdgeError(f"cannot connect ({exc})", path=self.config_path, field="mqtt.host") from None
        self._client.loop_start()
        # A refused CONNACK at start (wrong credentials) is fatal; an unreachable broker is waited for.
        if self._connack.wait(wait_s) and self._refusal is not None:
            refusal = self._refusal
            if any(p in refusal.lower() for p in _FATAL_REFUSALS):
                self._client.disconnect()
                self._client.loop_stop()
                raise FashionEdgeError(refusal, path=self.config_path, field="mqtt")

    # ------------------------------------------------------------------------------ main loop

    def stop(self) -> None:
        self.stop_event.set()

    def _take_batch(self) -> list[_Received]:
        c = self.cfg.collector
        try:
            first = self._inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + c.batch_wait_s
        while len(batch) < c.batch_max:
            try:
                left = deadline - time.monotonic()
                batch.append(self._inbox.get(timeout=left) if left > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _ack(self, batch: list[_Received]) -> None:
        current = self._generation
        for item in batch:
            if item.generation != current:
                self.stale_unacked += 1  # that connection is gone: the broker sends it again
                continue
            self._client.ack(item.message.mid, item.message.qos)
            self.acked += 1

    def _log_stats(self) -> None:
        t = self.totals
        log.info("collector: %d alert(s) stored (+%d duplicate(s) ignored), %d window write(s) (+%d unchanged "
                 "copies), %d rejected, %d availability; %d waiting", t.alerts, t.duplicates, t.windows,
                 t.window_copies, t.rejected, t.availability, self._inbox.qsize())

    def run(self, on_ready=None) -> int:
        """Connect (database first: the schema exists before any message is taken), then collect
        until ``stop()``. Returns the exit code."""
        self._conn = self._connect_db_at_start()
        self._connect_mqtt(wait_s=5.0)
        if on_ready is not None:
            on_ready()
        next_stats = time.monotonic() + self.cfg.collector.stats_interval_s
        try:
            while not self.stop_event.is_set():
                batch = self._take_batch()
                if batch:
                    result = self._store([item.message for item in batch])
                    if result is None:  # stopped while the database was down: left unacknowledged
                        break
                    self.totals.add(result)
                    self.batches += 1
                    self._ack(batch)
                if time.monotonic() >= next_stats:
                    self._log_stats()
                    next_stats = time.monotonic() + self.cfg.collector.stats_interval_s
        finally:
            self._shutdown()
        return 0

    def _connect_db_at_start(self):
        import psycopg

        backoff = self.cfg.collector.retry_min_s
        while True:
            try:
                return self._connect_db(at_start=True)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # down, not wrong: wait
                self._db_failed(exc, backoff)
                if self.stop_event.wait(backoff):
                    raise FashionEdgeError("stopped before the database could be reached",
                                           path=self.config_path, field="database.dsn") from None
                backoff = min(backoff * 2, self.cfg.collector.retry_max_s)

    def _shutdown(self) -> None:
        # What is queued but not stored stays unacknowledged: the broker keeps it in the session.
        try:
            self._client.disconnect()
            self._client.loop_stop()
        finally:
            self._close_db()
        self._log_stats()

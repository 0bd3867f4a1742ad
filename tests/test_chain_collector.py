"""A chain of stores end to end (issue 24): the daemon's real MQTT publisher at a store, the store's
mosquitto bridged (the generated stanza) to a head-office mosquitto with per-store passwords and the
generated ACL, ``fashion-edge collect`` as a process, and a real PostgreSQL. Every fault of the issue:
the link down, the collector killed with -9, PostgreSQL down, a re-delivered alert, a re-sent window,
a store writing under another store's site; bad DSN / credentials: one line, exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from chain_pg import PASSWORD, Postgres, pg_bin_dir, wait_until
from edge.analytics import Analytics
from edge.chain.bridge import BridgeOptions, bridge_stanza, hq_acl
from edge.config import MQTTConfig
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled
from edge.mqtt.payloads import make_alert
from edge.mqtt.publisher import MqttPublisher

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'fashion-edge[chain]')")
if pg_bin_dir() is None:
    pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed: apt-get install postgresql",
                allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
SITE_A, SITE_B = "store-a", "store-b"
T0 = 1_800_000_000.0  # a multiple of 60


@pytest.fixture(scope="module")
def postgres():
    server = Postgres().start()
    yield server
    server.cleanup()


class Chain:
    """HQ broker + one bridged store broker + a collector process + a fresh database."""

    def __init__(self, tmp_path: Path, mosquitto_factory, postgres: Postgres, name: str, hq_extra: str = ""):
        self.tmp = tmp_path
        self.pg = postgres
        self.dsn = postgres.create_db(name)
        passwords = tmp_path / "hq-passwd"
        for i, (user, pw) in enumerate((("collector", "c-pw"), (SITE_A, "a-pw"), (SITE_B, "b-pw"))):
            subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwords), user, pw],
                           check=True)
        acl = tmp_path / "hq.acl"
        acl.write_text("user collector\ntopic read fashion-edge/#\n\n" + hq_acl(SITE_A) + "\n" + hq_acl(SITE_B))
        hq_state = tmp_path / "hq-state"
        hq_state.mkdir()
        # persistence: the collector's session (unacknowledged messages) survives a restart of the broker
        self.hq = mosquitto_factory(f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"
                                    f"persistence true\npersistence_location {hq_state}/\nmax_queued_messages 0\n{hq_extra}")
        self.stanza = bridge_stanza(SITE_A, f"fashion-edge/{SITE_A}", BridgeOptions(
            remote_host="127.0.0.1", remote_port=self.hq.port, password="a-pw", tls=False))
        self.store = None
        self.collector: subprocess.Popen | None = None
        self.hq_yaml = tmp_path / "hq.yaml"
        self.hq_yaml.write_text(
            f"mqtt: {{host: 127.0.0.1, port: {self.hq.port}, username: collector, password_env: HQ_MQTT_PW,"
            f" client_id: collector-{name}, receive_maximum: 100}}\n"
            f"database: {{dsn: '{self.dsn}', password_env: HQ_DB_PW}}\n"
            "collector: {batch_max: 200, batch_wait_s: 0.05, retry_min_s: 0.2, retry_max_s: 1, stats_interval_s: 1}\n")
        self.env = {**os.environ, "HQ_MQTT_PW": "c-pw", "HQ_DB_PW": PASSWORD, "PYTHONPATH": str(REPO)}

    def start_store(self, mosquitto_factory, stanza: str | None = None):
        self.store = mosquitto_factory(stanza or self.stanza)
        return self.store

    def start_collector(self, hq_yaml: Path | None = None, wait: bool = True) -> subprocess.Popen:
        log = open(self.tmp / "collector.log", "ab")
        self.collector = subprocess.Popen([sys.executable, "-m", "edge", "collect", "--config",
                                           str(hq_yaml or self.hq_yaml)], cwd=REPO, env=self.env,
                                          stdout=log, stderr=subprocess.STDOUT)
        # its session subscribed before the stores publish (a new session gets only retained messages
        # of what came before it)
        seen = self.log().count("MQTT connected")
        if not wait:
            return self.collector
        assert wait_until(lambda: self.log().count("MQTT connected") > seen or self.collector.poll() is not None,
                          30), self.log()
        return self.collector

    def stop_collector(self, sig=signal.SIGTERM) -> None:
        if self.collector and self.collector.poll() is None:
            self.collector.send_signal(sig)
            self.collector.wait(timeout=15)

    def log(self) -> str:
        path = self.tmp / "collector.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def sql(self, query: str, *params):
        with psycopg.connect(self.dsn, password=PASSWORD) as conn:
            try:
                return conn.execute(query, params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def count(self, table: str, where: str = "true", *params) -> int:
        rows = self.sql(f"SELECT count(*) FROM {table} WHERE {where}", *params)
        return rows[0][0] if rows else 0

    def publisher(self, name: str = "pub") -> MqttPublisher:
        pub = MqttPublisher(MQTTConfig(keepalive_s=5), f"fashion-edge/{SITE_A}", f"fashion-edge-{SITE_A}-{name}",
                            self.tmp / f"outbox-{name}.sqlite", "127.0.0.1", self.store.port)
        pub.start()
        assert wait_until(lambda: pub.connected, 10), "publisher did not connect to the store broker"
        return pub


@pytest.fixture
def chain(tmp_path, mosquitto_factory, postgres, request):
    c = Chain(tmp_path, mosquitto_factory, postgres, request.node.name.replace("[", "_").replace("]", "")[:40])
    yield c
    c.stop_collector(signal.SIGKILL)


def alert(i: int, camera: str = "door", rule: str = "dress", site: str = SITE_A) -> dict:
    return make_alert(site, camera, i, rule, [("dress", 0.9)], [1, 2, 30, 40], i, i / 10)


def windows(db: Path, camera: str, starts_customers: list[tuple[float, int]]) -> list[dict]:
    """Real analytics summaries: ``customers`` one-minute visits in each window (start offset, customers)."""
    a = Analytics(db, SITE_A, camera, window_s=60, min_dwell_s=1.0)
    track = 0
    for start, customers in starts_customers:
        for _ in range(customers):
            track += 1
            a.record(CustomerSeen(track, T0 + start + 1))
            a.record(CustomerSettled(track, {"dress": 0.9}, frozenset({"dress"})))
            a.record(CustomerSeen(track, T0 + start + 20))
            a.record(CustomerEnded(track, T0 + start + 21))
    closed = a.poll(T0 + max(s for s, _ in starts_customers) + 61)
    a.close()
    return closed


def wait_rows(chain: Chain, table: str, n: int, timeout_s: float = 30.0, where: str = "true") -> int:
    got = wait_until(lambda: chain.count(table, where) >= n, timeout_s, 0.2)
    return chain.count(table, where) if not got else chain.count(table, where)


def test_alerts_and_windows_arrive_once_through_the_bridge(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    try:
        sent = [alert(i) for i in range(20)]
        for payload in sent:
            pub.publish_alert(payload)
        summaries = windows(chain.tmp / "a.sqlite", "door", [(0, 3), (60, 2)])
        assert [w["customers"] for w in summaries] == [3, 2]
        for w in summaries:
            pub.publish_analytics("door", w)
        assert wait_rows(chain, "alerts", 20) == 20, chain.log()
        assert wait_rows(chain, "windows", 2) == 2, chain.log()
    finally:
        pub.stop()
    ids = {r[0] for r in chain.sql("SELECT id::text FROM alerts")}
    assert ids == {a["id"] for a in sent}
    rows = chain.sql("SELECT extract(epoch FROM window_start), customers, dress_customers, revisions FROM windows "
                     "ORDER BY window_start")
    assert [(float(r[0]) - T0, r[1], r[2], r[3]) for r in rows] == [(0, 3, 3, 1), (60, 2, 2, 1)]
    # the publisher said "offline" when it stopped (availability goes through the bridge too)
    assert wait_until(lambda: chain.sql("SELECT site, availability FROM stores") == [(SITE_A, "offline")], 10)
    assert chain.count("rejected") == 0


def test_link_down_queues_at_the_store_then_delivers_once(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    try:
        pub.publish_alert(alert(0))
        assert wait_rows(chain, "alerts", 1) == 1, chain.log()
        chain.hq.stop()  # the link between the brokers is down (and the collector's broker with it)
        sent = [alert(i) for i in range(1, 31)]
        for payload in sent:
            pub.publish_alert(payload)
        summaries = windows(chain.tmp / "a.sqlite", "door", [(0, 1), (60, 4), (120, 2)])
        for w in summaries:  # retained QoS 0 from the daemon: queued for the bridge at QoS 1
            pub.publish_analytics("door", w)
        assert wait_until(lambda: pub.outbox_depth == 0, 10), "the store broker did not take the alerts"
        time.sleep(1.0)
        chain.hq.start()  # same port: the bridge reconnects (restart_timeout) and the collector too
        assert wait_rows(chain, "alerts", 31, timeout_s=45) == 31, chain.log()
        assert wait_rows(chain, "windows", 3, timeout_s=20) == 3, chain.log()
        time.sleep(1.0)  # nothing more arrives
    finally:
        pub.stop()
    assert chain.count("alerts") == 31
    got = chain.sql("SELECT customers FROM windows ORDER BY window_start")
    assert [r[0] for r in got] == [1, 4, 2]


def _raw_client(port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_collector_killed_with_minus_9_mid_stream_loses_and_duplicates_nothing(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    sent = [alert(i) for i in range(300)]
    try:
        pub.publish_alert(sent[0])
        assert wait_rows(chain, "alerts", 1) == 1, chain.log()

        def stream():
            for payload in sent[1:]:
                pub.publish_alert(payload)
                time.sleep(0.004)

        feeder = threading.Thread(target=stream)
        feeder.start()
        assert wait_until(lambda: chain.count("alerts") >= 60, 20, 0.05), chain.log()
        chain.stop_collector(signal.SIGKILL)  # between a commit and its PUBACKs, or mid-batch
        killed_at = chain.count("alerts")
        feeder.join()
        # the same alert again (a store re-sending it): one row
        raw = _raw_client(chain.store.port, "resender")
        raw.publish(f"fashion-edge/{SITE_A}/alerts/door/dress", json.dumps(sent[5]), qos=1).wait_for_publish(5)
        raw.loop_stop()
        raw.disconnect()
        chain.start_collector()
        assert wait_rows(chain, "alerts", 300, timeout_s=45) == 300, chain.log()
        time.sleep(1.0)
    finally:
        pub.stop()
    assert killed_at < 300
    assert chain.count("alerts") == 300
    assert {r[0] for r in chain.sql("SELECT id::text FROM alerts")} == {a["id"] for a in sent}
    # the re-sent alert (at least) reached the restarted collector and was recognised, not stored again
    duplicates = [int(n) for n in re.findall(r"\(\+(\d+) duplicate", chain.log())]
    assert duplicates and max(duplicates) >= 1, chain.log()


def test_postgres_down_for_a_while_loses_nothing(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    try:
        pub.publish_alert(alert(0))
        assert wait_rows(chain, "alerts", 1) == 1, chain.log()
        chain.pg.stop()
        sent = [alert(i) for i in range(1, 41)]
        for payload in sent:
            pub.publish_alert(payload)
        for w in windows(chain.tmp / "a.sqlite", "door", [(0, 2)]):
            pub.publish_analytics("door", w)
        assert wait_until(lambda: "database:" in chain.log(), 15), chain.log()
        time.sleep(1.5)  # down for a while: retries with back-off, nothing acknowledged
        chain.pg.start()
        assert wait_rows(chain, "alerts", 41, timeout_s=30) == 41, chain.log()
        assert wait_rows(chain, "windows", 1) == 1
        time.sleep(0.5)
    finally:
        pub.stop()
    assert chain.count("alerts") == 41
    assert chain.collector.poll() is None  # still running


def test_collector_started_while_postgres_is_down_waits_for_it(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.pg.stop()
    try:
        process = chain.start_collector(wait=False)
        assert wait_until(lambda: "database:" in chain.log(), 20), chain.log()
        time.sleep(1.0)
        assert process.poll() is None, chain.log()  # down is not wrong: it waits, no exit
    finally:
        chain.pg.start()
    assert wait_until(lambda: "MQTT connected" in chain.log(), 20), chain.log()
    pub = chain.publisher()
    try:
        for i in range(3):
            pub.publish_alert(alert(i))
        assert wait_rows(chain, "alerts", 3) == 3, chain.log()
    finally:
        pub.stop()


def test_a_window_re_sent_after_a_merge_replaces_its_row(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    db = chain.tmp / "a.sqlite"
    try:
        first = windows(db, "door", [(0, 2)])
        pub.publish_analytics("door", first[0])
        assert wait_rows(chain, "windows", 1) == 1, chain.log()
        # the daemon restarted within the window: its SQLite merges the new visits into the row and
        # publishes the merged window again
        merged = windows(db, "door", [(0, 3)])
        assert merged[0]["customers"] == 5
        pub.publish_analytics("door", merged[0])
        assert wait_until(lambda: chain.sql("SELECT customers FROM windows") == [(5,)], 15), chain.log()
        # the old copy re-delivered late does not win over the merged row
        raw = _raw_client(chain.store.port, "late")
        raw.publish(f"fashion-edge/{SITE_A}/cameras/door/analytics", json.dumps(first[0]), qos=1).wait_for_publish(5)
        raw.publish(f"fashion-edge/{SITE_A}/alerts/door/dress", json.dumps(alert(1)), qos=1).wait_for_publish(5)
        raw.loop_stop()
        raw.disconnect()
        assert wait_rows(chain, "alerts", 1) == 1
        time.sleep(0.5)
    finally:
        pub.stop()
    assert chain.sql("SELECT customers, dress_customers, revisions FROM windows") == [(5, 5, 2)]


def test_a_store_cannot_write_under_another_store_site(chain, mosquitto_factory):
    # store A's bridge edited to map its topics under store-b, with store A's account
    forged = chain.stanza.replace(f"fashion-edge/{SITE_A}/ fashion-edge/{SITE_A}/",
                                  f"fashion-edge/{SITE_A}/ fashion-edge/{SITE_B}/")
    assert forged != chain.stanza
    chain.start_store(mosquitto_factory, forged)
    chain.start_collector()
    pub = chain.publisher()
    try:
        for i in range(5):
            pub.publish_alert(alert(i))
        # and a payload that claims store-b on store A's own topic: kept as rejected, not as store-b's
        chain_b = alert(99, site=SITE_B)
        raw = _raw_client(chain.hq.port, "not-allowed")  # anonymous: refused by the head office
        raw.loop_stop()
        honest = mosquitto_factory(chain.stanza)
        raw = _raw_client(honest.port, "liar")
        raw.publish(f"fashion-edge/{SITE_A}/alerts/door/dress", json.dumps(chain_b), qos=1).wait_for_publish(5)
        # valid JSON of the contract, but a track id beyond PostgreSQL's bigint: refused by the
        # database for this message alone, kept as rejected, the session goes on
        huge = {**alert(7), "track_id": 2**70}
        raw.publish(f"fashion-edge/{SITE_A}/alerts/door/dress", json.dumps(huge), qos=1).wait_for_publish(5)
        raw.loop_stop()
        raw.disconnect()
        assert wait_rows(chain, "rejected", 2, timeout_s=30) == 2, chain.log()
        time.sleep(1.5)
    finally:
        pub.stop()
    assert chain.count("alerts", "site = %s", SITE_B) == 0
    assert chain.count("alerts") == 0
    first, second = [r[0] for r in chain.sql("SELECT reason FROM rejected ORDER BY id")]
    assert "store-b" in first and "site" in first
    assert "refused by PostgreSQL" in second and "bigint" in second, second


def test_tls_bridge_and_collector_with_the_generated_stanza(tmp_path, mosquitto_factory, postgres):
    """The TLS lines of the stanza against a real TLS listener (a throw-away CA; the broker certificate
    names localhost): the bridge verifies the head office, the collector connects over TLS too."""
    from conftest import free_port
    from test_mqtt import make_certs

    certs = make_certs(tmp_path / "tls")
    tls_port = free_port()
    chain = Chain(tmp_path, mosquitto_factory, postgres, "tls_bridge", hq_extra=(
        f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['cert']}\nkeyfile {certs['key']}\n"))
    try:
        stanza = bridge_stanza(SITE_A, f"fashion-edge/{SITE_A}", BridgeOptions(
            remote_host="localhost", remote_port=tls_port, password="a-pw", cafile=str(certs["ca"])))
        assert "bridge_insecure false" in stanza
        chain.start_store(mosquitto_factory, stanza)
        hq_yaml = tmp_path / "hq-tls.yaml"
        hq_yaml.write_text(chain.hq_yaml.read_text().replace(f"host: 127.0.0.1, port: {chain.hq.port}",
                                                             f"host: localhost, port: {tls_port}, tls: {{ca: '{certs['ca']}'}}"))
        assert "tls:" in hq_yaml.read_text()
        chain.start_collector(hq_yaml)
        pub = chain.publisher()
        try:
            sent = [alert(i) for i in range(3)]
            for payload in sent:
                pub.publish_alert(payload)
            assert wait_rows(chain, "alerts", 3) == 3, chain.log()
        finally:
            pub.stop()
        assert {r[0] for r in chain.sql("SELECT id::text FROM alerts")} == {a["id"] for a in sent}
        log = (chain.store.workdir / "mosquitto.log").read_text()
        assert "Connecting bridge" in log and "localhost" in log
    finally:
        chain.stop_collector(signal.SIGKILL)


def test_bad_dsn_or_credentials_is_one_line_and_exit_2(chain, tmp_path):
    cases = {
        "wrong database password": {"HQ_DB_PW": "wrong"},
        "wrong broker password": {"HQ_MQTT_PW": "wrong"},
    }
    for what, env in cases.items():
        result = subprocess.run([sys.executable, "-m", "edge", "collect", "--config", str(chain.hq_yaml)], cwd=REPO,
                                env={**chain.env, **env}, capture_output=True, text=True, timeout=60)
        lines = [line for line in result.stderr.splitlines() if "error:" in line]
        assert result.returncode == 2, (what, result.stderr)
        assert len(lines) == 1 and "Traceback" not in result.stderr, (what, result.stderr)
        assert "hq.yaml" in lines[0] and "wrong" not in lines[0], (what, lines[0])
    bad = tmp_path / "bad.yaml"
    bad.write_text(chain.hq_yaml.read_text().replace(chain.dsn, "postgresql://[oops"))
    result = subprocess.run([sys.executable, "-m", "edge", "collect", "--config", str(bad)], cwd=REPO, env=chain.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "database.dsn" in result.stderr and "Traceback" not in result.stderr
    bad.write_text(chain.hq_yaml.read_text().replace("collector: {", "collector: {batch_mx: 3, "))
    result = subprocess.run([sys.executable, "-m", "edge", "collect", "--config", str(bad)], cwd=REPO, env=chain.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "collector.batch_mx: unknown key" in result.stderr, result.stderr


@pytest.mark.slow
def test_the_real_daemon_on_the_clip_reaches_postgresql_through_the_bridge(chain, mosquitto_factory, shared_dir):
    """`fashion-edge run` on the demo clip, publishing to its store broker, bridged to the head office:
    every alert it logged and every window in its own SQLite arrive once in PostgreSQL."""
    from edge.analytics import read_windows
    from test_daemon import ALERT_ID, run_daemon, write_config

    chain.start_store(mosquitto_factory)
    chain.start_collector()
    config = write_config(chain.tmp, shared_dir, site=SITE_A,
                          analytics={"window_s": 10, "min_dwell_s": 0.5})
    code, out = run_daemon(config, chain.store.port, "--max-frames", "300")
    assert code == 0, out[-3000:]
    logged = set(ALERT_ID.findall(out))
    local = read_windows(chain.tmp / "state" / "analytics.sqlite")
    assert logged and len(local) >= 3, (logged, local)
    assert wait_until(lambda: chain.count("alerts") >= len(logged) and chain.count("windows") >= len(local), 30), \
        chain.log()
    time.sleep(0.5)
    assert {r[0] for r in chain.sql("SELECT id::text FROM alerts")} == logged
    stored = {(r[0], float(r[1])): r[2] for r in chain.sql(
        "SELECT camera, extract(epoch FROM window_start), customers FROM windows")}
    assert stored == {(w["camera"], w["window_start"]): w["customers"] for w in local}
    assert chain.count("rejected") == 0

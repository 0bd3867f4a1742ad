"""Every closed analytics window reaches the head office, also one closed while the *store's own*
broker was down (issue 24, docs/chain.md): the daemon's real publisher commits each window to its
durable outbox on ``{prefix}/windows/{camera}`` (QoS 1) besides the retained analytics topic; the
store's mosquitto (bridged with the generated stanza) is stopped while windows close, then started
again; ``fashion-edge collect`` (a process) writes every window into a real PostgreSQL exactly once.

Before the fix only the retained latest window of each camera was published again after the
reconnect: the older windows closed during the outage never reached PostgreSQL."""

from __future__ import annotations

import json
import re
import time

import pytest

from chain_pg import wait_until
from test_chain_collector import SITE_A, T0, chain, postgres, wait_rows, windows  # noqa: F401 (fixtures)


def test_windows_closed_while_the_store_broker_is_down_reach_postgresql_once(chain, mosquitto_factory):
    chain.start_store(mosquitto_factory)
    chain.start_collector()
    pub = chain.publisher()
    try:
        first = windows(chain.tmp / "door-0.sqlite", "door", [(0, 1)])
        pub.publish_analytics("door", first[0])
        assert wait_rows(chain, "windows", 1) == 1, chain.log()  # the whole chain works

        chain.store.stop()  # the store's own broker is down (the daemon keeps running)
        assert wait_until(lambda: not pub.connected, 10), "the publisher did not see its broker go"
        door = windows(chain.tmp / "door.sqlite", "door", [(60, 4), (120, 2), (180, 3)])
        till = windows(chain.tmp / "till.sqlite", "till", [(60, 5), (120, 1)])
        assert [w["customers"] for w in door] == [4, 2, 3] and [w["customers"] for w in till] == [5, 1]
        for w in door:
            pub.publish_analytics("door", w)
        for w in till:
            pub.publish_analytics("till", w)
        # kept durably while nobody takes them: one outbox row per window, none lost
        assert pub.outbox_depth == 5 and pub.windows_pending == 5 and pub.windows_lost == []
        time.sleep(1.0)
        assert chain.count("windows") == 1

        chain.store.start()  # same port: the publisher reconnects, the bridge too
        assert wait_rows(chain, "windows", 6, timeout_s=45) == 6, chain.log()
        assert wait_until(lambda: pub.outbox_depth == 0, 15), "the outbox was not delivered"
        time.sleep(1.5)  # the retained copies (republished on reconnect) arrive too: nothing more
    finally:
        pub.stop()
    rows = chain.sql("SELECT camera, extract(epoch FROM window_start), customers, dress_customers, revisions "
                     "FROM windows ORDER BY camera, window_start")
    assert [(r[0], float(r[1]) - T0, r[2], r[3], r[4]) for r in rows] == [
        ("door", 0, 1, 1, 1), ("door", 60, 4, 4, 1), ("door", 120, 2, 2, 1), ("door", 180, 3, 3, 1),
        ("till", 60, 5, 5, 1), ("till", 120, 1, 1, 1)]
    assert chain.count("rejected") == 0
    # the collector's last totals: 6 window writes; the other copies (retained + outbox) changed nothing
    totals = re.findall(r"(\d+) window write\(s\) \(\+(\d+) unchanged", chain.log())
    assert totals and int(totals[-1][0]) == 6 and int(totals[-1][1]) >= 1, totals[-3:]


@pytest.mark.parametrize("topic", ["fashion-edge/store-a/windows/door", "fashion-edge/store-a/cameras/door/analytics"])
def test_the_collector_classifies_both_window_topics_the_same(topic):
    from edge.chain.store import classify

    assert classify(topic, "fashion-edge") == ("window", SITE_A)
    assert classify("fashion-edge/store-a/windows/door/extra", "fashion-edge") is None


def test_a_window_the_outbox_cannot_store_takes_the_alerts_memory_path(mosquitto, tmp_path, caplog, monkeypatch):
    """A full disk under the outbox: a closed window waits in memory like an alert (logged as
    'window <camera>@<start>'), behind the alerts that wait too, and is delivered from there on
    windows/<camera>, in order with them; nothing is lost, ``alerts_lost`` stays about alerts."""
    import logging

    import edge.mqtt.publisher as publisher_module
    from test_mqtt import PREFIX, Subscriber, alert, publisher
    from test_outbox_full_disk import fill_database

    monkeypatch.setattr(publisher_module, "STORE_RETRY_MIN_S", 60.0, raising=False)  # from memory, not disk
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    pub = publisher(mosquitto.port, tmp_path / "outbox.sqlite")
    summary = windows(tmp_path / "door.sqlite", "door", [(0, 2)])[0]
    sent = [alert(0)]
    pub.publish_alert(sent[0])  # stored
    fill_database(pub.outbox)
    while not pub.alerts_in_memory:  # the last free bytes of the file take a few more
        sent.append(alert(len(sent)))
        pub.publish_alert(sent[-1])
        assert len(sent) < 200
    stored = pub.outbox_depth
    assert pub.publish_analytics("door", summary) is None  # disk full: memory, behind the last alert
    sent.append(alert(len(sent)))
    pub.publish_alert(sent[-1])
    assert pub.alerts_in_memory == 3 and pub.outbox_depth == stored == len(sent) - 2
    name = f"window door@{summary['window_start']}"
    assert any(name in r.getMessage() and "disk full" in r.getMessage() for r in caplog.records), caplog.text

    sub = Subscriber(mosquitto.port, f"{PREFIX}/#")
    pub.start()
    durable = f"{PREFIX}/windows/door"
    try:
        assert sub.wait_for(lambda: len(sub.alerts()) >= len(sent) and sub.on(durable), 10)
        time.sleep(0.5)
        order = [t for t, _, _ in sub.messages if "/alerts/" in t or t == durable]
        alert_topic = f"{PREFIX}/alerts/cam1/suit_alert"
        assert order == [alert_topic] * (len(sent) - 1) + [durable, alert_topic]
        assert [a["id"] for a in sub.alerts()] == [a["id"] for a in sent]
        (payload, retained), = sub.on(durable)
        assert not retained and json.loads(payload) == summary
        assert pub.alerts_in_memory == 0 and pub.outbox_depth == 0
        assert f"{name} delivered from memory" in caplog.text
    finally:
        pub.stop(flush_timeout_s=1)
        sub.close()
    assert pub.alerts_lost == [] and pub.windows_lost == []

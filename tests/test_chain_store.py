"""What the collector makes of each message before PostgreSQL (issue 24, edge/chain/store.py): the
topic decides the kind and the site, a payload that contradicts its topic or breaks the contract is
kept as rejected (never dropped, never stored as something else), a window re-sent within one batch
is written once (the later copy)."""

from __future__ import annotations

import json
import time

from edge.analytics import Analytics
from edge.chain.collector import subscriptions
from edge.chain.config import DatabaseConfig, HQConfig
from edge.chain.store import Message, classify, prepare
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled
from edge.mqtt.payloads import encode, make_alert

ROOT = "fashion-edge"
T0 = 1_800_000_000.0


def msg(topic: str, payload) -> Message:
    data = payload if isinstance(payload, bytes) else encode(payload)
    return Message(topic, data, time.time())


def real_window(tmp_path, customers: int) -> dict:
    a = Analytics(tmp_path / "a.sqlite", "s1", "door", window_s=60)
    for track in range(1, customers + 1):
        a.record(CustomerSeen(track, T0 + 1, frozenset({"door-mat"})))
        a.record(CustomerSettled(track, {"dress": 0.9}, frozenset({"dress"})))
        a.record(CustomerSeen(track, T0 + 10))
        a.record(CustomerEnded(track, T0 + 11))
    (window,) = a.poll(T0 + 61)
    a.close()
    return window


def test_topics_name_the_kind_and_the_site():
    assert classify("fashion-edge/s1/alerts/door/dress", ROOT) == ("alert", "s1")
    assert classify("fashion-edge/s1/cameras/door/analytics", ROOT) == ("window", "s1")
    assert classify("fashion-edge/s1/availability", ROOT) == ("availability", "s1")
    for other in ("fashion-edge/s1/cameras/door/counts", "fashion-edge/s1/stats", "other/s1/availability",
                  "fashion-edge/s1/alerts/door"):
        assert classify(other, ROOT) is None


def test_good_messages_become_rows(tmp_path):
    alert = make_alert("s1", "door", 3, "dress", [("dress", 0.9)], [0, 0, 5, 5], 7, 0.7)
    window = real_window(tmp_path, 2)
    alerts, windows, stores, availability, rejected, ignored, n_windows = prepare([
        msg("fashion-edge/s1/alerts/door/dress", alert),
        msg("fashion-edge/s1/cameras/door/analytics", window),
        msg("fashion-edge/s1/availability", b"online"),
        msg("fashion-edge/s1/cameras/door/counts", {"people_now": 1}),
    ], ROOT)
    assert [a["id"] for a in alerts] == [alert["id"]] and not rejected and ignored == 1
    assert (windows[0]["customers"], windows[0]["dress_customers"], n_windows) == (2, 2, 1)
    assert json.loads(windows[0]["garments"]) == {"dress": 2}
    assert json.loads(windows[0]["zones"]) == {"door-mat": 2}  # customers per named zone reach the head office
    assert [s["site"] for s in stores] == ["s1"] and availability[0]["state"] == "online"


def test_bad_or_contradicting_payloads_are_kept_as_rejected(tmp_path):
    alert = make_alert("s2", "door", 3, "dress", [("dress", 0.9)], [0, 0, 5, 5], 7, 0.7)
    window = real_window(tmp_path, 1)
    cases = [
        msg("fashion-edge/s1/alerts/door/dress", b"\xff not json"),
        msg("fashion-edge/s1/alerts/door/dress", alert),  # names site s2 on s1's topic
        msg("fashion-edge/s2/alerts/door/suit", alert),  # rule of the topic is not the alert's
        msg("fashion-edge/s1/alerts/door/dress", {**alert, "site": "s1", "track_id": -1}),
        msg("fashion-edge/s1/cameras/till/analytics", window),  # camera of the topic is not the window's
        msg("fashion-edge/s1/cameras/door/analytics", {**window, "customers": 2**40}),
        msg("fashion-edge/s1/cameras/door/analytics", {**window, "garments": {"dress": "two"}}),
        msg("fashion-edge/s1/cameras/door/analytics", {**window, "window_end": window["window_start"]}),
        msg("fashion-edge/s1/alerts/door/dress", {**alert, "site": "s1", "time": "2027-13-01T00:00:00Z"}),
    ]
    alerts, windows, stores, _, rejected, _, _ = prepare(cases, ROOT)
    assert not alerts and not windows and not stores
    assert len(rejected) == len(cases)
    reasons = [r["reason"] for r in rejected]
    assert "not UTF-8 JSON" in reasons[0] and "'s2' is not the topic's 's1'" in reasons[1]
    assert "alert.rule" in reasons[2] and "alert.track_id" in reasons[3] and "window.camera" in reasons[4]
    assert "window.customers" in reasons[5] and "window.garments.dress" in reasons[6]
    assert "alert.time" in reasons[8]
    assert all(r["payload"] == c.payload for r, c in zip(rejected, cases))


def test_a_window_twice_in_one_batch_is_one_row_the_later_copy(tmp_path):
    first = real_window(tmp_path, 1)
    merged = real_window(tmp_path, 2)  # same file: the second run's visits merged into the row
    assert merged["customers"] == 3
    _, windows, *_ = prepare([msg("fashion-edge/s1/cameras/door/analytics", first),
                              msg("fashion-edge/s1/cameras/door/analytics", merged)], ROOT)
    assert [w["customers"] for w in windows] == [3]


def test_shared_group_subscribes_through_share():
    cfg = HQConfig(database=DatabaseConfig(dsn="postgresql://x"), mqtt={"shared_group": "collectors"})
    assert subscriptions(cfg)[0] == "$share/collectors/fashion-edge/+/alerts/#"
    assert subscriptions(HQConfig(database=DatabaseConfig(dsn="postgresql://x")))[1] == \
        "fashion-edge/+/cameras/+/analytics"

"""The local web page at the HTTP level (no models): routes, annotated frame, the day's windows,
offline page, basic auth, and the config rules for the listen address."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from datetime import date, datetime

import cv2
import numpy as np
import pytest

from edge.analytics import Analytics
from edge.config import parse_config
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled
from edge.errors import ConfigError
from edge.integrations import web_password
from edge.web import WebServer, WebState, read_day_windows


def get(url: str, auth: tuple[str, str] | None = None):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


def day_db(tmp_path, camera="entrance", site="store-042"):
    """An analytics.sqlite with two windows of today (customers with a dress and a suit) and one of yesterday."""
    db = tmp_path / "analytics.sqlite"
    analytics = Analytics(db, site=site, camera=camera, window_s=60, min_dwell_s=0.5)
    start = datetime.combine(date.today(), datetime.min.time()).timestamp() + 3600  # 01:00 today
    for w, garments in enumerate(({"dress": 0.9}, {"suit": 0.8})):
        t = start + 60 * w
        for tid in (10 * w + 1, 10 * w + 2):
            analytics.record(CustomerSeen(tid, t + 1))
            analytics.record(CustomerSettled(tid, garments, frozenset(set(garments))))  # rules named like the garment accept them
            analytics.record(CustomerSeen(tid, t + 20))
            analytics.record(CustomerEnded(tid, t + 20))
        analytics.poll(t + 61)
    analytics.flush(start + 200)
    analytics.close()
    return db, start


@pytest.fixture
def frame():
    image = np.full((240, 320, 3), 90, np.uint8)
    return image


def make_state(tmp_path, frame, db=None):
    state = WebState(site="store-042", cameras=["entrance"], analytics_db=db,
                     zones={"entrance": [{"rule": "dress", "polygon": [[10, 100], [300, 100], [300, 230], [10, 230]]}]},
                     status=lambda: {"cameras": {"entrance": {"status": {"state": "streaming"}, "frames": 12}},
                                     "mqtt": {"connected": True, "host": "127.0.0.1", "port": 1883, "outbox_depth": 0}},
                     live_counts=lambda cam: {"people_now": 1, "customers_window": 3})
    state.update_frame("entrance", frame, 12, time.time(),
                       [{"id": 7, "box": [100, 40, 180, 220], "garments": [{"label": "dress", "score": 0.93}],
                         "rules": ["dress"]}])
    state.add_alert({"camera": "entrance", "rule": "dress", "track_id": 7, "garments": [["dress", 0.93]],
                     "timestamp": time.time(), "frame_index": 12, "decided": "consensus"})
    return state


def test_routes_frame_state_and_analytics(tmp_path, frame):
    db, start = day_db(tmp_path)
    server = WebServer(make_state(tmp_path, frame, db), "127.0.0.1", 0).start()
    try:
        status, headers, body = get(server.url)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        html = body.decode()
        # offline: no asset from anywhere else (and the CSP forbids it anyway)
        assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
        assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"

        status, headers, body = get(server.url + "api/state")
        state = json.loads(body)
        cam = state["cameras"][0]
        assert state["site"] == "store-042" and cam["name"] == "entrance" and cam["frame_index"] == 12
        assert cam["size"] == [320, 240] and cam["customers"][0]["id"] == 7
        assert cam["status"]["state"] == "streaming" and state["mqtt"]["connected"] is True
        assert state["alerts"][0]["rule"] == "dress"

        status, headers, body = get(server.url + "frame/entrance.jpg")
        assert headers["Content-Type"] == "image/jpeg" and headers["X-Frame-Index"] == "12"
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == frame.shape
        # the customer's box (green: a settled garment) and the zone are drawn; the original is untouched
        assert image[130, 100, 1] > 150 and image[130, 100, 0] < 100
        assert abs(int(image[100, 200, 2]) - 90) > 60  # zone edge (orange-ish: red channel high)
        assert int(frame[130, 100, 1]) == 90

        status, _, body = get(server.url + "api/analytics?camera=entrance")
        data = json.loads(body)
        assert data["day"] == date.today().isoformat() and data["live"]["customers_window"] == 3
        windows = data["windows"]
        assert [w["customers"] for w in windows if w["customers"]] == [2, 2]
        assert windows[0]["dress_share"] == 1.0 and windows[1]["suit_share"] == 1.0
        from edge.plot_style import label_colour  # the report's colours (issue 13)
        assert data["colours"] == {label: label_colour(label) for label in ("dress", "suit")}
        assert all(start <= w["window_start"] < start + 86400 for w in windows)

        for path in ("frame/nope.jpg", "nothing", "api/analytics?day=yesterday"):
            with pytest.raises(urllib.error.HTTPError) as err:
                get(server.url + path)
            assert err.value.code in (400, 404)
    finally:
        server.stop()


def test_no_frame_yet_is_204_and_missing_db_is_empty(tmp_path):
    state = WebState(site="s", cameras=["entrance"], analytics_db=tmp_path / "none.sqlite")
    server = WebServer(state, "127.0.0.1", 0).start()
    try:
        status, _, body = get(server.url + "frame/entrance.jpg")  # not an error: the page polls early
        assert status == 204 and body == b""
        assert json.loads(get(server.url + "api/analytics?camera=entrance")[2])["windows"] == []
    finally:
        server.stop()
    assert read_day_windows(None, None, date.today()) == []


def test_without_password_only_loopback_host_names_are_served(tmp_path, frame):
    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0).start()
    try:
        for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]:8080"):
            request = urllib.request.Request(server.url + "api/state", headers={"Host": host})
            assert urllib.request.urlopen(request, timeout=5).status == 200
        # DNS rebinding: evil.example resolving to 127.0.0.1 must not read the frames
        request = urllib.request.Request(server.url + "frame/entrance.jpg", headers={"Host": "evil.example:8080"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 421  # Misdirected Request: not a name this page answers to
    finally:
        server.stop()


def raw_get(port: int, path: str, host: str | None, bind: str = "127.0.0.1") -> tuple[int, bytes]:
    """One GET with exactly this Host header (None: no Host header at all), as a rebinding page's
    browser or curl would send it."""
    import http.client

    conn = http.client.HTTPConnection(bind, port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# names a page on the internet can make a browser send to 127.0.0.1 (DNS rebinding), and malformed ones
REBINDING_HOSTS = ["127.attacker.example", "127.attacker.example:{port}", "127.0.0.1.nip.io",
                   "127.0.0.1.nip.io:{port}", "127.0.0.1@evil", "127.0.0.1@evil.example:{port}",
                   "localhost.attacker.example", "localhost.", "evil.example", "127.1", "127.0.0.01",
                   "0x7f.0.0.1", "[::1].evil", "[::1]:{port}@evil", "::1", "[127.0.0.1]", "[::2]",
                   "127.0.0.1:", "127.0.0.1:port", "127.0.0.1:{port}:{port}", "localhost:99999",
                   "127.0.0.1 evil", "", " "]


@pytest.mark.parametrize("bind", ["127.0.0.1", "localhost"])
def test_without_password_only_exact_loopback_hosts_get_a_frame(tmp_path, frame, bind):
    """DNS rebinding (issue 22, 1): any Host that merely starts with 127. or names loopback inside a
    longer name is refused without the frame; exact loopback names and literals (optional port) pass."""
    server = WebServer(make_state(tmp_path, frame), bind, 0).start()
    port = server.port
    try:
        for template in REBINDING_HOSTS + [None]:
            host = None if template is None else template.format(port=port)
            for path in ("/frame/entrance.jpg", "/api/state", "/"):
                status, body = raw_get(port, path, host)
                assert status == 421, (host, path, status)
                assert b"\xff\xd8" not in body and b"store-042" not in body, (host, path)
        for host in ("localhost", f"localhost:{port}", "LOCALHOST", "127.0.0.1", f"127.0.0.1:{port}",
                     "127.4.5.6:80", "[::1]", f"[::1]:{port}", "[0:0:0:0:0:0:0:1]:8080"):
            status, body = raw_get(port, "/frame/entrance.jpg", host)
            assert status == 200 and body[:2] == b"\xff\xd8", host  # a JPEG
    finally:
        server.stop()


def test_two_host_headers_are_refused(tmp_path, frame):
    import http.client

    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.putrequest("GET", "/frame/entrance.jpg", skip_host=True)
        conn.putheader("Host", "127.0.0.1")
        conn.putheader("Host", "evil.example")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 421 and b"\xff\xd8" not in response.read()
        conn.close()
    finally:
        server.stop()


def test_password_serves_any_host_name_but_only_with_the_password(tmp_path, frame):
    """With a password (the only way off loopback) the name does not matter: a rebinding page has no
    password, and a remote manager reaches the device by its own name."""
    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0, username="admin", password="s3cret").start()
    try:
        token = base64.b64encode(b"admin:s3cret").decode()
        import http.client

        for host in ("store-042.lan:8080", "127.attacker.example"):
            assert raw_get(server.port, "/frame/entrance.jpg", host)[0] == 401
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.putrequest("GET", "/frame/entrance.jpg", skip_host=True)
            conn.putheader("Host", host)
            conn.putheader("Authorization", "Basic " + token)
            conn.endheaders()
            response = conn.getresponse()
            assert response.status == 200 and response.read()[:2] == b"\xff\xd8"
            conn.close()
    finally:
        server.stop()


def test_password_protects_every_route(tmp_path, frame):
    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0, username="admin", password="s3cret").start()
    try:
        for path in ("", "api/state", "frame/entrance.jpg"):
            with pytest.raises(urllib.error.HTTPError) as err:
                get(server.url + path)
            assert err.value.code == 401 and "Basic" in err.value.headers["WWW-Authenticate"]
            with pytest.raises(urllib.error.HTTPError):
                get(server.url + path, auth=("admin", "wrong"))
            assert get(server.url + path, auth=("admin", "s3cret"))[0] == 200
    finally:
        server.stop()


BASE = {"cameras": [{"name": "entrance", "source": "0"}], "detector": {"model": "x.tflite"},
        "classifier": {"model": "y.tflite"}}


def test_listen_rules_in_config(tmp_path, monkeypatch):
    cfg = parse_config(BASE)
    assert not cfg.service.web.enabled and not cfg.service.metrics.enabled and not cfg.mqtt.discovery.enabled
    assert cfg.service.web.address == ("127.0.0.1", 8080) and cfg.service.metrics.address == ("127.0.0.1", 9464)
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "service": {"web": {"enabled": True, "listen": "0.0.0.0:8080"}}}, "store.yaml")
    line = str(err.value)
    assert "\n" not in line and line.startswith("store.yaml: service.web") and "password" in line
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "service": {"metrics": {"listen": "9464"}}}, "store.yaml")
    assert str(err.value).startswith("store.yaml: service.metrics.listen")
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "service": {"web": {"passwd": "x"}}}, "store.yaml")
    assert "service.web.passwd: unknown key" in str(err.value)
    ok = parse_config({**BASE, "service": {"web": {"enabled": True, "listen": "0.0.0.0:8080",
                                                   "password_env": "FE_WEB_PW"}}})
    monkeypatch.delenv("FE_WEB_PW", raising=False)
    with pytest.raises(ConfigError) as err:
        web_password(ok.service.web)
    assert "service.web.password_env" in str(err.value)
    monkeypatch.setenv("FE_WEB_PW", "pw")
    assert web_password(ok.service.web) == "pw"
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    from_file = parse_config({**BASE, "service": {"web": {"enabled": True, "listen": "[::]:8080",
                                                          "password_file": str(pw)}}})
    assert web_password(from_file.service.web) == "from-file"
    loop6 = parse_config({**BASE, "service": {"web": {"enabled": True, "listen": "[::1]:8080"}}})
    assert web_password(loop6.service.web) is None


# ------------------------------------------------------------------------------ limits (issue 22, 6)


def test_analytics_day_out_of_range_is_400_not_500(tmp_path, frame, caplog):
    db, _ = day_db(tmp_path)
    server = WebServer(make_state(tmp_path, frame, db), "127.0.0.1", 0).start()
    try:
        for day in ("9999-12-31", "0001-01-01", "1969-12-31"):
            with pytest.raises(urllib.error.HTTPError) as err:  # before: 500 and a traceback for 9999-12-31
                get(server.url + f"api/analytics?camera=entrance&day={day}")
            assert err.value.code == 400, day
            assert "day must be between" in json.loads(err.value.read())["error"]
        assert get(server.url + "api/analytics?camera=entrance&day=2000-02-29")[0] == 200
    finally:
        server.stop()
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_idle_connections_time_out_and_are_capped(tmp_path, frame):
    """200 idle connections each held a thread before any auth; now at most max_connections are
    served at once (the rest get 503 at once) and an idle one is closed after the timeout."""
    import socket
    import threading

    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0, request_timeout_s=3.0,
                       max_connections=8).start()
    idle = []
    try:
        threads_before = threading.active_count()
        for _ in range(60):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.5)
        assert threading.active_count() - threads_before <= 8, threading.active_count() - threads_before
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as err:  # full: refused at once, not queued
            get(server.url + "api/state")
        assert err.value.code == 503 and time.monotonic() - started < 2
        time.sleep(3.5)  # the idle ones time out and free their slots
        assert get(server.url + "api/state")[0] == 200
        for sock in idle:  # every idle connection was closed by the server (503 or the timeout)
            sock.settimeout(2)
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except OSError:
                pass
            assert data == b"" or data.startswith(b"HTTP/1.1 503"), data[:80]
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_wrong_passwords_are_answered_slower_and_slower(tmp_path, frame):
    server = WebServer(make_state(tmp_path, frame), "127.0.0.1", 0, username="admin", password="s3cret").start()
    try:
        times = []
        for _ in range(4):
            started = time.monotonic()
            with pytest.raises(urllib.error.HTTPError) as err:
                get(server.url + "api/state", auth=("admin", "guess"))
            assert err.value.code == 401
            times.append(time.monotonic() - started)
        assert times[0] >= 0.2 and times[3] >= 1.8 and times[3] > times[1], times  # 0.25, 0.5, 1, 2 s
        started = time.monotonic()
        assert get(server.url + "api/state", auth=("admin", "s3cret"))[0] == 200  # the right one: at once
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError):
            get(server.url + "api/state", auth=("admin", "guess"))
        assert time.monotonic() - started < 1.0  # a success forgets the failures
        with pytest.raises(urllib.error.HTTPError) as err:  # no credentials at all: no delay
            get(server.url + "api/state")
        assert err.value.code == 401
    finally:
        server.stop()


def test_analytics_of_this_site_only_in_the_store_time_zone(tmp_path, frame):
    """Two configs sharing a state folder: the page shows its own site's windows. Days and times are
    in service.time_zone (24 h on the page), and the camera's clock is said."""
    from zoneinfo import ZoneInfo

    db = tmp_path / "analytics.sqlite"
    tokyo = ZoneInfo("Asia/Tokyo")
    day = datetime.now(tokyo).date()
    # 00:30 in Tokyo is the previous day in UTC: counted on Tokyo's day
    t = datetime.combine(day, datetime.min.time(), tzinfo=tokyo).timestamp() + 1800
    for site, people in (("store-042", 1), ("store-043", 3)):
        analytics = Analytics(db, site=site, camera="entrance", window_s=60, min_dwell_s=0.5)
        for tid in range(people):
            analytics.record(CustomerSeen(tid, t + 1))
            analytics.record(CustomerSeen(tid, t + 20))
            analytics.record(CustomerEnded(tid, t + 20))
        analytics.flush(t + 130)
        analytics.close()
    state = make_state(tmp_path, frame, db)
    state.time_zone, state.clocks = "Asia/Tokyo", {"entrance": "video"}
    server = WebServer(state, "127.0.0.1", 0).start()
    try:
        data = json.loads(get(server.url + "api/analytics?camera=entrance")[2])
        assert data["day"] == day.isoformat() and data["time_zone"] == "Asia/Tokyo" and data["clock"] == "video"
        assert {w["site"] for w in data["windows"]} == {"store-042"}
        assert sum(w["customers"] for w in data["windows"]) == 1  # not store-043's 3
        other_day = datetime.fromtimestamp(t, ZoneInfo("UTC")).date()
        if other_day != day:  # in UTC the visit is on another day
            utc = read_day_windows(db, "entrance", day, "store-042", ZoneInfo("UTC"))
            assert sum(w["customers"] for w in utc) == 0
        page_state = json.loads(get(server.url + "api/state")[2])
        assert page_state["time_zone"] == "Asia/Tokyo" and page_state["cameras"][0]["clock"] == "video"
        html = get(server.url)[2].decode()
        assert 'hourCycle: "h23"' in html  # 24 h like the CLI, not "05:19 PM"
    finally:
        server.stop()


def test_time_zone_in_config():
    base = {"cameras": [{"name": "c", "source": "0"}], "detector": {"model": "x"}, "classifier": {"model": "y"}}
    assert parse_config({**base, "service": {"time_zone": "Europe/Berlin"}}).service.time_zone == "Europe/Berlin"
    with pytest.raises(ConfigError, match="service.time_zone: 'Mars/Olympus' is no IANA time zone name"):
        parse_config({**base, "service": {"time_zone": "Mars/Olympus"}})


@pytest.mark.parametrize("box", [[300, 0, 330, 60], [-20, -10, 40, 60], [310, 200, 330, 250]])
def test_id_tag_stays_inside_the_frame(frame, box):
    """A customer at the frame's edge (or partly outside it) keeps its whole #id tag readable."""
    from edge.web.server import annotate

    out = annotate(frame, [{"id": 1234, "box": box, "garments": []}], [])
    (w, h), _ = cv2.getTextSize("#1234", cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    tag = np.all(out == 0, axis=2)  # the tag's black background
    columns = np.flatnonzero(tag.any(axis=0))
    rows = np.flatnonzero(tag.any(axis=1))
    assert columns.size >= w + 4, (columns.size, w)  # the whole text width, not cut at the edge
    assert rows.size >= h + 4

"""Issue 23: events on the web page, in `fashion-edge report` and in the Prometheus metrics - the
list newest first, a picture only with the page's credentials, a false-alert mark set and cleared by
a same-origin JSON POST (a cross-site one refused), and the marks counted per rule everywhere.
A real EventStore with real JPEGs, the real HTTP server, the real CLI, a real scrape, and the page
in a real headless chromium."""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analytics import Analytics
from edge.config import parse_config
from edge.events import EventStore, Retention
from edge.metrics import Metrics, metrics_snapshot
from edge.web import WebServer, WebState

REPO = Path(__file__).resolve().parents[1]
AUTH = ("admin", "s3cret-pass")
SITE = "store-042"


def request(url: str, auth=None, data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of a real HTTP request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def mark(server, alert_id: str, value: bool, auth=AUTH, **headers):
    origin = server.url.rstrip("/")
    sent = {"Content-Type": "application/json", "Origin": origin, **headers}
    return request(f"{server.url}api/events/{alert_id}/false", auth, json.dumps({"false_alert": value}).encode(),
                   {k: v for k, v in sent.items() if v is not None})


@pytest.fixture
def events(tmp_path, shared_dir):
    """Three dress alerts (two with a picture of a real person crop) and one suit alert of today."""
    image = cv2.imread(str(shared_dir / "media" / "zidane.jpg"))
    store = EventStore(tmp_path, SITE, Retention(), snapshots_enabled=True)
    now = time.time()
    for n, (rule, box) in enumerate((("dress", (50, 60, 300, 700)), ("dress", (700, 100, 1100, 700)),
                                     ("dress", None), ("suit", None))):
        jpeg = None
        if box:
            x1, y1, x2, y2 = box
            jpeg = cv2.imencode(".jpg", image[y1:y2, x1:x2])[1].tobytes()
        store.record(f"ev-{n}", "entrance", 10 + n, rule, now - 60 + n, "consensus", [(rule, 0.9)], jpeg)
    yield store
    store.close()


def serve(tmp_path, events, password=AUTH[1]) -> WebServer:
    state = WebState(site=SITE, cameras=["entrance"], analytics_db=tmp_path / "analytics.sqlite", events=events)
    return WebServer(state, "127.0.0.1", 0, username=AUTH[0], password=password).start()


def test_events_listed_newest_first_with_pictures_behind_the_password(tmp_path, events):
    server = serve(tmp_path, events)
    try:
        status, _, body = request(f"{server.url}api/events?limit=3", AUTH)
        page = json.loads(body)
        assert status == 200 and [e["id"] for e in page["events"]] == ["ev-3", "ev-2", "ev-1"] and page["more"]
        assert [e["snapshot"] for e in page["events"]] == [False, False, True]
        older = json.loads(request(f"{server.url}api/events?limit=3&before={page['events'][-1]['time']}", AUTH)[2])
        assert [e["id"] for e in older["events"]] == ["ev-0"] and not older["more"]
        # the picture: 401 without credentials or with a wrong password, the stored JPEG with them
        assert request(f"{server.url}events/ev-1.jpg")[0] == 401
        assert request(f"{server.url}events/ev-1.jpg", (AUTH[0], "wrong"))[0] == 401
        assert request(f"{server.url}api/events")[0] == 401
        status, headers, jpeg = request(f"{server.url}events/ev-1.jpg", AUTH)
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert jpeg == events.snapshot_path("ev-1").read_bytes()
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (600, 400)
        assert request(f"{server.url}events/ev-2.jpg", AUTH)[0] == 404  # an event without a picture
        assert request(f"{server.url}events/..%2Fevents.jpg", AUTH)[0] == 404
        assert request(f"{server.url}api/events?limit=9999", AUTH)[0] == 400
    finally:
        server.stop()


def test_false_alert_mark_and_undo_by_a_same_origin_json_post_only(tmp_path, events):
    server = serve(tmp_path, events)
    try:
        assert mark(server, "ev-1", True, auth=None)[0] == 401  # the page's password guards the mark too
        # a cross-site page: a form post (no JSON type), another Origin, a cross-site fetch
        form = request(f"{server.url}api/events/ev-1/false", AUTH, b"false_alert=true",
                       {"Content-Type": "application/x-www-form-urlencoded"})
        assert form[0] == 415
        assert mark(server, "ev-1", True, Origin="https://evil.example")[0] == 403
        assert mark(server, "ev-1", True, **{"Sec-Fetch-Site": "cross-site"})[0] == 403
        assert not events.get("ev-1")["false_alert"]  # none of them changed anything
        status, _, body = mark(server, "ev-1", True)
        assert status == 200 and json.loads(body)["false_alert"] is True and events.get("ev-1")["false_alert"]
        assert mark(server, "ev-2", True, Origin=None)[0] == 200  # a script without Origin (curl): JSON still needed
        rules = json.loads(request(f"{server.url}api/analytics?camera=entrance", AUTH)[2])["rules"]
        assert rules == [{"rule": "dress", "alerts": 3, "false": 2}, {"rule": "suit", "alerts": 1, "false": 0}]
        assert mark(server, "ev-2", False)[0] == 200  # undo
        rules = json.loads(request(f"{server.url}api/analytics?camera=entrance", AUTH)[2])["rules"]
        assert rules[0] == {"rule": "dress", "alerts": 3, "false": 1}
        assert mark(server, "no-such-event", True)[0] == 404
        bad = request(f"{server.url}api/events/ev-1/false", AUTH, b'{"false_alert": "yes"}',
                      {"Content-Type": "application/json"})
        assert bad[0] == 400 and events.get("ev-1")["false_alert"]
    finally:
        server.stop()


def test_report_and_metrics_count_the_marks_per_rule(tmp_path, events):
    events.mark_false("ev-0")
    events.mark_false("ev-2")
    Analytics(tmp_path / "analytics.sqlite", site=SITE, camera="entrance").close()  # no window yet
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "edge", "report", "--db", str(tmp_path / "analytics.sqlite"),
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule") and "marked false" in line)
    assert lines[header + 2].split() == ["dress", "3", "2", "67%"], result.stdout
    assert lines[header + 3].split() == ["suit", "1", "0", "0%"], result.stdout
    with open(out / "rules.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"rule": "dress", "alerts": "3", "marked_false": "2", "false_share": "0.6667"},
                    {"rule": "suit", "alerts": "1", "marked_false": "0", "false_share": "0.0"}]

    config = parse_config({"site": SITE, "cameras": [{"name": "entrance", "source": "0"}],
                           "detector": {"model": "x.tflite"}, "classifier": {"model": "y.tflite"},
                           "rules": [{"name": "dress", "when": ["dress"]}, {"name": "suit", "when": ["suit"]},
                                     {"name": "hat", "when": ["hat"]}]})
    status = {"cameras": {"entrance": {"status": {}, "frames": 0, "source_stats": {}}}, "mqtt": {}}
    from test_metrics import scrape

    metrics = Metrics(lambda: metrics_snapshot(status, config, events=events))
    port = metrics.start("127.0.0.1", 0)
    try:
        m = scrape(port)
    finally:
        metrics.stop()
    marked = m["fashion_edge_alerts_marked_false"]
    assert marked[(("camera", "entrance"), ("rule", "dress"))] == 2
    assert marked[(("camera", "entrance"), ("rule", "suit"))] == 0
    assert marked[(("camera", "entrance"), ("rule", "hat"))] == 0  # every rule from 0
    assert m["fashion_edge_events_stored"][(("camera", "entrance"), ("rule", "dress"))] == 3


def test_event_list_in_a_headless_browser(tmp_path, events):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from test_integrations_daemon import _browser

    server = serve(tmp_path, events, password=None)  # loopback without a password (basic auth: HTTP tests above)
    driver = _browser()
    try:
        driver.get(server.url)
        wait = WebDriverWait(driver, 20, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#events tbody tr")) == 4)
        ids = [tr.get_attribute("data-event") for tr in driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")]
        assert ids == ["ev-3", "ev-2", "ev-1", "ev-0"]  # newest first
        thumbs = driver.find_elements(By.CSS_SELECTOR, "#events img.thumb")
        assert len(thumbs) == 2
        wait.until(lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", t)
                                 for t in thumbs))  # the pictures loaded and decoded in the browser

        def row(alert_id):
            return driver.find_element(By.CSS_SELECTOR, f'#events tr[data-event="{alert_id}"]')

        row("ev-1").find_element(By.CSS_SELECTOR, "button.mark-false").click()
        wait.until(lambda d: "false-alert" in row("ev-1").get_attribute("class"))
        assert events.get("ev-1")["false_alert"]
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#rule-counts tr[data-rule="dress"] td.false').text == "1")
        row("ev-1").find_element(By.CSS_SELECTOR, "button.mark-false").click()  # undo
        wait.until(lambda d: "false-alert" not in row("ev-1").get_attribute("class"))
        assert not events.get("ev-1")["false_alert"]
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe  # no CSP violation, no failed picture, no script error
        if os.environ.get("FASHION_EDGE_SCREENSHOT_EVENTS"):
            driver.save_screenshot(os.environ["FASHION_EDGE_SCREENSHOT_EVENTS"])
    finally:
        driver.quit()
        server.stop()


def test_report_counts_only_its_own_site_in_a_shared_state_folder(tmp_path, events):
    """Two configs sharing one state folder: `report --config` counts only its own site's events."""
    import yaml

    events.mark_false("ev-1")
    other = EventStore(tmp_path, "other-site", Retention(), snapshots_enabled=False)
    for n in range(5):
        other.record(f"other-{n}", "entrance", n, "dress", time.time(), "consensus", [("dress", 0.9)])
        other.mark_false(f"other-{n}")
    other.close()
    Analytics(tmp_path / "analytics.sqlite", site=SITE, camera="entrance").close()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "site": SITE, "cameras": [{"name": "entrance", "source": "0"}],
        "detector": {"model": "x.tflite"}, "classifier": {"model": "y.tflite"},
        "rules": [{"name": "dress", "when": ["dress"]}, {"name": "suit", "when": ["suit"]}],
        "service": {"state_dir": str(tmp_path)}}))
    result = subprocess.run([sys.executable, "-m", "edge", "report", "--config", str(config)], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
            if line.split()[:1] in (["dress"], ["suit"])}
    assert rows == {"dress": ["3", "1", "33%"], "suit": ["1", "0", "0%"]}, result.stdout
    assert "the last 90 days (events.retention_days)" in result.stdout
    assert (tmp_path / "report" / "rules.csv").is_file()  # default: report/ in the state folder

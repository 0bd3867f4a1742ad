"""The daemon on the real clip with every integration on: Prometheus scrape, Home Assistant
discovery on a real mosquitto, and the web page in a real headless browser (Debian's chromium
driven by selenium through chromedriver; scripts/install-dev.sh installs both).

One daemon (``--loop``) serves the whole module; it is stopped with SIGTERM at the end.
Set FASHION_EDGE_NO_BROWSER=1 to skip the browser part on a machine without chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import Mosquitto, free_port, wait_for_port
from test_ha_discovery import retained_now
from test_metrics import scrape

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)


def write_config(tmp: Path, shared: Path, web_port: int, metrics_port: int) -> Path:
    from conftest import demo_config_data

    base = demo_config_data(shared)
    base["analytics"] = {"window_s": 2, "min_dwell_s": 0.5}  # windows close every 20 frames of the clip
    base["rules"][0]["zones"] = [[[0, 200], [768, 200], [768, 432], [0, 432]]]
    base["mqtt"] = {"discovery": {"enabled": True}}
    base["service"] = {"state_dir": str(tmp / "state"),
                       "metrics": {"enabled": True, "listen": f"127.0.0.1:{metrics_port}"},
                       "web": {"enabled": True, "listen": f"127.0.0.1:{web_port}", "frame_interval_s": 0.2}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, shared_dir):
    tmp = tmp_path_factory.mktemp("integrations")
    broker = Mosquitto(tmp).start()
    web_port, metrics_port = free_port(), free_port()
    config = write_config(tmp, shared_dir, web_port, metrics_port)
    log = open(tmp / "daemon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config), "--mqtt-host", "127.0.0.1",
                             "--mqtt-port", str(broker.port), "--loop"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        wait_for_port(web_port, 60)
        wait_for_port(metrics_port, 10)
        yield {"proc": proc, "broker": broker, "web": f"http://127.0.0.1:{web_port}/", "metrics": metrics_port,
               "tmp": tmp}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        broker.stop()
    assert proc.returncode == 0, (tmp / "daemon.log").read_text()[-3000:]


def test_prometheus_scrape_of_the_running_daemon(daemon):
    deadline = time.monotonic() + 30
    while True:
        m = scrape(daemon["metrics"])
        frames = m.get("fashion_edge_frames_processed_total", {}).get((("camera", "entrance"),), 0)
        detect_count = m.get("fashion_edge_stage_seconds_count", {}).get((("stage", "detect"),), 0)
        # the frame counter and the stage histogram are updated one after the other: wait for both
        if (frames >= 20 and detect_count >= 20) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert frames >= 20
    assert m["fashion_edge_mqtt_connected"][()] == 1
    assert m["fashion_edge_stage_seconds_count"][(("stage", "detect"),)] >= 20
    assert m["fashion_edge_camera_state"][(("camera", "entrance"), ("state", "streaming"))] == 1
    assert (("camera", "entrance"), ("rule", "dress")) in m["fashion_edge_alerts_total"]
    assert m["fashion_edge_outbox_depth"][()] >= 0


def _node(daemon) -> str:
    from edge.config import load_config
    from edge.mqtt.discovery import node_id

    return node_id(load_config(daemon["tmp"] / "config.yaml"))


def test_discovery_configs_are_retained_on_the_broker(daemon):
    from edge.config import load_config
    from edge.mqtt.discovery import availability_topic

    held = retained_now(daemon["broker"].port)
    topics = set(held)
    node = _node(daemon)
    assert node.startswith("fashion_edge_demo_store_")
    assert f"homeassistant/sensor/{node}/entrance_customers/config" in topics
    assert f"homeassistant/sensor/{node}/entrance_status/config" in topics
    assert {f"homeassistant/event/{node}/entrance_{r}_alert/config" for r in ("dress", "suit", "outwear")} <= topics
    customers = json.loads(held[f"homeassistant/sensor/{node}/entrance_customers/config"])
    available = availability_topic(load_config(daemon["tmp"] / "config.yaml"))
    assert available.startswith("fashion-edge/demo-store/availability/devices/demo-store-")
    assert customers["availability"][0]["topic"] == available
    assert retained_now(daemon["broker"].port, topic=available) == {available: b"online"}
    assert customers["device"]["configuration_url"] == daemon["web"]  # the web page is on
    assert customers["state_topic"] == "fashion-edge/demo-store/cameras/entrance/counts"


def test_a_second_daemon_with_the_same_client_id_is_refused(daemon):
    """A copy of the config (own state dir, same site and host: the same default client id) exits 2
    with one line before its publisher connects; the first daemon keeps its MQTT session."""
    config = yaml.safe_load((daemon["tmp"] / "config.yaml").read_text())
    config["service"] = {"state_dir": str(daemon["tmp"] / "state-2")}
    copy = daemon["tmp"] / "copy.yaml"
    copy.write_text(yaml.safe_dump(config))
    second = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(copy), "--mqtt-host", "127.0.0.1",
                             "--mqtt-port", str(daemon["broker"].port), "--loop"], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert second.returncode == 2, second.stderr[-2000:]
    line = [ln for ln in second.stderr.splitlines() if "mqtt.client_id" in ln]
    assert line and "is in use by a running fashion-edge" in line[0], second.stderr[-2000:]
    assert daemon["proc"].poll() is None
    assert scrape(daemon["metrics"])["fashion_edge_mqtt_connected"][()] == 1


def _browser():
    if os.environ.get("FASHION_EDGE_NO_BROWSER"):
        pytest.skip("FASHION_EDGE_NO_BROWSER is set")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromedriver are needed (apt-get install chromium chromium-driver; "
                    "scripts/install-dev.sh does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def test_page_in_a_headless_browser(daemon, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    try:
        driver.get(daemon["web"])
        from selenium.common.exceptions import StaleElementReferenceException

        # the page re-renders its status table on every poll: an element found a moment ago can go stale
        wait = WebDriverWait(driver, 30, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
        canvas = wait.until(lambda d: d.find_element(By.ID, "live-entrance"))
        # the live image updates: several different frames arrive
        wait.until(lambda d: int(canvas.get_attribute("data-updates") or 0) >= 3)
        first = int(canvas.get_attribute("data-frame-index"))
        wait.until(lambda d: int(canvas.get_attribute("data-frame-index")) != first)
        assert driver.execute_script("return arguments[0].width", canvas) == 768  # the frame's own size
        # status and MQTT state come from the daemon
        wait.until(lambda d: d.find_element(By.ID, "mqtt-state").text == "connected")
        wait.until(lambda d: "streaming" in d.find_element(By.CSS_SELECTOR, "#status td.cam-state").text)
        # the day's charts render from analytics.sqlite (2 s windows: several by now)
        chart = driver.find_element(By.ID, "chart-customers")
        wait.until(lambda d: int(chart.get_attribute("data-rendered") or 0) >= 1)
        assert int(driver.find_element(By.ID, "chart-shares").get_attribute("data-rendered")) >= 1
        drawn = driver.execute_script(
            "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;", chart)
        assert drawn > 500, "the customers chart drew nothing"
        # times in the store's zone, 24 h, and the clip's clock said
        note = driver.find_element(By.ID, "chart-note").text
        assert "(24 h)" in note and "a video file: windows on the run's start + the video's time" in note, note
        assert note.startswith("demo-store, ")
        # read in one script: the table is re-rendered as alerts arrive (a row found, then read, may be gone)
        times = driver.execute_script("return Array.from(document.querySelectorAll("
                                      "'#alerts tbody tr td:first-child'), td => td.innerText.trim());")
        assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in times), times  # no AM/PM

        # zone drawing: three real clicks at known offsets -> the YAML names those frame pixels
        rect = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                     "return [r.width, r.height];", canvas)
        scale_x, scale_y = 768 / rect[0], 432 / rect[1]
        offsets = [(-rect[0] * 0.3, rect[1] * 0.1), (rect[0] * 0.3, rect[1] * 0.1), (rect[0] * 0.3, rect[1] * 0.4)]
        for dx, dy in offsets:
            ActionChains(driver).move_to_element_with_offset(canvas, int(dx), int(dy)).click().perform()
        name_box = driver.find_element(By.ID, "zone-name-entrance")
        name_box.clear()
        name_box.send_keys("rail")
        yaml_text = driver.find_element(By.ID, "zone-yaml-entrance").text
        parsed = yaml.safe_load(yaml_text)
        assert list(parsed["zones"]) == ["rail"] and parsed["zones"]["rail"]["units"] == "pixels"
        assert "entrances: [rail]" in yaml_text  # how to mark it as a door mid-view (identity stage)
        assert "not_people: [rail]" in yaml_text  # how to mark mannequins or a mirror
        assert "staff_only: [rail]" in yaml_text  # how to mark where only staff stand
        polygon = parsed["zones"]["rail"]["points"]
        assert len(polygon) == 3
        for (x, y), (dx, dy) in zip(polygon, offsets):
            assert abs(x - (rect[0] / 2 + int(dx)) * scale_x) <= 3 and abs(y - (rect[1] / 2 + int(dy)) * scale_y) <= 3
        # the YAML is a camera's named zones (the config accepts it, checked against the frame size),
        # and a rule names it
        from edge.config import parse_config

        config = yaml.safe_load((daemon["tmp"] / "config.yaml").read_text())
        config["cameras"][0].update(zones=parsed["zones"], frame_size=[768, 432])
        config["rules"][0]["zones"] = ["rail"]
        assert parse_config(config).rules[0].zone_polygons("entrance") == [[tuple(map(float, p)) for p in polygon]]

        shot = tmp_path / "web-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("FASHION_EDGE_SCREENSHOT"):
            shutil.copy(shot, os.environ["FASHION_EDGE_SCREENSHOT"])
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe  # no CSP violation, no failed asset, no script error
    finally:
        driver.quit()


def test_a_busy_web_port_is_one_line_and_exit_2(daemon, shared_dir):
    tmp = daemon["tmp"] / "second"
    tmp.mkdir()
    web_port = int(daemon["web"].rsplit(":", 1)[1].strip("/"))
    config = write_config(tmp, shared_dir, web_port, free_port())
    data = yaml.safe_load(config.read_text())
    data["site"] = "other-store"  # another client id: the first daemon keeps its MQTT session
    data["service"]["metrics"]["enabled"] = False
    data["mqtt"]["discovery"]["enabled"] = False
    config.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(config), "--mqtt-host", "127.0.0.1",
                           "--mqtt-port", str(daemon["broker"].port), "--max-frames", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "service.web.listen" in line]
    assert len(errors) == 1 and f"127.0.0.1:{web_port}" in errors[0], proc.stderr[-2000:]
    urllib.request.urlopen(daemon["web"] + "api/state", timeout=5).read()  # the first daemon still serves

"""The chain view (issue 24): ``fashion-edge collect`` with ``web:`` serves the stores' figures from its
PostgreSQL (a real one, tests/chain_pg.py) beside a real mosquitto. The database is seeded through the
collector's own write path with real analytics summaries of two stores and real alert payloads; the
page and its JSON must show the chain report's figures (``fashion-edge report --db`` CSV) for a period;
basic auth and the Host check are the store page's."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chain_pg import DRESS, PASSWORD, Postgres, pg_bin_dir, seed_two_stores, wait_until
from conftest import free_port, wait_for_port
from edge.chain.report import chain_figures, chain_total
from edge.chain.web import ChainView, start_chain_view

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'fashion-edge[chain]')")
if pg_bin_dir() is None:
    pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed: apt-get install postgresql",
                allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
DAY = datetime(2027, 3, 1, tzinfo=timezone.utc).timestamp()  # 00:00 UTC
PERIOD = {"since": "2027-03-01", "until": "2027-03-02"}
WEB_PASSWORD = "chain-view-pw"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain-web")
    server = Postgres().start()
    dsn = server.create_db("chain_web")
    # store-c: one customer two hours ago (the default period: the last days up to today)
    seed_two_stores(dsn, PASSWORD, DAY, tmp,
                    more_windows=[("store-c", "door", time.time() - 3 * 3600, [(0, 15, DRESS, {"dress"})])])
    yield server, dsn, tmp
    server.cleanup()


def get(url: str, auth: tuple[str, str] | None = None, host: str | None = None):
    """(status, headers, body) of a GET; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def report_csv(dsn: str, out: Path) -> dict[str, dict]:
    """``fashion-edge report --db`` for the period: its CSV rows by site."""
    result = subprocess.run([sys.executable, "-m", "edge", "report", "--db", dsn, "--since", PERIOD["since"],
                             "--until", PERIOD["until"], "--out", str(out)], cwd=REPO,
                            env={**os.environ, "PGPASSWORD": PASSWORD, "MPLBACKEND": "Agg"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(out / "chain_stores.csv") as f:
        return {row["site"]: row for row in csv.DictReader(f)}


def html_rows(page: str) -> dict[str, dict[str, str]]:
    """The page's table: site -> {figure: cell text}."""
    rows = {}
    for site, cells in re.findall(r'<tr class="(?:store|all)" data-site="([^"]+)">(.*?)</tr>', page):
        rows[site] = {name: re.sub(r"<[^>]+>", "", text) for name, text in
                      re.findall(r'<td data-figure="([^"]+)">(.*?)</td>', cells)}
    return rows


@pytest.fixture
def collector_with_view(seeded, mosquitto, tmp_path):
    """``fashion-edge collect`` as a process, its chain view on a free loopback port behind a password."""
    _, dsn, _ = seeded
    port = free_port()
    hq_yaml = tmp_path / "hq.yaml"
    hq_yaml.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, client_id: collector-web}}\n"
        f"database: {{dsn: '{dsn}', password_env: HQ_DB_PW}}\n"
        f"web: {{enabled: true, listen: '127.0.0.1:{port}', username: hq, password_env: HQ_WEB_PW}}\n")
    env = {**os.environ, "HQ_DB_PW": PASSWORD, "HQ_WEB_PW": WEB_PASSWORD, "PYTHONPATH": str(REPO)}
    log = tmp_path / "collector.log"
    process = subprocess.Popen([sys.executable, "-m", "edge", "collect", "--config", str(hq_yaml)], cwd=REPO,
                               env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30)
        assert wait_until(lambda: "MQTT connected" in log.read_text(errors="replace") or process.poll() is not None,
                          30), log.read_text()
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_view_shows_the_chain_report_figures(seeded, collector_with_view, tmp_path):
    server, dsn, _ = seeded
    url, process, log = collector_with_view
    query = f"since={PERIOD['since']}&until={PERIOD['until']}"
    status, headers, body = get(f"{url}/api/chain?{query}", auth=("hq", WEB_PASSWORD))
    assert status == 200, body
    data = json.loads(body)
    assert (data["since"], data["until"]) == ("2027-03-01", "2027-03-02")
    stores = {s["site"]: s for s in data["stores"]}
    assert list(stores) == ["store-a", "store-b"]  # store-c's customer is outside the period

    # the report's own functions on the same database: one definition of each figure
    start, end = (datetime.fromisoformat(PERIOD[k]).replace(tzinfo=timezone.utc) for k in ("since", "until"))
    with psycopg.connect(dsn, password=PASSWORD) as conn:
        expected = chain_figures(conn, start, end)
    assert data["stores"] == [s.as_dict() for s in expected.values()]
    assert data["chain"] == chain_total(expected).as_dict()

    # and the figures a person checks, against the CLI's CSV (fashion-edge report --db)
    csv_rows = report_csv(server.dsn("chain_web", password=None), tmp_path / "report")
    for site, figures in [*stores.items(), ("ALL", data["chain"])]:
        row = csv_rows[site]
        assert str(figures["customers"]) == row["customers"], site
        assert str(figures["dress_customers"]) == row["dress_customers"], site
        assert str(figures["suit_customers"]) == row["suit_customers"], site
        assert figures["dress_share"] == pytest.approx(float(row["dress_share"]), abs=1e-4), site
        assert figures["suit_share"] == pytest.approx(float(row["suit_share"]), abs=1e-4), site
        assert str(figures["alerts"]) == row["alerts"], site
        for rule, n in figures["alerts_per_rule"].items():
            assert str(n) == row[f"alerts_{rule}"], (site, rule)
    a, b, chain = stores["store-a"], stores["store-b"], data["chain"]
    assert (a["customers"], a["dress_share"], a["suit_share"]) == (4, 0.5, 0.25)
    assert a["alerts_per_rule"] == {"dress": 2, "suit": 1} and b["alerts_per_rule"] == {"suit": 1}
    assert (b["customers"], b["cameras"], b["suit_share"], b["dress_share"]) == (2, 2, 0.5, 0.0)
    assert (chain["customers"], chain["alerts"]) == (6, 4)

    # the page: the same figures in its table
    status, headers, body = get(f"{url}/?{query}", auth=("hq", WEB_PASSWORD))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    page = body.decode()
    rows = html_rows(page)
    assert list(rows) == ["store-a", "store-b", "ALL"]
    for site, figures in [*stores.items(), ("ALL", chain)]:
        assert rows[site]["customers"] == str(figures["customers"]), (site, rows[site])
        assert rows[site]["dress_share"] == f"{100 * figures['dress_share']:.1f} %", site
        assert rows[site]["suit_share"] == f"{100 * figures['suit_share']:.1f} %", site
        assert rows[site]["alerts"] == str(figures["alerts"]), site
        assert rows[site]["alerts_dress"] == str(figures["alerts_per_rule"].get("dress", 0)), site
        assert rows[site]["alerts_suit"] == str(figures["alerts_per_rule"].get("suit", 0)), site
    assert "since=2027-02-28&amp;until=2027-03-01" in page  # the day before, one click away

    # default period: the last 7 days up to today (store-c only)
    status, _, body = get(f"{url}/api/chain", auth=("hq", WEB_PASSWORD))
    assert status == 200
    default = json.loads(body)
    assert [s["site"] for s in default["stores"]] == ["store-c"]
    assert default["stores"][0]["customers"] == 1 and default["stores"][0]["dress_share"] == 1.0
    today = datetime.now(timezone.utc).date()
    assert (datetime.fromisoformat(default["until"]).date() - today).days == 1
    assert (datetime.fromisoformat(default["until"]) - datetime.fromisoformat(default["since"])).days == 7

    # auth configured: no password, a wrong one, the wrong user: refused, nothing of the figures shown
    for auth in (None, ("hq", "wrong"), ("admin", WEB_PASSWORD)):
        for path in ("/", f"/api/chain?{query}"):
            status, headers, body = get(url + path, auth=auth)
            assert status == 401 and "Basic" in headers["WWW-Authenticate"], (auth, path, status)
            assert b"store-a" not in body
    # the collector did its own work all along, and ends on SIGTERM with the view
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0, log.read_text()
    assert "chain view on http://127.0.0.1:" in log.read_text()


def test_without_a_password_loopback_names_only_and_bad_queries_are_400(seeded):
    _, dsn, _ = seeded
    view = start_chain_view(ChainView(dsn, PASSWORD), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{view.port}"
        status, _, body = get(f"{url}/api/chain?since=2027-03-01&until=2027-03-02")
        assert status == 200 and [s["site"] for s in json.loads(body)["stores"]] == ["store-a", "store-b"]
        # DNS rebinding: a name of somebody's that resolves to 127.0.0.1 is not served
        status, _, body = get(f"{url}/api/chain", host=f"127.attacker.example:{view.port}")
        assert status == 421 and b"store" not in body
        for query, field in (("since=March", "since"), ("since=2027-03-05&until=2027-03-01", "since"),
                             ("until=0001-01-01", "until"), ("since=2027-02-30", "since")):
            status, _, body = get(f"{url}/api/chain?{query}")
            assert status == 400 and field in json.loads(body)["error"], (query, body)
        assert get(f"{url}/?since=nope")[0] == 400
        assert get(f"{url}/frame/door.jpg")[0] == 404  # the store page's routes are not here
    finally:
        view.stop()


def test_a_database_that_cannot_be_read_is_503_not_500(seeded):
    server, _, _ = seeded
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    view = start_chain_view(ChainView(dead, PASSWORD, connect_timeout_s=2), "127.0.0.1", 0)
    no_tables = start_chain_view(ChainView(server.dsn("postgres"), PASSWORD), "127.0.0.1", 0)
    try:
        for v in (view, no_tables):
            status, _, body = get(f"http://127.0.0.1:{v.port}/api/chain")
            assert status == 503 and "cannot be read" in json.loads(body)["error"], body
            assert get(f"http://127.0.0.1:{v.port}/")[0] == 503
    finally:
        view.stop()
        no_tables.stop()


def test_view_config_problems_are_one_line_and_exit_2(seeded, tmp_path):
    _, dsn, _ = seeded
    env = {**os.environ, "HQ_DB_PW": PASSWORD, "PYTHONPATH": str(REPO)}
    env.pop("HQ_WEB_PW", None)
    cases = {  # web section -> what the one line names
        "{enabled: true, listen: '0.0.0.0:8090'}": "web",  # off loopback without a password
        "{enabled: true, listen: '127.0.0.1:8090', password_env: HQ_WEB_PW}": "web.password_env",  # unset
        "{enabled: true, colour: red}": "web.colour",
    }
    for web, named in cases.items():
        hq_yaml = tmp_path / "hq.yaml"
        hq_yaml.write_text(f"mqtt: {{host: 127.0.0.1, port: {free_port()}}}\n"
                           f"database: {{dsn: '{dsn}', password_env: HQ_DB_PW}}\nweb: {web}\n")
        result = subprocess.run([sys.executable, "-m", "edge", "collect", "--config", str(hq_yaml)], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=60)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and named in lines[0], (web, result.stderr)
        assert "hq.yaml" in lines[0]

"""The chain report (issue 24): ``fashion-edge report --db postgresql://...`` on a seeded head-office
database of two stores (rows written by the collector's own write path from real analytics summaries
and real alert payloads): per-store and chain-wide figures, the period, CSV and PNG charts."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chain_pg import PASSWORD, Postgres, pg_bin_dir, window_summaries
from edge.chain.store import Message, migrate, write_batch
from edge.mqtt.payloads import encode, make_alert

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'fashion-edge[chain]')")
if pg_bin_dir() is None:
    pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed: apt-get install postgresql",
                allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
DAY = datetime(2027, 3, 1, tzinfo=timezone.utc).timestamp()  # a Monday, 00:00 UTC


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain-report")
    server = Postgres().start()
    dsn = server.create_db("chain_report")
    dress, suit, pants = {"dress": 0.9}, {"blazer": 0.9, "pants": 0.8}, {"pants": 0.9, "t-shirt": 0.8}
    messages = []
    now = time.time()
    # store-a: 4 customers on day 1 (2 dresses, 1 suit, 1 pants), dwell 10/20/30/40 s
    for w in window_summaries("store-a", "door", DAY, [(0, 10, dress, {"dress"}), (100, 20, dress, {"dress"}),
                                           (1000, 30, suit, {"suit"}), (1100, 40, pants, set())], tmp):
        messages.append(Message(f"fashion-edge/store-a/cameras/door/analytics", encode(w), now))
    # store-b: 2 customers on day 1 on two cameras (1 suit), and one the day after the period
    for camera, visits in (("door", [(50, 60, suit, {"suit"})]), ("till", [(70, 120, pants, set())]),
                           ("late", [(86400 + 10, 5, dress, {"dress"})])):
        for w in window_summaries("store-b", camera, DAY, visits, tmp):
            messages.append(Message(f"fashion-edge/store-b/cameras/{camera}/analytics", encode(w), now))
    alert_time = datetime.fromtimestamp(DAY + 500, tz=timezone.utc)
    for site, rule, n in (("store-a", "dress", 2), ("store-a", "suit", 1), ("store-b", "suit", 1)):
        for i in range(n):
            payload = make_alert(site, "door", i, rule, [(rule, 0.9)], [0, 0, 10, 10], i, None, time=alert_time)
            messages.append(Message(f"fashion-edge/{site}/alerts/door/{rule}", encode(payload), now))
    with psycopg.connect(dsn, password=PASSWORD, autocommit=True) as conn:
        migrate(conn)
        result = write_batch(conn, messages, "fashion-edge")
    assert (result.alerts, result.rejected) == (4, 0)
    yield server, dsn, tmp
    server.cleanup()


def report(dsn: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "report", "--db", dsn, *map(str, args)], cwd=REPO,
                          env={**os.environ, "PGPASSWORD": PASSWORD, "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=120)


def test_chain_report_per_store_and_chain_wide(seeded, tmp_path):
    _, dsn, _ = seeded
    out = tmp_path / "report"
    result = report(dsn, "--since", "2027-03-01", "--until", "2027-03-02", "--out", out)
    assert result.returncode == 0, result.stderr
    with open(out / "chain_stores.csv") as f:
        rows = {r["site"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["store-a", "store-b", "ALL"]
    a, b, total = rows["store-a"], rows["store-b"], rows["ALL"]
    assert (a["customers"], a["dress_customers"], a["suit_customers"]) == ("4", "2", "1")
    assert float(a["dress_share"]) == 0.5 and float(a["suit_share"]) == 0.25
    assert float(a["dwell_mean_s"]) == pytest.approx(25.0)
    assert (a["garment_dress"], a["garment_blazer"], a["garment_pants"]) == ("2", "1", "2")
    assert (a["alerts_dress"], a["alerts_suit"], a["alerts"]) == ("2", "1", "3")
    # store-b: the customer of the next day is outside the period; two cameras
    assert (b["customers"], b["cameras"], b["suit_customers"], b["dress_customers"]) == ("2", "2", "1", "0")
    assert float(b["dwell_mean_s"]) == pytest.approx(90.0)
    assert (total["customers"], total["suit_customers"], total["alerts"]) == ("6", "2", "4")
    assert float(total["dwell_mean_s"]) == pytest.approx((4 * 25 + 2 * 90) / 6, abs=1e-3)
    assert float(total["suit_share"]) == pytest.approx(round(2 / 6, 4))
    for name in ("chain_customers.png", "chain_garment_mix.png", "chain_shares.png", "chain_alerts.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "store-a" in result.stdout and "ALL" in result.stdout and "50.0%" in result.stdout


def test_the_period_moves_the_figures(seeded, tmp_path):
    _, dsn, _ = seeded
    result = report(dsn, "--since", "2027-03-02", "--until", "2027-03-03", "--out", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "r" / "chain_stores.csv") as f:
        rows = {r["site"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["store-b", "ALL"] and rows["store-b"]["dress_customers"] == "1"


def test_bad_period_or_database_is_one_line(seeded, tmp_path):
    server, dsn, _ = seeded
    result = report(dsn, "--since", "2027-03-05", "--until", "2027-03-01", "--out", tmp_path / "r")
    assert result.returncode == 2 and "--since" in result.stderr and "Traceback" not in result.stderr
    result = report(dsn, "--since", "March", "--out", tmp_path / "r")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr
    result = report(server.dsn("postgres"), "--out", tmp_path / "r")  # no chain tables there
    assert result.returncode == 2 and "fashion-edge collect" in result.stderr, result.stderr


def test_the_schema_is_migrated_once(seeded):
    _, dsn, _ = seeded
    with psycopg.connect(dsn, password=PASSWORD, autocommit=True) as conn:
        assert migrate(conn) == []  # already at the latest version: nothing runs again
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,), (2,)]

"""The chain report (issue 24): ``fashion-edge report --db postgresql://...`` on a seeded head-office
database of two stores (rows written by the collector's own write path from real analytics summaries
and real alert payloads): per-store and chain-wide figures, the period, CSV and PNG charts."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chain_pg import PASSWORD, Postgres, pg_bin_dir, seed_two_stores
from edge.chain.store import migrate

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
    seed_two_stores(dsn, PASSWORD, DAY, tmp)
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

"""Load benchmark of the head office's collector (issue 24, docs/chain.md "Scale").

A real mosquitto (the head-office broker), a real PostgreSQL (fsync on: PostgreSQL's defaults) and
``fashion-edge collect`` as its own process, all on this machine. The load generator plays N stores x
4 cameras as the bridges deliver them to the head office (each store's own topics, QoS 1): one analytics
window per camera per minute (15 times the default 15-minute window: a conservative load) and alerts
at ``--alerts-per-camera-hour``. Three phases:

1. **steady**: ``--stores`` stores at their real rate for ``--steady-s`` seconds: does the collector
   keep up, and the end-to-end delay (alert ``time`` stamped when published -> row committed; p50, p95, max);
2. **burst**: ``--burst-stores`` stores come back after ``--burst-hours`` offline: their whole backlog
   waits in the collector's session (queued while the collector is stopped), then the collector is
   started and timed until every row is in: the sustained ingest rate;
3. **growth**: bytes on disk per window row and alert row (tables + indexes) -> per store per day.

Writes docs/chain-bench.json and the figures section of docs/chain.md (between the bench markers),
with the command. Run with nice: ``nice -n 10 python scripts/bench_collector.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root  # noqa: E402
sys.path.insert(0, str(repo_root() / "tests"))

from chain_pg import PASSWORD, Postgres  # noqa: E402  (the tests' PostgreSQL helper)
from conftest import Mosquitto  # noqa: E402  (the tests' mosquitto helper)
from edge.mqtt.payloads import encode, make_alert  # noqa: E402

REPO = repo_root()

CAMERAS = ("entrance", "womenswear", "menswear", "fitting-rooms")
GARMENTS = ("dress", "blazer", "pants", "t-shirt", "outwear", "skirt", "shirt", "shoes")
RULES = ("dress", "suit", "outwear")
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"


def site_name(i: int) -> str:
    return f"store-{i:05d}"


def window(site: str, camera: str, start: float, rng: random.Random) -> dict:
    """A window as the daemon publishes it (edge/analytics.py summary_from_row)."""
    customers = rng.randint(0, 12)
    garments = {g: rng.randint(0, customers) for g in rng.sample(GARMENTS, 4)}
    dress, suit = rng.randint(0, customers // 3), rng.randint(0, customers // 4)
    return {"site": site, "camera": camera, "window_start": start, "window_end": start + 60.0,
            "start": datetime.fromtimestamp(start, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tracks": customers + rng.randint(0, 3), "customers": customers, "garments": garments,
            "customers_matched": {"dress": dress, "suit": suit}, "customers_alerted": {"dress": dress},
            "rules": {"dress": dress}, "dress_share": round(dress / customers, 4) if customers else 0.0,
            "suit_share": round(suit / customers, 4) if customers else 0.0,
            "dwell_mean_s": round(rng.uniform(5, 300), 2), "dwell_p50_s": round(rng.uniform(5, 200), 2),
            "dwell_p95_s": round(rng.uniform(100, 900), 2), "open_tracks": 0, "partial": False,
            "schema_version": 2, "styles": {}}


def alert(site: str, camera: str, rng: random.Random, when: datetime | None = None) -> dict:
    rule = rng.choice(RULES)
    return make_alert(site, camera, rng.randint(1, 10**6), rule, [(rule, round(rng.uniform(0.5, 1), 3))],
                      [10, 20, 200, 400], rng.randint(0, 10**6), None, time=when)


class Load:
    """Publishers into the head-office broker, one client per ``stores_per_client`` stores (bridges)."""

    def __init__(self, port: int, clients: int):
        self.clients = []
        for i in range(clients):
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bridge-{i}")
            c.max_inflight_messages_set(1000)
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)
        self.sent = 0
        self.infos = []

    def publish(self, k: int, topic: str, payload: dict, keep: bool = False) -> None:
        info = self.clients[k % len(self.clients)].publish(topic, encode(payload), qos=1)
        self.sent += 1
        if keep:
            self.infos.append(info)

    def wait_acked(self, timeout_s: float = 600) -> None:
        for info in self.infos:
            info.wait_for_publish(timeout_s)
        self.infos.clear()

    def close(self) -> None:
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


class CollectorProcess:
    """``fashion-edge collect`` as its own process (as under systemd)."""

    def __init__(self, hq: Path, log: Path):
        self.hq, self.log, self.process = hq, log, None

    def start(self) -> float:
        """Start it; returns the monotonic time its MQTT session was up."""
        seen = self.log.read_text().count("MQTT connected") if self.log.exists() else 0
        out = open(self.log, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "edge", "collect", "--config", str(self.hq)], cwd=REPO,
                                        env={**os.environ, "BENCH_DB_PW": PASSWORD, "PYTHONPATH": str(REPO)},
                                        stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.log.read_text().count("MQTT connected") <= seen:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(self.log.read_text())
            time.sleep(0.05)
        return time.monotonic()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def rows(dsn: str, query: str, *params):
    import psycopg

    with psycopg.connect(dsn, password=PASSWORD) as conn:
        return conn.execute(query, params).fetchall()


def count(dsn: str) -> int:
    return rows(dsn, "SELECT (SELECT count(*) FROM alerts) + (SELECT count(*) FROM windows)")[0][0]


def wait_for(dsn: str, target: int, timeout_s: float, bar: tqdm | None = None, base: int = 0) -> float:
    start = time.monotonic()
    last = base
    while time.monotonic() - start < timeout_s:
        n = count(dsn)
        if bar is not None:
            bar.update(n - last)
        last = n
        if n >= target:
            return time.monotonic() - start
        time.sleep(0.2)
    raise SystemExit(f"only {last} of {target} rows after {timeout_s:.0f} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def steady(args, load: Load, dsn: str, rng: random.Random) -> dict:
    """Every store at its real rate: each camera's window once a minute, alerts at random."""
    n_cams = args.stores * len(CAMERAS)
    windows_per_s = n_cams / 60.0
    alerts_per_s = n_cams * args.alerts_per_camera_hour / 3600.0
    before = count(dsn)
    t0 = time.time()
    start_minute = 60.0 * int(t0 // 60) - 86400 * 30  # windows of another day than the burst's
    sent = 0
    cams = [(site_name(s), c) for s in range(args.stores) for c in CAMERAS]
    owed_w = owed_a = 0.0
    next_cam = 0
    minute = 0
    tick = 0.1
    with tqdm(total=int(args.steady_s / tick), desc="steady", unit="tick", leave=False) as bar:
        for _ in range(int(args.steady_s / tick)):
            due = time.monotonic() + tick
            owed_w += windows_per_s * tick
            owed_a += alerts_per_s * tick
            while owed_w >= 1:
                site, cam = cams[next_cam]
                load.publish(next_cam, f"fashion-edge/{site}/cameras/{cam}/analytics",
                             window(site, cam, start_minute + 60 * minute, rng))
                next_cam += 1
                if next_cam == len(cams):
                    next_cam, minute = 0, minute + 1
                owed_w -= 1
                sent += 1
            while owed_a >= 1:
                k = rng.randrange(len(cams))
                site, cam = cams[k]
                a = alert(site, cam, rng)  # time: now (the end-to-end delay is measured from it)
                load.publish(k, f"fashion-edge/{site}/alerts/{cam}/{a['rule']}", a)
                owed_a -= 1
                sent += 1
            bar.update(1)
            time.sleep(max(0.0, due - time.monotonic()))
    elapsed = time.time() - t0
    wait_for(dsn, before + sent, 120)
    lag_s = time.time() - t0 - elapsed
    delays = [float(r[0]) for r in rows(dsn, "SELECT extract(epoch FROM stored_at - time) FROM alerts "
                                             "WHERE time >= %s", datetime.fromtimestamp(t0, tz=timezone.utc))]
    return {"stores": args.stores, "cameras": n_cams, "seconds": round(elapsed, 1), "messages": sent,
            "offered_msg_per_s": round(sent / elapsed, 1), "windows_per_s": round(windows_per_s, 1),
            "alerts_per_s": round(alerts_per_s, 2), "drained_after_end_s": round(lag_s, 2),
            "alert_delay_p50_ms": round(1000 * percentile(delays, 50), 1) if delays else None,
            "alert_delay_p95_ms": round(1000 * percentile(delays, 95), 1) if delays else None,
            "alert_delay_max_ms": round(1000 * max(delays), 1) if delays else None, "alerts_timed": len(delays)}


def burst(args, load: Load, dsn: str, rng: random.Random, collector: CollectorProcess) -> dict:
    """``burst_stores`` stores back after ``burst_hours`` offline: the bridges deliver their backlog at once."""
    minutes = int(args.burst_hours * 60)
    start_minute = 60.0 * int(time.time() // 60) - 60 * minutes
    messages = []
    for s in range(args.burst_stores):
        site = site_name(100_000 + s)
        for cam in CAMERAS:
            for m in range(minutes):
                messages.append((f"fashion-edge/{site}/cameras/{cam}/analytics",
                                 window(site, cam, start_minute + 60 * m, rng)))
            for _ in range(int(args.alerts_per_camera_hour * args.burst_hours)):
                messages.append((site, cam))  # an alert, stamped when published
    before = count(dsn)
    # The collector is down while the backlog arrives (as when it restarts, or when many links come back
    # at once): the broker queues it in the collector's session; then it is started and timed to drain it.
    collector.stop()
    for k, item in enumerate(tqdm(messages, desc="burst publish", unit="msg", leave=False)):
        if len(item) == 2 and isinstance(item[1], str):  # (site, camera): an alert
            a = alert(item[0], item[1], rng)
            item = (f"fashion-edge/{item[0]}/alerts/{item[1]}/{a['rule']}", a)
        load.publish(k, *item, keep=True)
    load.wait_acked()
    connected = collector.start()
    with tqdm(total=len(messages), desc="burst stored", unit="row", leave=False) as bar:
        wait_for(dsn, before + len(messages), 900, bar, base=before)
    total_s = time.monotonic() - connected
    return {"stores": args.burst_stores, "hours_offline": args.burst_hours, "messages": len(messages),
            "all_stored_s": round(total_s, 1),
            "ingest_msg_per_s": round(len(messages) / total_s, 1)}


def growth(dsn: str, alerts_per_camera_hour: float) -> dict:
    (w_rows, w_bytes, a_rows, a_bytes), = rows(dsn, """SELECT (SELECT count(*) FROM windows),
        pg_total_relation_size('windows'), (SELECT count(*) FROM alerts), pg_total_relation_size('alerts')""")
    per_window, per_alert = w_bytes / max(w_rows, 1), a_bytes / max(a_rows, 1)
    alerts_day = 4 * alerts_per_camera_hour * 24
    return {"window_rows": w_rows, "window_bytes_per_row": round(per_window), "alert_rows": a_rows,
            "alert_bytes_per_row": round(per_alert),
            "store_day_bytes_15min_windows": round(4 * 96 * per_window + alerts_day * per_alert),
            "store_day_bytes_1min_windows": round(4 * 1440 * per_window + alerts_day * per_alert)}


def write_doc(result: dict, command: str) -> None:
    s, b, g = result["steady"], result["burst"], result["growth"]
    rate = b["ingest_msg_per_s"]
    per_store_s = 4 / 60 + 4 * result["alerts_per_camera_hour"] / 3600  # messages per second of one store
    per_store_15 = 4 / 900 + 4 * result["alerts_per_camera_hour"] / 3600
    lines = [
        MARK_START,
        f"Measured {result['date']} on this machine ({result['cpus']} CPU cores shared with other work; mosquitto, "
        "PostgreSQL 15 with fsync on, the collector and the load generator all on it), with:",
        "",
        f"    {command}",
        "",
        "| phase | figure |",
        "|---|---|",
        f"| steady: {s['stores']} stores x 4 cameras, a window per camera per minute + "
        f"{result['alerts_per_camera_hour']:g} alerts per camera-hour | {s['offered_msg_per_s']} msg/s offered for "
        f"{s['seconds']:.0f} s; every row stored {s['drained_after_end_s']} s after the last message |",
        f"| steady: end-to-end delay of an alert (published -> row committed), {s['alerts_timed']} alerts | "
        f"p50 {s['alert_delay_p50_ms']} ms, p95 {s['alert_delay_p95_ms']} ms, max {s['alert_delay_max_ms']} ms |",
        f"| burst: {b['stores']} stores back after {b['hours_offline']:g} h offline, {b['messages']} messages "
        f"queued while the collector was down | all stored {b['all_stored_s']} s after it connected: **{rate} msg/s sustained ingest** |",
        f"| lost / duplicated | alerts: {result['duplicates_or_losses']['alerts'][0]} rows, "
        f"{result['duplicates_or_losses']['alerts'][1]} distinct ids, as many as sent; windows: every one in; "
        f"rejected: {result['duplicates_or_losses']['rejected']} |",
        f"| growth: bytes per row (table + indexes) | window {g['window_bytes_per_row']} B, alert "
        f"{g['alert_bytes_per_row']} B |",
        f"| growth per store per day (4 cameras, {result['alerts_per_camera_hour']:g} alerts/camera-hour) | "
        f"{g['store_day_bytes_15min_windows'] / 1e3:.0f} kB with the default 15-minute windows, "
        f"{g['store_day_bytes_1min_windows'] / 1e6:.2f} MB with 1-minute windows |",
        "",
        f"One store sends {per_store_15:.4f} msg/s with 15-minute windows ({per_store_s:.3f} msg/s with the "
        f"benchmark's 1-minute windows). At the measured {rate} msg/s one collector and one PostgreSQL on "
        f"this 2-core machine would absorb, at that rate, the steady traffic of **{int(rate / per_store_s):,} stores with 1-minute "
        f"windows** ({int(rate / per_store_15):,} with 15-minute windows).",
        MARK_END,
    ]
    doc = REPO / "docs" / "chain.md"
    text = doc.read_text()
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        doc.write_text(head + "\n".join(lines) + tail)
    else:
        doc.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=2000, help="steady phase: stores (x 4 cameras)")
    parser.add_argument("--steady-s", type=float, default=60.0)
    parser.add_argument("--alerts-per-camera-hour", type=float, default=6.0)
    parser.add_argument("--burst-stores", type=int, default=200)
    parser.add_argument("--burst-hours", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=8, help="publishing connections (bridges)")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/chain.md / docs/chain-bench.json")
    parser.add_argument("--doc-from-json", action="store_true",
                        help="only rewrite the figures in docs/chain.md from docs/chain-bench.json")
    args = parser.parse_args()
    if args.doc_from_json:
        result = json.loads((REPO / "docs" / "chain-bench.json").read_text())
        write_doc(result, result["command"])
        return 0
    command = "nice -n 10 python " + " ".join(shlex.quote(a) for a in ["scripts/bench_collector.py", *sys.argv[1:]])
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="fashion-edge-bench-"))
    pg = Postgres(durable=True).start()
    broker = Mosquitto(work, "max_queued_messages 0\n" + ("user root\n" if os.geteuid() == 0 else ""))
    broker.start()
    collector = None
    try:
        dsn = pg.create_db("bench")
        hq = work / "hq.yaml"
        hq.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: bench-collector}}\n"
                      f"database: {{dsn: '{dsn}', password_env: BENCH_DB_PW}}\n"
                      "collector: {stats_interval_s: 10}\n")
        collector = CollectorProcess(hq, work / "collector.log")
        collector.start()
        load = Load(broker.port, args.clients)
        result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                  "alerts_per_camera_hour": args.alerts_per_camera_hour, "command": command}
        result["steady"] = steady(args, load, dsn, rng)
        print("steady:", json.dumps(result["steady"]))
        result["burst"] = burst(args, load, dsn, rng, collector)
        print("burst:", json.dumps(result["burst"]))
        result["growth"] = growth(dsn, args.alerts_per_camera_hour)
        print("growth:", json.dumps(result["growth"]))
        load.close()
        result["duplicates_or_losses"] = {
            "alerts": rows(dsn, "SELECT count(*), count(DISTINCT id) FROM alerts")[0],
            "rejected": rows(dsn, "SELECT count(*) FROM rejected")[0][0]}
        print("check:", result["duplicates_or_losses"])
        if not args.no_doc:
            (REPO / "docs" / "chain-bench.json").write_text(json.dumps(result, indent=2) + "\n")
            write_doc(result, command)
            print("wrote docs/chain-bench.json and the figures in docs/chain.md")
    finally:
        if collector is not None:
            collector.stop()
        broker.stop()
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

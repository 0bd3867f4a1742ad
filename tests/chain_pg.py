"""A real PostgreSQL for the chain tests (issue 24): Debian's ``initdb`` / ``pg_ctl`` in a temp dir.

initdb refuses to run as root: as root (CI) the cluster belongs to the ``postgres`` user the
Debian package creates, and every server command runs through ``runuser``. The server listens on
127.0.0.1 at a free port (password auth, user ``postgres`` / ``PASSWORD``) and on a unix socket in
its own folder; fsync is off (a test cluster). ``stop()`` / ``start()`` keep the data (the
"database down for a while" test).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import free_port

PASSWORD = "chain-test-pw"


def pg_bin_dir() -> Path | None:
    """Folder with initdb and pg_ctl (Debian keeps them out of PATH), None when not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class Postgres:
    def __init__(self, durable: bool = False):
        self.bin = pg_bin_dir()
        assert self.bin is not None, "PostgreSQL binaries not found"
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        # /tmp, not pytest's tmp_path: the postgres user cannot enter root's private pytest folders
        self.root = Path(tempfile.mkdtemp(prefix="fashion-edge-pg-", dir="/tmp" if self.as_root else None))
        self.data = self.root / "data"
        self.port = free_port()
        os.chmod(self.root, 0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
                   "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        # durable (the benchmark): PostgreSQL's defaults, fsync on; the tests turn fsync off (speed)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                       "max_connections = 50\n" + ("" if durable else "fsync = off\nfull_page_writes = off\n"))

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        return result

    def start(self) -> "Postgres":
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                   "-t", "60", "start"])
        return self

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)

    def dsn(self, db: str = "postgres", password: str | None = PASSWORD) -> str:
        auth = f"postgres:{password}" if password is not None else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str) -> str:
        """A fresh database; returns its DSN without the password (give it through PGPASSWORD / config)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(predicate, timeout_s: float = 15.0, every_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    return predicate()


def window_summaries(site: str, camera: str, base: float, visits: list[tuple[float, float, dict, set]],
                     tmp: Path) -> list[dict]:
    """Real window summaries from the store's own analytics, as a store publishes them: visits (start
    offset s from ``base``, dwell s, garments, rules the garment test accepts); 15-minute windows."""
    from edge.analytics import Analytics
    from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled

    a = Analytics(tmp / f"{site}-{camera}.sqlite", site, camera, window_s=900, min_dwell_s=1.0)
    for customer, (start, dwell, garments, matched) in enumerate(visits, 1):
        a.record(CustomerSeen(customer, base + start))
        a.record(CustomerSettled(customer, garments, frozenset(matched)))
        a.record(CustomerSeen(customer, base + start + dwell))
        a.record(CustomerEnded(customer, base + start + dwell + 1))
    closed = a.flush(base + max(v[0] for v in visits) + 3600)
    a.close()
    return [w for w in closed if w["customers"] or w["tracks"]]


DRESS, SUIT, PANTS = {"dress": 0.9}, {"blazer": 0.9, "pants": 0.8}, {"pants": 0.9, "t-shirt": 0.8}


def seed_two_stores(dsn: str, password: str, day: float, tmp: Path, more_windows=()) -> None:
    """The chain tests' head office, written through the collector's own write path: store-a with 4
    customers on ``day`` (2 dresses, 1 suit, 1 pants; dwell 10/20/30/40 s), store-b with 2 on two
    cameras (1 suit) and a dress the day after, 4 alerts; ``more_windows``: extra (site, camera, base,
    visits) for ``window_summaries``."""
    import time
    from datetime import datetime, timezone

    import psycopg

    from edge.chain.store import Message, migrate, write_batch
    from edge.mqtt.payloads import encode, make_alert

    now = time.time()
    windows = [("store-a", "door", day, [(0, 10, DRESS, {"dress"}), (100, 20, DRESS, {"dress"}),
                                         (1000, 30, SUIT, {"suit"}), (1100, 40, PANTS, set())]),
               ("store-b", "door", day, [(50, 60, SUIT, {"suit"})]),
               ("store-b", "till", day, [(70, 120, PANTS, set())]),
               ("store-b", "late", day + 86400, [(10, 5, DRESS, {"dress"})]),
               *more_windows]
    messages = [Message(f"fashion-edge/{site}/cameras/{camera}/analytics", encode(w), now)
                for site, camera, base, visits in windows for w in window_summaries(site, camera, base, visits, tmp)]
    alert_time = datetime.fromtimestamp(day + 500, tz=timezone.utc)
    for site, rule, n in (("store-a", "dress", 2), ("store-a", "suit", 1), ("store-b", "suit", 1)):
        for i in range(n):
            payload = make_alert(site, "door", i, rule, [(rule, 0.9)], [0, 0, 10, 10], i, None, time=alert_time)
            messages.append(Message(f"fashion-edge/{site}/alerts/door/{rule}", encode(payload), now))
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        migrate(conn)
        result = write_batch(conn, messages, "fashion-edge")
    assert (result.alerts, result.rejected) == (4, 0)

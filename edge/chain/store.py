"""The head office's PostgreSQL database: schema, migrations, and the collector's writes.

Tables (docs/chain.md):

* ``alerts``: one row per alert id (``ON CONFLICT DO NOTHING``: a re-delivered alert is not stored twice);
  the snapshot JPEG is never stored (privacy, size), only whether there was one;
* ``windows``: one row per (site, camera, window_start), upserted (a store sends each window twice, retained
  on ``cameras/<camera>/analytics`` and durably on ``windows/<camera>``: the identical copy changes
  nothing); a window re-sent after the store merged a restart into it replaces the row (``revisions`` counts the replacements). A merge only adds
  tracks, so a copy with fewer tracks than the stored row (an old message re-delivered late) does not
  overwrite the newer one;
* ``stores``: one row per site: first/last message seen, availability (online/offline) and when;
* ``rejected``: messages that can never be stored as alerts or windows (not JSON, a field out of range,
  a payload whose site is not the topic's): kept with the reason, so nothing is silently dropped and a
  bad message never blocks the session;
* ``schema_migrations``: which migrations ran (the collector applies the missing ones at start, under an
  advisory lock so that several collectors can start together).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from ..mqtt.payloads import validate_alert

# Each migration runs once, in order, in its own transaction. Append; never edit a shipped one.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "alerts, windows, stores, rejected", """
CREATE TABLE alerts (
    id uuid PRIMARY KEY,
    site text NOT NULL,
    camera text NOT NULL,
    rule text NOT NULL,
    time timestamptz NOT NULL,
    track_id bigint NOT NULL,
    garments jsonb NOT NULL,
    box jsonb NOT NULL,
    decided text NOT NULL,
    frame_index bigint NOT NULL,
    source_time_s double precision,
    catalog jsonb,
    had_snapshot boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX alerts_site_time ON alerts (site, time);
CREATE TABLE windows (
    site text NOT NULL,
    camera text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    tracks integer NOT NULL,
    customers integer NOT NULL,
    garments jsonb NOT NULL,
    customers_matched jsonb,
    customers_alerted jsonb NOT NULL,
    dress_customers integer NOT NULL,
    suit_customers integer NOT NULL,
    dwell_mean_s double precision,
    dwell_p50_s double precision,
    dwell_p95_s double precision,
    open_tracks integer NOT NULL,
    partial boolean NOT NULL,
    schema_version integer NOT NULL,
    styles jsonb,
    received_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revisions integer NOT NULL DEFAULT 1,
    PRIMARY KEY (site, camera, window_start)
);
CREATE INDEX windows_start ON windows (window_start);
CREATE TABLE stores (
    site text PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    availability text,
    availability_at timestamptz
);
CREATE TABLE rejected (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    payload bytea NOT NULL,
    reason text NOT NULL,
    received_at timestamptz NOT NULL
);
"""),
    (2, "windows.zones", """
ALTER TABLE windows ADD COLUMN zones jsonb;  -- {zone name: customers}; NULL from stores older than zones
"""),
]
LATEST_VERSION = MIGRATIONS[-1][0]
_MIGRATION_LOCK = 0x66_65_32_34  # pg_advisory_xact_lock key ("fe24")


def migrate(conn) -> list[int]:
    """Create / upgrade the schema; returns the versions applied now (none when up to date)."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(version)
    return applied_now


# ------------------------------------------------------------------------------------------- messages


@dataclass
class Message:
    """One MQTT message as received (``mid``/``qos`` to acknowledge it once stored)."""

    topic: str
    payload: bytes
    received_at: float  # epoch seconds when the collector got it
    mid: int = 0
    qos: int = 1


class Rejected(ValueError):
    """The message can never be stored as what its topic says (kept in ``rejected``)."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def classify(topic: str, root: str) -> tuple[str, str] | None:
    """(kind, site) of a topic of ``<root>/<site>/...``: kind alert, window or availability; None otherwise."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != root:
        return None
    site = parts[1]
    if parts[2] == "alerts" and len(parts) == 5:
        return "alert", site
    if parts[2] == "cameras" and len(parts) == 5 and parts[4] == "analytics":
        return "window", site  # the retained latest window (QoS 0 from the daemon)
    if parts[2] == "windows" and len(parts) == 4:
        return "window", site  # the same window from the daemon's outbox (QoS 1, every one): same row
    if parts[2] == "availability" and len(parts) == 3:
        return "availability", site
    return None


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(f"not UTF-8 JSON ({exc})") from None


_INT_MAX = 2**31 - 1


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
        raise Rejected(f"window.{field}: not a count ({value!r})")
    return value


def _seconds(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Rejected(f"window.{field}: not a number ({value!r})")
    return float(value)


def _mix(value: Any, field: str, nullable: bool = False) -> dict | None:
    if value is None and nullable:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise Rejected(f"window.{field}: not a {{name: customers}} map")
    return {k: _count(v, f"{field}.{k}") for k, v in value.items()}


def alert_row(message: Message, site: str, camera: str, rule: str) -> dict:
    alert = _json(message.payload)
    try:
        validate_alert(alert)
    except ValueError as exc:
        raise Rejected(str(exc)) from None
    for field, expected in (("site", site), ("camera", camera), ("rule", rule)):
        if alert[field] != expected:
            raise Rejected(f"alert.{field} {alert[field]!r} is not the topic's {expected!r}")
    try:
        when = _parse_time(alert["time"])
    except ValueError as exc:  # the pattern holds, the date does not exist (month 13, year 0)
        raise Rejected(f"alert.time: {exc}") from None
    return {
        "id": alert["id"], "site": site, "camera": camera, "rule": rule, "time": when,
        "track_id": alert["track_id"], "garments": json.dumps(alert["garments"]), "box": json.dumps(alert["box"]),
        "decided": alert.get("decided", "consensus"), "frame_index": alert["frame_index"],
        "source_time_s": alert["source_time_s"],
        "catalog": json.dumps(alert["catalog"]) if "catalog" in alert else None,
        "had_snapshot": "snapshot" in alert, "received_at": _utc(message.received_at),
    }


def window_row(message: Message, site: str, camera: str) -> dict:
    w = _json(message.payload)
    if not isinstance(w, dict):
        raise Rejected("window: not a JSON object")
    for field, expected in (("site", site), ("camera", camera)):
        if w.get(field) != expected:
            raise Rejected(f"window.{field} {w.get(field)!r} is not the topic's {expected!r}")
    start, end = _seconds(w.get("window_start"), "window_start"), _seconds(w.get("window_end"), "window_end")
    if start is None or end is None or not 0 <= start < end < 2**35:
        raise Rejected(f"window: window_start/window_end invalid ({start!r}, {end!r})")
    customers = _count(w.get("customers"), "customers")
    matched = _mix(w.get("customers_matched"), "customers_matched", nullable=True)
    alerted = _mix(w.get("customers_alerted", w.get("rules", {})), "customers_alerted")

    def share_count(rule: str) -> int:
        # the rules' verdicts when the store sent them; else back from the rounded share
        if matched is not None:
            return matched.get(rule, 0)
        share = _seconds(w.get(f"{rule}_share"), f"{rule}_share") or 0.0
        return int(round(share * customers))

    return {
        "site": site, "camera": camera, "window_start": _utc(start), "window_end": _utc(end),
        "tracks": _count(w.get("tracks"), "tracks"), "customers": customers,
        "garments": json.dumps(_mix(w.get("garments"), "garments")),
        "customers_matched": None if matched is None else json.dumps(matched),
        "customers_alerted": json.dumps(alerted),
        "dress_customers": share_count("dress"), "suit_customers": share_count("suit"),
        "dwell_mean_s": _seconds(w.get("dwell_mean_s"), "dwell_mean_s"),
        "dwell_p50_s": _seconds(w.get("dwell_p50_s"), "dwell_p50_s"),
        "dwell_p95_s": _seconds(w.get("dwell_p95_s"), "dwell_p95_s"),
        "open_tracks": _count(w.get("open_tracks", 0), "open_tracks"),
        "partial": bool(w.get("partial", False)),
        "schema_version": _count(w.get("schema_version", 1), "schema_version"),
        "styles": None if w.get("styles") is None else json.dumps(_mix(w.get("styles"), "styles")),
        "zones": None if w.get("zones") is None else json.dumps(_mix(w.get("zones"), "zones")),
        "received_at": _utc(message.received_at),
    }


_ALERT_COLUMNS = ("id", "site", "camera", "rule", "time", "track_id", "garments", "box", "decided", "frame_index",
                  "source_time_s", "catalog", "had_snapshot", "received_at")
_WINDOW_COLUMNS = ("site", "camera", "window_start", "window_end", "tracks", "customers", "garments",
                   "customers_matched", "customers_alerted", "dress_customers", "suit_customers", "dwell_mean_s",
                   "dwell_p50_s", "dwell_p95_s", "open_tracks", "partial", "schema_version", "styles", "zones",
                   "received_at")
_JSONB = {"garments", "box", "catalog", "customers_matched", "customers_alerted", "styles", "zones"}


def _values(columns: Iterable[str]) -> str:
    return ", ".join(f"%({c})s::jsonb" if c in _JSONB else f"%({c})s" for c in columns)


INSERT_ALERT = (f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({_values(_ALERT_COLUMNS)}) "
                "ON CONFLICT (id) DO NOTHING")
_UPDATED = [c for c in _WINDOW_COLUMNS if c not in ("site", "camera", "window_start")]
UPSERT_WINDOW = (
    f"INSERT INTO windows ({', '.join(_WINDOW_COLUMNS)}) VALUES ({_values(_WINDOW_COLUMNS)}) "
    "ON CONFLICT (site, camera, window_start) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)
    + ", stored_at = clock_timestamp(), revisions = windows.revisions + 1"
    # an identical copy (re-delivery) is not a revision; an older copy (fewer tracks) never replaces
    " WHERE EXCLUDED.tracks >= windows.tracks AND (EXCLUDED.tracks, EXCLUDED.customers, EXCLUDED.garments, "
    "EXCLUDED.customers_alerted, EXCLUDED.open_tracks, EXCLUDED.partial, EXCLUDED.dwell_mean_s) IS DISTINCT FROM "
    "(windows.tracks, windows.customers, windows.garments, windows.customers_alerted, windows.open_tracks, "
    "windows.partial, windows.dwell_mean_s)"
)
UPSERT_STORE = (
    "INSERT INTO stores (site, first_seen, last_seen) VALUES (%(site)s, %(seen)s, %(seen)s) "
    "ON CONFLICT (site) DO UPDATE SET last_seen = GREATEST(stores.last_seen, EXCLUDED.last_seen)"
)
SET_AVAILABILITY = (
    "INSERT INTO stores (site, first_seen, last_seen, availability, availability_at) "
    "VALUES (%(site)s, %(seen)s, %(seen)s, %(state)s, %(seen)s) "
    "ON CONFLICT (site) DO UPDATE SET availability = EXCLUDED.availability, availability_at = EXCLUDED.availability_at,"
    " last_seen = GREATEST(stores.last_seen, EXCLUDED.last_seen)"
)
INSERT_REJECTED = ("INSERT INTO rejected (topic, payload, reason, received_at) "
                   "VALUES (%(topic)s, %(payload)s, %(reason)s, %(received_at)s)")


@dataclass
class BatchResult:
    alerts: int = 0  # new alert rows
    duplicates: int = 0  # alerts already stored (re-delivered)
    windows: int = 0  # window rows inserted or replaced
    window_copies: int = 0  # window messages that changed nothing (a re-delivered copy, or older than the row)
    availability: int = 0
    rejected: int = 0
    ignored: int = 0  # topics the collector does not store (none when subscribed as documented)

    def add(self, other: "BatchResult") -> None:
        for field in self.__dataclass_fields__:
            setattr(self, field, getattr(self, field) + getattr(other, field))


def prepare(messages: list[Message], root: str):
    """Rows for one batch: (alerts, windows, stores, availability, rejected, ignored, window messages)."""
    alerts, windows, rejected, availability = [], {}, [], []
    seen: dict[str, float] = {}
    ignored = window_messages = 0
    for m in messages:
        kind = classify(m.topic, root)
        if kind is None:
            ignored += 1
            continue
        what, site = kind
        parts = m.topic.split("/")
        try:
            if what == "alert":
                alerts.append(alert_row(m, site, parts[3], parts[4]))
            elif what == "window":  # cameras/<camera>/analytics or windows/<camera>
                row = window_row(m, site, parts[3])
                windows[(row["site"], row["camera"], row["window_start"])] = row  # the later copy wins
                window_messages += 1
            else:
                state = m.payload.decode("utf-8", "replace").strip()[:32]
                availability.append({"site": site, "seen": _utc(m.received_at), "state": state})
        except Rejected as exc:
            rejected.append({"topic": m.topic, "payload": m.payload, "reason": str(exc)[:500],
                             "received_at": _utc(m.received_at)})
            continue
        seen[site] = max(seen.get(site, 0.0), m.received_at)
    stores = [{"site": s, "seen": _utc(t)} for s, t in sorted(seen.items())]
    return alerts, list(windows.values()), stores, availability, rejected, ignored, window_messages


def write_batch(conn, messages: list[Message], root: str) -> BatchResult:
    """Store a batch in one transaction (the caller acknowledges the messages only after it returns)."""
    alerts, windows, stores, availability, rejected, ignored, window_messages = prepare(messages, root)
    result = BatchResult(ignored=ignored, rejected=len(rejected), availability=len(availability))
    with conn.transaction():
        with conn.cursor() as cur:
            if alerts:
                cur.executemany(INSERT_ALERT, alerts)
                result.alerts = cur.rowcount
                result.duplicates = len(alerts) - cur.rowcount
            if windows:
                cur.executemany(UPSERT_WINDOW, windows)
                result.windows = cur.rowcount
            result.window_copies = window_messages - result.windows
            if stores:
                cur.executemany(UPSERT_STORE, stores)
            if availability:
                cur.executemany(SET_AVAILABILITY, availability)
            if rejected:
                cur.executemany(INSERT_REJECTED, rejected)
    return result


def reject_one(conn, message: Message, reason: str) -> None:
    """A message PostgreSQL itself refused (a value out of its range): kept in ``rejected``."""
    with conn.transaction():
        conn.execute(INSERT_REJECTED, {"topic": message.topic, "payload": message.payload, "reason": reason[:500],
                                       "received_at": _utc(message.received_at)})

"""Build and check the JSON payloads published on MQTT.

The alert contract is ``edge/schemas/alert.schema.json`` (JSON Schema 2020-12). ``validate_alert``
is a small dependency-free check of the same rules so the daemon never needs ``jsonschema``;
the tests check both agree.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

ALERT_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "alert.schema.json"
CAMERA_STATES = ("streaming", "reconnecting", "ended", "failed", "stuck")  # "failed": a live source that never streamed

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
_ALERT_KEYS = ("id", "time", "site", "camera", "track_id", "rule", "garments", "box", "frame_index", "source_time_s")


def load_alert_schema() -> dict:
    return json.loads(ALERT_SCHEMA_PATH.read_text())


def utc_now_iso(when: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, e.g. ``2026-11-22T05:10:00.123Z``."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _garment(item: Any) -> dict:
    if isinstance(item, Mapping):
        label, score = item["label"], item["score"]
    else:
        label, score = item
    return {"label": str(label), "score": round(float(score), 4)}


def make_alert(
    site: str,
    camera: str,
    track_id: int,
    rule: str,
    garments: Iterable[Any],
    box: Iterable[float],
    frame_index: int,
    source_time_s: float | None,
    time: datetime | str | None = None,
    decided: str = "consensus",
    catalog: list[dict] | None = None,
    alert_id: str | None = None,
) -> dict:
    """One alert payload. ``garments``: ``[{"label", "score"}]`` or ``[(label, score)]``;
    ``box``: person box x1, y1, x2, y2 in pixels (numpy values are fine);
    ``decided``: consensus, early or exit (``edge.consensus``); ``alert_id``: the alert's id (``edge.alerts.Alert.id``), a
    new one when None."""
    payload = {
        "id": alert_id or str(uuid.uuid4()),
        "time": time if isinstance(time, str) else utc_now_iso(time),
        "site": site,
        "camera": camera,
        "track_id": int(track_id),
        "rule": rule,
        "garments": [_garment(g) for g in garments],
        "box": [round(float(v), 1) for v in box],
        "frame_index": int(frame_index),
        "source_time_s": None if source_time_s is None else round(float(source_time_s), 3),
        "decided": decided,
    }
    if catalog is not None:  # catalog.enabled (issue 14): catalogue item ids and cosine scores, nothing else
        payload["catalog"] = [{"id": str(m["id"]), "score": round(float(m["score"]), 4)} for m in catalog]
    # No picture in an alert: with both opt-ins it goes on cameras/{camera}/snapshot (docs/events.md);
    # "snapshot" stays in the schema for alerts of older versions, which the collector still accepts.
    validate_alert(payload)
    return payload


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DECISIONS = ("consensus", "early", "exit")


def validate_alert(payload: Any) -> None:
    """Raise ``ValueError`` naming the first field that breaks alert.schema.json."""
    if not isinstance(payload, dict):
        raise ValueError("alert: must be a JSON object")
    for key in _ALERT_KEYS:
        if key not in payload:
            raise ValueError(f"alert.{key}: missing")
    extra = set(payload) - set(_ALERT_KEYS) - {"snapshot", "decided", "catalog"}
    if extra:
        raise ValueError(f"alert.{sorted(extra)[0]}: unknown field")
    checks = {
        "id": isinstance(payload["id"], str) and bool(_UUID4.match(payload["id"])),
        "time": isinstance(payload["time"], str) and bool(_UTC_TIME.match(payload["time"])),
        "site": isinstance(payload["site"], str) and bool(_NAME.match(payload["site"])),
        "camera": isinstance(payload["camera"], str) and bool(_NAME.match(payload["camera"])),
        "track_id": _is_int(payload["track_id"]) and payload["track_id"] >= 0,
        "rule": isinstance(payload["rule"], str) and bool(_NAME.match(payload["rule"])),
        "box": isinstance(payload["box"], list) and len(payload["box"]) == 4
        and all(_is_number(v) for v in payload["box"]),
        "frame_index": _is_int(payload["frame_index"]) and payload["frame_index"] >= 0,
        "source_time_s": payload["source_time_s"] is None or _is_number(payload["source_time_s"]),
        "snapshot": isinstance(payload.get("snapshot", ""), str),
        "decided": payload.get("decided", "consensus") in DECISIONS,
    }
    for key, ok in checks.items():
        if not ok:
            raise ValueError(f"alert.{key}: invalid value {payload.get(key)!r}")
    garments = payload["garments"]
    if not isinstance(garments, list) or not garments:
        raise ValueError("alert.garments: must be a non-empty list")
    for i, garment in enumerate(garments):
        if (
            not isinstance(garment, dict)
            or set(garment) != {"label", "score"}
            or not isinstance(garment["label"], str)
            or not garment["label"]
            or not _is_number(garment["score"])
            or not 0 <= garment["score"] <= 1
        ):
            raise ValueError(f"alert.garments[{i}]: needs exactly a label and a score within 0..1")
    for i, match in enumerate(payload.get("catalog", [])):
        if (
            not isinstance(match, dict)
            or set(match) != {"id", "score"}
            or not isinstance(match["id"], str)
            or not match["id"]
            or not _is_number(match["score"])
            or not -1 <= match["score"] <= 1
        ):
            raise ValueError(f"alert.catalog[{i}]: needs exactly an item id and a cosine score within -1..1")


def make_status(state: str, since: datetime | float | None = None, fps: float | None = None, detail: str = "") -> dict:
    """Camera status payload for ``{prefix}/cameras/{camera}/status``; ``since`` in epoch seconds
    like the daemon's own status (docs/mqtt.md), now when not given."""
    if state not in CAMERA_STATES:
        raise ValueError(f"camera state must be one of {', '.join(CAMERA_STATES)}, not {state!r}")
    if isinstance(since, datetime):
        since = since.timestamp()
    return {
        "state": state,
        "since": round(float(time.time() if since is None else since), 3),
        "fps": None if fps is None else round(float(fps), 2),
        "detail": detail,
    }


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON, the wire format of every JSON topic."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

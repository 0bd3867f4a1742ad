"""One alert contract (issue 25): the daemon checks every payload with ``validate_alert`` (no
jsonschema on the Pi); edge/schemas/alert.schema.json is what consumers check. Both must accept
and refuse the same payloads: here every field broken one way or another, through the real
jsonschema validator and ours side by side."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from edge.alerts import Alert
from edge.mqtt.payloads import validate_alert

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "edge" / "schemas" / "alert.schema.json").read_text())


def good() -> dict:
    alert = Alert(camera="door", track_id=3, rule="dress", garments=[("dress", 0.9), ("person.dress", 0.8)],
                  box=[1.0, 2.0, 30.0, 90.0], frame_index=12, source_time_s=1.2, timestamp=1_800_000_000.0,
                  decided="early", catalog=[{"id": "sku-1", "score": 0.5}])
    return alert.payload("store-1")


def mutate(path: tuple, value) -> dict:
    payload = good()
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


DELETE = object()
CASES = [
    *[((key,), DELETE) for key in SCHEMA["required"]],
    (("decided",), DELETE), (("catalog",), DELETE),  # optional
    (("id",), "not-a-uuid"), (("id",), "123e4567-e89b-12d3-a456-426614174000"),  # a uuid1
    (("time",), "2027-03-01 10:00:00"), (("time",), "2027-03-01T10:00:00+02:00"), (("time",), 5),
    (("site",), "store 1"), (("site",), ""), (("camera",), "door/1"), (("rule",), 7),
    (("track_id",), -1), (("track_id",), 1.5), (("track_id",), True), (("track_id",), "3"),
    (("frame_index",), -2), (("frame_index",), None),
    (("source_time_s",), None), (("source_time_s",), "1.2"),
    (("box",), [1, 2, 3]), (("box",), [1, 2, 3, "4"]), (("box",), [1, 2, 3, 4, 5]), (("box",), "1,2,3,4"),
    (("garments",), []), (("garments",), "dress"), (("garments", 0), {"label": "dress"}),
    (("garments", 0), {"label": "dress", "score": 1.5}), (("garments", 0), {"label": "", "score": 0.5}),
    (("garments", 0), {"label": "dress", "score": 0.5, "extra": 1}), (("garments", 0, "score"), "0.9"),
    (("decided",), "guess"), (("decided",), None),
    (("catalog",), "sku-1"), (("catalog", 0), {"id": "sku-1"}), (("catalog", 0, "score"), 2.0),
    (("catalog", 0, "id"), ""),
    (("snapshot",), "/9j/4AAQ"), (("snapshot",), 5),
    (("colour",), "red"),  # unknown field
]


@pytest.mark.parametrize("path,value", CASES, ids=[".".join(map(str, p)) + "=" + repr(v)[:20] for p, v in CASES])
def test_our_check_and_the_published_schema_agree(path, value):
    payload = mutate(path, value)
    try:
        jsonschema.validate(payload, SCHEMA)
        schema_ok = True
    except jsonschema.ValidationError:
        schema_ok = False
    try:
        validate_alert(copy.deepcopy(payload))
        ours_ok = True
    except ValueError:
        ours_ok = False
    assert ours_ok == schema_ok, (path, value, "ours" if ours_ok else "schema")


def test_the_alert_renders_a_valid_payload():
    jsonschema.validate(good(), SCHEMA)
    validate_alert(good())

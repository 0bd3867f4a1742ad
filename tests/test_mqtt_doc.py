"""docs/mqtt.md cannot drift from the payloads: its field tables against the real payloads.

The daemon runs on the clip (200 frames) against a real mosquitto and a real subscriber records
every message; `edge/mqtt/payloads.py` builds the payload variants a file run cannot produce (an
alert with a snapshot and catalogue matches, a `stuck` status). Every field of every payload must
be in the topic's table with the documented type, every `always` field in every payload, and
every documented field in at least one payload.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from conftest import Mosquitto
from edge.mqtt.payloads import load_alert_schema, make_alert, make_status

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "mqtt.md"
PREFIX = "fashion-edge/demo-store"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def doc_tables(text: str) -> dict[str, dict[str, dict]]:
    """{kind: {field: {"type", "present"}}} from every '#### Fields: `kind`' table."""
    tables: dict[str, dict[str, dict]] = {}
    kind = None
    for line in text.splitlines():
        heading = re.match(r"^#### Fields: `([^`]+)`", line)
        if heading:
            kind = heading.group(1)
            tables[kind] = {}
            continue
        if kind is None:
            continue
        if not line.startswith("|"):
            if tables[kind]:
                kind = None  # the table ended
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`([^`]+)`", cells[0])
        if name is None:
            continue  # the header or the separator row
        assert name.group(1) not in tables[kind], f"{kind}.{name.group(1)} documented twice"
        tables[kind][name.group(1)] = {"type": cells[1], "present": cells[2]}
    return tables


def type_ok(documented: str, value) -> bool:
    if value is None:
        return "or null" in documented
    base = documented.split(" or null")[0]
    if base.startswith("string"):
        return isinstance(value, str) and ("ISO-8601" not in base or bool(ISO_UTC.match(value)))
    if base.startswith("number"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok and ("epoch seconds" not in base or value > 1e9)
    simple = {"integer": int, "boolean": bool, "object": dict, "array": list}
    kind = simple.get(base.split(" ")[0])
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return kind is not None and isinstance(value, kind)


@pytest.fixture(scope="module")
def payloads(tmp_path_factory, shared_dir) -> dict[str, list[dict]]:
    """{kind: [payload, ...]} of the daemon's run on the clip plus the built variants."""
    from test_daemon import Collector, run_daemon, write_config

    tmp = tmp_path_factory.mktemp("mqtt-doc")
    broker = Mosquitto(tmp).start()
    try:
        watcher = Collector(broker.port, PREFIX)
        code, out = run_daemon(write_config(tmp, shared_dir), broker.port, "--max-frames", "200")
        time.sleep(0.5)
        watcher.stop()
    finally:
        broker.stop()
    assert code == 0, out[-3000:]
    kinds: dict[str, list[dict]] = {}
    for topic, payload, _ in watcher.messages:
        part = topic.removeprefix(PREFIX + "/").split("/")
        if part[0] in ("availability",) or part[-1] == "snapshot":
            continue
        kind = "alerts" if part[0] == "alerts" else "windows" if part[0] == "windows" else part[-1]
        kinds.setdefault(kind, []).append(json.loads(payload))
    assert set(kinds) == {"alerts", "status", "counts", "analytics", "windows", "stats"}, set(kinds)
    # windows/{camera} carries every closed window with the analytics payload (documented as such)
    durable = kinds.pop("windows")
    as_set = lambda items: {json.dumps(w, sort_keys=True) for w in items}  # noqa: E731
    assert durable and as_set(durable) == as_set(kinds["analytics"]), (durable, kinds["analytics"])
    kinds["alerts"].append(make_alert("store-042", "entrance", 17, "dress", [("dress", 0.9)], [1, 2, 3, 4], 10, None,
                                      decided="exit", catalog=[{"id": "sku-1042", "score": 0.87}]))
    kinds["alerts"][-1]["snapshot"] = "/9j/anBlZw=="  # older versions' field: still documented, still accepted
    kinds["status"].append(make_status("stuck", detail="entrance:detect running 31.0s"))
    stats = kinds["stats"]
    kinds["stats.latency"] = [s["latency"] for s in stats if s["latency"]]
    kinds["stats.latency.<stage>"] = [stage for s in stats for stage in s["latency"].values()]
    return kinds


def test_every_payload_field_is_documented_with_its_type(payloads):
    tables = doc_tables(DOC.read_text())
    assert set(tables) == set(payloads), f"tables {sorted(tables)} vs payloads {sorted(payloads)}"
    for kind, items in payloads.items():
        table = tables[kind]
        for payload in items:
            undocumented = set(payload) - set(table)
            assert not undocumented, f"docs/mqtt.md: {kind} has no row for {sorted(undocumented)}"
            for field, value in payload.items():
                assert type_ok(table[field]["type"], value), \
                    f"docs/mqtt.md: {kind}.{field} is documented as {table[field]['type']!r}, payload has {value!r}"


def test_every_documented_field_exists_and_always_means_always(payloads):
    tables = doc_tables(DOC.read_text())
    for kind, table in tables.items():
        items = payloads[kind]
        seen = set().union(*(set(p) for p in items))
        ghost = set(table) - seen
        assert not ghost, f"docs/mqtt.md: {kind} documents {sorted(ghost)}, which no payload has"
        for field, row in table.items():
            if row["present"] == "always":
                missing = [p for p in items if field not in p]
                assert not missing, f"docs/mqtt.md: {kind}.{field} is 'always' but missing in {missing[0]}"


def test_every_topic_of_the_code_is_in_the_topic_tree():
    from edge.mqtt.topics import Topics

    text = DOC.read_text()
    t = Topics("{prefix}")
    for topic in (t.availability, t.stats, t.alert("{camera}", "{rule}"), t.status("{camera}"),
                  t.counts("{camera}"), t.analytics("{camera}"), t.windows("{camera}"), t.snapshot("{camera}")):
        assert f"| `{topic}` |" in text, f"docs/mqtt.md: {topic} is not in the topic tree"


def test_alert_table_is_the_schema(payloads):
    tables = doc_tables(DOC.read_text())
    schema = load_alert_schema()
    assert set(tables["alerts"]) == set(schema["properties"])
    required = {f for f, row in tables["alerts"].items() if row["present"] == "always"}
    assert required == set(schema["required"])


def test_the_parser_sees_a_drifted_doc():
    """The checks above can fail: a renamed field and a missing row are both seen."""
    text = DOC.read_text()
    tables = doc_tables(text.replace("| `p95_ms` |", "| `p95` |").replace("| `dress_share` |", "| `dress_pct` |"))
    assert "p95" in tables["stats.latency.<stage>"] and "p95_ms" not in tables["stats.latency.<stage>"]
    assert "dress_share" not in tables["analytics"]
    assert not type_ok("number (epoch seconds)", "2026-11-22T05:10:00Z")
    assert not type_ok("string (ISO-8601 UTC)", 1795324500.0)


def test_developer_notes_are_not_in_the_user_docs():
    """docs/ is for users; the helper sessions' working rules live in dev/ (issue 13)."""
    assert not (REPO / "docs" / "dev").exists()
    assert (REPO / "dev" / "HELPERS.md").is_file()
    for doc in (REPO / "docs").rglob("*.md"):
        assert "helper session" not in doc.read_text().lower(), doc

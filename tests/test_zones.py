"""Named zones per camera (cameras[].zones): pixels or normalized, rules refer to them by name, and
the pre-flight checks them against the frame size it reads from the real clip (768x432)."""

from __future__ import annotations

import copy
from pathlib import Path
from datetime import datetime

import pytest
import yaml

from edge.config import parse_config
from edge.errors import ConfigError
from edge.rules import RuleEngine

DOOR = {"points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "units": "normalized"}  # the lower half, Frigate-style
RAIL = {"points": [[600, 0], [768, 0], [768, 200], [600, 200]]}  # pixels (the default)


def base() -> dict:
    return {"cameras": [{"name": "entrance", "source": "0", "frame_size": [768, 432],
                         "zones": {"door": copy.deepcopy(DOOR), "rail": copy.deepcopy(RAIL)}},
                        {"name": "back", "source": "1"}],
            "detector": {"model": "x"}, "classifier": {"model": "y"},
            "rules": [{"name": "dress", "when": ["dress"], "zones": ["door"], "cameras": ["entrance"]}]}


def fires(engine: RuleEngine, foot: tuple[float, float]) -> bool:
    return bool(engine.evaluate(set(), {"dress": 0.9}, foot, datetime(2026, 12, 7, 12, 0)))


def test_a_rule_alerts_only_in_its_named_zone():
    config = parse_config(base())
    entrance = RuleEngine(config.rules, "entrance")
    assert entrance.rules[0].zones == [[(0.0, 216.0), (768.0, 216.0), (768.0, 432.0), (0.0, 432.0)]]
    assert fires(entrance, (384, 400)) and not fires(entrance, (384, 100))
    # a zone and a literal polygon together; two names
    data = base()
    data["rules"][0]["zones"] = ["rail", [[0, 0], [100, 0], [100, 100]]]
    engine = RuleEngine(parse_config(data).rules, "entrance")
    assert fires(engine, (700, 100)) and fires(engine, (50, 20)) and not fires(engine, (384, 400))


def test_the_same_name_on_two_cameras_is_each_cameras_own_area():
    data = base()
    data["cameras"][1].update(frame_size=[640, 480], zones={"door": {"points": [[0, 0], [320, 0], [320, 480], [0, 480]]}})
    data["rules"][0]["cameras"] = []
    config = parse_config(data)
    assert fires(RuleEngine(config.rules, "back"), (100, 100))  # back's door: its left half
    assert not fires(RuleEngine(config.rules, "entrance"), (100, 100))  # entrance's door: its lower half


@pytest.mark.parametrize("change, message", [
    (lambda d: d["rules"][0].update(cameras=[]),
     "rules[0].zones: zone 'door' is not defined on camera 'back' (its zones: none)"),
    (lambda d: d["cameras"][0].pop("frame_size"),
     "cameras[0]: zone 'door' is normalized: give frame_size: [width, height]"),
    (lambda d: d["cameras"][0]["zones"]["door"].pop("units"),  # Frigate's 0-1 coordinates read as pixels
     "cameras[0].zones.door: every point lies within 0..1: normalized coordinates?"),
    (lambda d: d["cameras"][0]["zones"]["rail"].update(points=[[1600, 0], [1920, 0], [1920, 300]]),
     "cameras[0]: zone 'rail': point [1600, 0] lies outside the 768x432 frame"),
    (lambda d: d["cameras"][0]["zones"]["door"].update(points=[[0, 0.5], [2, 0.5], [1, 1]]),
     "cameras[0].zones.door: normalized points are fractions of the frame within 0..1"),
    (lambda d: d["rules"][0].update(zones=[[[0, 0.5], [1, 0.5], [1, 1]]]),
     "rules[0].zones: every point lies within 0..1: normalized coordinates?"),
    (lambda d: d["cameras"][0]["zones"].update({"a b": RAIL}),
     "cameras[0].zones: zone name 'a b'"),
    (lambda d: d["cameras"][0].update(entrances=["stairs"]),
     "cameras[0]: entrances: 'stairs' is not one of this camera's zones (door, rail)"),
    (lambda d: d["cameras"][1].update(entrances=["door"]),
     "cameras[1]: entrances: 'door' is not one of this camera's zones (none defined)"),
    (lambda d: d["cameras"][0].update(not_people=["window"]),
     "cameras[0]: not_people: 'window' is not one of this camera's zones (door, rail)"),
    (lambda d: d["cameras"][1].update(staff_only=["counter"]),
     "cameras[1]: staff_only: 'counter' is not one of this camera's zones (none defined)"),
])
def test_zone_mistakes_are_one_line(change, message):
    data = base()
    change(data)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_preflight_checks_zones_against_the_clip_frame_size(tmp_path, shared_dir):
    """check-config reads a frame of the clip (768x432): a zone drawn for 1920x1080, a wrong
    frame_size and a rule polygon off the frame are errors naming the field; good zones pass."""
    from conftest import demo_config_data

    from edge import preflight

    data = demo_config_data(shared_dir)
    data["cameras"][0]["zones"] = {"floor": {"points": [[0, 200], [768, 200], [768, 432], [0, 432]]},
                                   "half": {"points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "units": "normalized"}}
    data["cameras"][0]["frame_size"] = [768, 432]
    data["rules"][0]["zones"] = ["floor", "half"]
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(data))
    result = preflight.check(good)
    fields = [p.text.removeprefix(f"{good}: ").split(":", 1)[0] for p in result.errors]
    assert not [f for f in fields if "zones" in f or "frame_size" in f], result.errors
    assert result.config.rules[0].zone_polygons("entrance")[1] == [(0.0, 0.0), (384.0, 0.0), (384.0, 432.0),
                                                                   (0.0, 432.0)]

    data["cameras"][0]["frame_size"] = None
    data["cameras"][0]["zones"] = {"floor": {"points": [[0, 600], [1920, 600], [1920, 1080], [0, 1080]]}}
    data["rules"][0]["zones"] = ["floor"]
    data["rules"][1]["zones"] = [[[700, 400], [800, 400], [800, 440]]]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    errors = [p.text for p in preflight.check(bad).errors]
    assert any(e.startswith(f"{bad}: cameras[0].zones.floor: point [0, 600] lies outside the 768x432 frame")
               for e in errors), errors
    assert any(e.startswith(f"{bad}: rules[1].zones[0]: point [800, 400] lies outside the 768x432 frame")
               for e in errors), errors

    data["cameras"][0]["zones"] = {}
    data["rules"][0]["zones"] = []
    data["rules"][1]["zones"] = []
    data["cameras"][0]["frame_size"] = [1920, 1080]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(data))
    errors = [p.text for p in preflight.check(wrong).errors]
    assert any("cameras[0].frame_size: 1920x1080, but" in e and "gives 768x432 frames" in e for e in errors), errors


# -- analytics by zone name (issue 23) --------------------------------------------------------------

def test_window_counts_customers_per_named_zone(tmp_path):
    """Each customer counts once in every zone their feet were in; a glimpse shorter than
    min_dwell_s counts in no zone; an old row (before zones) says None, a restart adds counts."""
    import sqlite3

    from edge.analytics import Analytics, read_windows
    from edge.customer_events import CustomerEnded, CustomerSeen

    db = tmp_path / "analytics.sqlite"
    t0 = 1_800_000_000.0
    a = Analytics(db, "store", "entrance", window_s=60, min_dwell_s=1.0)
    for ts in range(0, 10):  # customer 1 walks from the door to the rail
        a.record(CustomerSeen(1, t0 + ts, frozenset({"door"} if ts < 5 else {"rail"})))
    for ts in range(2, 8):  # customer 2 stays at the door, three sightings in it count once
        a.record(CustomerSeen(2, t0 + ts, frozenset({"door"})))
    a.record(CustomerSeen(3, t0 + 20, frozenset({"rail"})))  # a glimpse: not a customer
    a.record(CustomerSeen(4, t0 + 30))  # in no zone
    a.record(CustomerSeen(4, t0 + 35))
    for customer in (1, 2, 3, 4):
        a.record(CustomerEnded(customer, t0 + 40))
    [window] = a.poll(t0 + 61)
    assert window["customers"] == 3 and window["tracks"] == 4
    assert window["zones"] == {"door": 2, "rail": 1}
    a.close()
    assert read_windows(db)[0]["zones"] == {"door": 2, "rail": 1}

    # the daemon restarted within the window: the second run's zone counts are added
    b = Analytics(db, "store", "entrance", window_s=60, min_dwell_s=1.0)
    b.record(CustomerSeen(7, t0 + 45, frozenset({"rail"})))
    b.record(CustomerSeen(7, t0 + 50, frozenset({"rail"})))
    merged = b.flush(t0 + 61)[0]
    assert merged["zones"] == {"door": 2, "rail": 2} and merged["customers"] == 4
    b.close()

    # a database written before zones existed: the column is added, its rows say None
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old)
    conn.execute("""CREATE TABLE windows (site TEXT NOT NULL, camera TEXT NOT NULL, window_start REAL NOT NULL,
        window_end REAL NOT NULL, tracks INTEGER NOT NULL, customers INTEGER NOT NULL, garments TEXT NOT NULL,
        rules TEXT NOT NULL, dress_customers INTEGER NOT NULL, suit_customers INTEGER NOT NULL,
        dwell_s TEXT NOT NULL, open_tracks INTEGER NOT NULL, partial INTEGER NOT NULL, updated_at REAL NOT NULL,
        PRIMARY KEY (site, camera, window_start))""")
    conn.execute("INSERT INTO windows VALUES ('store', 'entrance', 0, 60, 1, 1, '{}', '{}', 0, 0, '[3.0]', 0, 0, 0)")
    conn.commit()
    conn.close()
    Analytics(old, "store", "entrance", window_s=60).close()
    assert read_windows(old)[0]["zones"] is None


def test_the_pipeline_tells_the_analytics_which_zones_a_customer_was_in(shared_dir, tmp_path):
    """The real models on the demo clip's first 30 s, with the frame split into two named zones:
    the customer events name the zones the feet were in, and the window counts exactly those."""
    from conftest import demo_clip_frames
    from edge.config import ZoneConfig, load_config
    from edge.customer_events import CustomerEventLog, CustomerSeen
    from edge.pipeline import CameraPipeline

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    camera = config.cameras[0].model_copy(update={"zones": {
        "left": ZoneConfig(points=[[-50, -50], [384, -50], [384, 500], [-50, 500]]),
        "right": ZoneConfig(points=[[384, -50], [820, -50], [820, 500], [384, 500]])}})
    events = CustomerEventLog()
    pipeline = CameraPipeline(config, camera, state_dir=tmp_path, customer_sinks=[events])
    windows = []
    for frame in demo_clip_frames(shared_dir, 300, t0=1_800_000_000.0):
        windows += pipeline.process(frame).closed_windows
    windows += pipeline.finish().closed_windows
    [window] = windows
    seen: dict[int, list[float]] = {}
    zones: dict[int, set[str]] = {}
    for event in events.events:
        if isinstance(event, CustomerSeen):
            seen.setdefault(event.customer_id, []).append(event.ts)
            zones.setdefault(event.customer_id, set()).update(event.zones)
            assert len(event.zones) == 1  # the two zones tile the frame
    customers = [c for c, times in seen.items() if max(times) - min(times) >= config.analytics.min_dwell_s]
    assert len(customers) == window["customers"] >= 2
    expected: dict[str, int] = {}
    for customer in customers:
        for zone in zones[customer]:
            expected[zone] = expected.get(zone, 0) + 1
    assert window["zones"] == expected
    assert any(zones[c] == {"left", "right"} for c in customers)  # somebody walked across


def test_a_mannequin_in_a_not_people_zone_is_never_a_customer(shared_dir, tmp_path):
    """A still figure in a dress (a street photo pasted on every frame of the demo clip, where a
    shop-window mannequin would stand) is boxed by the real person detector like a customer: without
    a zone it is counted and alerted on within a second; listed in ``not_people`` it is neither, and
    the people walking through are still counted."""
    import cv2
    import numpy as np

    from conftest import demo_clip_frames
    from edge.config import ZoneConfig, load_config
    from edge.garments import foot_point
    from edge.pipeline import CameraPipeline
    from edge.rules import point_in_polygon

    figure = cv2.imread(str(shared_dir / "datasets" / "colorful-fashion" / "images" / "134101.jpg"))
    height = 240
    figure = cv2.resize(figure, (round(figure.shape[1] * height / figure.shape[0]), height))
    window = [[610, 370], [720, 370], [720, 420], [610, 420]]  # around the figure's feet (y ~ 400)
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")

    def run(camera, state: Path):
        pipeline = CameraPipeline(config, camera, state_dir=state)
        in_window, alerts, windows = set(), [], []
        for frame in demo_clip_frames(shared_dir, 300, t0=1_800_000_000.0):
            top, left = frame.image.shape[0] - height - 30, frame.image.shape[1] - figure.shape[1] - 20
            frame.image[top:top + height, left:left + figure.shape[1]] = figure
            result = pipeline.process(frame)
            alerts += result.alerts
            windows += result.closed_windows
            in_window |= {int(t) for t, box in zip(result.tracks.track_ids, result.tracks.xyxy)
                          if point_in_polygon(foot_point(box), window)}
        windows += pipeline.finish().closed_windows
        on_figure = [a for a in alerts if point_in_polygon(foot_point(np.array(a.box)), window)]
        return in_window, on_figure, sum(w["customers"] for w in windows)

    plain = config.cameras[0]
    tracked, alerted, counted = run(plain, tmp_path / "plain")
    assert tracked and {a.rule for a in alerted} >= {"dress"}  # the figure is a customer in a dress

    masked = plain.model_copy(update={"zones": {"window": ZoneConfig(points=window)}, "not_people": ["window"]})
    tracked_masked, alerted_masked, counted_masked = run(masked, tmp_path / "masked")
    assert tracked_masked == set() and alerted_masked == []
    assert counted_masked == counted - 1 and counted_masked >= 2  # the walkers are still counted


def test_a_person_seen_in_a_staff_only_zone_is_neither_counted_nor_alerted(shared_dir, tmp_path):
    """The demo clip's first 20 s, real models: the woman in the long cardigan walks in from the
    bottom edge and stands at the table; she is customer #1 with an outwear alert at 7.1 s. With the
    strip she walks in through and the place she stands at as a staff-only zone she is staff from her
    first box: no alert, not in the analytics, and no event about her after the one that says so."""
    from conftest import demo_clip_frames
    from edge.config import ZoneConfig, load_config
    from edge.customer_events import CustomerEventLog, CustomerIsStaff
    from edge.pipeline import CameraPipeline

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")

    def run(camera, state: Path):
        events = CustomerEventLog()
        pipeline = CameraPipeline(config, camera, state_dir=state, customer_sinks=[events])
        alerts, windows = [], []
        for frame in demo_clip_frames(shared_dir, 220, t0=1_800_000_000.0):  # 22 s: only her
            result = pipeline.process(frame)
            alerts += result.alerts
            windows += result.closed_windows
        windows += pipeline.finish().closed_windows
        return alerts, sum(w["customers"] for w in windows), events.events

    alerts, counted, _ = run(config.cameras[0], tmp_path / "plain")
    assert [a.rule for a in alerts] == ["outwear"] and counted == 1

    counter = ZoneConfig(points=[[300, 360], [600, 360], [600, 431], [300, 431]])
    staffed = config.cameras[0].model_copy(update={"zones": {"counter": counter}, "staff_only": ["counter"]})
    alerts, counted, events = run(staffed, tmp_path / "staff")
    assert alerts == [] and counted == 0
    [marked] = [i for i, e in enumerate(events) if isinstance(e, CustomerIsStaff)]
    staff_id = events[marked].customer_id
    assert all(getattr(e, "customer_id", None) != staff_id for e in events[marked + 1:])

"""RuleEngine: garment combinations, zones, cameras, once per track, cooldown, schedules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from edge.config import Config, RuleConfig, Schedule, validate
from edge.errors import ConfigError, FashionEdgeError
from edge.rules import RuleEngine, point_in_polygon

MONDAY_NOON = datetime(2026, 11, 23, 12, 0)  # a Monday
FOOT = (320.0, 400.0)
SUIT = RuleConfig(name="suit", when=["suit", "blazer+pants", "jacket+pants"], min_confidence=0.6)
DRESS = RuleConfig(name="dress", when=["dress"])


_FIRED: dict[tuple[int, int], set[str]] = {}  # (engine, customer) -> the customer's fired rules


def fired(engine: RuleEngine, customer: int, garments: dict, when=MONDAY_NOON, foot=FOOT) -> list[str]:
    """Evaluate for customer number ``customer`` (its fired rules kept here, as Customer does)."""
    fired_rules = _FIRED.setdefault((id(engine), customer), set())
    return [m.rule_name for m in engine.evaluate(fired_rules, garments, foot, when)]


def test_suit_as_a_combination_of_garments():
    engine = RuleEngine([SUIT, DRESS], "cam1")
    assert fired(engine, 1, {"blazer": 0.9}) == []  # half a suit
    assert fired(engine, 1, {"pants": 0.9, "t-shirt": 0.8}) == []
    matches = engine.evaluate(set(), {"Blazer": 0.9, "pants": 0.7}, FOOT, MONDAY_NOON)
    assert [(m.rule_name, m.garments) for m in matches] == [("suit", [("blazer", 0.9), ("pants", 0.7)])]
    assert fired(engine, 2, {"suit": 0.8}) == ["suit"]
    assert fired(engine, 3, {"jacket": 0.8, "pants": 0.9, "dress": 0.7}) == ["suit", "dress"]


def test_min_confidence_applies_to_every_garment_of_the_alternative():
    engine = RuleEngine([SUIT], "cam1")
    assert fired(engine, 1, {"blazer": 0.9, "pants": 0.55}) == []
    assert fired(engine, 1, {"blazer": 0.9, "pants": 0.6}) == ["suit"]


def test_first_satisfied_alternative_is_reported():
    engine = RuleEngine([SUIT], "cam1")
    match = engine.evaluate(set(), {"suit": 0.7, "blazer": 0.9, "pants": 0.9}, FOOT, MONDAY_NOON)[0]
    assert match.garments == [("suit", 0.7)]


def test_one_alert_per_customer_per_rule():
    engine = RuleEngine([DRESS], "cam1")
    assert fired(engine, 5, {"dress": 0.9}) == ["dress"]
    assert fired(engine, 5, {"dress": 0.9}, MONDAY_NOON + timedelta(minutes=5)) == []
    assert fired(engine, 6, {"dress": 0.9}) == ["dress"]  # another customer, no cooldown
    fresh: set[str] = set()  # a new customer record
    assert [m.rule_name for m in engine.evaluate(fresh, {"dress": 0.9}, FOOT, MONDAY_NOON)] == ["dress"]
    assert fresh == {"dress"}


def test_cooldown_suppresses_a_second_track_within_the_cooldown():
    rule = RuleConfig(name="dress", when=["dress"], cooldown_s=60)
    engine = RuleEngine([rule, SUIT], "cam1")
    assert fired(engine, 1, {"dress": 0.9}) == ["dress"]
    assert fired(engine, 2, {"dress": 0.9}, MONDAY_NOON + timedelta(seconds=30)) == []
    assert fired(engine, 3, {"suit": 0.9}, MONDAY_NOON + timedelta(seconds=30)) == ["suit"]  # other rule
    # Track 2 was only suppressed, not alerted: it fires once the cooldown has passed.
    assert fired(engine, 2, {"dress": 0.9}, MONDAY_NOON + timedelta(seconds=60)) == ["dress"]
    assert fired(engine, 4, {"dress": 0.9}, MONDAY_NOON + timedelta(seconds=100)) == []  # 40 s after track 2


def test_zones_use_the_foot_point():
    door = [(0, 300), (200, 300), (200, 480), (0, 480)]
    rule = RuleConfig(name="dress", when=["dress"], zones=[door, [(500, 0), (640, 0), (640, 200)]])
    engine = RuleEngine([rule], "cam1")
    assert fired(engine, 1, {"dress": 0.9}, foot=(320, 400)) == []  # outside both
    assert fired(engine, 1, {"dress": 0.9}, foot=(100, 400)) == ["dress"]
    assert fired(engine, 2, {"dress": 0.9}, foot=(630, 50)) == ["dress"]  # inside the triangle
    assert fired(engine, 3, {"dress": 0.9}, foot=(510, 150)) == []  # in its bounding box, not in it


def test_point_in_concave_polygon():
    u_shape = [(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)]
    assert point_in_polygon((5, 20), u_shape) and point_in_polygon((25, 20), u_shape)
    assert not point_in_polygon((15, 20), u_shape)  # the notch
    assert not point_in_polygon((40, 5), u_shape)


def test_camera_filter():
    rule = RuleConfig(name="dress", when=["dress"], cameras=["entrance"])
    assert RuleEngine([rule], "till").names == []
    assert fired(RuleEngine([rule], "till"), 1, {"dress": 0.9}) == []
    assert fired(RuleEngine([rule], "entrance"), 1, {"dress": 0.9}) == ["dress"]


def test_schedule_outside_hours_suppresses():
    rule = RuleConfig(name="dress", when=["dress"], schedule=Schedule(days=["mon", "tue"], start="09:00", end="18:00"))
    engine = RuleEngine([rule], "cam1")
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 23, 8, 59)) == []
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 23, 18, 0)) == []  # end is exclusive
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 25, 12, 0)) == []  # wednesday
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 24, 17, 59)) == ["dress"]  # tuesday


def test_overnight_schedule_belongs_to_the_day_it_starts():
    rule = RuleConfig(name="late", when=["dress"], schedule=Schedule(days=["fri"], start="22:00", end="02:00"))
    engine = RuleEngine([rule], "cam1")
    friday, saturday = datetime(2026, 11, 27), datetime(2026, 11, 28)
    assert fired(engine, 1, {"dress": 0.9}, friday.replace(hour=21, minute=59)) == []
    assert fired(engine, 1, {"dress": 0.9}, friday.replace(hour=1)) == []  # thursday's night
    assert fired(engine, 1, {"dress": 0.9}, saturday.replace(hour=2)) == []
    assert fired(engine, 1, {"dress": 0.9}, saturday.replace(hour=22, minute=30)) == []
    assert fired(engine, 1, {"dress": 0.9}, saturday.replace(hour=1, minute=30)) == ["late"]
    assert fired(engine, 2, {"dress": 0.9}, friday.replace(hour=23)) == ["late"]


def test_schedule_until_midnight():
    rule = RuleConfig(name="dress", when=["dress"], schedule=Schedule(start="20:00", end="24:00"))
    engine = RuleEngine([rule], "cam1")
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 23, 19, 59)) == []
    assert fired(engine, 1, {"dress": 0.9}, datetime(2026, 11, 23, 23, 59)) == ["dress"]


def config_error(rule: dict) -> str:
    """The one line the config model gives for a config with this rule (issue 22, 4: check-config and
    run refuse it alike, before any rule engine is built)."""
    data = {"cameras": [{"name": "cam1", "source": "0"}], "detector": {"model": "d.tflite"},
            "classifier": {"model": "c.tflite"}, "rules": [{"name": "x", "when": ["dress"], **rule}]}
    with pytest.raises(ConfigError) as err:
        validate(Config, data, "store.yaml")
    assert isinstance(err.value, FashionEdgeError) and "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(
    "schedule, field",
    [
        ({"start": "25:00", "end": "24:00"}, "rules[0].schedule.start"),
        ({"start": "08:00", "end": "08:75"}, "rules[0].schedule.end"),
        ({"start": "09:00", "end": "09:00"}, "rules[0].schedule"),
    ],
)
def test_bad_schedule_is_a_one_line_config_error(schedule, field):
    assert config_error({"schedule": schedule}).startswith(f"store.yaml: {field}: ")


def test_the_engine_reads_times_with_the_same_parser():
    """A schedule built without validation still fails in the engine with the config's words."""
    schedule = Schedule.model_construct(days=["mon"], start="10:61", end="24:00")
    rule = RuleConfig.model_construct(name="x", when=["dress"], unless=[], zones=[], cameras=[],
                                      min_confidence=0.5, cooldown_s=0.0, schedule=schedule)
    with pytest.raises(ConfigError, match=r"^rules\[0\]\.schedule\.start: '10:61' is not a time of day"):
        RuleEngine([rule], "cam1")


def test_empty_garment_in_alternative_is_rejected():
    assert config_error({"when": ["blazer+"]}).startswith("store.yaml: rules[0].when: empty garment in 'blazer+'")


def test_unless_vetoes_a_settled_garment_and_waits_for_a_pending_one():
    dress = RuleConfig(name="dress", when=["dress"], unless=["pants", "Shorts"], min_confidence=0.5)
    engine = RuleEngine([dress], "cam1")
    assert fired(engine, 1, {"dress": 0.8, "pants": 0.9}) == []  # a long top over trousers
    assert fired(engine, 2, {"dress": 0.8, "shorts": 0.6}) == []  # labels compare case-insensitively
    assert fired(engine, 3, {"dress": 0.8, "pants": 0.4}) == ["dress"]  # a veto below min_confidence does not count
    # pants still being voted on: wait; pants settled: never; pants given up (no longer pending): fire
    assert engine.evaluate(set(), {"dress": 0.8}, FOOT, MONDAY_NOON, pending={"pants"}) == []
    assert fired(engine, 4, {"dress": 0.8, "pants": 0.7}) == []
    assert engine.evaluate(set(), {"dress": 0.8}, FOOT, MONDAY_NOON, pending={"PANTS"}) == []
    assert [m.rule_name for m in engine.evaluate(set(), {"dress": 0.8}, FOOT, MONDAY_NOON, pending=set())] == ["dress"]
    # pending garments other than the vetoes do not hold a rule
    assert [m.rule_name for m in engine.evaluate(set(), {"dress": 0.8}, FOOT, MONDAY_NOON, pending={"hat"})] == ["dress"]


def test_empty_garment_in_unless_is_rejected():
    assert config_error({"unless": [" "]}).startswith("store.yaml: rules[0].unless: empty garment")


def test_garment_verdicts_are_when_and_unless_without_zone_schedule_or_cooldown():
    """What analytics counts as a dress/suit: the garment test alone (issue 13)."""
    dress = RuleConfig(name="dress", when=["dress"], unless=["pants"], min_confidence=0.5,
                       zones=[[[0, 0], [10, 0], [10, 10]]], cooldown_s=3600)
    engine = RuleEngine([dress, SUIT], "cam1")
    assert engine.garment_verdicts({"dress": 0.8, "pants": 0.9}) == set()  # vetoed
    assert engine.garment_verdicts({"dress": 0.8}, pending={"pants"}) == set()  # waiting on the veto
    assert engine.garment_verdicts({"Dress": 0.8}) == {"dress"}  # outside the zone: still a dress
    assert engine.garment_verdicts({"blazer": 0.9, "pants": 0.7}) == {"suit"}
    assert engine.garment_verdicts({"blazer": 0.9, "pants": 0.5}) == set()  # below min_confidence
    assert fired(engine, 90, {"dress": 0.8}) == []  # the alert itself still needs the zone

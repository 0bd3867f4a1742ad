"""Named zones per camera (cameras[].zones): pixels or normalized, rules refer to them by name, and
the pre-flight checks them against the frame size it reads from the real clip (768x432)."""

from __future__ import annotations

import copy
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

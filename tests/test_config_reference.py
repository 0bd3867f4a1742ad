"""docs/config.md is generated from edge/config.py (python -m edge.config_docs): every field has a
description, the page is current, and its YAML is the schema's defaults."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel

from edge.config import Config, MQTTConfig, parse_config
from edge.config_docs import DOC_PATH, missing_descriptions, render

REPO = Path(__file__).resolve().parents[1]


def _fields(model: type[BaseModel], path: str = "") -> set[str]:
    """Field paths; a mapping of named sections (cameras[].zones) is a leaf here (its entry is shown
    as comments, checked in test_named_sections_are_documented)."""
    out = set()
    for name, field in model.model_fields.items():
        out.add(path + name)
        if typing.get_origin(field.annotation) is dict:
            continue
        args = [field.annotation, *typing.get_args(field.annotation)]
        for sub in args + [a for x in args for a in typing.get_args(x)]:
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out |= _fields(sub, f"{path}{name}.")
    return out


# fields whose value is a free mapping (label -> ...): their keys are data, not fields
MAPPINGS = {"detector.class_conf", "garments.class_conf", "garments.refinements", "classifier.label_map",
            "attributes.thresholds"}


def _keys(node, path: str = "") -> set[str]:
    """Key paths of the page's YAML (list items share their list's path)."""
    out = set()
    for key, value in node.items():
        out.add(path + key)
        if isinstance(value, dict) and path + key not in MAPPINGS | {"cameras.zones"}:
            out |= _keys(value, f"{path}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out |= _keys(value[0], f"{path}{key}.")
    return out


def _blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


def test_every_field_has_a_description():
    assert missing_descriptions() == []


def test_missing_description_is_found():
    class Bare(BaseModel):
        named: int = 1
        nested: MQTTConfig = MQTTConfig()

    assert missing_descriptions(Bare) == ["named", "nested"]


def test_page_is_current():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), "docs/config.md is stale: run python -m edge.config_docs"


def test_check_command_fails_on_a_stale_page(tmp_path):
    stale = tmp_path / "config.md"
    stale.write_text(render().replace("keepalive_s: 30", "keepalive_s: 60"))
    run = subprocess.run([sys.executable, "-m", "edge.config_docs", "--check", "--output", str(stale)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 1 and "is stale" in run.stderr
    fresh = tmp_path / "fresh.md"
    assert subprocess.run([sys.executable, "-m", "edge.config_docs", "--output", str(fresh)], cwd=REPO,
                          capture_output=True, timeout=60).returncode == 0
    assert subprocess.run([sys.executable, "-m", "edge.config_docs", "--check", "--output", str(fresh)], cwd=REPO,
                          capture_output=True, timeout=60).returncode == 0


def test_page_yaml_names_every_field_with_its_default():
    text = DOC_PATH.read_text(encoding="utf-8")
    data: dict = {}
    blocks = _blocks(text)
    for block in blocks[:-1]:  # the last block: the zones example
        data.update(yaml.safe_load(block))
    assert list(data) == list(Config.model_fields)
    assert _keys(data) == _fields(Config), _keys(data) ^ _fields(Config)
    # required fields filled in, the rest as the page shows them: the schema's defaults
    data["cameras"][0].update(name="entrance", source="0")
    data["detector"]["model"] = "x.tflite"
    data["classifier"]["model"] = "y.tflite"
    data["rules"][0].update(name="dress", when=["dress"])
    config = parse_config(data)
    defaults = parse_config({"cameras": [{"name": "entrance", "source": "0"}], "detector": {"model": "x.tflite"},
                             "classifier": {"model": "y.tflite"}, "rules": [{"name": "dress", "when": ["dress"]}]})
    shown, expected = config.model_dump(mode="json"), defaults.model_dump(mode="json")
    # sections that are null by default are shown with their fields (what they take when given)
    nulled = _null_sections(Config, shown)
    assert {"mqtt.tls", "rules.schedule"} <= nulled
    assert shown == expected
    # every field's comments carry its bounds
    assert "# integer; >= 1, <= 65535\n  port: 1883" in text


def _null_sections(model: type[BaseModel], data: dict, path: str = "") -> set[str]:
    """Set every section that is null by default to None in ``data`` (a model_dump); their paths."""
    done = set()
    for name, field in model.model_fields.items():
        args = [field.annotation, *typing.get_args(field.annotation)]
        subs = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        listed = typing.get_origin(field.annotation) is list
        if listed:
            subs = [a for a in typing.get_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not subs or data.get(name) is None:
            continue
        if not field.is_required() and field.get_default(call_default_factory=True) is None:
            data[name] = None
            done.add(path + name)
            continue
        for item in data[name] if listed else [data[name]]:
            done |= _null_sections(subs[0], item, f"{path}{name}.")
    return done


def test_named_sections_are_documented():
    """cameras[].zones (name -> zone): one entry as comments, with every field of a zone."""
    from edge.config import ZoneConfig

    text = DOC_PATH.read_text(encoding="utf-8")
    block = text[text.index("    zones: {}"):]
    block = block[:block.index("```")]
    assert "# <name>:" in block
    for name in ZoneConfig.model_fields:
        assert re.search(rf"^\s*#\s+{name}:", block, flags=re.M), name


def test_zones_example_is_a_valid_config():
    example = yaml.safe_load(_blocks(DOC_PATH.read_text(encoding="utf-8"))[-1])
    example.update(detector={"model": "x.tflite"}, classifier={"model": "y.tflite"})
    config = parse_config(example)
    assert config.rules[0].zone_polygons("entrance") == [[(0.0, 200.0), (768.0, 200.0), (768.0, 432.0), (0.0, 432.0)]]
    assert config.cameras[0].zone_polygon("door")[1] == (0.3 * 768, 216.0)

"""The config reference, docs/config.md, generated from the schema in edge/config.py.

    python -m edge.config_docs            # (re)write docs/config.md
    python -m edge.config_docs --check    # exit 1 when docs/config.md is not what the schema gives

Every field of every section is written as annotated YAML: its meaning (the field's
``description``), its type, its bounds and its default, in the order of the schema. The page is
never edited by hand; tests/test_config_reference.py fails when a field has no description or the
page is stale.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import textwrap
import typing
from pathlib import Path

import annotated_types as at
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import Config
from .paths import repo_root

DOC_PATH = repo_root() / "docs" / "config.md"
COMMAND = "python -m edge.config_docs"
INDENT = "  "
WIDTH = 110  # comment lines are wrapped to this many characters

HEADER = f"""# Configuration reference

Generated from the schema in `edge/config.py` by `{COMMAND}`; do not edit by hand
(`tests/test_config_reference.py` fails when this page and the schema disagree).

A config is one YAML file (`fashion-edge check-config --config FILE` checks it without starting
anything). Unknown keys are refused, every number is checked against its bounds, and a mistake is
one line naming the file and the field (`configs/store.yaml: mqtt.port: ...`). Relative paths are
relative to the config file's folder. `configs/demo.yaml` and `configs/store.yaml` are complete
examples.

Below, every field in schema order: a comment with its meaning, a comment with its type and bounds
(and `required` where there is no default), then the key with its **default** as its value. A
section that is off (`null`) by default shows the fields it takes when given. A list of sections
(`cameras`, `rules`) shows one item; a mapping of named sections (`cameras[].zones`) shows one
entry as comments. Numbers with a unit say it in the name (`_s` seconds, `_px`
pixels, `_ms` milliseconds).
"""


def _models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def type_name(annotation) -> str:
    """A reader's name for a field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [type_name(a) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(names))
        return text + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is tuple:
        return "(" + ", ".join(type_name(a) for a in args) + ")"
    if origin is dict:
        return f"mapping {type_name(args[0])} -> {type_name(args[1])}"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "section"
        if issubclass(annotation, Path):
            return "path"
        if issubclass(annotation, enum.Enum):
            return "one of " + ", ".join(str(m.value) for m in annotation)
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for kind, attr, sign in ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"), (at.Le, "le", "<="), (at.Lt, "lt", "<")):
            if isinstance(item, kind):
                parts.append(f"{sign} {_number(getattr(item, attr))}")
        unit = "item(s)" if typing.get_origin(field.annotation) is list else "character(s)"
        if isinstance(item, at.MinLen):
            parts.append(f"at least {item.min_length} {unit}")
        if isinstance(item, at.MaxLen):
            parts.append(f"at most {item.max_length} {unit}")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            parts.append(f"pattern {pattern}")
    return ", ".join(parts)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_of(field: FieldInfo):
    """The default as plain data (PydanticUndefined when the field is required)."""
    if field.is_required():
        return PydanticUndefined
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def _scalar(value) -> str:
    """One YAML line's value (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def render_model(model: type[BaseModel], indent: str = "", path: str = "") -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        lines += render_field(name, field, indent, path)
    return lines


def render_field(name: str, field: FieldInfo, indent: str = "", path: str = "") -> list[str]:
    """A field's comment lines and its key (a section: its fields below it, indented)."""
    key = f"{path}{name}"
    if not field.description:
        raise ValueError(f"{key}: no description in edge/config.py")
    default = default_of(field)
    nested = _models_in(field.annotation)
    facts = [type_name(field.annotation)]
    if bounds(field):
        facts.append(bounds(field))
    if default is PydanticUndefined:
        facts.append("required")  # else the default is the key's value (a section's: its fields' values)
    lines = [f"{indent}# {text}" for text in textwrap.wrap(field.description, WIDTH - len(indent) - 2)]
    lines.append(f"{indent}# {'; '.join(facts)}")
    if not nested:
        value = "" if default is PydanticUndefined else " " + _scalar(default)
        return lines + [f"{indent}{name}:{value}"]
    if typing.get_origin(field.annotation) is dict:  # name -> section: the default {}, an entry as comments
        entry = render_model(nested[0], indent + INDENT * 2, f"{key}.<name>.")
        return lines + [f"{indent}{name}: {_scalar(default)}", f"{indent}{INDENT}# one entry per name, e.g.:",
                        f"{indent}{INDENT}# <name>:"] + [f"{indent}{INDENT}# {line[len(indent) + len(INDENT):]}"
                                                         for line in entry]
    if typing.get_origin(field.annotation) is list:  # one item, as "- first key"
        lines.append(f"{indent}{name}:")
        inner = indent + INDENT + "  "
        item = render_model(nested[0], inner, f"{key}[].")
        first = next(i for i, line in enumerate(item) if not line.lstrip().startswith("#"))
        item[first] = indent + INDENT + "- " + item[first][len(inner):]
        return lines + item
    lines.append(f"{indent}{name}:" + ("  # null by default; when given:" if default is None else ""))
    return lines + render_model(nested[0], indent + INDENT, f"{key}.")


ZONES_EXAMPLE = """## Zones by name

A camera's zones are named areas of its frame; rules name them (`rules[].zones`), and a customer is
in a zone when the bottom centre of their box (the feet) is inside. Coordinates are frame pixels
(origin top left, what the web page's zone editor writes) or, with `units: normalized`, fractions
0..1 of the frame (how Frigate writes them), which need the camera's `frame_size`. `check-config`
reads a frame of every file source and refuses a `frame_size` that is not the real one and a pixel
zone outside the frame (a zone drawn for 1920x1080 on a 768x432 camera); all points within 0..1
without `units: normalized` are refused as normalized coordinates given as pixels.

```yaml
cameras:
  - name: entrance
    source: rtsp://camera-entrance.local:554/stream1
    frame_size: [768, 432]
    zones:
      suits_rail: {points: [[0, 200], [768, 200], [768, 432], [0, 432]]}          # pixels
      door: {units: normalized, points: [[0, 0.5], [0.3, 0.5], [0.3, 1], [0, 1]]}  # Frigate-style
      window: {points: [[600, 40], [768, 40], [768, 300], [600, 300]]}   # two mannequins in the window
      counter: {points: [[0, 0], [200, 0], [200, 120], [0, 120]]}     # behind the till
    entrances: [door]           # people walk in and out there (docs/identity.md)
    not_people: [window]        # person boxes with their feet there are no people
    staff_only: [counter]       # whoever stands there is staff
rules:
  - name: suit
    when: [person.suit]
    cameras: [entrance]         # a zone name must be defined on every camera of the rule
    zones: [suits_rail]         # names, or a polygon in pixels as before
```

**Not people.** A fashion store is full of person-shaped things: mannequins in dresses and suits,
mirrors that show every customer a second time, posters and screens. The person detector boxes
them as it boxes people, and each would be a customer in the analytics and, dressed, an alert
("a customer in a dress" for the mannequin in the window). Draw a zone around each and list it in
the camera's `not_people`: a person box whose feet (bottom centre) lie inside is dropped before
tracking, as Frigate's object masks drop detections at fixed places. Draw a mirror's zone on the
glass, above the floor where customers stand in front of it: a customer's feet are on the floor,
their reflection's inside the glass.

**Staff.** Staff walk through all day, some in suits: each pass would be counted, and once the
gallery has forgotten them (`identity.memory_s`), alerted again. A zone where only staff stand
(behind the counter, the stock-room door) listed in the camera's `staff_only` says who they are, by
place only (never a face or an appearance kept beyond the customer's record): a person whose feet
are seen there is staff from then on, for as long as the record is remembered. The analytics
withdraw them (a window already closed keeps them) and no rule fires for them; an alert sent before
they reached the zone stays sent, so draw it where staff come in (the stock-room door), not only
where they stand.
"""


def render() -> str:
    body = [HEADER]
    for name, field in Config.model_fields.items():
        body += [f"## `{name}`", "", "```yaml", *render_field(name, field), "```", ""]
    body.append(ZONES_EXAMPLE)
    return "\n".join(body).rstrip("\n") + "\n"


def missing_descriptions(model: type[BaseModel] = Config, path: str = "") -> list[str]:
    """Field paths without a description (every level, list items as ``[]``)."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{path}{name}"
        if not field.description:
            out.append(key)
        for sub in _models_in(field.annotation):
            out += missing_descriptions(sub, f"{key}{'[]' if typing.get_origin(field.annotation) is list else ''}.")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Write (or check) docs/config.md from edge/config.py.")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/config.md is stale")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help="where to write (default docs/config.md)")
    args = parser.parse_args(argv)
    missing = missing_descriptions()
    if missing:
        print(f"edge/config.py: no description: {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run {COMMAND}", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Alert rules: which settled garments, where, when, and how often.

A rule's ``when`` lists alternatives; each alternative is garment labels joined by ``+`` and
fires when *all* of them are among the customer's settled garments with a score of at least
``min_confidence`` (e.g. suit: ``['suit', 'blazer+pants', 'jacket+pants']``). Labels compare
case-insensitively. The first satisfied alternative (in the order written) is reported.

A rule that matches the garments still has to pass, in this order:

* ``unless``: none of these garments is among the customer's settled garments at
  ``min_confidence`` (dress unless pants: a long top over trousers is no dress). Garments settle
  one by one, so while a listed garment is still being voted on (``pending``: it has counted
  votes but is neither settled nor given up) the rule waits instead of firing;
* ``cameras``: the rule is ignored on cameras it does not list (empty = every camera);
* ``zones``: the foot point (bottom centre of the person box) lies inside one polygon, a named zone
  of the camera (``cameras[].zones``, in pixels on this camera) or a literal polygon (empty =
  anywhere); ray casting, frame pixels;
* ``schedule``: ``when`` (the caller's local time) falls on a listed day between start and end.
  ``end`` may be ``24:00``; ``start > end`` spans midnight and belongs to the day it *starts*
  on (fri 22:00-02:00 covers Saturday 01:00);
* once per customer: a customer whose record (``Customer.fired_rules``) holds this rule never
  gets it again;
* ``cooldown_s``: at least this long since the rule's previous alert on this camera (any track).

A match blocked by zone, schedule or cooldown is not remembered: the same customer can still
fire later, e.g. after walking into the zone or once the cooldown has passed.

``RuleEngine.garment_verdicts`` is the garment half alone (``when`` satisfied, no ``unless``
garment settled or pending), without zone, schedule, once-per-customer or cooldown: what the rules
decided a customer *wears*. Analytics counts shares from it (``edge/analytics/windows.py``), so a dress
vetoed by ``unless: [pants]`` is no dress there either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import RuleConfig, minutes_of_day
from .errors import ConfigError

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class RuleMatch:
    rule_name: str
    garments: list[tuple[str, float]]  # the satisfied alternative's labels with their scores


def _minutes(text: str, field: str, allow_24: bool) -> int:
    # The config's validators refuse a bad time already (check-config and run alike, one line);
    # this is the same parser, kept for a RuleConfig built without validation.
    try:
        return minutes_of_day(text, allow_24)
    except ValueError as exc:
        raise ConfigError(str(exc), field=field) from None


def point_in_polygon(point: tuple[float, float], polygon: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting (a point exactly on an edge may fall either way)."""
    x, y = point
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


class _Rule:
    def __init__(self, cfg: RuleConfig, index: int, camera: str | None = None):
        self.cfg = cfg
        self.name = cfg.name
        self.zones = cfg.zone_polygons(camera)  # pixel polygons on this camera (named zones resolved)
        self.alternatives: list[list[str]] = []
        for alternative in cfg.when:
            labels = [label.strip().lower() for label in alternative.split("+")]
            if not all(labels):
                raise ConfigError(f"empty garment in {alternative!r}", field=f"rules[{index}].when")
            self.alternatives.append(labels)
        self.vetoes = {label.strip().lower() for label in cfg.unless}
        if not all(self.vetoes):
            raise ConfigError("empty garment", field=f"rules[{index}].unless")
        self.schedule = None
        if cfg.schedule is not None:
            start = _minutes(cfg.schedule.start, f"rules[{index}].schedule.start", allow_24=False)
            end = _minutes(cfg.schedule.end, f"rules[{index}].schedule.end", allow_24=True)
            if start == end:
                raise ConfigError("start equals end (an empty schedule)", field=f"rules[{index}].schedule")
            self.schedule = (set(cfg.schedule.days), start, end)
        self.last_alert: datetime | None = None

    def garments_match(self, garments: dict[str, float]) -> list[tuple[str, float]] | None:
        for labels in self.alternatives:
            if all(garments.get(label, -1.0) >= self.cfg.min_confidence for label in labels):
                return [(label, garments[label]) for label in labels]
        return None

    def vetoed_or_waiting(self, garments: dict[str, float], pending: set[str]) -> bool:
        settled_veto = any(garments.get(label, -1.0) >= self.cfg.min_confidence for label in self.vetoes)
        return settled_veto or bool(self.vetoes & pending)

    def in_zone(self, foot_point: tuple[float, float]) -> bool:
        return not self.zones or any(point_in_polygon(foot_point, zone) for zone in self.zones)

    def in_schedule(self, when: datetime) -> bool:
        if self.schedule is None:
            return True
        days, start, end = self.schedule
        minute = when.hour * 60 + when.minute
        if start < end:
            return _DAYS[when.weekday()] in days and start <= minute < end
        # Overnight: the evening part belongs to today, the early-morning part to yesterday.
        if minute >= start:
            return _DAYS[when.weekday()] in days
        if minute < end:
            return _DAYS[(when - timedelta(days=1)).weekday()] in days
        return False

    def cooled_down(self, when: datetime) -> bool:
        if self.last_alert is None or self.cfg.cooldown_s <= 0:
            return True
        return (when - self.last_alert).total_seconds() >= self.cfg.cooldown_s


class RuleEngine:
    """The rules of one camera. ``evaluate`` is called per customer per frame once garments settle;
    which rules a customer already got is the customer's own state (``fired_rules``)."""

    def __init__(self, rules: list[RuleConfig], camera: str):
        self.camera = camera
        self.rules = [
            _Rule(rule, index, camera) for index, rule in enumerate(rules) if not rule.cameras or camera in rule.cameras
        ]

    def evaluate(self, fired_rules: set[str], garments: dict[str, float], foot_point: tuple[float, float],
                 when: datetime, pending: set[str] | frozenset[str] = frozenset()) -> list[RuleMatch]:
        """``fired_rules``: rules this customer already got (updated in place with the new ones);
        ``garments``: the customer's settled garments (label -> score); ``pending``: garment
        labels still being voted on (only ``unless`` looks at them)."""
        garments = {label.strip().lower(): float(score) for label, score in garments.items()}
        pending = {label.strip().lower() for label in pending}
        matches: list[RuleMatch] = []
        for rule in self.rules:
            if rule.name in fired_rules:
                continue
            matched = rule.garments_match(garments)
            if matched is None or rule.vetoed_or_waiting(garments, pending):
                continue
            if not rule.in_zone(foot_point) or not rule.in_schedule(when):
                continue
            if not rule.cooled_down(when):
                continue
            fired_rules.add(rule.name)
            rule.last_alert = when
            matches.append(RuleMatch(rule.name, matched))
        return matches

    def garment_verdicts(self, garments: dict[str, float],
                         pending: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """Names of the rules whose garment test accepts this customer now: a ``when`` alternative
        satisfied and no ``unless`` garment settled or still pending. Zone, schedule, cooldown and
        once-per-customer are about alerting, not about what is worn, and are not applied."""
        garments = {label.strip().lower(): float(score) for label, score in garments.items()}
        pending = {label.strip().lower() for label in pending}
        return {rule.name for rule in self.rules
                if rule.garments_match(garments) is not None and not rule.vetoed_or_waiting(garments, pending)}

    @property
    def names(self) -> list[str]:
        return [rule.name for rule in self.rules]

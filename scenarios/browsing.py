"""Browsing (issue 21): customers who stay in view, turn, stand behind a counter, pass behind each
other, leave for a few seconds and come back, with passers-by crossing behind them.

People, validation only (``store_walk``'s loaders, the attribute training's split):

* ``browser``: PETA val identities with at least ``MIN_VIEWS`` views (front, side, back of one
  person; PETA skirt-wearers left out, their dress truth is unknown), picked per clothing group
  (``PETA_CAST``), and colorful-fashion val people in dresses (one photo: its mirror image is its
  other view, a person facing the other way);
* ``returner``: two of the browsers (a dress and a PETA jacket) who walk out of a side edge, stay
  away ``AWAY_S`` seconds and walk back in by the same edge: the *same* truth id all along;
* ``passer_by``: PETA val people crossing the frame on the far lane, behind everyone else.

Layout (``layout``, deterministic for a seed): the store backdrop of ``render.Scenario``, 960x540
at 10 fps, JPEG quality 50, people 80-250 px tall by perspective (``store_walk``'s heights). A
counter (``Rail``) stands across the middle of the floor: people standing behind it have the
lower third of their body hidden, people in front of it are drawn over it. Each browser enters from
a side edge, walks to a spot, stands there a few seconds turning (the view changes every
``TURN_S`` seconds), walks to the next spot (another depth: they pass in front of and behind
each other), ... for a visit of ``STAY_S`` seconds, then leaves by the nearest edge (or is still
there at the end of the clip). Paths do not depend on the clip's length: ``build(seed, seconds=20)``
is the first 20 s of the 50-s benchmark clip of that seed.

Truth (``BrowsingScenario.truth``): every person's whole pasted rectangle (clipped to the frame),
as in the other scenarios, except that a person of whom less than ``MIN_VISIBLE`` of the box is
visible (hidden behind nearer people or the counter) is left out of that frame's truth: nothing
can be seen to track. ``all_truth`` keeps them (the alert-box check uses it).

Scores (``score_browsing``): ``score.score`` (identity, per-rule alerts, the per-person figures of
``score.visit_figures``: repeat alerts per rule across track ids, alerts off the person) plus the
returners (counted once? alerted once per rule?) and the browsers' count apart from passers-by.
``run_and_score(config)`` is the one call for a benchmark or a CI test with the real models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .photos import Person
from .render import Scenario, TruthBox, Visit
from .store_walk import (WalkPerson, _height, load_colorful_fashion_people, load_peta_people)

MIN_VIEWS = 3
MIN_VISIBLE = 0.25  # below this share of its box visible a person is hidden (not in truth)
STAY_S = (20.0, 40.0)  # a browser's visit
TURN_S = (1.5, 4.0)  # a standing browser turns (another view) this often
STAND_S = (3.0, 7.0)  # at one spot
AWAY_S = (4.0, 8.0)  # a returner is out of view this long (the issue: 3-10 s)
SPEED = (0.5, 0.8)  # walking speed, person heights per second
PASSER_SPEED = (1.0, 1.3)
PASSER_START_S = (2.0, 40.0)
FAR_LANE = (0.64, 0.69)  # passers-by foot y (share of the frame height)
BROWSE_LANE = (0.74, 0.96)  # browsers' foot y
ROLES = ("browser", "returner", "passer_by")
# PETA browsers by clothing truth: jackets (the outwear rule), a suit, a dark outfit (the demo's
# false dress from behind), someone else. The first jacket is a returner.
PETA_CAST = (("outwear", 2), ("suit", 1), ("dark_outfit", 1), ("other", 1))


@dataclass
class Rail:
    """The counter / clothes rail across the floor: drawn over anyone whose feet are behind its
    front edge (``front`` y); its top is ``top`` y, from ``x1`` to ``x2``."""

    x1: int
    x2: int
    top: int
    front: int

    def draw(self, image: np.ndarray) -> None:
        cv2.rectangle(image, (self.x1, self.top), (self.x2, self.front), (40, 60, 95), -1)  # wood
        cv2.rectangle(image, (self.x1, self.top), (self.x2, self.top + 6), (150, 170, 190), -1)  # its top
        for x in range(self.x1 + 20, self.x2 - 10, 60):  # panels
            cv2.line(image, (x, self.top + 10), (x, self.front - 4), (30, 45, 70), 2)

    def hides(self, foot: float) -> bool:
        return foot < self.front


class BrowsingScenario(Scenario):
    """``render.Scenario`` with a counter in depth order and hidden people out of the truth."""

    def __init__(self, *args, counter: Rail, **kwargs):
        self.counter = counter
        self._visible_cache: dict[int, dict[int, float]] = {}
        super().__init__(*args, **kwargs)

    def _here(self, index: int):
        return sorted(((v, v.frames[index]) for v in self.visits if index in v.frames), key=lambda item: item[1][1])

    def frame(self, index: int, backdrop: np.ndarray | None = None) -> np.ndarray:
        image = (self.backdrop() if backdrop is None else backdrop).copy()
        counter_drawn = False
        for visit, place in self._here(index):  # farther (higher foot) first
            if not counter_drawn and not self.counter.hides(place[1]):
                self.counter.draw(image)
                counter_drawn = True
            self._paste(image, visit.person, place)
        if not counter_drawn:
            self.counter.draw(image)
        return self._as_camera_saw(image)

    def visible(self, index: int) -> dict[int, float]:
        """customer -> share of its (frame-clipped) box that is visible in frame ``index``."""
        if index in self._visible_cache:
            return self._visible_cache[index]
        w, h = self.size
        owner = np.full((h, w), -1, np.int32)  # who is seen at each pixel (a z-buffer of rectangles)
        boxes = {}
        counter_drawn = False
        for visit, place in self._here(index):
            if not counter_drawn and not self.counter.hides(place[1]):
                owner[self.counter.top:self.counter.front + 1, self.counter.x1:self.counter.x2 + 1] = -2
                counter_drawn = True
            x1, y1, x2, y2 = (int(round(v)) for v in self._rect(visit.person, place))
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if x2 <= x1 or y2 <= y1:
                continue
            owner[y1:y2, x1:x2] = visit.customer
            boxes[visit.customer] = (x2 - x1) * (y2 - y1)
        if not counter_drawn:
            owner[self.counter.top:self.counter.front + 1, self.counter.x1:self.counter.x2 + 1] = -2
        ids, counts = np.unique(owner[owner >= 0], return_counts=True)
        seen = dict(zip(ids.tolist(), counts.tolist()))
        out = {c: seen.get(c, 0) / area for c, area in boxes.items()}
        if len(self._visible_cache) > 4096:
            self._visible_cache.clear()
        self._visible_cache[index] = out
        return out

    def all_truth(self, index: int) -> list[TruthBox]:
        return super().truth(index)

    def truth(self, index: int) -> list[TruthBox]:
        visible = self.visible(index)
        return [t for t in super().truth(index) if visible.get(t.customer, 0.0) >= MIN_VISIBLE]


@dataclass
class Browsing:
    scenario: BrowsingScenario
    people: list[WalkPerson]  # index = truth id (the scenario's customer)
    roles: list[str]  # per person: browser / returner / passer_by
    away: dict[int, tuple[int, int]] = field(default_factory=dict)  # returner -> (last frame before, first back)

    def of_role(self, *roles: str) -> list[int]:
        return [i for i, role in enumerate(self.roles) if role in roles]


# -- cast -------------------------------------------------------------------------------------

def _mirrored(person: WalkPerson) -> WalkPerson:
    """A one-photo person with its mirror image as a second view (facing the other way)."""
    view = person.views[0]
    flipped = Person(view.photo_id + ":mirrored", np.ascontiguousarray(view.image[:, ::-1]), view.garments)
    return WalkPerson(person.source, person.identity, [view, flipped], person.target, person.groups)


def load_cast(datasets: Path, seed: int = 0, peta_cast=PETA_CAST, n_dress: int = 2, n_passers: int = 5,
              limit: int | None = None) -> list[tuple[WalkPerson, str]]:
    """(person, role) at random (seeded) from the validation people of ``datasets``
    (``../shared/datasets``): PETA browsers per (group, how many) of ``peta_cast`` (by the
    people's clothing truth, never by a model's answer), ``n_dress`` dresses, ``n_passers``
    passers-by. ``limit`` reads only that many rows / photos of each source."""
    rng = np.random.default_rng(seed)
    peta = load_peta_people(datasets / "peta", limit)
    dresses = [p for p in load_colorful_fashion_people(datasets / "colorful-fashion", limit) if "dress" in p.groups]
    multi = [p for p in peta if len(p.views) >= MIN_VIEWS and "dress_or_skirt" not in p.groups]
    browsers: list[WalkPerson] = []
    for group, n in peta_cast:
        candidates = [p for p in multi if group in p.groups and p not in browsers]
        if len(candidates) < n:
            raise ValueError(f"{datasets}: {len(candidates)} PETA val identities with {MIN_VIEWS}+ views "
                             f"in group {group!r}; need {n}")
        browsers += [candidates[i] for i in sorted(rng.choice(len(candidates), n, replace=False))]
    if len(dresses) < n_dress:
        raise ValueError(f"{datasets}: {len(dresses)} colorful-fashion val people in dresses; need {n_dress}")
    dressed = [_mirrored(dresses[i]) for i in sorted(rng.choice(len(dresses), n_dress, replace=False))]
    taken = {p.identity for p in browsers}
    others = [p for p in peta if p.identity not in taken]
    passers = [WalkPerson(p.source, p.identity, p.views[:1], p.target, p.groups)
               for p in (others[i] for i in sorted(rng.choice(len(others), n_passers, replace=False)))]
    # the returners: the first dress and the first PETA identity (of the first group: a jacket)
    cast = [(dressed[0], "returner"), (browsers[0], "returner")]
    cast += [(p, "browser") for p in browsers[1:] + dressed[1:]]
    order = rng.permutation(len(cast))
    return [cast[i] for i in order] + [(p, "passer_by") for p in passers]


# -- layout -----------------------------------------------------------------------------------

class _Path:
    """One person's frames: frame -> (centre x, foot y, height) and the view shown."""

    def __init__(self, start: int, x: float, foot: float, h: int):
        self.frame, self.x, self.foot, self.h = start, x, foot, h
        self.places: dict[int, tuple[float, float, float]] = {}
        self.view_of: dict[int, int] = {}
        self.view = 0

    def _emit(self):
        self.places[self.frame] = (self.x, self.foot, _height(self.foot, self.h))
        self.view_of[self.frame] = self.view
        self.frame += 1

    def walk(self, x: float, foot: float, speed: float, fps: float) -> None:
        mean_h = (_height(self.foot, self.h) + _height(foot, self.h)) / 2
        distance = np.hypot(x - self.x, 2.0 * (foot - self.foot))  # depth counts double (foreshortening)
        n = max(2, int(round(distance / (speed * mean_h) * fps)))
        x0, f0 = self.x, self.foot
        for i in range(1, n + 1):
            a = i / n
            self.x, self.foot = x0 + (x - x0) * a, f0 + (foot - f0) * a
            self._emit()

    def stand(self, n: int, turn_every: list[int], n_views: int, rng) -> None:
        x0 = self.x
        phase = rng.uniform(0, 6)
        turns = set(np.cumsum(turn_every).tolist())
        for i in range(n):
            if i in turns or i == 0:
                self.view = (self.view + 1) % n_views  # turns on arrival and every few seconds
            self.x = x0 + 3 * np.sin(i / 3 + phase)  # swaying
            self._emit()
        self.x = x0

    def skip(self, n: int) -> None:
        self.frame += n


def _outside(edge_left: bool, person: WalkPerson, foot: float, w: int, h: int) -> float:
    image = person.views[0].image
    half = 0.6 * _height(foot, h) * image.shape[1] / image.shape[0]
    return -half if edge_left else w + half


def _spot(counter: Rail, w: int, h: int, rng) -> tuple[float, float]:
    if rng.random() < 0.35:  # behind the counter
        return rng.uniform(counter.x1 + 30, counter.x2 - 30), counter.front - rng.uniform(6, 18)
    return rng.uniform(0.08, 0.92) * w, rng.uniform(*BROWSE_LANE) * h


def _browse(person: WalkPerson, role: str, start: int, counter: Rail, fps: float,
            size: tuple[int, int], rng) -> tuple[_Path, tuple[int, int] | None]:
    w, h = size
    from_left = rng.random() < 0.5
    foot = rng.uniform(*BROWSE_LANE) * h
    path = _Path(start, _outside(from_left, person, foot, w, h), foot, h)
    speed = rng.uniform(*SPEED)
    stay = int(round(rng.uniform(*STAY_S) * fps))
    leave_at = start + stay
    away, away_at = None, None
    if role == "returner":
        away_at = start + int(round(rng.uniform(0.3, 0.45) * stay))
    n_views = len(person.views)
    while path.frame < leave_at:
        if away_at is not None and path.frame >= away_at and away is None:
            edge_left = path.x < w / 2
            path.walk(_outside(edge_left, person, path.foot, w, h), path.foot, speed, fps)
            last = path.frame - 1
            gone = int(round(rng.uniform(*AWAY_S) * fps))
            path.skip(gone)
            leave_at += gone  # the time away is not part of the visit's stay
            away = (last, path.frame)
            continue  # walks back in from that edge to the next spot
        x, foot = _spot(counter, w, h, rng)
        path.walk(x, foot, speed, fps)
        n = int(round(rng.uniform(*STAND_S) * fps))
        turns = [int(round(rng.uniform(*TURN_S) * fps)) for _ in range(8)]
        path.stand(n, turns, n_views, rng)
    # leaves by the nearest edge (after the clip's end for some: those frames are cut)
    path.walk(_outside(path.x < w / 2, person, path.foot, w, h), path.foot, speed, fps)
    return path, away


def _pass_by(person: WalkPerson, start: int, fps: float, size: tuple[int, int], rng) -> _Path:
    w, h = size
    foot = rng.uniform(*FAR_LANE) * h
    from_left = rng.random() < 0.5
    path = _Path(start, _outside(from_left, person, foot, w, h), foot, h)
    path.walk(_outside(not from_left, person, foot, w, h), foot, rng.uniform(*PASSER_SPEED), fps)
    return path


def layout(cast: list[tuple[WalkPerson, str]], fps: float = 10, size=(960, 540), seconds: float = 50.0,
           seed: int = 0, jpeg_quality: int = 50, enter_s: tuple[float, float] = (0.0, 8.0)) -> Browsing:
    """Browsers enter ``enter_s`` seconds into the clip (one after another, sorted), passers-by at
    random times (``PASSER_START_S``); the clip lasts ``seconds`` (people still there are cut off by
    its end). Everyone's path is drawn whatever ``seconds`` is: a shorter clip is the first
    ``seconds`` of a longer one of the same seed (a quick CI variant of the benchmark clip)."""
    rng = np.random.default_rng(seed)
    w, h = size
    n_frames = int(round(seconds * fps))
    front = int(0.80 * h)
    counter = Rail(int(0.32 * w), int(0.68 * w), front - int(0.10 * h), front)
    visits, away, people, roles = [], {}, [], []
    starts = sorted(rng.uniform(*enter_s, size=len(cast)))
    for customer, (person, role) in enumerate(cast):
        if role == "passer_by":
            start = int(round(rng.uniform(*PASSER_START_S) * fps))
            path = _pass_by(person, start, fps, size, rng)
        else:
            path, gap = _browse(person, role, int(round(starts[customer] * fps)), counter, fps, size, rng)
            if gap is not None and gap[1] < n_frames:  # back within the clip
                away[customer] = gap
        people.append(person)
        roles.append(role)
        frames = sorted(f for f in path.places if f < n_frames)
        run: list[int] = []  # consecutive frames with the same view: one Visit each
        for f in frames + [None]:
            if run and (f is None or path.view_of[f] != path.view_of[run[-1]] or f != run[-1] + 1):
                view = person.views[path.view_of[run[0]]]
                visits.append(Visit(customer, view, {i: path.places[i] for i in run}))
                run = []
            if f is not None:
                run.append(f)
    scenario = BrowsingScenario("browsing", fps, size, visits, jpeg_quality=jpeg_quality, store_backdrop=True,
                                seed=seed, counter=counter)
    return Browsing(scenario, people, roles, away)


def build(datasets: Path, seed: int = 0, seconds: float = 50.0, fps: float = 10, size=(960, 540),
          limit: int | None = None, **cast_options) -> Browsing:
    """The browsing clip of ``seed`` from the validation people under ``datasets``."""
    return layout(load_cast(datasets, seed, limit=limit, **cast_options), fps=fps, size=size, seconds=seconds,
                  seed=seed)


def signature(browsing: Browsing) -> list[str]:
    return [f"{role}:{p.source}:{p.identity}" for p, role in zip(browsing.people, browsing.roles)]


# -- scoring ----------------------------------------------------------------------------------

def score_browsing(browsing: Browsing, record, min_dwell_s: float) -> dict:
    from .score import match_tracks, score, visit_figures

    figures = score(browsing.scenario, record, min_dwell_s)
    _, rows = visit_figures(browsing.scenario, record, match_tracks(browsing.scenario, record), min_dwell_s)
    fps = browsing.scenario.fps
    for row in rows:
        row["role"] = browsing.roles[row["person"]]
        row["identity"] = f"{browsing.people[row['person']].source}:{browsing.people[row['person']].identity}"
        row["views"] = len(browsing.people[row["person"]].views)
    returning = []
    by_person = {row["person"]: row for row in rows}  # people in the clip (a short one may miss some)
    for person, (last, back) in sorted(browsing.away.items()):
        row = by_person[person]
        alerted = row["alerts"]
        returning.append({
            "person": person, "identity": row["identity"], "away_s": round((back - last - 1) / fps, 1),
            "back_at_s": round(back / fps, 1), "tracks": row["tracks"], "counted_tracks": row["counted_tracks"],
            "counted_once": row["counted_tracks"] == 1, "alerts": alerted,
            # None: no alert at all (nothing to repeat); True: every rule that fired fired once
            "alerted_once": None if not alerted else all(n == 1 for n in alerted.values()),
        })
    staying = [r for r in rows if r["role"] != "passer_by"]
    figures.update({
        "roles": {role: browsing.roles.count(role) for role in ROLES},
        "browsers_counted": sum(r["counted_tracks"] for r in staying),
        "passers_by_counted": sum(r["counted_tracks"] for r in rows if r["role"] == "passer_by"),
        "returning": returning,
        "per_person": rows,
        "hidden_truth_share": _hidden_share(browsing.scenario),
    })
    return figures


def _hidden_share(scenario: BrowsingScenario) -> float:
    """Share of people-frames left out of truth because the person was hidden."""
    everyone = kept = 0
    for index in range(scenario.n_frames):
        everyone += len(scenario.all_truth(index))
        kept += len(scenario.truth(index))
    return round(1 - kept / max(everyone, 1), 3)


def run_and_score(config, datasets: Path, seed: int = 0, models=None, browsing: Browsing | None = None,
                  progress: bool = False, **build_options) -> dict:
    """Build the clip (or take ``browsing``), run it through the daemon's ``CameraPipeline`` with
    ``config`` (a ``Config`` or a config path; ``models`` reused when given) and score it."""
    from edge.config import Config, load_config
    from edge.pipeline import Models
    from .run import WithProgress, run_scenario

    if not isinstance(config, Config):
        config = load_config(config)
    browsing = browsing or build(datasets, seed, **build_options)
    scenario = browsing.scenario
    if progress:
        scenario = WithProgress(scenario, "browsing")
    record = run_scenario(scenario, config, models or Models(config))
    figures = score_browsing(browsing, record, config.analytics.min_dwell_s)
    figures["cast"] = signature(browsing)
    figures["config_rules"] = [rule.name for rule in config.rules]
    return figures


# -- the store config on a rendered clip --------------------------------------------------------

def store_config_on_clip(path: Path, repo: Path, shared: Path):
    """``configs/store.yaml`` runnable here: its model paths under /opt/fashion-edge/models point
    at the repo's ``models/`` and ``shared/models/``, and its rules' ``schedule`` and ``zones``
    are dropped (the clip's synthetic time is 00:00 UTC, outside opening hours, and the zone is
    drawn for another camera's pixels). Everything else (tracker, consensus, thresholds, cooldowns,
    min_dwell_s) is the store's."""
    from edge.config import load_config

    config = load_config(path)
    opt = Path("/opt/fashion-edge/models")

    def local(p: Path | None) -> Path | None:
        if p is None or not str(p).startswith(str(opt)):
            return p
        rel = Path(p).relative_to(opt)
        for base in (repo / "models", shared / "models"):
            if (base / rel).exists():
                return (base / rel).resolve()
        return p

    for section, names in ((config.detector, ("model", "manifest")), (config.garments, ("detector", "manifest")),
                           (config.classifier, ("model", "manifest")), (config.attributes, ("model", "manifest"))):
        for name in names:
            setattr(section, name, local(getattr(section, name)))
    for rule in config.rules:
        rule.schedule, rule.zones = None, []
    return config

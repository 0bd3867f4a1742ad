"""Store walk (issue 20): CCTV-sized customers walking across a store, rendered from *validation*
people only, each with the clothing truth the person-attribute model is judged by.

People (``load_pool``):

* PETA val identities, split exactly as the training does (``training.attributes.data.load_peta``:
  a seeded hash of the identity, ``val_fraction`` 0.2, seed 42 as in ``configs/attributes.yaml``).
  An identity's views (up to 4: front, side, back) are shown one after another along its walk;
* Clothing Co-Parsing val images (``load_co_parsing``, same hash on the image name), cut to the
  person box from the pixel mask when there is one (the whole photo otherwise);
* colorful-fashion ``splits/val.txt`` people (``photos.load_people``): the dresses, skirts and long
  coats that PETA cannot label as such.

Truth per customer is the training's own label derivation (``training.attributes.labels``): the
rule's attribute column of the person's target row, 1 = positive, 0 = negative, unknown = the
customer is *excluded* from that rule's precision and recall. In particular a PETA skirt-wearer
(PETA's skirt means "dress or skirt") has an unknown dress and is excluded from dress scoring (its
dress alerts are counted apart, ``on_excluded``); a PETA suit needs both upperBodySuit and
lowerBodySuits; a co-parsing suit needs the masks' jacket-trousers colour match (a tailored
jacket over other trousers is no suit; without a mask it is excluded). Groups (``groups``, a
customer may be in several) name the cases the issue asks about:

* ``dress``, ``suit``, ``outwear``, ``shorts``, ``skirt`` (a skirt and no dress): target = 1;
* ``dress_or_skirt``: a PETA skirt (dress unknown);
* ``coat``: a co-parsing ``coat`` tag, or a colorful-fashion jacket box that reaches at least
  ``LONG_COAT_REACH`` of the way down the person's garment extent (a coat or long jacket);
* ``dark_outfit``: PETA black upper body, black lower body, trousers or jeans, no skirt (the
  demo's false dress was such a man seen from behind; PETA views include backs);
* ``other``: none of the above.

Layout (``walk``): a store backdrop (``render.Scenario``'s), people pasted as whole rectangles by
the same renderer, 80-250 px tall by perspective (farther lanes higher and smaller), JPEG quality
50. Each customer enters from a side edge (cut by it), and either crosses, walks in, browses a
few seconds and leaves the way they came, or walks diagonally towards the camera; the next one
starts 0.5-4 s later, so a few are in view at once and nearer ones hide farther ones.

Scoring (``score_walk``): a track belongs to the customer whose truth box it matched most often
at IoU >= ``OWNER_IOU`` (``score.match_tracks``; stricter than the 0.3 of the identity figures)
provided that was in at least ``OWNER_SHARE`` of the track's frames: a bystander standing inside
a PETA crop, or a box over two people, is nobody's customer and its alerts are false. An alert
counts for its track's customer. Per rule: ``recall`` =
positive customers with at least one alert / positive customers; ``precision`` = alerts on
positive customers / alerts on positive or negative customers or on tracks matched to nobody
(``unmatched``, counted false); alerts on excluded customers are reported (``on_excluded``) but
not in precision; ``duplicates`` = alerts beyond the first of a rule per customer.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .photos import Person, load_people, read_classes
from .render import Scenario, Visit
from .score import RunRecord, match_tracks, score

RULES = ("dress", "suit", "outwear")  # rule name -> the attribute column of the same name
OWNER_IOU, OWNER_SHARE = 0.5, 0.5
LONG_COAT_REACH = 0.6
VAL_FRACTION, SPLIT_SEED = 0.2, 42  # configs/attributes.yaml
GROUPS = ("suit", "dress", "dress_or_skirt", "skirt", "outwear", "coat", "dark_outfit", "shorts", "other")
# Heights by perspective: a foot on the far lane (FAR of the frame height) is MIN_H px tall.
MIN_H, MAX_H, FAR, NEAR = 80.0, 250.0, 0.66, 0.98

# The default cast: (source, group, how many), drawn at random (seeded) in this order, a person at
# most once. Chosen by what each source can label, never by what the models answer.
DEFAULT_CAST = (
    ("peta", "suit", 14), ("peta", "dress_or_skirt", 8), ("peta", "dark_outfit", 10), ("peta", "shorts", 8),
    ("peta", "outwear", 8), ("peta", "other", 8),
    ("co-parsing", "suit", 6), ("co-parsing", "dress", 10), ("co-parsing", "coat", 5), ("co-parsing", "skirt", 4),
    ("co-parsing", "shorts", 4), ("co-parsing", "other", 6),
    ("colorful-fashion", "dress", 14), ("colorful-fashion", "coat", 8), ("colorful-fashion", "skirt", 4),
    ("colorful-fashion", "shorts", 4),
)


@dataclass
class WalkPerson:
    source: str  # "peta", "co-parsing" or "colorful-fashion"
    identity: str  # PETA identity, co-parsing image name, colorful-fashion photo id
    views: list[Person]  # shown one after another along the walk
    target: np.ndarray  # training.attributes.labels target row
    groups: frozenset[str]

    @property
    def truth(self) -> dict[str, bool | None]:
        """rule -> True / False / None (unknown: excluded from that rule's scores)."""
        from training.attributes import labels as L

        out = {}
        for rule in RULES:
            value = float(self.target[L.ATTRIBUTES.index(rule)])
            out[rule] = None if value == L.UNKNOWN else bool(value)
        return out


@dataclass
class Walk:
    scenario: Scenario
    people: list[WalkPerson]  # index = customer id


# -- people -----------------------------------------------------------------------------------

def _garments(target: np.ndarray) -> frozenset[str]:
    """The detector-vocabulary garments a target says are worn (``Person.garments``)."""
    from training.attributes import labels as L

    worn = {name for name in ("dress", "skirt", "pants", "shorts") if target[L.ATTRIBUTES.index(name)] == 1}
    if target[L.ATTRIBUTES.index("outwear")] == 1:
        worn.add("jacket")
    return frozenset(worn)


def target_groups(target: np.ndarray, source: str, coat: bool = False, dark_outfit: bool = False) -> frozenset[str]:
    from training.attributes import labels as L

    def col(name):
        return float(target[L.ATTRIBUTES.index(name)])

    groups = {name for name in ("suit", "dress", "outwear", "shorts") if col(name) == 1}
    if col("skirt") == 1 and col("dress") == 0:
        groups.add("skirt")
    if source == "peta" and target[L.SET_COLUMN] == 1:
        groups.add("dress_or_skirt")
    if coat:
        groups.add("coat")
    if dark_outfit:
        groups.add("dark_outfit")
    return frozenset(groups or {"other"})


def _flag(row: dict, column: str) -> bool:
    return str(row.get(column, "0")).strip() == "1"


def peta_dark_outfit(row: dict) -> bool:
    skirt = _flag(row, "lowerBodyLongSkirt") or _flag(row, "lowerBodyShortSkirt")
    trousers = _flag(row, "lowerBodyTrousers") or _flag(row, "lowerBodyJeans")
    return _flag(row, "upperBodyBlack") and _flag(row, "lowerBodyBlack") and trousers and not skirt


def _crop(image: np.ndarray, box, margin: float = 0.05) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    x1, y1 = int(max(0, x1 - mw)), int(max(0, y1 - mh))
    x2, y2 = int(min(w, np.ceil(x2 + mw))), int(min(h, np.ceil(y2 + mh)))
    return image[y1:y2, x1:x2].copy()


def load_peta_people(root: Path, limit: int | None = None) -> list[WalkPerson]:
    from training.attributes.data import load_peta

    samples = load_peta(root, "val", VAL_FRACTION, SPLIT_SEED, limit)
    with (root / "labels.csv").open(newline="") as f:
        rows = {row["image"]: row for row in csv.DictReader(f)}
    by_identity: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(samples.keys):
        by_identity[rows[key.split(":", 1)[1]]["identity"]].append(i)
    people = []
    for identity in sorted(by_identity):
        index = sorted(by_identity[identity], key=lambda i: samples.keys[i])
        first = rows[samples.keys[index[0]].split(":", 1)[1]]
        target = samples.targets[index[0]]
        views = [Person(samples.keys[i], _crop(samples.images[i], samples.boxes[i], 0.0), _garments(target))
                 for i in index]
        groups = target_groups(target, "peta", dark_outfit=peta_dark_outfit(first))
        people.append(WalkPerson("peta", identity, views, target, groups))
    return people


def load_co_parsing_people(root: Path, limit: int | None = None) -> list[WalkPerson]:
    from training.attributes.data import load_co_parsing

    samples = load_co_parsing(root, "val", VAL_FRACTION, SPLIT_SEED, limit)
    with (root / "tags.csv").open(newline="") as f:
        tags = {row["image"]: row for row in csv.DictReader(f)}
    people = []
    for image, box, target, key in zip(samples.images, samples.boxes, samples.targets, samples.keys):
        name = key.split(":", 1)[1]
        person = Person(key, _crop(image, box), _garments(target))
        groups = target_groups(target, "co-parsing", coat=_flag(tags[name], "coat"))
        people.append(WalkPerson("co-parsing", name, [person], target, groups))
    return people


def colorful_fashion_long_coat(label_file: Path, classes: list[str]) -> bool:
    rows = np.loadtxt(label_file, ndmin=2)
    names = [classes[int(c)] for c in rows[:, 0]]
    body = rows[[n != "bag" for n in names]]
    top = (body[:, 2] - body[:, 4] / 2).min()
    bottom = (body[:, 2] + body[:, 4] / 2).max()
    return any(n == "jacket" and (r[2] + r[4] / 2 - top) / max(bottom - top, 1e-6) >= LONG_COAT_REACH
               for r, n in zip(rows, names))


def load_colorful_fashion_people(root: Path, limit: int | None = None) -> list[WalkPerson]:
    from training.attributes import labels as L

    classes = read_classes(root)
    people = []
    for photo in load_people(root, "val", limit):
        target = L.colorful_fashion_target([classes.index(g) for g in photo.garments])
        coat = colorful_fashion_long_coat(root / "labels" / f"{photo.photo_id}.txt", classes)
        view = Person(f"colorful-fashion:{photo.photo_id}", photo.image, _garments(target))
        people.append(WalkPerson("colorful-fashion", photo.photo_id, [view], target,
                                 target_groups(target, "colorful-fashion", coat=coat)))
    return people


def load_pool(datasets: Path, limit: int | None = None) -> list[WalkPerson]:
    """Validation people of the three sources (``datasets`` = ``../shared/datasets``); ``limit``
    reads only that many rows / photos of each source (for tests)."""
    return (load_peta_people(datasets / "peta", limit)
            + load_co_parsing_people(datasets / "clothing-co-parsing", limit)
            + load_colorful_fashion_people(datasets / "colorful-fashion", limit))


def pick(pool: list[WalkPerson], cast=DEFAULT_CAST, seed: int = 0) -> list[WalkPerson]:
    """People for each (source, group, n) of ``cast`` at random (seeded), each at most once, in a
    shuffled order."""
    rng = np.random.default_rng(seed)
    chosen: list[WalkPerson] = []
    taken: set[tuple[str, str]] = set()
    for source, group, n in cast:
        candidates = [p for p in pool if p.source == source and group in p.groups and (p.source, p.identity) not in taken]
        for i in sorted(rng.choice(len(candidates), min(n, len(candidates)), replace=False)):
            chosen.append(candidates[i])
            taken.add((candidates[i].source, candidates[i].identity))
    return [chosen[i] for i in rng.permutation(len(chosen))]


# -- layout -----------------------------------------------------------------------------------

def _height(foot: float, h: int) -> float:
    return MIN_H + (MAX_H - MIN_H) * (foot / h - FAR) / (NEAR - FAR)


def _path(kind: str, person: WalkPerson, w: int, h: int, fps: float, rng) -> list[tuple[float, float, float]]:
    """(centre x, foot y, height) per frame for one customer."""
    view = person.views[0].image
    aspect = view.shape[1] / view.shape[0]
    from_left = rng.random() < 0.5
    if kind == "diagonal":  # from a far lane towards the camera, across
        foot0, foot1 = rng.uniform(FAR, FAR + 0.08) * h, rng.uniform(0.88, NEAR) * h
    else:
        foot0 = foot1 = rng.uniform(FAR, NEAR) * h
    speed = rng.uniform(0.6, 1.0)  # person heights per second (about 1-1.7 m/s)
    outside = 0.6 * aspect * _height(foot0, h)  # centre x at which the person is half out of view
    start = -outside if from_left else w + outside

    def leg(x_from, x_to, f_from, f_to):
        mean_h = (_height(f_from, h) + _height(f_to, h)) / 2
        n = max(2, int(round(abs(x_to - x_from) / (speed * mean_h) * fps)))
        out = []
        for i in range(n):
            a = i / (n - 1)
            foot = f_from + (f_to - f_from) * a
            out.append((x_from + (x_to - x_from) * a, foot + 1.5 * np.sin(i * 2.0), _height(foot, h)))
        return out

    if kind == "browse":  # in, stand a while swaying, back out the way they came
        stop = rng.uniform(0.25, 0.75) * w
        path = leg(start, stop, foot0, foot0)
        n_stand = int(round(rng.uniform(1.5, 4.0) * fps))
        phase = rng.uniform(0, 6)
        path += [(stop + 3 * np.sin(i / 3 + phase), foot0, _height(foot0, h)) for i in range(n_stand)]
        return path + leg(stop, start, foot0, foot0)
    end_outside = 0.6 * aspect * _height(foot1, h)
    end = w + end_outside if from_left else -end_outside
    return leg(start, end, foot0, foot1)


def walk(people: list[WalkPerson], fps: float = 10, size=(960, 540), seed: int = 0,
         gap_s: tuple[float, float] = (0.5, 4.0), jpeg_quality: int = 50, one_at_a_time: bool = False) -> Walk:
    """``gap_s``: seconds from one customer's start to the next one's (from one's exit with
    ``one_at_a_time``)."""
    rng = np.random.default_rng(seed)
    w, h = size
    visits, frame = [], 0
    for customer, person in enumerate(people):
        kind = rng.choice(["cross", "browse", "diagonal"], p=[0.5, 0.3, 0.2])
        path = _path(str(kind), person, w, h, fps, rng)
        # the identity's views one after another along the path (PETA: e.g. front, then back)
        bounds = np.linspace(0, len(path), len(person.views) + 1).round().astype(int)
        for view, a, b in zip(person.views, bounds[:-1], bounds[1:]):
            if b > a:
                visits.append(Visit(customer, view, {frame + i: path[i] for i in range(a, b)}))
        frame += int(round(rng.uniform(*gap_s) * fps)) + (len(path) if one_at_a_time else 0)
    scenario = Scenario("store_walk", fps, size, visits, jpeg_quality=jpeg_quality, store_backdrop=True, seed=seed)
    return Walk(scenario, people)


def signature(walk_: Walk) -> list[str]:
    """The walk's customers in order ("source:identity"): runs are comparable when equal."""
    return [f"{p.source}:{p.identity}" for p in walk_.people]


# -- scoring ----------------------------------------------------------------------------------

def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def group_figures(rows: list[dict]) -> dict:
    """Alerts per group of customers (``score_walk``'s per-customer rows)."""
    groups = {}
    for group in GROUPS:
        members = [r for r in rows if group in r["groups"]]
        groups[group] = {"customers": len(members),
                         **{f"{rule}_alerts": sum(r["alerts"].get(rule, 0) for r in members) for rule in RULES},
                         # a coat over a dress rightly alerts: these are the members not known to wear one
                         "dress_alerts_without_dress": sum(r["alerts"].get("dress", 0) for r in members
                                                           if r["truth"]["dress"] is not True)}
    return groups


def score_walk(walk_: Walk, record: RunRecord, min_dwell_s: float) -> dict:
    matching = match_tracks(walk_.scenario, record, OWNER_IOU)
    owner = {t: c for t, c in matching.owners().items()
             if matching.pair_frames[(c, t)] >= OWNER_SHARE * len(record.tracks[t])}
    alerts: dict[int, Counter] = defaultdict(Counter)
    unmatched: Counter = Counter()
    for a in record.alerts:
        customer = owner.get(a["track_id"])
        if customer is None:
            unmatched[a["rule"]] += 1
        else:
            alerts[customer][a["rule"]] += 1
    tracks_of: Counter = Counter(owner.values())

    rows = []
    for customer, person in enumerate(walk_.people):
        place = [p for v in walk_.scenario.visits if v.customer == customer for p in v.frames.values()]
        truth = person.truth
        verdict = {}
        for rule in RULES:
            fired = alerts[customer][rule] > 0
            verdict[rule] = "excluded" if truth[rule] is None else \
                ("TP" if fired else "FN") if truth[rule] else ("FP" if fired else "TN")
        rows.append({
            "customer": customer, "source": person.source, "identity": person.identity,
            "views": len(person.views), "height_px": [round(min(p[2] for p in place)), round(max(p[2] for p in place))],
            "groups": sorted(person.groups), "truth": truth, "alerts": dict(alerts[customer]),
            "tracks": tracks_of[customer], "verdict": verdict,
        })

    rules = {}
    for rule in RULES:
        pos = [r for r in rows if r["truth"][rule] is True]
        neg = [r for r in rows if r["truth"][rule] is False]
        excluded = [r for r in rows if r["truth"][rule] is None]
        right = sum(r["alerts"].get(rule, 0) for r in pos)
        false = sum(r["alerts"].get(rule, 0) for r in neg) + unmatched[rule]
        alerted = sum(1 for r in pos if r["alerts"].get(rule))
        rules[rule] = {
            "positives": len(pos), "negatives": len(neg), "excluded": len(excluded),
            "alerts": right + false + sum(r["alerts"].get(rule, 0) for r in excluded),
            "alerted": alerted, "false_alerts": false, "unmatched": unmatched[rule],
            "on_excluded": sum(r["alerts"].get(rule, 0) for r in excluded),
            "recall": _ratio(alerted, len(pos)), "precision": _ratio(right, right + false),
            "duplicates": sum(max(0, r["alerts"].get(rule, 0) - 1) for r in rows),
        }
    groups = group_figures(rows)
    identity = score(walk_.scenario, record, min_dwell_s)
    return {
        "customers": len(rows), "frames": walk_.scenario.n_frames, "fps": walk_.scenario.fps,
        "identity": {k: identity[k] for k in ("customers_counted", "tracks", "id_switches", "idf1", "merged_tracks")},
        "rules": rules, "groups": groups, "per_customer": rows,
        "calls_per_customer": round((record.classifier_calls + record.scans) / max(len(rows), 1), 1),
    }


# -- config variant (b) -----------------------------------------------------------------------

# The issue-20 rules that name person attributes (the brief's defaults; the shipped configs decide).
ATTRIBUTE_RULES = (
    {"name": "dress", "when": ["dress+person.dress_or_skirt"],
     "unless": ["pants", "shorts", "skirt", "person.pants", "person.shorts"], "min_confidence": 0.5},
    {"name": "suit", "when": ["person.suit", "blazer+pants+person.suit"], "min_confidence": 0.5},
    {"name": "outwear", "when": ["outwear", "hoodie", "jacket", "person.outwear"], "unless": ["person.suit"],
     "min_confidence": 0.3},
)


def with_attributes(config, model: Path, rules=ATTRIBUTE_RULES):
    """A copy of ``config`` with the person-attribute model on and ``rules`` instead of its rules."""
    from edge.config import AttributesConfig, RuleConfig

    attributes = AttributesConfig(enabled=True, model=Path(model).resolve())
    return config.model_copy(deep=True, update={"attributes": attributes,
                                                "rules": [RuleConfig(**rule) for rule in rules]})

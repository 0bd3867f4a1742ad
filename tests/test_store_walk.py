"""The store walk (issue 20): validation people only, truth as documented in
scenarios/store_walk.py, and a short walk through the daemon with the real models (the full
benchmark: scripts/bench_scenarios.py --only store_walk)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.pipeline import Models
from scenarios import store_walk
from scenarios.run import run_scenario
from training.attributes import labels as L
from training.attributes.data import in_validation

REPO = Path(__file__).resolve().parents[1]
ATTRIBUTE_MODEL = REPO / "models" / "person-attributes.tflite"
ROWS = 1500  # rows / photos read from each source: PETA suits first appear after row 600


@pytest.fixture(scope="module")
def pool(shared_dir):
    return store_walk.load_pool(shared_dir / "datasets", limit=ROWS)


@pytest.fixture(scope="module")
def peta_rows(shared_dir):
    with (shared_dir / "datasets" / "peta" / "labels.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_only_validation_people_are_cast(pool, peta_rows, shared_dir):
    train_identities = {r["identity"] for r in peta_rows
                        if not in_validation(r["identity"], store_walk.VAL_FRACTION, store_walk.SPLIT_SEED)}
    assert train_identities  # the split has a train part to stay out of
    root = shared_dir / "datasets" / "colorful-fashion"
    cf_train = set((root / "splits" / "train.txt").read_text().split())
    walk = store_walk.walk(store_walk.pick(pool, seed=0), seed=0)
    sources = {p.source for p in walk.people}
    assert sources == {"peta", "co-parsing", "colorful-fashion"}, sources
    image_identity = {r["image"]: r["identity"] for r in peta_rows}
    for person in walk.people:
        if person.source == "peta":
            assert person.identity not in train_identities, person.identity
            # every view shown is an image of that validation identity
            assert {image_identity[v.photo_id.split(":", 1)[1]] for v in person.views} == {person.identity}
        elif person.source == "co-parsing":
            assert in_validation(person.identity, store_walk.VAL_FRACTION, store_walk.SPLIT_SEED), person.identity
        else:
            assert person.identity not in cf_train, person.identity
    # every view of every customer is on screen, 80-250 px tall
    shown = {id(v.person) for v in walk.scenario.visits}
    assert all(id(view) in shown for p in walk.people for view in p.views)
    heights = [place[2] for v in walk.scenario.visits for place in v.frames.values()]
    assert store_walk.MIN_H - 1 <= min(heights) and max(heights) <= store_walk.MAX_H + 1


def _peta_row(person, peta_rows):
    image = person.views[0].photo_id.split(":", 1)[1]
    return next(r for r in peta_rows if r["image"] == image)


def test_truth_follows_the_documented_derivation(pool, peta_rows):
    flag = lambda row, c: row[c] == "1"  # noqa: E731
    peta = [p for p in pool if p.source == "peta"]
    skirts = [p for p in peta if "dress_or_skirt" in p.groups]
    assert skirts and peta
    for person in peta:
        row = _peta_row(person, peta_rows)
        skirt = flag(row, "lowerBodyLongSkirt") or flag(row, "lowerBodyShortSkirt")
        suit = flag(row, "upperBodySuit"), flag(row, "lowerBodySuits")
        truth = person.truth
        # PETA's skirt is "dress or skirt": such a customer is excluded from dress scoring
        assert truth["dress"] is (None if skirt else False), (person.identity, truth)
        assert truth["suit"] is ({(True, True): True, (False, False): False}.get(suit)), (person.identity, suit)
        if flag(row, "upperBodyJacket"):
            assert truth["outwear"] is True and "outwear" in person.groups
        dark = flag(row, "upperBodyBlack") and flag(row, "lowerBodyBlack") and not skirt and (
            flag(row, "lowerBodyTrousers") or flag(row, "lowerBodyJeans"))
        assert ("dark_outfit" in person.groups) == dark
        assert ("shorts" in person.groups) == (flag(row, "lowerBodyShorts") or flag(row, "lowerBodyHotPants"))
    for person in (p for p in pool if p.source != "peta"):
        # dress truth only from co-parsing tags / colorful-fashion boxes, always known there
        assert person.truth["dress"] is bool(person.target[L.ATTRIBUTES.index("dress")])
        assert ("dress" in person.groups) == person.truth["dress"]
    cf = [p for p in pool if p.source == "colorful-fashion"]
    assert all(p.truth["suit"] is None for p in cf)  # colorful-fashion cannot tell a suit
    assert any(p.truth["dress"] for p in cf) and any("coat" in p.groups for p in cf)


def test_scoring_excludes_unknown_truth_and_counts_groups():
    """score_walk on a hand-made record: a dress alert on a PETA skirt customer is neither right
    nor false, one on a coat customer is false and counted in its group."""
    from scenarios.photos import Person
    from scenarios.score import RunRecord

    def person(source, target_values, groups):
        target = L.empty_target()
        for name, value in target_values.items():
            target[L.ATTRIBUTES.index(name)] = value
        image = np.full((100, 40, 3), 90, np.uint8)
        return store_walk.WalkPerson(source, f"{source}-{len(groups)}", [Person("x", image, frozenset())], target,
                                     frozenset(groups))

    people = [person("co-parsing", {"dress": 1, "suit": 0, "outwear": 0}, {"dress"}),
              person("peta", {"suit": 0, "outwear": 0}, {"dress_or_skirt"}),
              person("colorful-fashion", {"dress": 0, "outwear": 1}, {"coat", "outwear"})]
    walk = store_walk.walk(people, seed=1, gap_s=(6.0, 6.0))
    record = RunRecord(walk.scenario.fps)
    for visit in walk.scenario.visits:  # a perfect tracker: track id = customer + 1
        for index in visit.frames:
            box = [b.box for b in walk.scenario.truth(index) if b.customer == visit.customer]
            if box:
                record.tracks[visit.customer + 1].append((index, visit.customer + 1, box[0]))
                record.track_spans.setdefault(visit.customer + 1, [index / 10, index / 10])[1] = index / 10
    record.alerts = [{"track_id": t, "rule": "dress", "decided": "consensus", "source_time_s": 0.0} for t in (1, 2, 3)]
    figures = store_walk.score_walk(walk, record, 0.5)
    dress = figures["rules"]["dress"]
    assert (dress["positives"], dress["excluded"], dress["alerted"]) == (1, 1, 1), dress
    assert dress["false_alerts"] == 1 and dress["on_excluded"] == 1 and dress["precision"] == 0.5, dress
    assert figures["groups"]["coat"]["dress_alerts"] == 1 and figures["groups"]["dress_or_skirt"]["dress_alerts"] == 1
    assert figures["groups"]["coat"]["dress_alerts_without_dress"] == 1
    assert figures["groups"]["dress"]["dress_alerts_without_dress"] == 0
    assert [r["verdict"]["dress"] for r in figures["per_customer"]] == ["TP", "excluded", "FP"]
    assert figures["identity"]["id_switches"] == 0 and figures["identity"]["idf1"] == 1.0


@pytest.mark.parametrize("variant", ["demo", "attributes"])
def test_short_walk_through_the_daemon(pool, variant):
    """Five customers one after another through CameraPipeline with the real models, the first a
    PETA identity seen from several sides: scores are ratios and nobody gets the same alert twice
    (a change of view must not make the same person a new customer with new alerts). No model-
    quality target here; crowds, where a track can jump between people, are the benchmark's."""
    config = load_config(REPO / "configs" / "demo.yaml")
    if variant == "attributes":
        config = store_walk.with_attributes(config, ATTRIBUTE_MODEL)
    views = next(p for p in pool if p.source == "peta" and len(p.views) == 4)  # the first, by identity
    cast = (("peta", "suit", 1), ("co-parsing", "dress", 1), ("colorful-fashion", "dress", 1),
            ("colorful-fashion", "coat", 1))
    people = [views] + [p for p in store_walk.pick(pool, cast, seed=3) if p is not views]
    walk = store_walk.walk(people, size=(480, 270), seed=3, gap_s=(0.5, 1.0), one_at_a_time=True)
    assert len(walk.people) == 5
    record = run_scenario(walk.scenario, config, Models(config))
    figures = store_walk.score_walk(walk, record, config.analytics.min_dwell_s)
    assert figures["customers"] == 5 and len(figures["per_customer"]) == 5
    for rule, r in figures["rules"].items():
        for key in ("precision", "recall"):
            assert r[key] is None or 0.0 <= r[key] <= 1.0, (rule, r)
        assert r["positives"] + r["negatives"] + r["excluded"] == 5, (rule, r)
        assert r["duplicates"] == 0, (rule, r, record.alerts)
    assert all(n == 1 for row in figures["per_customer"] for n in row["alerts"].values()), figures["per_customer"]
    assert 0.0 <= figures["identity"]["idf1"] <= 1.0

"""Person attributes fused with garment votes (issue 20), through CameraPipeline and the shipped
demo rules, with small stub stages (same interfaces as the real models) on painted people.

The stub garment detector names the upper half by colour (red / dark / green -> dress, blue -> pants),
which is how the real detector errs on a long coat or a dark outfit seen from behind; the stub
attribute reader answers per person from the colour of the lower half (a profile below). Each
profile is one documented path to "no dress" (or to the right alert)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.attributes import AttributeScores, PersonAttributeReader
from edge.attributes.votes import attribute_votes, vote_score
from edge.config import load_config
from edge.pipeline import CameraPipeline
from test_customers import BLUE, GREEN, GREY, RED, REPO, StubModels, canvas, run

DARK, NAVY, YELLOW, WHITE = (30, 30, 30), (90, 40, 30), (40, 220, 230), (235, 235, 235)
LOW = dict(suit=0.05, dress=0.05, skirt=0.05, pants=0.05, shorts=0.05, outwear=0.1)
PROFILES = {
    RED: dict(LOW, pants=0.9, outwear=0.9),  # a long coat over trousers
    DARK: dict(LOW, pants=0.85, dress=0.3, outwear=0.3),  # black top and trousers from behind
    YELLOW: dict(LOW, shorts=0.92),  # a man in a T-shirt and shorts
    NAVY: dict(LOW, suit=0.93, pants=0.9, outwear=0.2),  # a suit: jacket + matching trousers
    GREEN: dict(LOW, dress=0.93, pants=0.35),  # a dress over leggings: trousers stay below their threshold
}


class ProfileReader:
    """PersonAttributeReader stub: the profile of the crop's lower-half colour; WHITE alternates
    between just under and just over the dress threshold (a reading the model is unsure of)."""

    names = ("suit", "dress", "skirt", "pants", "shorts", "outwear", "dress_or_skirt")
    thresholds = {name: 0.5 for name in names}
    margin = 0.05

    def __init__(self):
        self.calls = 0
        self._unsure = itertools.cycle([0.4, 0.62])

    def read(self, crop_bgr):
        self.calls += 1
        lower = crop_bgr[crop_bgr.shape[0] // 2:].reshape(-1, 3)
        painted = lower[np.abs(lower.astype(int) - GREY).max(axis=1) > 30]
        colour = tuple(int(v) for v in np.median(painted, axis=0)) if len(painted) else None
        if colour == WHITE:
            scores = dict(LOW, dress=next(self._unsure))
        else:
            scores = dict(PROFILES.get(colour, LOW))
        scores["dress_or_skirt"] = 1 - (1 - scores["dress"]) * (1 - scores["skirt"])
        return AttributeScores(scores)


def pipeline(tmp_path) -> tuple[CameraPipeline, ProfileReader]:
    config = load_config(REPO / "configs" / "demo.yaml")  # the shipped rules
    models = StubModels()
    models.attributes = ProfileReader()
    return CameraPipeline(config, config.cameras[0], models=models, state_dir=tmp_path), models.attributes


def alerts_for(tmp_path, upper, lower, frames: int = 30):
    pipe, reader = pipeline(tmp_path)
    alerts, _ = run(pipe, [canvas((300, upper, lower))] * frames)
    return sorted(a.rule for a in alerts), reader


def test_the_stub_reader_implements_the_stage_interface():
    assert isinstance(ProfileReader(), PersonAttributeReader)


def test_shipped_configs_read_person_attributes_and_name_them_in_rules():
    for name in ("demo", "store", "jetson"):
        config = load_config(REPO / "configs" / f"{name}.yaml")
        assert config.attributes.enabled, name
        rules = {r.name: r for r in config.rules}
        assert "person.dress_or_skirt" in "+".join(rules["dress"].when), name
        assert {"pants", "person.pants", "person.shorts"} <= set(rules["dress"].unless), name
        assert rules["suit"].when == ["person.suit"], name


@pytest.mark.parametrize("upper, lower, why", [
    (RED, RED, "a long coat: the detector's dress box, but the person reads trousers"),
    (DARK, DARK, "a black top over black trousers from behind"),
    (RED, YELLOW, "a man in shorts"),
])
def test_no_dress_when_the_person_level_says_otherwise(tmp_path, upper, lower, why):
    rules, reader = alerts_for(tmp_path, upper, lower)
    assert "dress" not in rules, why
    assert reader.calls >= 2  # the person was read (two strong agreeing looks settle early)


def test_a_coat_is_outwear_from_the_person_reading(tmp_path):
    rules, _ = alerts_for(tmp_path, RED, RED)
    assert rules == ["outwear"]


def test_a_suit_fires_once_and_its_jacket_is_not_outwear(tmp_path):
    rules, _ = alerts_for(tmp_path, BLUE, NAVY)
    assert rules == ["suit"]


def test_a_dress_over_leggings_fires_once(tmp_path):
    rules, _ = alerts_for(tmp_path, GREEN, GREEN)
    assert rules == ["dress"]


def test_an_unsure_reading_decides_nothing(tmp_path):
    # the dress reading swings across its threshold look after look: the slot never agrees
    rules, _ = alerts_for(tmp_path, GREEN, WHITE, frames=40)
    assert "dress" not in rules


def test_vote_scores_map_the_operating_point_to_the_consensus_min_score():
    assert vote_score(0.3, 0.3) == (True, 0.5)
    worn, score = vote_score(0.65, 0.3)
    assert worn and score == pytest.approx(0.75)
    worn, score = vote_score(0.0, 0.3)
    assert not worn and score == pytest.approx(1.0)
    votes = attribute_votes(AttributeScores({"suit": 0.9, "pants": 0.1}), {"suit": 0.5, "pants": 0.5})
    assert [(v.slot, v.label) for v in votes] == [("attr:suit", "person.suit"), ("attr:pants", "person.no-pants")]


def test_analytics_garment_mix_counts_garments_not_readings(tmp_path):
    from edge.sources import Frame

    pipe, _ = pipeline(tmp_path)
    for index in range(30):
        pipe.process(Frame(canvas((300, BLUE, NAVY)), index, 1_767_225_600.0 + index / 10, index / 10))
    windows = pipe.finish().closed_windows
    mixes = [w["garments"] for w in windows]
    assert any(mixes), windows  # the pants box settled and is counted
    assert not any(label.startswith("person.") for mix in mixes for label in mix)
    assert any((w.get("customers_matched") or {}).get("suit") for w in windows)  # the suit share still counts


def test_a_flipping_reading_after_reacquisition_does_not_split_the_customer():
    """Re-verification after a re-acquisition checks garments, not attribute readings: a reading near
    its operating point flips between a front and a back view, which is no evidence of another person."""
    from edge.config import ConsensusConfig
    from edge.customer import Customers

    customers = Customers(ConsensusConfig())
    customer = customers.start(1, 0.0)
    votes = customer.votes
    for i in range(3):
        votes.look()
        votes.seen("dress")
        votes.seen("attr:outwear")
        votes.vote("dress", "dress", 0.9, i * 0.2)
        votes.vote("attr:outwear", "person.outwear", 0.7, i * 0.2)
    assert {s: g.label for s, g in votes.settled_by_slot().items()} == {"dress": "dress", "attr:outwear": "person.outwear"}
    customers.reacquire(1)
    for i in range(3, 6):  # the back view: the dress agrees, the outwear reading flips
        votes.look()
        votes.vote("dress", "dress", 0.9, i * 0.2)
        votes.vote("attr:outwear", "person.no-outwear", 0.8, i * 0.2)
    assert not votes.contradicted
    customers.reacquire(1)
    for i in range(6, 9):  # somebody else: the garment itself disagrees
        votes.look()
        votes.vote("dress", "pants", 0.9, i * 0.2)
    assert votes.contradicted

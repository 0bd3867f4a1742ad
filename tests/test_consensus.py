"""Consensus: per-track, per-slot voting (Frigate-like 3 votes / 60 %)."""

from __future__ import annotations

import pytest

from edge.config import ConsensusConfig
from edge.consensus import Consensus, SettledGarment


def cfg(**kw) -> ConsensusConfig:
    base = dict(every_k_frames=5, min_votes=3, min_agreement=0.6, min_score=0.5, max_votes=20)
    return ConsensusConfig(**{**base, **kw})


def test_settles_on_three_agreeing_votes_with_mean_score():
    c = Consensus(cfg())
    assert c.vote(1, "upper", "blazer", 0.9, 0) is None
    assert c.vote(1, "upper", "blazer", 0.7, 5) is None
    assert c.settled(1) == {}
    result = c.vote(1, "upper", "blazer", 0.8, 10)
    assert result == SettledGarment("blazer", pytest.approx(0.8), 3, 1.0)
    assert c.settled(1) == {"upper": result}
    assert not c.wants(1, "upper", 100)  # settled: no more classifier calls


def test_agreement_below_threshold_waits_for_more_votes():
    c = Consensus(cfg())
    for i, label in enumerate(["dress", "skirt", "dress", "skirt", "dress"]):
        c.vote(7, "lower", label, 0.9, i * 5)
        if i < 4:
            assert c.settled(7) == {}  # 2/4 = 50 % < 60 %
    settled = c.settled(7)["lower"]
    assert (settled.label, settled.votes, settled.agreement) == ("dress", 3, pytest.approx(0.6))
    assert settled.score == pytest.approx(0.9)  # only the dress votes


def test_low_score_votes_are_attempts_but_do_not_count():
    c = Consensus(cfg(max_votes=5))
    c.vote(1, "upper", "suit", 0.9, 0)
    c.vote(1, "upper", "suit", 0.3, 5)
    c.vote(1, "upper", "suit", 0.2, 10)
    assert c.settled(1) == {}  # 1 counted vote
    assert c.wants(1, "upper", 15)
    c.vote(1, "upper", "suit", 0.1, 15)
    c.vote(1, "upper", "suit", 0.4, 20)  # 5th attempt: given up
    assert c.settled(1) == {} and c.given_up(1) == ["upper"]
    assert not c.wants(1, "upper", 1000)
    assert c.vote(1, "upper", "suit", 0.99, 1005) is None  # ignored once given up
    assert c.is_settled(1)  # nothing left to classify


def test_wants_every_k_frames_per_slot():
    c = Consensus(cfg(every_k_frames=5))
    assert c.wants(1, "upper", 0)
    c.vote(1, "upper", "shirt", 0.9, 0)
    assert not c.wants(1, "upper", 4)
    assert c.wants(1, "upper", 5)
    assert c.wants(1, "lower", 1)  # other slot, own clock
    assert c.wants(2, "upper", 1)  # other track


def test_is_settled_over_wanted_slots_and_drop():
    c = Consensus(cfg(min_votes=1, min_agreement=0.5))
    assert not c.is_settled(3)
    c.vote(3, "upper", "blazer", 0.9, 0)
    assert c.is_settled(3)  # every slot voted on so far
    assert not c.is_settled(3, ["upper", "lower"])  # lower not classified yet
    c.vote(3, "lower", "pants", 0.9, 0)
    assert c.is_settled(3, ["upper", "lower"])
    assert {s: g.label for s, g in c.settled(3).items()} == {"upper": "blazer", "lower": "pants"}
    c.drop(3)
    assert c.settled(3) == {} and c.track_count == 0 and c.wants(3, "upper", 1)


def test_settled_requires_min_votes_even_with_full_agreement():
    c = Consensus(cfg(min_votes=4, min_agreement=0.6))
    for i in range(3):
        c.vote(1, "full", "dress", 0.95, i * 5)
    assert c.settled(1) == {}
    c.vote(1, "full", "dress", 0.95, 15)
    assert c.settled(1)["full"].votes == 4


def test_pending_labels_are_counted_votes_of_open_slots():
    c = Consensus(cfg(max_votes=4))
    c.vote(1, "pants", "pants", 0.3, 0)  # an attempt, not a counted vote
    assert c.pending(1) == set()
    c.vote(1, "pants", "pants", 0.8, 5)
    c.vote(1, "dress", "dress", 0.9, 5)
    assert c.pending(1) == {"pants", "dress"}
    for frame in (10, 15):
        c.vote(1, "dress", "dress", 0.9, frame)  # dress settles: no longer pending
    assert c.pending(1) == {"pants"}
    c.vote(1, "pants", "shorts", 0.6, 10)
    c.vote(1, "pants", "pants", 0.2, 15)  # 4th attempt without settling: given up
    assert c.given_up(1) == ["pants"] and c.pending(1) == set()
    assert c.pending(99) == set()

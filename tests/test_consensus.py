"""GarmentVotes: one customer's per-slot voting (Frigate-like 3 votes / 60 %), early and exit
decisions, weights, ties, re-verification."""

from __future__ import annotations

import pytest

from edge.config import ConsensusConfig
from edge.consensus import GarmentVotes, SettledGarment


def cfg(**kw) -> ConsensusConfig:
    # early decisions off unless a test turns them on: these tests are about the vote count
    base = dict(min_vote_interval_s=0.5, min_votes=3, min_agreement=0.6, min_score=0.5, max_votes=20,
                early_votes=100)
    return ConsensusConfig(**{**base, **kw})


def test_settles_on_three_agreeing_votes_with_mean_score():
    c = GarmentVotes(cfg())
    assert c.vote("upper", "blazer", 0.9, 0.0) is None
    assert c.vote("upper", "blazer", 0.7, 0.5) is None
    assert c.settled_by_slot() == {}
    result = c.vote("upper", "blazer", 0.8, 1.0)
    assert result == SettledGarment("blazer", pytest.approx(0.8), 3, 1.0, "consensus")
    assert c.settled_by_slot() == {"upper": result}
    assert not c.wants("upper", 10.0)  # settled: no more classifier calls


def test_agreement_below_threshold_waits_for_more_votes():
    c = GarmentVotes(cfg())
    for i, label in enumerate(["dress", "skirt", "dress", "skirt", "dress"]):
        c.vote("lower", label, 0.9, i * 0.5)
        if i < 4:
            assert c.settled_by_slot() == {}  # 2/4 = 50 % < 60 % (and 2:2 is a tie)
    settled = c.settled_by_slot()["lower"]
    assert (settled.label, settled.votes, settled.agreement) == ("dress", 3, pytest.approx(0.6))
    assert settled.score == pytest.approx(0.9)  # only the dress votes


def test_low_score_votes_are_attempts_but_do_not_count():
    c = GarmentVotes(cfg(max_votes=5))
    c.vote("upper", "suit", 0.9, 0.0)
    c.vote("upper", "suit", 0.3, 0.5)
    c.vote("upper", "suit", 0.2, 1.0)
    assert c.settled_by_slot() == {}  # 1 counted vote
    assert c.wants("upper", 1.5)
    c.vote("upper", "suit", 0.1, 1.5)
    c.vote("upper", "suit", 0.4, 2.0)  # 5th attempt: given up
    assert c.settled_by_slot() == {} and c.given_up() == ["upper"]
    assert not c.wants("upper", 100.0)
    assert c.vote("upper", "suit", 0.99, 100.5) is None  # ignored once given up
    assert c.all_decided()  # nothing left to classify


def test_vote_interval_is_in_seconds_per_slot():
    c = GarmentVotes(cfg(min_vote_interval_s=0.5))
    assert c.wants("upper", 0.0)
    c.vote("upper", "shirt", 0.9, 0.0)
    assert not c.wants("upper", 0.4)
    assert c.wants("upper", 0.5)
    assert c.wants("lower", 0.1)  # other slot, own clock


def test_all_decided_over_wanted_slots():
    c = GarmentVotes(cfg(min_votes=1, min_agreement=0.5))
    assert not c.all_decided()
    c.vote("upper", "blazer", 0.9, 0.0)
    assert c.all_decided()  # every slot voted on so far
    assert not c.all_decided(["upper", "lower"])  # lower not classified yet
    c.vote("lower", "pants", 0.9, 0.0)
    assert c.all_decided(["upper", "lower"])
    assert {s: g.label for s, g in c.settled_by_slot().items()} == {"upper": "blazer", "lower": "pants"}


def test_settled_requires_min_votes_even_with_full_agreement():
    c = GarmentVotes(cfg(min_votes=4, min_agreement=0.6))
    for i in range(3):
        c.vote("full", "dress", 0.95, i * 0.5)
    assert c.settled_by_slot() == {}
    c.vote("full", "dress", 0.95, 1.5)
    assert c.settled_by_slot()["full"].votes == 4


def test_pending_labels_are_counted_votes_of_open_slots():
    c = GarmentVotes(cfg(max_votes=4))
    c.vote("pants", "pants", 0.3, 0.0)  # an attempt, not a counted vote
    assert c.pending() == set()
    c.vote("pants", "pants", 0.8, 0.5)
    c.vote("dress", "dress", 0.9, 0.5)
    assert c.pending() == {"pants", "dress"}
    for t in (1.0, 1.5):
        c.vote("dress", "dress", 0.9, t)  # dress settles: no longer pending
    assert c.pending() == {"pants"}
    c.vote("pants", "shorts", 0.6, 1.0)
    c.vote("pants", "pants", 0.2, 1.5)  # 4th attempt without settling: given up
    assert c.given_up() == ["pants"] and c.pending() == set()


# -- deciding in time ------------------------------------------------------------------------

def test_two_strong_agreeing_votes_settle_early():
    c = GarmentVotes(cfg(early_votes=2, early_score=0.85))
    c.vote("dress", "dress", 0.9, 0.0)
    result = c.vote("dress", "dress", 0.88, 0.1)
    assert result is not None and (result.label, result.votes, result.decided) == ("dress", 2, "early")
    # two votes, one of them weak: no early decision
    c = GarmentVotes(cfg(early_votes=2, early_score=0.85))
    c.vote("dress", "dress", 0.9, 0.0)
    assert c.vote("dress", "dress", 0.7, 0.1) is None


def test_strong_votes_that_disagree_do_not_settle_early():
    c = GarmentVotes(cfg(early_votes=2, early_score=0.85))
    c.vote("upper", "blazer", 0.95, 0.0)
    assert c.vote("upper", "outwear", 0.95, 0.1) is None  # two strong votes, a tie
    result = c.vote("upper", "blazer", 0.9, 0.2)  # two strong blazers at 2/3 >= 60 %
    assert (result.label, result.votes, result.decided) == ("blazer", 2, "early")
    assert result.agreement == pytest.approx(2 / 3)


def test_a_tie_gives_no_result():
    loose_exit = dict(exit_min_votes=1, exit_min_agreement=0.5, exit_min_score=0.5)
    c = GarmentVotes(cfg(**loose_exit))
    c.vote("upper", "shirt", 0.9, 0.0, weight=0.5)
    c.vote("upper", "polo", 0.9, 0.5, weight=0.5)
    assert c.decide_at_exit() == {}  # one vote each, equal weight: no winner, not the first one
    c = GarmentVotes(cfg(**loose_exit))
    c.vote("upper", "shirt", 0.9, 0.0, weight=0.6)
    c.vote("upper", "polo", 0.9, 0.5, weight=0.5)
    assert c.decide_at_exit()["upper"].label == "shirt"


def test_weights_favour_the_better_crops():
    c = GarmentVotes(cfg(min_votes=2, min_agreement=0.6))
    c.vote("upper", "blazer", 0.9, 0.0, weight=1.0)  # sharp 120 px crops
    c.vote("upper", "hoodie", 0.9, 0.1, weight=0.15)  # tiny blurred ones
    c.vote("upper", "hoodie", 0.9, 0.2, weight=0.15)
    assert c.settled_by_slot() == {}  # hoodie has the votes, not the weight (0.3 of 1.3)
    c.vote("upper", "blazer", 0.9, 0.3, weight=1.0)
    assert c.settled_by_slot()["upper"].label == "blazer" and c.settled_by_slot()["upper"].agreement == pytest.approx(2 / 2.3)


def test_exit_decision_is_stricter_than_nothing_and_says_so():
    c = GarmentVotes(cfg(exit_min_votes=2, exit_min_agreement=0.75, exit_min_score=0.65))
    c.vote("dress", "dress", 0.8, 0.0)
    c.vote("dress", "dress", 0.7, 0.5)
    c.vote("upper", "shirt", 0.9, 0.0)  # one vote only: not decided at exit
    c.vote("lower", "pants", 0.55, 0.0)
    c.vote("lower", "pants", 0.55, 0.5)  # two votes but weak: mean 0.55 < 0.65
    decided = c.decide_at_exit()
    assert set(decided) == {"dress"} and decided["dress"].decided == "exit"
    assert c.settled_by_slot()["dress"].label == "dress"
    # the rest is closed; the weak pants had 2 counted votes: still pending (an 'unless' holds)
    assert c.pending() == {"pants"} and sorted(c.given_up()) == ["lower", "upper"]
    off = GarmentVotes(cfg(exit_decision=False))
    off.vote("dress", "dress", 0.9, 0.0)
    off.vote("dress", "dress", 0.9, 0.5)
    assert off.decide_at_exit() == {} and off.settled_by_slot() == {} and off.pending() == {"dress"}


def test_reverification_contradicted_by_other_garments():
    c = GarmentVotes(cfg(min_votes=2, reverify_votes=2))
    c.vote("dress", "dress", 0.9, 0.0)
    c.vote("dress", "dress", 0.9, 0.5)
    assert c.all_decided()
    c.reverify(2)
    assert not c.all_decided() and c.verifying and c.wants("dress", 1.0)
    c.vote("dress", "skirt", 0.9, 1.0)
    assert not c.contradicted  # one of two: not yet a majority
    c.vote("dress", "skirt", 0.9, 1.5)
    assert c.contradicted and not c.verifying
    assert c.settled_by_slot()["dress"].label == "dress"  # the record keeps what it decided


def test_reverification_confirmed():
    c = GarmentVotes(cfg(min_votes=2))
    c.vote("dress", "dress", 0.9, 0.0)
    c.vote("dress", "dress", 0.9, 0.5)
    c.reverify(2)
    c.vote("dress", "dress", 0.8, 1.0)
    c.vote("dress", "skirt", 0.8, 1.5)
    assert not c.contradicted and c.all_decided()


def test_a_garment_found_in_few_of_the_looks_does_not_decide():
    # A long cardigan called a dress in 2 of 10 scans, confidently: no dress, not even early or
    # at exit. A dress found in every scan decides as usual.
    c = GarmentVotes(cfg(early_votes=2, early_score=0.85, min_presence=0.5, min_vote_interval_s=0.0))
    for i in range(10):
        c.look()
        if i in (0, 7):
            c.seen("dress")
            assert c.vote("dress", "dress", 0.95, i * 0.1) is None or i == 0
    assert c.settled_by_slot() == {} and c.presence("dress") == pytest.approx(0.2)
    assert c.decide_at_exit() == {}
    c = GarmentVotes(cfg(early_votes=2, early_score=0.85, min_presence=0.5, min_vote_interval_s=0.0))
    for i in range(2):
        c.look()
        c.seen("dress")
        result = c.vote("dress", "dress", 0.95, i * 0.1)
    assert result is not None and result.decided == "early"


def test_after_exit_only_well_supported_garments_stay_pending():
    c = GarmentVotes(cfg(exit_min_votes=2))
    c.vote("dress", "dress", 0.9, 0.0)
    c.vote("dress", "dress", 0.9, 0.5)
    c.vote("dress", "dress", 0.9, 1.0)
    c.vote("pants", "pants", 0.5, 0.0)  # one weak look at trousers
    assert c.pending() == {"pants"}
    c.decide_at_exit()
    assert c.pending() == set()  # released: one vote is not enough to veto at exit


def test_reverification_contradicted_when_no_settled_garment_comes_back():
    # Settled a skirt; "re-acquired", the person now only ever shows shorts: after 3 n looks
    # without the skirt agreeing, it is somebody else.
    c = GarmentVotes(cfg(min_votes=2, min_vote_interval_s=0.0))
    for t in (0.0, 0.1):
        c.look()
        c.seen("skirt")
        c.vote("skirt", "skirt", 0.9, t)
    c.reverify(2)
    for i in range(5):
        c.look()
        c.seen("shorts")
        c.vote("shorts", "shorts", 0.9, 1.0 + i / 10)
        assert not c.contradicted
    c.look()  # the 6th look without the skirt
    assert c.contradicted
    # the same person, the skirt seen again once: confirmed
    c = GarmentVotes(cfg(min_votes=2, min_vote_interval_s=0.0))
    for t in (0.0, 0.1):
        c.look()
        c.vote("skirt", "skirt", 0.9, t)
    c.reverify(2)
    c.look()
    c.vote("skirt", "skirt", 0.8, 1.0)
    for _ in range(8):
        c.look()
    assert not c.contradicted


def test_a_garment_the_scans_keep_not_finding_is_absent_for_now_but_stays_open():
    # A bag glimpsed in the first look and never again: after ABSENT_LOOKS looks it is absent (the
    # caller may look less often); it is not given up, and found again look after look it settles.
    from edge.consensus import ABSENT_LOOKS

    c = GarmentVotes(cfg(min_presence=0.5, min_vote_interval_s=0.0))
    c.look()
    c.seen("bag")
    c.vote("bag", "bag", 0.9, 0.0)
    for i in range(1, ABSENT_LOOKS):
        assert not c.only_absent_open()  # too few looks to call it absent
        c.look()
    assert c.only_absent_open()
    assert not c.all_decided() and c.wants("bag", 10.0)  # still open: it may still show up
    for i in range(ABSENT_LOOKS + 2):
        c.look()
        c.seen("bag")
        c.vote("bag", "bag", 0.9, 1.0 + i)
        if c.settled_by_slot():
            break
    assert c.settled_by_slot()["bag"].label == "bag"
    assert not c.only_absent_open()  # nothing open any more


def test_one_present_open_garment_keeps_the_customer_at_the_vote_interval():
    from edge.consensus import ABSENT_LOOKS

    c = GarmentVotes(cfg(min_presence=0.5, min_vote_interval_s=0.0, min_score=0.9))
    for i in range(ABSENT_LOOKS * 2):
        c.look()
        if i == 0:
            c.seen("hat")  # absent afterwards
        c.seen("pants")  # found every look, its votes too weak to count: still being decided
        c.vote("pants", "pants", 0.6, float(i))
    assert not c.only_absent_open()
    # a slot nobody reports looks for (votes without seen(): body regions in older callers) is never absent
    d = GarmentVotes(cfg())
    for i in range(ABSENT_LOOKS * 2):
        d.look()
        d.vote("upper", "shirt", 0.3, float(i))
    assert not d.only_absent_open()

"""One customer's garment votes: decide what they wear over several looks, not one crop.

``GarmentVotes`` belongs to one ``Customer`` (edge/customer.py). A *slot* is a garment position:
``upper`` / ``lower`` / ``full`` body regions, or a garment detector's class (``edge.garments``).
Rules (Frigate's sub-label voting, in seconds of source time):

* ``wants(slot, now_s)``: a vote is taken while the slot is open (neither settled nor given up),
  or while a settled slot is being re-verified, at most once per ``min_vote_interval_s``.
* ``vote(slot, label, score, now_s, weight)``: every call is an *attempt*; only votes with
  ``score >= min_score`` *count*. ``weight`` (0..1, from the crop's size and sharpness, see
  ``edge.garments.crop_weight``) says how much a vote is worth: a sharp 150 px crop outweighs a
  blurred 40 px one.
* A slot **settles** (``decided='consensus'``) when its leading label has at least
  ``min_votes`` counted votes and at least ``min_agreement`` of the counted weight, or early
  (``decided='early'``) when ``early_votes`` of the leading label's votes have a score of at least
  ``early_score`` with the same agreement: two confident looks that agree are enough, so a
  customer crossing the camera in a second is decided while still in view. A tie between the
  two leading labels gives no result.
* Presence: every scan of the customer is a *look* (``look()``), and each slot found in it is
  *seen* (``seen(slot)``). A slot decides only while it was seen in at least ``min_presence`` of
  the looks since it was first seen: a long cardigan that the garment detector calls a dress in
  2 of 17 looks is no dress, however confident those two were (absence is evidence too).
* A slot found in fewer than ``min_presence`` of at least ``ABSENT_LOOKS`` looks since it was first
  seen is *absent* for now (a bag glimpsed once, a hat in one frame): it cannot settle unless it
  keeps being found, so while only absent slots are open the caller may look less often
  (``only_absent_open``; the pipeline's ``consensus.absent_scan_interval_s``) instead of at
  every vote interval. Absent slots stay open: a garment that shows up for good still settles.
* After ``max_votes`` attempts without settling the slot is **given up** (a garment the model
  cannot tell): no more calls.
* ``decide_at_exit()``: when the customer leaves, each open slot with votes is decided under a
  stricter rule (``decided='exit'``): at least ``exit_min_votes`` counted votes of the leading
  label, ``exit_min_agreement`` of the weight and a mean score of at least ``exit_min_score``;
  the slots that fail it are given up. Of those, the labels with at least ``exit_min_votes``
  counted votes stay ``pending`` (an ``unless`` garment with that much evidence still holds its
  rule back: trousers seen twice under a long cardigan); weaker ones no longer hold anything.
* ``reverify(n)``: after a lost customer was re-acquired, each settled slot takes ``n`` more
  counted votes; when more than half of them name another label, or when ``3 n`` looks pass
  without any settled garment seen again and agreeing (a skirt-wearer "re-acquired" in shorts),
  ``contradicted`` is true and the caller splits the customer (the tracker gave somebody else
  this customer's id).
* The settled ``score`` is the mean score of the winning label's counted votes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Literal

from .config import ConsensusConfig

Decision = Literal["consensus", "early", "exit"]
VERIFY_LOOKS_PER_VOTE = 3  # a re-verification owed n votes gives up waiting after 3 n looks
ABSENT_LOOKS = 6  # a garment found in under min_presence of this many looks or more is absent for now
TIME_EPS = 1e-3  # epoch timestamps carry ~1e-7 s of float error: "0.1 s later" must not read 0.0999999


@dataclass(frozen=True)
class SettledGarment:
    label: str
    score: float  # mean score of the agreeing (counted) votes
    votes: int  # counted votes for this label
    agreement: float  # weight of this label / weight of all counted votes of the slot
    decided: Decision = "consensus"


@dataclass
class _Vote:
    label: str
    score: float
    weight: float


@dataclass
class _Slot:
    attempts: int = 0
    last_vote_s: float | None = None
    votes: list[_Vote] = field(default_factory=list)  # counted votes only
    settled: SettledGarment | None = None
    given_up: bool = False
    verify_left: int = 0  # counted votes still owed by a re-verification
    verify_against: int = 0  # of the re-verification votes, how many named another label
    verify_done: int = 0
    first_look: int | None = None  # the customer's look in which the slot was first seen
    seen: int = 0  # looks in which it was seen

    @property
    def open(self) -> bool:
        return self.settled is None and not self.given_up


class GarmentVotes:
    def __init__(self, cfg: ConsensusConfig):
        self.cfg = cfg
        self._slots: dict[str, _Slot] = {}
        self.looks = 0  # scans of this customer
        self._held_at_exit: set[str] = set()  # labels still pending after the exit decision
        self._verify_looks_left = 0  # looks left for a re-verification to see a settled garment
        self._unconfirmed = False  # re-verifying and no settled garment agreed yet

    # -- taking votes ----------------------------------------------------------------------
    def look(self) -> None:
        """The customer was scanned (call before ``seen`` for the slots found in that scan)."""
        self.looks += 1
        self._note_verification_look()

    def seen(self, slot: str) -> None:
        """``slot`` was found in the current look (whether or not its crop is good enough to vote)."""
        state = self._slots.setdefault(slot, _Slot())
        if state.first_look is None:
            state.first_look = self.looks
        state.seen += 1

    def presence(self, slot: str) -> float:
        """Share of the looks since ``slot`` was first seen in which it was seen (1.0 if the
        caller never reports looks)."""
        state = self._slots.get(slot)
        if state is None or state.first_look is None:
            return 1.0
        return min(1.0, state.seen / max(self.looks - state.first_look + 1, 1))

    def wants(self, slot: str, now_s: float) -> bool:
        state = self._slots.get(slot)
        if state is None:
            return True
        if not state.open and state.verify_left <= 0:
            return False
        return state.last_vote_s is None or now_s - state.last_vote_s >= self.cfg.min_vote_interval_s - TIME_EPS

    def vote(self, slot: str, label: str, score: float, now_s: float, weight: float = 1.0) -> SettledGarment | None:
        """Record one look at ``slot``; returns the slot's result if this vote settled it."""
        state = self._slots.setdefault(slot, _Slot())
        counted = score >= self.cfg.min_score
        if state.settled is not None and state.verify_left > 0:
            state.last_vote_s = now_s
            if counted:
                state.verify_left -= 1
                state.verify_done += 1
                state.verify_against += label != state.settled.label
            return None
        if not state.open:
            return None
        state.attempts += 1
        state.last_vote_s = now_s
        if counted:
            state.votes.append(_Vote(label, float(score), max(float(weight), 1e-3)))
            state.settled = self._decide(state, self.presence(slot))
        if state.settled is None and state.attempts >= self.cfg.max_votes:
            state.given_up = True
        return state.settled

    def _leader(self, state: _Slot) -> tuple[str, float, list[_Vote]] | None:
        """Leading label, its share of the weight and its votes; None on a tie or no votes."""
        if not state.votes:
            return None
        weights: dict[str, float] = defaultdict(float)
        for v in state.votes:
            weights[v.label] += v.weight
        ranked = sorted(weights.items(), key=lambda item: -item[1])
        if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - 1e-9:
            return None  # a tie gives no result
        label, weight = ranked[0]
        return label, weight / sum(weights.values()), [v for v in state.votes if v.label == label]

    @staticmethod
    def _result(label: str, agreement: float, votes: list[_Vote], decided: Decision) -> SettledGarment:
        return SettledGarment(label, sum(v.score for v in votes) / len(votes), len(votes), agreement, decided)

    def _decide(self, state: _Slot, presence: float) -> SettledGarment | None:
        leader = self._leader(state)
        if leader is None or presence < self.cfg.min_presence:
            return None
        label, agreement, votes = leader
        cfg = self.cfg
        if agreement < cfg.min_agreement:
            return None
        if len(votes) >= cfg.min_votes:
            return self._result(label, agreement, votes, "consensus")
        if sum(v.score >= cfg.early_score for v in votes) >= cfg.early_votes:
            return self._result(label, agreement, votes, "early")
        return None

    def decide_at_exit(self) -> dict[str, SettledGarment]:
        """The customer left: decide open slots that have votes under the stricter exit rule.
        Returns the slots decided now (they also appear in ``settled_by_slot()``)."""
        cfg = self.cfg
        decided: dict[str, SettledGarment] = {}
        for slot, state in self._slots.items():
            if not state.open or not cfg.exit_decision:
                continue
            leader = self._leader(state)
            if leader is None:
                continue
            label, agreement, votes = leader
            mean_score = sum(v.score for v in votes) / len(votes)
            if len(votes) >= cfg.exit_min_votes and agreement >= cfg.exit_min_agreement \
                    and mean_score >= cfg.exit_min_score and self.presence(slot) >= cfg.min_presence:
                state.settled = self._result(label, agreement, votes, "exit")
                decided[slot] = state.settled
        for state in self._slots.values():
            if state.open:
                state.given_up = True
                counts: dict[str, int] = defaultdict(int)
                for v in state.votes:
                    counts[v.label] += 1
                self._held_at_exit |= {label for label, n in counts.items() if n >= cfg.exit_min_votes}
        return decided

    # -- re-verification -------------------------------------------------------------------
    def reverify(self, votes: int, checks: Callable[[str], bool] = lambda slot: True) -> None:
        """Ask each settled slot for ``votes`` more counted votes (after a re-acquisition); if
        within ``VERIFY_LOOKS_PER_VOTE * votes`` looks no settled garment is seen again and
        agrees, the customer counts as contradicted too (somebody else in other clothes).
        ``checks(slot)``: whether the slot takes part (the caller leaves out readings that are
        not evidence of identity)."""
        settled = [state for slot, state in self._slots.items() if state.settled is not None and checks(slot)]
        for state in settled:
            state.verify_left, state.verify_against, state.verify_done = votes, 0, 0
        self._verify_looks_left = VERIFY_LOOKS_PER_VOTE * votes if settled and votes else 0
        self._unconfirmed = bool(settled and votes)

    def end_verification(self) -> None:
        """Stop a re-verification (the caller found the same person by appearance: garments that
        changed - a jacket opened, a back view - are no reason to split). Settled slots stay."""
        for state in self._slots.values():
            state.verify_left = state.verify_against = state.verify_done = 0
        self._verify_looks_left = 0
        self._unconfirmed = False

    def reopen(self) -> None:
        """The customer came back after leaving: slots given up at the exit (or after too many
        attempts) take votes again, keeping theirs; settled slots stay settled."""
        for state in self._slots.values():
            if state.given_up and state.settled is None:
                state.given_up = False
                state.attempts = 0
        self._held_at_exit = set()
        self.end_verification()

    def _note_verification_look(self) -> None:
        if self._verify_looks_left > 0:
            self._verify_looks_left -= 1
        if self._agreed():
            self._unconfirmed = False  # one settled garment seen again and agreeing: the same person

    @property
    def verifying(self) -> bool:
        """Re-verification votes are still owed and its looks are not used up."""
        return self._verify_looks_left > 0 and any(
            s.settled is not None and s.verify_left > 0 for s in self._slots.values())

    @property
    def contradicted(self) -> bool:
        """A re-verification found somebody else: more than half of a slot's check votes
        disagree, or the looks allowed for it passed without any settled garment agreeing."""
        if self._unconfirmed and self._verify_looks_left == 0 and not self._agreed():
            # the looks allowed passed and no settled garment came back
            return True
        return any(s.verify_done and s.verify_against * 2 > s.verify_done + s.verify_left
                   for s in self._slots.values() if s.settled is not None)

    def _agreed(self) -> bool:
        return any(s.verify_done > s.verify_against for s in self._slots.values() if s.settled is not None)

    # -- reading ---------------------------------------------------------------------------
    def settled_by_slot(self) -> dict[str, SettledGarment]:
        """Settled slots (slot -> result)."""
        return {slot: s.settled for slot, s in self._slots.items() if s.settled is not None}

    def pending(self) -> set[str]:
        """Labels with counted votes in slots that are still open (neither settled nor given up),
        and after the exit decision those held back by enough votes (see ``decide_at_exit``)."""
        return {v.label for s in self._slots.values() if s.open for v in s.votes} | self._held_at_exit

    def leading_labels(self, slots: Callable[[str], bool] = lambda slot: True) -> dict[str, str]:
        """Slot -> its settled label, else the label leading its votes (slots with no leader left out)."""
        out = {}
        for slot, state in self._slots.items():
            if not slots(slot):
                continue
            if state.settled is not None:
                out[slot] = state.settled.label
            else:
                leader = self._leader(state)
                if leader is not None:
                    out[slot] = leader[0]
        return out

    def only_absent_open(self) -> bool:
        """Slots are open, no re-verification is owed, and every open slot is absent for now: found
        in fewer than ``min_presence`` of at least ``ABSENT_LOOKS`` looks since first seen (a slot
        whose looks the caller does not report is never absent, as in ``presence``)."""
        open_slots = [s for s in self._slots.values() if s.open]
        if not open_slots or self.verifying:
            return False
        for state in open_slots:
            if state.first_look is None:
                return False
            looks = self.looks - state.first_look + 1
            if looks < ABSENT_LOOKS or state.seen >= self.cfg.min_presence * looks:
                return False
        return True

    def given_up(self) -> list[str]:
        return [slot for slot, s in self._slots.items() if s.given_up]

    @property
    def counted_votes(self) -> int:
        return sum(len(s.votes) for s in self._slots.values())

    def all_decided(self, slots: list[str] | tuple[str, ...] | None = None) -> bool:
        """True when nothing is left to look at: every slot in ``slots`` (default: every slot
        voted on so far, at least one) is settled or given up, and no re-verification is owed;
        with no slot at all, once ``max_votes`` looks found nothing."""
        wanted = list(slots) if slots is not None else list(self._slots)
        if self.verifying:
            return False
        if not wanted:  # nothing found yet: give up after max_votes looks, like a slot would
            return slots is None and self.looks >= self.cfg.max_votes
        return all(slot in self._slots and not self._slots[slot].open for slot in wanted)

"""Per-customer garment consensus: vote over several frames instead of trusting one crop.

Each (track, slot) collects classifier votes - a slot is a garment position such as ``upper``,
``lower`` or a detector garment class, decided by ``edge.garments``. Rules (Frigate-like):

* ``wants(track, slot, frame)``: classify only while the slot is open (neither settled nor given
  up) and at least ``every_k_frames`` frames after its previous attempt.
* ``vote(...)``: every call is an *attempt*; only votes with ``score >= min_score`` *count*.
* A slot **settles** as soon as its leading label has at least ``min_votes`` counted votes and
  at least ``min_agreement`` of all counted votes (default 3 votes, 60 %). A settled slot keeps
  its result for the rest of the track's life.
* After ``max_votes`` attempts (counted or not) without settling, the slot is **given up**: it
  costs no more classifier calls and never settles (a garment the model cannot tell).
* The settled ``score`` is the mean classifier score of the winning label's counted votes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .config import ConsensusConfig


@dataclass(frozen=True)
class SettledGarment:
    label: str
    score: float  # mean score of the agreeing (counted) votes
    votes: int  # counted votes for this label
    agreement: float  # votes / all counted votes of the slot


@dataclass
class _Slot:
    attempts: int = 0
    last_frame: int | None = None
    votes: list[tuple[str, float]] = field(default_factory=list)  # counted votes only
    settled: SettledGarment | None = None
    given_up: bool = False

    @property
    def open(self) -> bool:
        return self.settled is None and not self.given_up


class Consensus:
    def __init__(self, cfg: ConsensusConfig):
        self.cfg = cfg
        self._tracks: dict[int, dict[str, _Slot]] = {}

    def wants(self, track_id: int, slot: str, frame_index: int) -> bool:
        state = self._tracks.get(track_id, {}).get(slot)
        if state is None:
            return True
        if not state.open:
            return False
        return state.last_frame is None or frame_index - state.last_frame >= self.cfg.every_k_frames

    def vote(self, track_id: int, slot: str, label: str, score: float, frame_index: int) -> SettledGarment | None:
        """Record one classification; returns the slot's result if this vote settled it."""
        state = self._tracks.setdefault(track_id, {}).setdefault(slot, _Slot())
        if not state.open:
            return None
        state.attempts += 1
        state.last_frame = frame_index
        if score >= self.cfg.min_score:
            state.votes.append((label, float(score)))
            state.settled = self._decide(state)
        if state.settled is None and state.attempts >= self.cfg.max_votes:
            state.given_up = True
        return state.settled

    def _decide(self, state: _Slot) -> SettledGarment | None:
        counts = Counter(label for label, _ in state.votes)
        label, votes = counts.most_common(1)[0]
        agreement = votes / len(state.votes)
        if votes < self.cfg.min_votes or agreement < self.cfg.min_agreement:
            return None
        scores = [s for name, s in state.votes if name == label]
        return SettledGarment(label, sum(scores) / len(scores), votes, agreement)

    def settled(self, track_id: int) -> dict[str, SettledGarment]:
        """Settled slots of a track (slot -> result); empty for an unknown track."""
        return {slot: s.settled for slot, s in self._tracks.get(track_id, {}).items() if s.settled is not None}

    def pending(self, track_id: int) -> set[str]:
        """Labels with counted votes in slots that are still open (neither settled nor given up)."""
        return {label for s in self._tracks.get(track_id, {}).values() if s.open for label, _ in s.votes}

    def given_up(self, track_id: int) -> list[str]:
        return [slot for slot, s in self._tracks.get(track_id, {}).items() if s.given_up]

    def is_settled(self, track_id: int, slots: list[str] | tuple[str, ...] | None = None) -> bool:
        """True when nothing is left to classify: every slot in ``slots`` (default: every slot
        voted on so far, at least one) is settled or given up."""
        states = self._tracks.get(track_id, {})
        wanted = list(slots) if slots is not None else list(states)
        if not wanted:
            return False
        return all(slot in states and not states[slot].open for slot in wanted)

    def drop(self, track_id: int) -> None:
        self._tracks.pop(track_id, None)

    @property
    def track_count(self) -> int:
        return len(self._tracks)

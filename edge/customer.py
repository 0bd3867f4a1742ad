"""One record per customer: everything the pipeline knows about one person in view.

A ``Customer`` is created when the tracker confirms a track (``started``), re-checked when a lost
track is re-acquired (``reacquired``: its settled garments are verified again, and votes that
contradict them split it into a new customer), and finished when the track ends (``ended``:
open garment slots get the exit decision). It owns its garment votes, the rules it already
fired, its dwell, its scan schedule and its call counters; the tracker's track (same id) owns
its motion and colour appearance, because a tentative track needs them before a customer
exists. ``Customers`` is the one map from id to record, fed by tracker events only.

Outfit embedding (issue 14): the classifier's embedding of every good garment crop that voted is
summed per voted label (``add_embedding``); ``outfit_embedding`` (all labels) and
``garment_embedding`` (some labels, for the catalogue search) are those sums L2-normalised. They
live only in this record, in memory, for the customer's life: never stored or published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import ConsensusConfig
from .attributes.votes import is_attribute_slot
from .consensus import GarmentVotes, SettledGarment


@dataclass
class Customer:
    id: int
    first_seen: float  # epoch seconds (the frame's timestamp)
    last_seen: float
    garments: GarmentVotes
    box: np.ndarray | None = None  # last person box seen (xyxy frame pixels)
    fired_rules: set[str] = field(default_factory=set)
    last_scan: float | None = None  # timestamp of the last garment scan
    scans: int = 0  # garment scans (garment detector runs, or body-region passes)
    classifier_calls: int = 0
    reacquired: int = 0  # times it came back after being lost
    # voted label -> (sum of the crops' L2-normalised embeddings, crops): memory only, see module doc
    embeddings: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict, repr=False)
    style: str | None = None  # nearest style name once assigned (edge.styles)

    @property
    def dwell_s(self) -> float:
        return self.last_seen - self.first_seen

    @property
    def wants_scan(self) -> bool:
        """Something is still to be decided or re-verified."""
        return not self.garments.is_settled()

    def settled_scores(self) -> dict[str, float]:
        """Settled garment label -> best score (a label settled in two slots counts once)."""
        scores: dict[str, float] = {}
        for garment in self.garments.settled().values():
            scores[garment.label] = max(scores.get(garment.label, 0.0), float(garment.score))
        return scores

    def add_embedding(self, label: str, embedding: np.ndarray) -> None:
        total, count = self.embeddings.get(label, (np.zeros_like(embedding, dtype=np.float32), 0))
        self.embeddings[label] = (total + embedding, count + 1)

    def outfit_embedding(self) -> np.ndarray | None:
        """Pooled embedding of all the voted crops (L2-normalised), None before any."""
        return self.garment_embedding(None)

    def garment_embedding(self, labels: list[str] | None) -> np.ndarray | None:
        """Pooled embedding of the crops voted as ``labels`` (None: all), L2-normalised."""
        wanted = None if labels is None else {x.lower() for x in labels}
        sums = [total for label, (total, _) in self.embeddings.items() if wanted is None or label in wanted]
        if not sums:
            return None
        pooled = np.sum(sums, axis=0)
        norm = float(np.linalg.norm(pooled))
        return pooled / norm if norm > 0 else None

    def decided_by(self, labels: list[str]) -> str:
        """How the named settled garments were decided: 'exit' if any at exit, else 'early' if
        any early, else 'consensus'."""
        kinds = {g.decided for g in self.garments.settled().values() if g.label in {x.lower() for x in labels}}
        return "exit" if "exit" in kinds else "early" if "early" in kinds else "consensus"


class Customers:
    """The customers of one camera, keyed by track id."""

    def __init__(self, cfg: ConsensusConfig):
        self.cfg = cfg
        self._by_id: dict[int, Customer] = {}

    def start(self, track_id: int, now: float) -> Customer:
        customer = Customer(track_id, now, now, GarmentVotes(self.cfg))
        self._by_id[track_id] = customer
        return customer

    def get(self, track_id: int) -> Customer | None:
        return self._by_id.get(track_id)

    def reacquire(self, track_id: int) -> Customer | None:
        customer = self._by_id.get(track_id)
        if customer is not None:
            customer.reacquired += 1
            # Person-attribute readings do not re-check identity: a reading near its operating point
            # flips between a front and a back view (measured: the store walk counted 144 customers
            # for 121 with them in the check, 131 without the attribute model)
            customer.garments.reverify(self.cfg.reverify_votes, checks=lambda slot: not is_attribute_slot(slot))
        return customer

    def end(self, track_id: int) -> tuple[Customer | None, dict[str, SettledGarment]]:
        """Remove the customer; returns it and the garments decided at exit."""
        customer = self._by_id.pop(track_id, None)
        if customer is None:
            return None, {}
        return customer, customer.garments.decide_at_exit()

    def __iter__(self):
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

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

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .boxes import centre_distance
from .config import ConsensusConfig, IdentityConfig
from .attributes.votes import is_attribute_slot
from .consensus import GarmentVotes, SettledGarment
from .identity import AppearanceViews, CustomerGallery
from .identity.calibration import IdentityCalibration, shipped_defaults

RECENT_BOXES = 64  # boxes kept per customer for its speed: two seconds at up to 30 fps


@dataclass
class Customer:
    id: int
    first_seen: float  # epoch seconds (the frame's timestamp)
    last_seen: float
    votes: GarmentVotes  # the garment and attribute votes, slot by slot (edge/consensus.py)
    box: np.ndarray | None = None  # last person box seen (xyxy frame pixels)
    # (time, box) of the last two seconds or so: was the person standing or walking (memory only)
    recent_boxes: deque = field(default_factory=lambda: deque(maxlen=RECENT_BOXES), repr=False)
    first_box: np.ndarray | None = None  # the box it was first seen with (where it came in)
    # epoch seconds of its track's first box, before the tracker confirmed it (None: first_seen):
    # anyone seen since was in view together with this person, so is not this person
    first_box_at: float | None = None
    fired_rules: set[str] = field(default_factory=set)
    staff: bool = False  # seen in a staff_only zone: no customer (no analytics, no alerts), by place only
    last_scan: float | None = None  # timestamp of the last garment scan
    classifier_calls: int = 0
    reacquired: int = 0  # times it came back after being lost
    # voted label -> (sum of the crops' L2-normalised embeddings, crops): memory only, see module doc
    embeddings: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict, repr=False)
    style: str | None = None  # nearest style name once assigned (edge.styles)
    # Identity (issue 21, edge/identity/): the tracker id now following this customer (a returning
    # customer keeps its id while the tracker gives the person a new track) and its appearance views
    track_id: int = -1
    appearance: AppearanceViews = field(default_factory=AppearanceViews, repr=False)
    # while a re-acquisition is being verified: the appearance seen since, and the box and time
    # before it (a split gives the old customer back its own last box)
    since_reacquired: AppearanceViews | None = field(default=None, repr=False)
    box_before_reacquired: np.ndarray | None = field(default=None, repr=False)
    seen_before_reacquired: float | None = None
    # snapshots.enabled only: the person's pixels in the last frame they were seen, for the picture of
    # an alert decided as they left (the frame then no longer shows them); dropped when they leave
    last_picture: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.track_id < 0:
            self.track_id = self.id

    def saw(self, ts: float, box: np.ndarray) -> None:
        """The person's box in a frame at ``ts``."""
        self.last_seen, self.box = ts, box
        if self.first_box is None:
            self.first_box = box
        self.recent_boxes.append((ts, box))

    def speed(self, window_s: float = 2.0) -> float | None:
        """How fast the box centre moved over the last ``window_s`` it was seen (the boxes of a
        person the detector keeps losing are sparse), in person heights per second; None when the
        boxes span less than a quarter of that."""
        if len(self.recent_boxes) < 2:
            return None
        t1, b1 = self.recent_boxes[-1]
        t0, b0 = next(((t, b) for t, b in self.recent_boxes if t1 - t <= window_s), self.recent_boxes[0])
        if t1 - t0 < window_s / 4:
            return None
        height = max(float(b1[3] - b1[1]), float(b0[3] - b0[1]), 1.0)
        return float(centre_distance(b1, b0)[0] / height / (t1 - t0))

    @property
    def views_now(self) -> AppearanceViews:
        """Where this scan's appearance goes: apart while a re-acquisition is being verified."""
        return self.since_reacquired or self.appearance

    @property
    def wants_scan(self) -> bool:
        """Something is still to be decided or re-verified."""
        return not self.votes.all_decided()

    def scan_interval_s(self, cfg: ConsensusConfig) -> float:
        """Least time between two scans: the vote interval, or the slower absent-garment interval
        once only garments the scans keep not finding are undecided (scans that cannot settle
        anything are the crowd's CPU)."""
        if self.votes.only_absent_open():
            return max(cfg.min_vote_interval_s, cfg.absent_scan_interval_s)
        return cfg.min_vote_interval_s

    def settled_scores(self) -> dict[str, float]:
        """Settled garment label -> best score (a label settled in two slots counts once)."""
        scores: dict[str, float] = {}
        for garment in self.votes.settled_by_slot().values():
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
        kinds = {g.decided for g in self.votes.settled_by_slot().values() if g.label in {x.lower() for x in labels}}
        return "exit" if "exit" in kinds else "early" if "early" in kinds else "consensus"


class Customers:
    """The customers of one camera, keyed by the tracker id that follows each one now, and the
    gallery of those who left recently (``edge.identity.gallery``)."""

    def __init__(self, cfg: ConsensusConfig, identity: IdentityConfig | None = None,
                 calibration: IdentityCalibration | None = None):
        self.cfg = cfg
        # the thresholds and unit measured for the embedding the attribute reader gives (through a
        # re-identification head or not; edge/identity/calibration.py)
        calibration = calibration or shipped_defaults()
        self.identity = (identity or IdentityConfig()).fill_embedding_thresholds(calibration.thresholds)
        self.embedding_scale = calibration.embedding_scale
        self.gallery = CustomerGallery(self.identity)
        self._by_track: dict[int, Customer] = {}

    def _views(self) -> AppearanceViews:
        return AppearanceViews(self.identity.max_views, self.identity.view_distance, self.identity.colour_same_distance,
                               self.embedding_scale)

    def start(self, track_id: int, now: float, first_box_at: float | None = None) -> Customer:
        """A new customer confirmed at ``now``; ``first_box_at``: when its track's first box was
        seen (earlier: the tracker waits for a few boxes before it confirms a person)."""
        customer = Customer(track_id, now, now, GarmentVotes(self.cfg), appearance=self._views(),
                            first_box_at=now if first_box_at is None else min(first_box_at, now))
        self._by_track[track_id] = customer
        return customer

    def get(self, track_id: int) -> Customer | None:
        return self._by_track.get(track_id)

    def reacquire(self, track_id: int) -> Customer | None:
        customer = self._by_track.get(track_id)
        if customer is not None:
            customer.reacquired += 1
            customer.since_reacquired = self._views()
            customer.box_before_reacquired, customer.seen_before_reacquired = customer.box, customer.last_seen
            # Person-attribute readings do not re-check identity: a reading near its operating point
            # flips between a front and a back view (measured: the store walk counted 144 customers
            # for 121 with them in the check, 131 without the attribute model)
            customer.votes.reverify(self.cfg.reverify_votes, checks=lambda slot: not is_attribute_slot(slot))
        return customer

    def end(self, track_id: int) -> tuple[Customer | None, dict[str, SettledGarment]]:
        """The track ended: remove its customer (remembered in the gallery); returns it and the
        garments decided at exit. A track that no longer follows its customer (the customer
        continued on another track) ends nobody."""
        customer = self._by_track.pop(track_id, None)
        if customer is None or customer.track_id != track_id:
            return None, {}
        if customer.since_reacquired is not None:
            self.settle_verification(customer)
        decided = customer.votes.decide_at_exit()
        self.gallery.remember(customer)
        return customer, decided

    def settle_verification(self, customer: Customer) -> None:
        """A re-acquisition found the same person: its appearance since joins the customer's."""
        if customer.since_reacquired is not None:
            customer.appearance.absorb(customer.since_reacquired)
        customer.since_reacquired = None
        customer.box_before_reacquired = customer.seen_before_reacquired = None

    def lost(self, now: float) -> list[Customer]:
        """Customers whose track was not seen at ``now`` (hidden or gone, not ended yet)."""
        return [c for c in self._by_track.values() if c.last_seen < now - 1e-3]

    def continue_customer(self, newcomer: Customer, known: Customer) -> Customer:
        """``newcomer``'s track is ``known`` coming back: ``known`` follows that track from now on
        (its id, votes and fired rules); ``newcomer``'s record is dropped. Returns ``known``."""
        self._by_track.pop(known.track_id, None)
        self.gallery.take(known.id)
        known.track_id = newcomer.track_id
        self._by_track[newcomer.track_id] = known
        known.last_seen, known.box = newcomer.last_seen, newcomer.box
        known.recent_boxes = newcomer.recent_boxes
        known.reacquired += 1
        known.since_reacquired = None
        known.appearance.absorb(newcomer.appearance)
        known.fired_rules |= newcomer.fired_rules
        known.votes.reopen()  # what was given up when it left may be decided now
        return known

    def __iter__(self):
        return iter(list(self._by_track.values()))

    def __len__(self) -> int:
        return len(self._by_track)

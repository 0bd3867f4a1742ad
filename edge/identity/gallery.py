"""Recent customers, kept in memory so that a person who comes back continues their customer.

A customer whose track ended (left the view, or hidden longer than ``tracker.max_lost_s``) is
``remember``-ed here with its whole record: id, garment votes, the rules it already fired, its
appearance views. A new customer is compared (``find``) at each of its first
``identity.match_readings`` readings with these and with the customers whose track is lost but
not ended yet; the closest one within ``same_distance`` (colour and embedding combined; the
``colour_`` / ``embedding_`` variants when one side has only one cue) is the same person, and the pipeline continues that record: same id for the
analytics and the rules, so no second count and no second alert.

Never merged: two customers seen in the same frame (look-alikes standing together are two
people), i.e. a candidate must have been last seen before the new customer was first seen.

Time and memory: a remembered customer is forgotten ``memory_s`` (default 300 s) after it was
last seen, and at most ``max_customers`` (default 256) are kept, the oldest forgotten first;
at 3 embedding views of 1280 floats that is at most ~4 MB. Nothing here is written to disk or
published; on a restart the gallery is empty.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Iterable

from ..config import IdentityConfig

if TYPE_CHECKING:
    from ..customer import Customer

TIME_EPS = 1e-3


def same_limit(cfg: IdentityConfig, kind: str) -> float:
    return {"combined": cfg.same_distance, "colour": cfg.colour_same_distance,
            "embedding": cfg.embedding_same_distance}[kind]


def split_limit(cfg: IdentityConfig, kind: str) -> float:
    return {"combined": cfg.split_distance, "colour": cfg.colour_split_distance,
            "embedding": cfg.embedding_split_distance}[kind]


class CustomerGallery:
    def __init__(self, cfg: IdentityConfig):
        self.cfg = cfg
        self._left: OrderedDict[int, "Customer"] = OrderedDict()  # id -> record, oldest first

    def remember(self, customer: "Customer") -> None:
        if not self.cfg.enabled or self.cfg.memory_s <= 0 or customer.appearance.empty:
            return
        self._left.pop(customer.id, None)
        self._left[customer.id] = customer
        while len(self._left) > self.cfg.max_customers:
            self._left.popitem(last=False)

    def forget_expired(self, now: float) -> None:
        for customer_id in [cid for cid, c in self._left.items() if now - c.last_seen > self.cfg.memory_s]:
            del self._left[customer_id]

    def take(self, customer_id: int) -> "Customer | None":
        """Remove and return a remembered customer (it came back)."""
        return self._left.pop(customer_id, None)

    def find(self, newcomer: "Customer", lost: Iterable["Customer"] = ()) -> tuple["Customer", str, float] | None:
        """The remembered or lost customer ``newcomer`` continues, with the kind of appearance and
        the distance that decided it; None when nobody is close enough."""
        if not self.cfg.enabled:
            return None
        best = None
        for candidate in list(self._left.values()) + list(lost):
            if candidate is newcomer or candidate.last_seen >= newcomer.first_seen - TIME_EPS:
                continue  # seen together (or after): two people
            if newcomer.first_seen - candidate.last_seen > self.cfg.memory_s:
                continue
            found = newcomer.appearance.distance(candidate.appearance)
            if found is None:
                continue
            kind, d = found
            if d <= same_limit(self.cfg, kind) and (best is None or d < best[2]):
                best = (candidate, kind, d)
        return best

    def __len__(self) -> int:
        return len(self._left)

    def nbytes(self) -> int:
        return sum(c.appearance.nbytes() for c in self._left.values())

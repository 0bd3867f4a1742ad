"""Recent customers, kept in memory so that a person who comes back continues their customer.

A customer whose track ended (left the view, or hidden longer than ``tracker.max_lost_s``) is
``remember``-ed here with its whole record: id, garment votes, the rules it already fired, its
appearance views. A new customer is compared (``find``) at each of its first
``identity.match_readings`` readings with these and with the customers whose track is lost but
not ended yet; the closest one within ``same_distance`` (colour and embedding combined; the
``colour_`` / ``embedding_`` variants when one side has only one cue) is the same person, and the pipeline continues that record: same id for the
analytics and the rules, so no second count and no second alert.

Clearly the nearest: the closest candidate continues only when it is at most ``distinct_ratio`` of
the next one's distance (a return in place excepted); two about as near means appearance has not
told which one the newcomer is, and a guess merges people.

Never merged: two customers seen in the same frame (look-alikes standing together are two
people), i.e. a candidate must have been last seen before the new customer's first box (the
tracker's unconfirmed first boxes count: on the store walk a walker leaving at the right border
and a walker in a dark suit coming in there had boxes in the same frame, one before the newcomer's
track was confirmed, and merged at a distance of 0.35).

Place: a new track that first appears farther than ``reentry_heights`` person heights from where
the candidate was last seen must be ``elsewhere_factor`` times closer in appearance (the same
view seen again). People come back where they left - the same edge of the view, the end of the
rail they stood behind; on the CCTV scenario a stranger in a similar cream outfit entering from
the other side 20 s later matched at a combined distance of 0.37, below the same-person threshold
(appearance alone cannot tell such look-alikes; place can), while on the browsing scenario a
passer-by whose track broke mid-walk came back 3 heights on at 0.13.

Time and memory: a remembered customer is forgotten ``memory_s`` (default 30 s) after it was
last seen, and at most ``max_customers`` (default 256) are kept, the oldest forgotten first;
at 3 embedding views of 1280 floats that is at most ~4 MB. Nothing here is written to disk or
published; on a restart the gallery is empty.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, NamedTuple

import numpy as np

from ..config import IdentityConfig
from ..boxes import centre_distance, iou_matrix
from ..rules import point_in_polygon

if TYPE_CHECKING:
    from ..customer import Customer

log = logging.getLogger(__name__)
TIME_EPS = 1e-3
# A customer whose box centre moved less than this (person heights per second, over the last
# two seconds it was seen) stood still: browsing or turning round. Walking is about 0.7-1
# heights per second; a standing person's box jitters by a few pixels a frame.
STANDING_HEIGHTS_PER_S = 0.3


def same_limit(cfg: IdentityConfig, kind: str) -> float:
    return {"combined": cfg.same_distance, "colour": cfg.colour_same_distance,
            "embedding": cfg.embedding_same_distance}[kind]


def split_limit(cfg: IdentityConfig, kind: str) -> float:
    return {"combined": cfg.split_distance, "colour": cfg.colour_split_distance,
            "embedding": cfg.embedding_split_distance}[kind]


@dataclass(frozen=True)
class View:
    """Where people walk in and out of one camera's view: its border, and its entrances (named
    zones of the camera with a door, a stair or a fitting room in the middle of the floor,
    ``cameras[].entrances``). ``height`` and ``width`` in pixels, entrances as pixel polygons."""

    height: int
    width: int
    entrances: tuple[tuple[tuple[float, float], ...], ...] = ()

    def mid_floor(self, box, border_heights: float) -> bool:
        """Is ``box`` farther than ``border_heights`` of its own height from every border, with its
        feet (bottom centre) in no entrance: a track that starts or ends there did not walk in or
        out of the view there."""
        if box is None or border_heights <= 0:
            return False
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        margin = border_heights * max(y2 - y1, 1.0)
        if not (x1 > margin and y1 > margin and x2 < self.width - margin and y2 < self.height - margin):
            return False
        feet = ((x1 + x2) / 2, y2)
        return not any(point_in_polygon(feet, polygon) for polygon in self.entrances)


class _Comparison(NamedTuple):
    """A newcomer against one recent customer: the appearance distance, its cue, and the limit
    that place and time set for this candidate."""

    distance: float
    kind: str
    candidate: "Customer"
    limit: float
    in_place: bool


class CustomerGallery:
    def __init__(self, cfg: IdentityConfig):
        self.cfg = cfg.fill_embedding_thresholds()  # a no-op for Customers' (filled for its reader's embedding)
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

    def find(self, newcomer: "Customer", lost: Iterable["Customer"] = (),
             view: View | None = None) -> tuple["Customer", str, float] | None:
        """The remembered or lost customer ``newcomer`` continues, with the kind of appearance and
        the distance that decided it; None when nobody is close enough. ``view`` tells where people
        walk in and out (the border, the entrances); without it every track counts as crossing."""
        if not self.cfg.enabled:
            return None
        compared: list[_Comparison] = []  # every candidate with an appearance to compare
        # seen together (in one frame, the newcomer's unconfirmed first boxes included): two people
        arrived = newcomer.first_seen if newcomer.first_box_at is None else newcomer.first_box_at
        candidates = [c for c in list(self._left.values()) + list(lost)
                      if c is not newcomer and c.last_seen < arrived - TIME_EPS
                      and newcomer.first_seen - c.last_seen <= self.cfg.memory_s]
        near_where_left = self._near(newcomer.first_box, [c.box for c in candidates])
        appeared_inside = self._inside(newcomer.first_box, view)
        for candidate, found, nearby in zip(candidates, newcomer.appearance.distances([c.appearance for c in candidates]),
                                            near_where_left):
            if found is None:
                continue
            kind, d = found
            limit = same_limit(self.cfg, kind)
            in_place = self._in_place(newcomer, candidate)
            if in_place:
                # Lost a moment ago where this track appeared: a person who turned round or was
                # hidden for an instant. Only strong evidence splits them. What the attribute model
                # reads is no evidence here: a back view reads other clothes than the front (a long
                # coat from behind reads as a dress), which is why the track broke in the first place.
                limit = max(limit, split_limit(self.cfg, kind) * self.cfg.in_place_factor)
            elif not nearby and not (appeared_inside and self._inside(candidate.box, view)):
                # came in somewhere else: a look-alike stranger is likelier than a return, unless
                # it looks like the same view seen again. Not when the candidate vanished and the
                # newcomer appeared away from the view's border: nobody walks in or out mid-floor,
                # so that candidate is still in view, hidden or missed by the detector, and may
                # reappear anywhere it could walk to meanwhile (the usual threshold applies).
                limit *= self.cfg.elsewhere_factor
            compared.append(_Comparison(d, kind, candidate, limit, in_place))
        log.debug("track %d: nearest recent customers %s", newcomer.track_id,
                  sorted((round(c.distance, 3), c.kind, c.candidate.id, round(c.limit, 3)) for c in compared)[:3])
        within = [c for c in compared if c.distance <= c.limit]
        if not within:
            return None
        best = min(within, key=lambda c: c.distance)
        if not best.in_place and self._ambiguous(best, compared):
            log.debug("track %d: customer #%d is not clearly nearer than the next: a new customer",
                      newcomer.track_id, best.candidate.id)
            return None
        return best.candidate, best.kind, best.distance

    def _ambiguous(self, best: "_Comparison", compared: list["_Comparison"]) -> bool:
        """Is the nearest candidate not clearly nearer than the next one (same cue)? Each comparison
        lets through about 1 % of strangers, and a newcomer is compared with every recent customer:
        when two of them are about as near, appearance has not told which one it is, and guessing
        merges people (on the store walk one customer took up four strangers in a row, each at a
        distance within 10 % of the next candidate's). A return in place is exempt: its evidence is
        the place and the moment, not only the appearance."""
        ratio = self.cfg.distinct_ratio
        if ratio <= 0:
            return False
        others = [c.distance for c in compared if c.kind == best.kind and c.candidate is not best.candidate]
        return bool(others) and best.distance > ratio * min(others)

    def _near(self, first_box, last_boxes: list) -> list[bool]:
        """For each last box: is ``first_box`` within ``reentry_heights`` person heights of it."""
        if first_box is None:
            return [False] * len(last_boxes)
        known = [i for i, box in enumerate(last_boxes) if box is not None]
        out = [False] * len(last_boxes)
        if not known:
            return out
        a = np.asarray(first_box[:4], np.float64)
        b = np.array([last_boxes[i][:4] for i in known], np.float64)
        height = np.maximum(np.maximum(a[3] - a[1], b[:, 3] - b[:, 1]), 1.0)
        gap = centre_distance(a, b)
        for i, ok in zip(known, gap <= self.cfg.reentry_heights * height):
            out[i] = bool(ok)
        return out

    def _inside(self, box, view: View | None) -> bool:
        """Did a track that starts or ends at ``box`` stay inside the view (``View.mid_floor``)."""
        return view is not None and view.mid_floor(box, self.cfg.border_heights)

    def _in_place(self, newcomer: "Customer", candidate: "Customer") -> bool:
        if newcomer.first_box is None or candidate.box is None:
            return False
        # Someone who stood there comes back where they stood; someone lost while walking would be
        # further on after a second or two, and a newcomer at their last spot is likelier the next
        # person walking the same way.
        speed = candidate.speed()
        standing = speed is not None and speed <= STANDING_HEIGHTS_PER_S
        window = self.cfg.in_place_s if standing else min(self.cfg.in_place_s, self.cfg.in_place_walking_s)
        if newcomer.first_seen - candidate.last_seen > window:
            return False
        iou = iou_matrix(np.asarray(newcomer.first_box[:4])[None], np.asarray(candidate.box[:4])[None], np.float64)[0, 0]
        return iou >= self.cfg.in_place_iou

    def __len__(self) -> int:
        return len(self._left)

    def nbytes(self) -> int:
        return sum(c.appearance.nbytes() for c in self._left.values())

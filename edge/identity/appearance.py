"""A customer's appearance for re-identification: a few views, not one running mean.

Why views: one person seen from the front and from the back differs more than two people seen
from the same side (measured in docs/reid.md), so a single averaged vector drifts towards
nobody. A customer keeps up to ``max_views`` L2-normalised embeddings (the person-attribute
model's pooled features, taken from the reading the daemon makes anyway at each garment scan);
a reading closer than ``view_distance`` to a kept view refines that view (running mean), a
farther one becomes a new view (the distance at which 1 % of strangers are accepted: a new view is
one that would not be recognised); when all are kept, the least-confirmed view gives way. Two
appearances are as far apart as their closest pair of views.

Colour (``edge.tracking.appearance``) is the fallback when no embedding model runs: the same
views logic over the tracker's colour histograms, with its own distance and thresholds.

Memory: ``max_views`` x 1280 float32 = 15 KB per customer with the shipped model (3 views), plus
3 x 84 floats of colour; kept in memory only (``edge.identity.gallery`` says for how long).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..tracking import appearance as colour
from .head import RAW_EMBEDDING_SCALE

Kind = Literal["combined", "embedding", "colour"]
# Each cue's median other-person distance on PETA val multi-view identities (docs/reid.md): the
# combined distance is the mean of the two divided by these, so 1.0 means "as far as a typical
# stranger" in both. Measured there: the mean beats either cue alone (degraded AUC, 3-view gallery:
# 0.937 vs colour 0.918 vs embedding 0.833).
# The embedding's unit comes with the embedding (``PersonAttributeModel.embedding_scale``: the
# re-identification head's measured scale, or the raw features').
COLOUR_SCALE = 0.697


def _cosine_block(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of every row of ``mine`` with every row of ``theirs`` (L2-normalised rows)."""
    return 1.0 - mine @ theirs.T


def _block(kind: Kind):
    return _cosine_block if kind == "embedding" else colour.pairwise_distances


@dataclass
class _Views:
    max_views: int
    view_distance: float
    kind: Kind
    items: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def add(self, value: np.ndarray) -> None:
        if not self.items:
            self.items.append(np.asarray(value, np.float32))
            self.counts.append(1)
            return
        d = _block(self.kind)(value[None], np.stack(self.items))[0]
        nearest = int(np.argmin(d))
        if d[nearest] < self.view_distance or self.max_views == 1:
            n = self.counts[nearest]
            merged = (self.items[nearest] * n + value) / (n + 1)
            if self.kind == "embedding":
                norm = float(np.linalg.norm(merged))
                merged = merged / norm if norm > 0 else self.items[nearest]
            self.items[nearest] = merged.astype(np.float32)
            self.counts[nearest] = min(n + 1, 20)  # a view keeps following slow changes (light, pose)
        elif len(self.items) < self.max_views:
            self.items.append(np.asarray(value, np.float32))
            self.counts.append(1)
        else:  # full: the least-confirmed view gives way to the new one
            weakest = int(np.argmin(self.counts))
            self.items[weakest] = np.asarray(value, np.float32)
            self.counts[weakest] = 1


def _closest(mine: _Views, theirs: list[_Views]) -> list[float | None]:
    """For each of ``theirs``: the smallest distance between one of ``mine``'s views and one of its
    (one matrix product for all of them)."""
    out: list[float | None] = [None] * len(theirs)
    owners = [i for i, views in enumerate(theirs) for _ in views.items]
    if not mine.items or not owners:
        return out
    d = _block(mine.kind)(np.stack(mine.items), np.stack([item for views in theirs for item in views.items])).min(axis=0)
    owners_arr = np.asarray(owners)
    starts = np.flatnonzero(np.r_[True, owners_arr[1:] != owners_arr[:-1]])
    for owner, value in zip(owners_arr[starts], np.minimum.reduceat(d, starts)):
        out[int(owner)] = float(value)
    return out


class AppearanceViews:
    """Embedding views and colour views of one customer (memory only)."""

    def __init__(self, max_views: int = 3, view_distance: float = 0.13, colour_view_distance: float = 0.28,
                 embedding_scale: float = RAW_EMBEDDING_SCALE):
        self.embedding_scale = embedding_scale
        self.embeddings = _Views(max_views, view_distance, "embedding")
        self.colours = _Views(max_views, colour_view_distance, "colour")

    def add_embedding(self, embedding: np.ndarray | None) -> None:
        if embedding is not None:
            self.embeddings.add(np.asarray(embedding, np.float32).reshape(-1))

    def add_colour(self, appearance: np.ndarray | None) -> None:
        if appearance is not None:
            self.colours.add(np.asarray(appearance, np.float32))

    def absorb(self, other: "AppearanceViews") -> None:
        """Add every view of ``other`` (the same person seen on another track or since a re-acquisition)."""
        for view in other.embeddings.items:
            self.add_embedding(view)
        for view in other.colours.items:
            self.add_colour(view)

    def distance(self, other: "AppearanceViews") -> tuple[Kind, float] | None:
        """(kind, distance): each cue's distance is that of its closest pair of views; with both
        cues on both sides, ``combined`` (the mean of the two in units of a typical stranger),
        else the one cue both have, else None (nothing to compare)."""
        return self.distances([other])[0]

    def distances(self, others: list["AppearanceViews"]) -> list[tuple[Kind, float] | None]:
        """``distance`` to each of ``others`` at once (one matrix product per cue: a full gallery of
        256 customers in 2.5-8 ms here, scripts/bench_identity.py)."""
        e = _closest(self.embeddings, [o.embeddings for o in others])
        c = _closest(self.colours, [o.colours for o in others])
        out: list[tuple[Kind, float] | None] = []
        for de, dc in zip(e, c):
            if de is not None and dc is not None:
                out.append(("combined", 0.5 * (dc / COLOUR_SCALE + de / self.embedding_scale)))
            elif dc is not None:
                out.append(("colour", dc))
            elif de is not None:
                out.append(("embedding", de))
            else:
                out.append(None)
        return out

    @property
    def empty(self) -> bool:
        return not self.embeddings.items and not self.colours.items

    def nbytes(self) -> int:
        return sum(x.nbytes for x in self.embeddings.items + self.colours.items)

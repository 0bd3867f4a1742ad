"""The person-attribute stage's interface (one method, like Frigate's ``DetectionApi``).

A reader takes person crops (BGR, framed by the caller with ``edge.preprocess.person_box_with_margin``)
and returns one score in [0, 1] per attribute and crop. Its ``thresholds`` are the operating
points (score at which an attribute counts as worn) that the votes use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

# Person-level labels carry this prefix so that rules can tell them from garment labels
# ("dress" is a garment box the classifier named; "person.dress" the whole-person reading).
ATTRIBUTE_PREFIX = "person."
NEGATIVE_PREFIX = "person.no-"


def attribute_label(name: str, worn: bool = True) -> str:
    return f"{ATTRIBUTE_PREFIX if worn else NEGATIVE_PREFIX}{name}"


@dataclass(frozen=True)
class AttributeScores:
    scores: dict[str, float]  # attribute -> probability that it is worn
    # the crop's pooled features, L2-normalised (a re-identification appearance, issue 21), or None
    # for a model without an embedding output; memory only, never stored or published
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@runtime_checkable
class PersonAttributeReader(Protocol):
    names: tuple[str, ...]  # attributes, in output order
    thresholds: dict[str, float]  # attribute -> operating point
    margin: float  # the person box is grown by this share of its size on each side

    def read(self, crop_bgr: np.ndarray) -> AttributeScores:
        """Scores of one person crop."""
        ...

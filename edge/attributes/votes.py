"""One look's attribute scores -> votes in the customer's consensus (``edge.consensus``).

Each attribute is a slot of its own, ``attr:<name>``, voted on beside the garment slots with the
same rules (consensus, early, exit, re-verification). A look votes ``person.<name>`` when the
score reaches the attribute's operating point and ``person.no-<name>`` below it; the vote's score
says how far from the operating point the reading was, mapped onto [0.5, 1] (0.5 at the operating
point, 1 at a score of 1 or 0), so the consensus' ``min_score`` (0.5), ``early_score`` and the
exit rule's mean score mean the same for an attribute as for a garment. A customer whose readings
sit near the operating point collects votes on both sides: the slot does not reach agreement and
nothing is decided (a long coat that looks half like a dress is no dress).
"""

from __future__ import annotations

from dataclasses import dataclass

from .reader import ATTRIBUTE_PREFIX, AttributeScores, attribute_label

SLOT_PREFIX = "attr:"


@dataclass(frozen=True)
class AttributeVote:
    slot: str
    label: str
    score: float  # in [0.5, 1]: distance of the reading from the operating point


def vote_score(probability: float, threshold: float) -> tuple[bool, float]:
    """(worn, score in [0.5, 1]) of one reading against its operating point."""
    p = min(1.0, max(0.0, float(probability)))
    if p >= threshold:
        return True, 0.5 + 0.5 * (p - threshold) / max(1.0 - threshold, 1e-6)
    return False, 0.5 + 0.5 * (threshold - p) / max(threshold, 1e-6)


def attribute_votes(scores: AttributeScores, thresholds: dict[str, float]) -> list[AttributeVote]:
    votes = []
    for name, p in scores.scores.items():
        worn, score = vote_score(p, thresholds.get(name, 0.5))
        votes.append(AttributeVote(f"{SLOT_PREFIX}{name}", attribute_label(name, worn), min(1.0, score)))
    return votes


def is_attribute_label(label: str) -> bool:
    return label.lower().startswith(ATTRIBUTE_PREFIX)


def is_attribute_slot(slot: str) -> bool:
    return slot.startswith(SLOT_PREFIX)


def garments_only(settled: dict[str, float]) -> dict[str, float]:
    """The garment labels of a settled mix (analytics' garment mix counts garments, not readings)."""
    return {label: score for label, score in settled.items() if not is_attribute_label(label)}

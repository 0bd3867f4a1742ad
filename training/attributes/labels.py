"""Clothing labels of a whole person, derived from each source's own annotation.

Every source labels only some outputs, so a target row holds, per attribute, 1 (worn), 0 (not
worn) or ``UNKNOWN`` (the source cannot say; the loss skips it). PETA's skirt means "dress or
skirt": it becomes the *set* label ``ANY_DRESS_OR_SKIRT`` (at least one of the two, the network
chooses which; dress and skirt themselves stay unknown) -- never a guessed negative.

Only clothing: no gender, age or other attribute of the person is read from any source.
"""

from __future__ import annotations

import numpy as np

ATTRIBUTES: tuple[str, ...] = ("suit", "dress", "skirt", "pants", "shorts", "outwear")
UNKNOWN = -1.0
# target layout: one column per attribute, then the "dress or skirt" set flag (1 = at least one)
SET_COLUMN = len(ATTRIBUTES)
TARGET_WIDTH = len(ATTRIBUTES) + 1
DRESS_OR_SKIRT = ("dress", "skirt")


def with_derived(scores: np.ndarray) -> np.ndarray:
    """Scores (N, attributes) plus the derived ``dress_or_skirt`` column, as the edge reader
    computes it (``edge.attributes.model``): 1 - (1 - p_dress)(1 - p_skirt)."""
    d, s = ATTRIBUTES.index("dress"), ATTRIBUTES.index("skirt")
    return np.concatenate([scores, (1.0 - (1.0 - scores[:, d]) * (1.0 - scores[:, s]))[:, None]], axis=1)


def any_dress_or_skirt_truth(targets: np.ndarray) -> np.ndarray:
    """Truth of ``dress_or_skirt`` per target row: 1 for PETA's set label or a known dress or skirt,
    0 when both are known not worn, else unknown."""
    d, s = ATTRIBUTES.index("dress"), ATTRIBUTES.index("skirt")
    return np.where(targets[:, SET_COLUMN] == 1, 1.0,
                    np.where((targets[:, d] == 1) | (targets[:, s] == 1), 1.0,
                             np.where((targets[:, d] == 0) & (targets[:, s] == 0), 0.0, UNKNOWN)))


def empty_target() -> np.ndarray:
    t = np.full(TARGET_WIDTH, UNKNOWN, np.float32)
    t[SET_COLUMN] = 0.0
    return t


def _set(target: np.ndarray, name: str, value: float | None) -> None:
    if value is not None:
        target[ATTRIBUTES.index(name)] = float(value)


def _flag(row: dict, column: str) -> bool:
    return str(row.get(column, "0")).strip() == "1"


def peta_target(row: dict) -> np.ndarray:
    """One PETA labels.csv row -> target.

    * suit: upper- and lower-body suit both marked = 1; neither = 0; only one = unknown (a suit
      jacket over other trousers, or suit trousers under a coat: PETA cannot say "matching").
    * dress / skirt: long or short skirt (PETA's skirt includes dresses) = the set "dress or skirt";
      no skirt = 0 for both (PETA labels the lower body of almost every image).
    * pants: trousers, jeans, capri or suit trousers = 1; a skirt, shorts or hot pants alone = 0.
    * shorts: shorts or hot pants = 1, else 0.
    * outwear: a jacket = 1; a T-shirt, sleeveless, short-sleeved or long-sleeved top without a
      jacket, or a suit jacket (a blazer is not outwear in the product's vocabulary) = 0;
      'other' / sweater tops without a jacket = unknown (coats and hoodies may hide there).
    """
    t = empty_target()
    up_suit, low_suit = _flag(row, "upperBodySuit"), _flag(row, "lowerBodySuits")
    _set(t, "suit", 1 if (up_suit and low_suit) else (0 if not (up_suit or low_suit) else None))
    skirt = _flag(row, "lowerBodyLongSkirt") or _flag(row, "lowerBodyShortSkirt")
    if skirt:
        t[SET_COLUMN] = 1.0
    else:
        _set(t, "dress", 0)
        _set(t, "skirt", 0)
    trousers = any(_flag(row, c) for c in ("lowerBodyTrousers", "lowerBodyJeans", "lowerBodyCapri", "lowerBodySuits"))
    shorts = _flag(row, "lowerBodyShorts") or _flag(row, "lowerBodyHotPants")
    if trousers:
        _set(t, "pants", 1)
    elif skirt or shorts:
        _set(t, "pants", 0)
    _set(t, "shorts", 1 if shorts else 0)
    jacket = _flag(row, "upperBodyJacket")
    plain_top = any(_flag(row, c) for c in ("upperBodyTshirt", "upperBodyNoSleeve", "upperBodyShortSleeve", "upperBodyLongSleeve"))
    ambiguous = _flag(row, "upperBodyOther") or _flag(row, "upperBodySweater")
    if jacket:
        _set(t, "outwear", 1)
    elif up_suit or (plain_top and not ambiguous):
        _set(t, "outwear", 0)
    return t


# colorful-fashion detector classes (classes.txt): 2 jacket, 3 shirt, 4 pants, 5 shorts, 6 skirt, 7 dress
CF_JACKET, CF_PANTS, CF_SHORTS, CF_SKIRT, CF_DRESS = 2, 4, 5, 6, 7


def colorful_fashion_target(class_ids) -> np.ndarray:
    """Garment boxes of one street photo (one person filling it) -> target.

    The boxes are exhaustive for their classes, so a garment without a box is not worn: dress,
    skirt, pants, shorts and outwear (a 'jacket' box: coats and jackets) are 1/0. The photos show no
    suits as such (a tailored jacket is also a 'jacket' box): suit stays unknown, and so does
    outwear when there is no lower-body box at all (a photo cut at the waist says little).
    """
    ids = set(int(c) for c in class_ids)
    t = empty_target()
    _set(t, "dress", int(CF_DRESS in ids))
    _set(t, "skirt", int(CF_SKIRT in ids))
    _set(t, "pants", int(CF_PANTS in ids))
    _set(t, "shorts", int(CF_SHORTS in ids))
    _set(t, "outwear", int(CF_JACKET in ids))
    return t


def co_parsing_target(tags: dict, suit_matches: bool | None = None) -> np.ndarray:
    """Clothing Co-Parsing image tags (+ optionally the mask-based colour check) -> target.

    * suit: a 'suit' or 'blazer' tag with trousers ('pants', no jeans/skirt/dress/shorts) is a suit
      when the masks say jacket and trousers match in colour (``suit_matches``); without masks a
      'suit' tag over 'pants' stays unknown (the set's "suit" marks a tailored jacket, not a
      matching pair), a tailored jacket over jeans, a skirt, a dress or shorts is no suit, and no
      tailored jacket at all is 0.
    * dress, skirt, pants (pants or jeans), shorts: the tags are per image and complete: 1/0.
    * outwear: a coat, jacket or hoodie tag = 1; otherwise 0 (a blazer is not outwear).
    """
    def on(name):
        return _flag(tags, name)

    t = empty_target()
    tailored = on("suit") or on("blazer")
    other_lower = on("jeans") or on("skirt") or on("dress") or on("shorts")
    if not tailored or other_lower or not on("pants"):
        _set(t, "suit", 0)
    elif suit_matches is not None:
        _set(t, "suit", int(suit_matches))
    _set(t, "dress", int(on("dress")))
    _set(t, "skirt", int(on("skirt")))
    _set(t, "pants", int(on("pants") or on("jeans")))
    _set(t, "shorts", int(on("shorts")))
    _set(t, "outwear", int(on("coat") or on("jacket") or on("hoodie")))
    return t


def mask_regions(groundtruth: np.ndarray, label_names: list[str]) -> dict[str, np.ndarray]:
    """Co-parsing pixel labels -> {'person': bool mask (everything but background), garment: mask}."""
    gt = np.asarray(groundtruth)
    regions = {"person": gt != label_names.index("null")}
    for name in ("suit", "blazer", "coat", "jacket", "dress", "skirt", "pants", "jeans", "shorts"):
        if name in label_names:
            m = gt == label_names.index(name)
            if m.any():
                regions[name] = m
    return regions


def box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight xyxy box of a boolean mask (exclusive right/bottom), None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def colours_match(image_bgr: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray, max_delta_e: float = 18.0) -> bool:
    """Do two regions have the same colour? Median CIELAB of each, Euclidean distance (Delta E 76).

    A suit is a jacket and trousers of one cloth; 18 separates navy-on-navy from navy-on-grey while
    allowing for shading (the trousers are usually darker in the photo than the jacket).
    """
    import cv2

    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    a = np.median(lab[mask_a], axis=0)
    b = np.median(lab[mask_b], axis=0)
    return float(np.linalg.norm(a - b)) <= max_delta_e

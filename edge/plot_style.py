"""One colour per label in every chart the project draws (``fashion-edge report``, the training
reports' PR curves), so "dress" is the same colour in the garment mix, a PR curve and any later
chart.

Known labels (the garment detector's classes, the classifier's product labels and the rule names
the example configs use) have a fixed colour; a label not listed gets one of the remaining colours,
chosen from its name (stable across runs and charts, never from the order a chart meets it).
"""

from __future__ import annotations

import zlib

# Fixed, pairwise distinct colours (hex). Families share a hue where that helps reading:
# tops blue/cyan, trousers brown, dresses/skirts red/pink, outer layers green, feet/accessories grey.
LABEL_COLOURS: dict[str, str] = {
    "dress": "#d62728",
    "skirt": "#f781bf",
    "suit": "#17324d",
    "blazer": "#1f4e9c",
    "jacket": "#2ca02c",
    "outwear": "#6b8e23",
    "hoodie": "#98df8a",
    "cardigan": "#b5cf6b",
    "sweatshirt": "#637939",
    "shirt": "#1f77b4",
    "t-shirt": "#17becf",
    "polo": "#9edae5",
    "longsleeve": "#aec7e8",
    "pants": "#8c564b",
    "shorts": "#c49c94",
    "hat": "#ff7f0e",
    "shoe": "#7f7f7f",
    "shoes": "#7f7f7f",  # the classifier's name for the detector's "shoe": the same garment
    "bag": "#9467bd",
    "sunglass": "#bcbd22",
    "tie": "#e7ba52",
    "person": "#393b79",
    "background": "#c7c7c7",
}

# For labels not above (cameras, new classes): colours none of the fixed labels use.
_SPARE = ["#843c39", "#7b4173", "#ad494a", "#a55194", "#8ca252", "#e6550d", "#3182bd", "#31a354",
          "#756bb1", "#636363", "#fd8d3c", "#6baed6"]


def label_colour(label: str) -> str:
    """The colour of ``label`` (case-insensitive) in every chart."""
    key = label.strip().lower()
    if key in LABEL_COLOURS:
        return LABEL_COLOURS[key]
    return _SPARE[zlib.crc32(key.encode()) % len(_SPARE)]


def distinct_colours(labels: list[str]) -> dict[str, str]:
    """``label_colour`` for each label, except that two labels of one chart never share a colour
    (an unknown label that collides with another takes the next free spare colour)."""
    taken: dict[str, str] = {}
    used: set[str] = set()
    for label in labels:
        colour = label_colour(label)
        if colour in used and label.strip().lower() not in LABEL_COLOURS:
            colour = next((c for c in _SPARE if c not in used), colour)
        taken[label] = colour
        used.add(colour)
    return taken

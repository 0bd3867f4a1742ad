"""The identity stage's embedding thresholds and unit, measured for the embedding they are used with.

The thresholds that decide "same customer" and "split" (``identity.view_distance``,
``same_distance``, ``split_distance``, ``embedding_same_distance``, ``embedding_split_distance``)
and the unit the embedding distance is combined with colour in (``embedding_scale``: a typical
stranger's distance) are properties of one embedding: the pooled features of one attribute model,
or those features through one re-identification head. A retrained attribute model (a store's own
crops: ``python -m training.attributes --config configs/attributes_store.yaml``) or a refitted head
has other distances, and thresholds measured for the shipped model would accept strangers or split
people without anybody noticing. So they travel with the model: its manifest (or the head's)
carries an ``identity_calibration`` section written by

    python scripts/reid_distances.py --model M [--head H] --write-manifest

(PETA validation identities seen from several sides, degraded like a store camera, a gallery of 3
views; docs/reid.md), and the training commands run it when PETA is among their data. A model
without the section gets the shipped model's values and a warning that says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError

log = logging.getLogger(__name__)

MANIFEST_KEY = "identity_calibration"
# The identity config fields an embedding's calibration sets (unless the operator set them).
THRESHOLDS = ("view_distance", "same_distance", "split_distance", "embedding_same_distance",
              "embedding_split_distance")
MAX_DISTANCE = 4.0  # the config's own bound on these fields (a combined distance is at most 4)

# Measured for the shipped models/person-attributes.tflite (docs/reid.md, gallery of 3 views,
# degraded): 'same' accepts 1 % of other people, 'split' refuses at most 0.5 % of the same person.
SHIPPED_RAW_SCALE = 0.475
SHIPPED_RAW_THRESHOLDS = {"view_distance": 0.13, "same_distance": 0.49, "split_distance": 1.03,
                          "embedding_same_distance": 0.13, "embedding_split_distance": 0.63}
# Measured for the PETA Fisher head (docs/reid.md, "A head fitted on PETA"); a head without its own
# calibration gets these with its manifest's distance_scale.
SHIPPED_HEAD_THRESHOLDS = {"view_distance": 0.58, "same_distance": 0.61, "split_distance": 0.98,
                           "embedding_same_distance": 0.58, "embedding_split_distance": 0.95}


@dataclass(frozen=True)
class IdentityCalibration:
    embedding_scale: float  # a typical stranger's cosine distance in this embedding
    thresholds: dict[str, float] = field(default_factory=dict)  # THRESHOLDS -> value
    measured: bool = True  # False: another embedding's values, used for want of this one's
    source: str = ""  # the manifest it was read from, or what the defaults are


def shipped_defaults(head_scale: float | None = None) -> IdentityCalibration:
    """The values measured for the shipped attribute model (``head_scale`` given: for the PETA head)."""
    if head_scale is None:
        return IdentityCalibration(SHIPPED_RAW_SCALE, dict(SHIPPED_RAW_THRESHOLDS), measured=False,
                                   source="the shipped attribute model's values")
    return IdentityCalibration(head_scale, dict(SHIPPED_HEAD_THRESHOLDS), measured=False,
                               source="the PETA head's values")


def read_calibration(manifest: dict, path: Path) -> IdentityCalibration | None:
    """The ``identity_calibration`` section of a model's (or head's) manifest; None when it has none.
    A section that is there but wrong is refused in one line naming the file and field."""
    section = manifest.get(MANIFEST_KEY)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ModelError("must be a mapping (python scripts/reid_distances.py --write-manifest)", path=path,
                         field=MANIFEST_KEY)

    def number(name: str, low: float, high: float) -> float:
        value = section.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < float(value) <= high:
            raise ModelError(f"{value!r} is not a distance in ({low:g}, {high:g}]", path=path,
                             field=f"{MANIFEST_KEY}.{name}")
        return float(value)

    scale = number("embedding_scale", 0.0, 2.0)
    thresholds = {name: number(name, 0.0, MAX_DISTANCE) for name in THRESHOLDS}
    return IdentityCalibration(scale, thresholds, measured=True, source=str(path))


def calibration_for(manifest: dict, path: Path, fallback: IdentityCalibration) -> IdentityCalibration:
    """The manifest's calibration, or ``fallback`` with a warning naming the file and the command
    that measures it."""
    calibration = read_calibration(manifest, path)
    if calibration is not None:
        return calibration
    log.warning("%s: no %s section; the identity stage uses %s, which may accept strangers or split people "
                "with this embedding (measure it: python scripts/reid_distances.py --write-manifest, docs/reid.md)",
                path, MANIFEST_KEY, fallback.source)
    return fallback

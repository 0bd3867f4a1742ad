"""Daemon configuration: YAML validated by pydantic with ``extra="forbid"``.

``load_config(path)`` raises ``ConfigError`` whose single line names the file and the field,
e.g. ``configs/store.yaml: mqtt.port: Input should be less than or equal to 65535``.
Relative paths in the file are resolved against the config file's folder.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
                      field_validator, model_validator)

from .errors import ConfigError


# Zone polygons are in frame pixels; no camera frame is larger than this.
MAX_PIXELS = 100_000

# The config file itself (issue 22, 5): a config is a few KB; nothing reads further than this, and
# nothing nested deeper or expanding (YAML aliases) to more values than any real config.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32
MAX_CONFIG_VALUES = 100_000

# MQTT (3.1.1, section 1.5.3): every string is at most 65535 bytes of UTF-8 and holds no U+0000.
MQTT_STRING_BYTES = 65535
# Client ids: 3.1.1 obliges a server to accept only 1..23 bytes of [0-9a-zA-Z]; mosquitto and most
# brokers take more (the default id, fashion-edge-<site>-<hostname>, is longer), some cap it at 128
# (AWS IoT). A configured id past 128 bytes is refused here rather than by some broker later.
MQTT_CLIENT_ID_BYTES = 128
# site, camera and rule names go into every topic (and the default client id): short names keep
# every topic far below MQTT's 65535-byte limit.
MAX_NAME_CHARS = 64
MAX_TOPIC_PREFIX_BYTES = 1024


def mqtt_string(value: str | None, limit: int = MQTT_STRING_BYTES) -> str | None:
    """A string MQTT can carry: no NUL, at most ``limit`` bytes of UTF-8."""
    if value is None:
        return value
    if "\0" in value:
        raise ValueError("contains a NUL character (MQTT strings cannot carry U+0000)")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in a double-quoted YAML string)
        raise ValueError("is not valid Unicode text (a lone surrogate), which MQTT cannot carry") from None
    if size > limit:
        raise ValueError(f"{size} bytes of UTF-8: longer than MQTT allows here ({limit} bytes)")
    return value


def zone_outside(points, frame_size) -> str | None:
    """Why pixel ``points`` do not fit a frame of ``frame_size`` (width, height); None when they do
    (a point on the edge is inside)."""
    width, height = frame_size
    bad = [(x, y) for x, y in points if not (0 <= x <= width and 0 <= y <= height)]
    if not bad:
        return None
    x, y = bad[0]
    return (f"point [{x:g}, {y:g}] lies outside the {width}x{height} frame (drawn for another resolution? "
            f"{len(bad)} of {len(points)} points outside)")


def minutes_of_day(text: str, allow_24: bool) -> int:
    """'HH:MM' -> minutes since midnight; ValueError naming the value when it is no time of day."""
    hours, minutes = (int(p) for p in text.split(":"))
    if minutes >= 60 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"{text!r} is not a time of day (HH:MM, 00:00-{'24:00' if allow_24 else '23:59'})")
    return hours * 60 + minutes


class Strict(BaseModel):
    # allow_inf_nan=False: every float is finite (.inf / .nan are refused with the field's name)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _thresholds_in_range(value: dict[str, float]) -> dict[str, float]:
    for name, threshold in value.items():
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold for {name!r} must be within 0..1")
    return value


# label -> score threshold, each within 0..1 (labels are checked against the model's manifest at load)
ClassThresholds = Annotated[dict[str, float], AfterValidator(_thresholds_in_range)]


class ReconnectConfig(Strict):
    initial_s: float = Field(1.0, ge=0.01, le=60, description="first back-off after a live source drops (0.01..60 s)")
    max_s: float = Field(30.0, ge=0.01, le=600, description="back-off ceiling (0.01..600 s, at least initial_s)")
    first_frame_timeout_s: float | None = Field(
        30.0, ge=0.5, le=86400,
        description="a live source that never delivered a frame fails after this long (0.5..86400 s, exit 1; "
                    "null: retry forever); once it streamed, it reconnects forever")

    @model_validator(mode="after")
    def _ceiling_above_start(self):
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self


class CameraDetectorConfig(Strict):
    """One camera's person-detector input (docs/detector.md, "Detector input per camera"): a large
    frame with far customers may use a larger input or tiles; the cost per frame grows with them."""

    model: Path | None = Field(None, description="a person detector of another input size (same labels) for this "
                                                 "camera; default: detector.model")
    manifest: Path | None = Field(None, description="its manifest; default: detector.manifest")
    tiles: tuple[int, int] | None = Field(None, description="[cols, rows] overlapping tiles run besides the whole "
                                                            "frame (1..4 each); one detector call per tile more")
    tile_overlap: float = Field(0.2, ge=0, lt=0.5, description="overlap of neighbouring tiles (fraction of a tile, 0..0.5)")

    @field_validator("tiles")
    @classmethod
    def _tiles_in_range(cls, value):
        if value is not None and not all(1 <= n <= 4 for n in value):
            raise ValueError("tiles must be [cols, rows] with 1 to 4 each")
        return value


ZONE_NAME = r"^[A-Za-z0-9_-]+$"
Point = tuple[float, float]


class ZoneConfig(Strict):
    """A named area of one camera's frame (``cameras[].zones``); rules refer to it by name."""

    points: list[Point] = Field(
        ..., min_length=3, description="the polygon's corners [x, y], in `units`, in order around it")
    units: Literal["pixels", "normalized"] = Field(
        "pixels", description="pixels: frame pixels, origin top left (what the web page's zone editor writes); "
                              "normalized: 0..1 of the frame's width and height (how Frigate writes zones; needs "
                              "cameras[].frame_size)")

    @model_validator(mode="after")
    def _points_in_units(self):
        values = [v for point in self.points for v in point]
        if self.units == "normalized" and any(not 0 <= v <= 1 for v in values):
            raise ValueError("normalized points are fractions of the frame within 0..1 (pixels: units: pixels)")
        if self.units == "pixels":
            if any(not -MAX_PIXELS <= v <= MAX_PIXELS for v in values):
                raise ValueError(f"zone points are frame pixels within -{MAX_PIXELS}..{MAX_PIXELS}")
            if all(0 <= v <= 1 for v in values):
                raise ValueError("every point lies within 0..1: normalized coordinates? say units: normalized "
                                 "(and cameras[].frame_size), or give frame pixels")
        return self

    def polygon(self, frame_size: tuple[int, int] | None) -> list[Point]:
        """The corners in frame pixels (``frame_size`` (width, height) needed when normalized)."""
        if self.units == "pixels":
            return [(float(x), float(y)) for x, y in self.points]
        width, height = frame_size
        return [(float(x) * width, float(y) * height) for x, y in self.points]


def _zone_ref(value):
    """A rule's zone: a zone's name, or a polygon [[x, y], ...]; anything else is one clear line."""
    if isinstance(value, str):
        if not re.match(ZONE_NAME, value) or len(value) > MAX_NAME_CHARS:
            raise ValueError(f"zone name {value!r}: letters, digits, '_' and '-', at most {MAX_NAME_CHARS}")
        return value
    numbers = (int, float)
    if isinstance(value, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, numbers) and not isinstance(v, bool)
                                                                 for v in p) for p in value):
        return value
    raise ValueError("a zone is the name of one of the camera's zones (cameras[].zones) or a polygon "
                     "[[x, y], [x, y], [x, y], ...] in frame pixels")


ZoneRef = Annotated[str | list[Point], BeforeValidator(_zone_ref)]


class CameraConfig(Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]+$", max_length=MAX_NAME_CHARS,
                      description="used in MQTT topics (at most 64 characters)")
    source: str = Field(..., description="USB index ('0'), rtsp://, http://, a video/GIF file or a folder of images")
    fps_cap: float | None = Field(None, gt=0, le=240, description="process at most this many frames per second (0..240)")
    loop: bool = Field(False, description="restart a file source at its end instead of stopping")

    @property
    def is_live(self) -> bool:
        """A camera index or a stream (its frames carry the wall clock), not a file."""
        return is_live_uri(self.source)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig,
                                       description="back-off of a live source (USB, rtsp://, http://) that drops")
    detector: CameraDetectorConfig | None = Field(
        None, description="this camera's person-detector input (another input size, tiles); default: detector")
    frame_size: tuple[Annotated[int, Field(ge=1, le=MAX_PIXELS)], Annotated[int, Field(ge=1, le=MAX_PIXELS)]] | None = Field(
        None, description="[width, height] of the frames this camera delivers: normalized zones are scaled to it and "
                          "pixel zones checked against it (the pre-flight compares it with a file source's frames)")
    zones: dict[str, ZoneConfig] = Field(
        default_factory=dict,
        description="named areas of this camera's frame (name -> points, units); rules[].zones names them; a "
                    "customer is in a zone when the bottom centre of their box (the feet) is inside")

    entrances: list[str] = Field(
        default_factory=list,
        description="names of this camera's zones where people walk in or out in the middle of the view (a door, a "
                    "stair, a fitting room): a customer lost or a track started with the feet there counts as at "
                    "the view's border (identity.border_heights; docs/identity.md)")

    # Frigate's object masks: a fashion store has mannequins in dresses and suits, mirrors that show
    # every customer twice, posters and screens; the person detector boxes them all.
    not_people: list[str] = Field(
        default_factory=list,
        description="names of this camera's zones where the detector's person boxes are not people (mannequins, "
                    "mirrors, posters, screens): a box whose feet (bottom centre) lie inside is dropped before "
                    "tracking, so it is never counted or alerted on (docs/config.md)")

    # Staff walk through all day, some in suits: every pass would be a customer and, after the
    # gallery's memory, a new alert. Where only staff stand (behind the counter) says who they are,
    # by place, never by face or appearance.
    staff_only: list[str] = Field(
        default_factory=list,
        description="names of this camera's zones only staff stand in (behind the counter, the stock-room door): "
                    "a person whose feet are seen there is staff from then on, for as long as they are remembered: "
                    "withdrawn from the analytics and never alerted on (docs/config.md)")

    @field_validator("zones")
    @classmethod
    def _zone_names(cls, zones: dict) -> dict:
        for name in zones:
            if not re.match(ZONE_NAME, name) or len(name) > MAX_NAME_CHARS:
                raise ValueError(f"zone name {name!r}: letters, digits, '_' and '-', at most {MAX_NAME_CHARS}")
        return zones

    @model_validator(mode="after")
    def _entrances_are_zones(self):
        for key in ("entrances", "not_people", "staff_only"):
            for name in getattr(self, key):
                if name not in self.zones:
                    raise ValueError(f"{key}: {name!r} is not one of this camera's zones "
                                     f"({', '.join(sorted(self.zones)) or 'none defined'})")
        return self

    @model_validator(mode="after")
    def _zones_fit_the_frame(self):
        for name, zone in self.zones.items():
            if zone.units == "normalized" and self.frame_size is None:
                raise ValueError(f"zone {name!r} is normalized: give frame_size: [width, height] (the camera's "
                                 "frames) to scale it")
            if zone.units == "pixels" and self.frame_size is not None:
                outside = zone_outside(zone.points, self.frame_size)
                if outside:
                    raise ValueError(f"zone {name!r}: {outside}")
        return self

    def zone_polygon(self, name: str) -> list[Point]:
        return self.zones[name].polygon(self.frame_size)


# Interpreter threads: a number, or "auto" (edge/runtime.py resolve_threads: 1 unless 3+ cores are free of
# other work, 2 from 3 free cores, 4 from 8; docs/performance.md, Thread policy).
def _threads(value: int | str) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64):
        return value
    raise ValueError("threads must be a number from 1 to 64 or auto")


Threads = Annotated[int | str, AfterValidator(_threads)]


class SecondLookConfig(Strict):
    """A second look around tracks the whole-frame pass missed (edge/detect/second_look.py)."""

    enabled: bool = Field(True, description="look again, in a zoomed crop, where the tracker expects a person the "
                                            "whole-frame pass found no box for")
    crop_heights: float = Field(2.5, ge=1, le=10, description="the crop's side in the expected person's heights")
    lost_s: float = Field(1.0, ge=0, le=60, description="only for tracks missed at most this long (seconds); the "
                                                        "expected place of a track lost longer is a guess")
    max_crops: int = Field(4, ge=0, le=64, description="at most this many crops (detector calls) a frame")


class DetectorConfig(Strict):
    model: Path = Field(..., description="int8 TFLite YOLO detector (people, and garments if it has those classes)")
    manifest: Path | None = Field(None, description="labels/layout manifest when none lies beside the model")
    conf: float = Field(0.35, ge=0, le=1, description="default score threshold")
    class_conf: ClassThresholds = Field(default_factory=dict, description="per-class score thresholds")
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU threshold (class-aware)")
    max_detections: int = Field(100, ge=1, le=1000, description="boxes kept per image after NMS (1..1000)")
    threads: Threads = Field("auto", description="TFLite interpreter threads (1..64, or auto: from the free cores)")
    person_label: str = Field("person", description="the detector label that is a person (a customer)")
    # An empty floor does not need the person detector 30 times a second (edge/motion.py, docs/performance.md)
    idle_interval_s: float = Field(
        0.5, ge=0, le=10,
        description="while nobody is in view, the person detector runs when the frame moves and at least this "
                    "often (seconds); 0: on every frame",
    )
    motion_threshold: int = Field(25, ge=1, le=255, description="grey-level change of a pixel that counts as motion "
                                                                "(on a blurred 160 px wide copy)")
    motion_min_area: float = Field(0.002, gt=0, le=1, description="share of the pixels that must move for a frame "
                                                                  "to count as moving")
    second_look: SecondLookConfig = Field(
        default_factory=SecondLookConfig,
        description="people the tracker expects and the whole-frame pass missed (half hidden, far): looked for "
                    "again in a crop around where they should be")


class GarmentsConfig(Strict):
    mode: Literal["auto", "detector", "body_regions"] = Field(
        "auto", description="auto: a garment detector on each person crop if there is one, else body regions"
    )
    detector: Path | None = Field(
        None, description="garment YOLO run on each person crop; default: detector.model if it has garment classes"
    )
    manifest: Path | None = Field(None, description="labels manifest of garments.detector when none lies beside it")
    conf: float = Field(0.3, ge=0, le=1, description="garment box score threshold")
    class_conf: ClassThresholds = Field(
        default_factory=dict, description="per-garment score thresholds (e.g. dress: 0.7), over `conf`"
    )
    threads: Threads = Field("auto", description="TFLite threads of the garment detector (1..64, or auto)")
    refinements: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "jacket": ["jacket", "blazer", "outwear", "suit", "cardigan", "sweatshirt", "hoodie"],
            "shirt": ["shirt", "t-shirt", "longsleeve", "polo", "hoodie", "sweatshirt", "cardigan"],
            "pants": ["pants"], "shorts": ["shorts"], "skirt": ["skirt"], "dress": ["dress"],
            "hat": ["hat"], "shoe": ["shoes"],
        },
        description="garment-detector label -> classifier labels that name it more finely; a classifier "
                    "answer outside this list is overruled by the detector's label",
    )
    min_crop_px: int = Field(40, ge=8, le=2000,
                             description="skip crops smaller than this (short side, 8..2000 px; above that no crop is good)")
    edge_margin_px: int = Field(4, ge=0, le=500, description="crops touching the frame edge within this margin are cut (0..500 px)")
    min_overlap: float = Field(0.6, gt=0, le=1, description="fraction of a garment box inside a person box")


class ClassifierConfig(Strict):
    model: Path = Field(..., description="int8 TFLite garment classifier run on each garment crop")
    manifest: Path | None = Field(None, description="labels/preprocessing manifest when none lies beside the model")
    label_map: dict[str, str] | None = Field(
        None, description="model label -> garment label; labels not in the map are ignored"
    )
    threads: Threads = Field("auto", description="TFLite interpreter threads (1..64, or auto: from the free cores)")


class AttributesConfig(Strict):
    """The person-attribute model (edge/attributes): clothing read from the whole person crop."""

    enabled: bool = Field(False, description="read person attributes on each scanned customer")
    model: Path | None = Field(None, description="int8 TFLite person-attribute model (models/person-attributes.tflite)")
    manifest: Path | None = Field(None, description="attributes/operating-points manifest when none lies beside the model")
    threads: Threads = Field(1, description="TFLite interpreter threads (1..64, or auto: from the free cores)")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="attribute -> operating point overriding the manifest's (score at which it counts as worn)",
    )
    reid_head: Path | None = Field(
        None, description="re-identification head for the model's pooled features (models/person-reid.npz, "
                          "python -m training.reid); without it the identity stage compares the raw features")

    @model_validator(mode="after")
    def _model_when_enabled(self):
        if self.enabled and self.model is None:
            raise ValueError("attributes.enabled needs attributes.model")
        for name, value in self.thresholds.items():
            if not 0.0 < float(value) < 1.0:
                raise ValueError(f"threshold of {name!r} must be between 0 and 1 (exclusive)")
        return self


class TrackerConfig(Strict):
    """Windows are in seconds of source time, so a 10 fps and a 30 fps camera behave alike."""

    high_score: float = Field(0.5, ge=0, le=1, description="first association / new track score")
    low_score: float = Field(0.1, ge=0, le=1, description="second association (ByteTrack) score")
    match_iou: float = Field(0.2, gt=0, le=1, description="minimum IoU to match a box to a track")
    max_lost_s: float = Field(3.0, gt=0, le=600, description="keep a lost track this long (seconds) before it ends")
    min_hits: int = Field(
        3, ge=1, le=100,
        description="high-score detections before a track is confirmed (low-score boxes in between keep it waiting, "
                    "for at most max_lost_s)",
    )
    iou_only_lost_s: float = Field(
        0.25, ge=0, le=60,
        description="a track missed for at most this long (seconds) is re-acquired on IoU alone; one lost "
                    "longer comes back only when its appearance agrees (else the box starts a new customer)",
    )
    appearance: bool = Field(True, description="use colour appearance to refuse swaps and re-acquire lost tracks")
    # Defaults from scripts/appearance_distances.py (train photos seen twice by a simulated store
    # camera vs another person; the distance is that of the most different body part): at 0.6,
    # 1.8 % of same-person pairs are refused and 4.5 % of other people accepted; at 0.5, 4.0 % and
    # 0.5 %. Frame-to-frame in video the same person is far closer (0.05-0.1 on the scenario clips).
    appearance_gate: float = Field(
        0.6, gt=0, le=1,
        description="appearance distance (0 same .. 1 disjoint) above which even an overlapping box is "
                    "not the same customer: the queue at the door, one person replacing another",
    )
    appearance_jump: float = Field(
        3.0, gt=1, le=20,
        description="an in-view track also refuses a box this many times farther than its own usual "
                    "frame-to-frame appearance distance (never below 0.3, never above appearance_gate)",
    )
    # 0.42 (was 0.5) since issue 21: on PETA validation identities seen from several sides by a
    # store-like camera (docs/reid.md) 0.42 accepts about 5 % of other people; a lost track is
    # re-acquired by the tracker only when it plainly looks like itself, and the identity stage
    # (edge/identity, colour and embedding views, place) decides the harder returns. Measured:
    # browsing IDF1 0.659 -> 0.725, parade 39 -> 40 of 40 customers, other scenarios unchanged.
    reacquire_distance: float = Field(
        0.42, gt=0, le=1, description="a track lost longer than iou_only_lost_s comes back only at most this far"
    )
    appearance_momentum: float = Field(
        0.8, ge=0, lt=1, description="per-track smoothing of the appearance (weight of the old value)"
    )
    appearance_min_height_px: int = Field(
        48, ge=8, le=4000, description="person boxes shorter than this give no appearance (too few pixels)"
    )
    appearance_max_overlap: float = Field(
        0.3, ge=0, le=1, description="a box this much covered by another person gives no appearance"
    )


class ConsensusConfig(Strict):
    """When a customer's garment slot is decided; see edge/consensus.py for the rules and why."""

    min_vote_interval_s: float = Field(
        0.1, ge=0, le=60, description="at most one vote per garment slot in this many seconds of source time"
    )
    min_votes: int = Field(3, ge=1, le=100, description="counted votes of the leading label to settle a slot")
    min_agreement: float = Field(0.6, gt=0, le=1, description="weighted share of the leading label")
    min_score: float = Field(0.5, ge=0, le=1, description="a vote counts only at this classifier score")
    max_votes: int = Field(20, ge=1, le=1000, description="give up on a garment after this many attempts")
    min_presence: float = Field(
        0.5, ge=0, le=1,
        description="a garment decides only while it was found in at least this share of the customer's "
                    "scans since it was first found (0: off)",
    )
    absent_scan_interval_s: float = Field(
        1.0, ge=0, le=60,
        description="once the only undecided garments of a customer are ones the scans keep not finding "
                    "(found in under min_presence of at least 6 scans since first found), scan that customer "
                    "at most once per this many seconds of source time (0: no slower than min_vote_interval_s)",
    )
    early_votes: int = Field(
        2, ge=1, le=100, description="strong evidence: this many agreeing votes at early_score settle at once"
    )
    early_score: float = Field(0.85, ge=0, le=1, description="score of a strong vote (see early_votes)")
    exit_decision: bool = Field(True, description="decide unsettled slots when the customer leaves")
    exit_min_votes: int = Field(2, ge=1, le=100, description="counted votes of the leading label at exit")
    exit_min_agreement: float = Field(0.75, gt=0, le=1, description="weighted share of the leading label at exit")
    exit_min_score: float = Field(0.65, ge=0, le=1, description="mean score of the leading label at exit")
    reverify_votes: int = Field(
        2, ge=0, le=100,
        description="after a lost customer is re-acquired, this many new votes re-check the settled "
                    "garments; a majority that contradicts them splits the customer (0: no re-check)",
    )
    scan_budget_ms: float | None = Field(
        None, ge=0, le=10000,
        description="garment scans (garment detector + classifier) per frame, in ms; default: on a live "
                    "camera scan_budget_share of the frame period minus detection, on a file unlimited",
    )
    scan_budget_share: float = Field(0.6, gt=0, le=1, description="share of a live frame period for scans")


class IdentityConfig(Strict):
    """Who a customer is across a visit (edge/identity/): a person who turns around, stands behind a
    rail or leaves the view for a few seconds stays one customer. Appearances are kept in memory
    only, for ``memory_s`` at most, and never written or published. Distances and their
    measurement: docs/reid.md (``scripts/reid_distances.py``)."""

    enabled: bool = Field(True, description="keep recent customers in memory so that a returning person continues "
                                            "their customer (one count, one alert per rule)")
    # 30 s (was 300 s, 2026-12-07): every remembered customer is one more chance for a stranger to
    # match (each comparison accepts about 1 % of other people, and a newcomer is compared with all
    # of them, 3 times). On the store walk (121 customers walking through in 5 minutes) 300 s
    # merged strangers into earlier customers, whose settled garments then hid the newcomer's:
    # suit alerts P / R 0.33 / 0.25, IDF1 0.675; 60 s 0.44 / 0.35, 0.69; 30 s 0.55 / 0.55, 0.721
    # (identity off: 0.64 / 0.70, 0.75). Browsing (returns after 4-8 s) and the other scenarios are
    # the same at 30 s as at 300 s (docs/identity.md).
    memory_s: float = Field(
        30.0, ge=0, le=3600,
        description="a customer who left is remembered this long (seconds of source time) for a returning person",
    )
    max_customers: int = Field(256, ge=1, le=10000, description="at most this many left customers are remembered "
                                                                "(the oldest is forgotten first)")
    max_views: int = Field(3, ge=1, le=16, description="appearance views kept per customer and cue (front, side, back)")
    # The thresholds that depend on the embedding: None (the default) takes the values measured for
    # the embedding in use (its manifest's ``identity_calibration``, edge/identity/calibration.py:
    # the attribute model's or the re-identification head's), from scripts/reid_distances.py
    # (docs/reid.md): PETA val identities seen from several sides, degraded like a store camera, a
    # gallery of 3 views. 'same' accepts 1 % of other people (a gallery holds several candidates, so
    # each must be strict); 'split' refuses at most 0.5 % of the same person (a split only on strong
    # evidence).
    view_distance: float | None = Field(
        None, ge=0, le=2,
        description="an embedding reading at least this far (cosine distance) from every kept view becomes a new "
                    "view (default: the embedding's 1 %-of-strangers distance)",
    )
    same_distance: float | None = Field(
        None, ge=0, le=4,
        description="combined distance (mean of colour and embedding, each in units of a typical stranger's) "
                    "within which a new track continues a recent customer (default: measured for the embedding)",
    )
    split_distance: float | None = Field(
        None, ge=0, le=4,
        description="a re-acquired customer whose garments disagree is split only when its combined distance is "
                    "also at least this (appearance and garments both disagree; default: measured)",
    )
    colour_same_distance: float = Field(
        0.28, ge=0, le=1, description="the same, colour appearance only (no embedding on one side)"
    )
    colour_split_distance: float = Field(
        0.83, ge=0, le=1, description="the split distance, colour appearance only"
    )
    embedding_same_distance: float | None = Field(
        None, ge=0, le=2, description="the same, embedding only (no colour appearance on one side; default: measured)"
    )
    embedding_split_distance: float | None = Field(
        None, ge=0, le=2, description="the split distance, embedding only (default: measured)"
    )
    reentry_heights: float = Field(
        2.0, gt=0, le=100,
        description="a new track first seen within this many person heights of where a recent customer was last "
                    "seen may continue it at the same_distance thresholds (people come back where they left: the "
                    "same edge, the end of the rail they hid behind); farther, see elsewhere_factor",
    )
    elsewhere_factor: float = Field(
        0.5, ge=0, le=1,
        description="a new track first seen farther than reentry_heights continues a recent customer only within "
                    "this share of the same_distance thresholds (the same view seen again; 0: never)",
    )
    distinct_ratio: float = Field(
        0.8, ge=0, le=1,
        description="a new track continues its nearest recent customer only when that one is at most this share "
                    "of the next nearest one's distance (Lowe's ratio test; a return in place is exempt; 0: off)",
    )
    border_heights: float = Field(
        0.5, ge=0, le=10,
        description="a track that starts and a customer who was lost farther than this many of their heights from "
                    "every border of the view (and not in one of cameras[].entrances) did not walk in or out there: "
                    "elsewhere_factor does not apply to them (0: the border is not looked at)",
    )
    # 3 s (was 1 s), as long as the tracker keeps a lost track (tracker.max_lost_s): a person the
    # detector lost while they stood still, or who stood hidden behind another shopper, comes back
    # where they were. Browsing 14 -> 13 counted (IDF1 0.746 -> 0.757); 2 s and 5 s give the same;
    # parade, queue (the next person at the same spot in the very next frame), crossing, side by
    # side and CCTV unchanged. For a customer lost while walking the store walk lost a suit customer
    # at 3 s (the next walker at the same spot): in_place_walking_s (docs/identity.md).
    in_place_s: float = Field(
        3.0, ge=0, le=60,
        description="a new track that appears where a customer who stood still was lost at most this long before "
                    "(box overlap in_place_iou) continues it unless the appearance strongly disagrees",
    )
    in_place_walking_s: float = Field(
        1.0, ge=0, le=60,
        description="the same for a customer who was walking when lost (at most in_place_s)",
    )
    in_place_iou: float = Field(0.5, gt=0, le=1, description="box overlap that counts as the same place")
    # 0.7 (a combined distance of 0.72): at 1.0 the parade lost 2 of 40 customers and side-by-side 1 of
    # 8 to merges with the person who stood there a moment before; at 0.7 neither, and the turn-around
    # benchmark keeps more people as one (docs/identity.md)
    in_place_factor: float = Field(
        0.7, ge=0, le=1,
        description="share of the split distance within which an in-place new track continues the customer "
                    "(1: unless the appearance alone would split them; 0: off)",
    )
    match_readings: int = Field(
        3, ge=1, le=50,
        description="a new customer is compared with the remembered ones at each of its first this many readings",
    )


    def fill_embedding_thresholds(self, thresholds: dict[str, float] | None = None) -> "IdentityConfig":
        """Set every embedding threshold left unset to the value measured for the embedding in use
        (``thresholds``: its ``IdentityCalibration.thresholds``, from the attribute model's or the
        head's manifest; None: the shipped attribute model's); returns self. In place, so that the
        pipeline, its customers and their gallery keep reading one config."""
        if thresholds is None:
            from .identity.calibration import SHIPPED_RAW_THRESHOLDS as thresholds
        for name, value in thresholds.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self


class Schedule(Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        description="days the rule is active (the device's local time)",
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    start: str = Field("00:00", pattern=r"^[0-9]{2}:[0-9]{2}$", description="HH:MM, 00:00-23:59")
    end: str = Field("24:00", pattern=r"^[0-9]{2}:[0-9]{2}$", description="HH:MM, 00:00-24:00")

    # Checked here, not first by the rule engine once the cameras run (issue 22, 4: check-config said
    # ok, run exited 2). edge/rules.py reads the times through the same minutes_of_day.
    @field_validator("start")
    @classmethod
    def _start_time(cls, value: str) -> str:
        minutes_of_day(value, allow_24=False)
        return value

    @field_validator("end")
    @classmethod
    def _end_time(cls, value: str) -> str:
        minutes_of_day(value, allow_24=True)
        return value

    @model_validator(mode="after")
    def _not_empty(self):
        if minutes_of_day(self.start, allow_24=False) == minutes_of_day(self.end, allow_24=True):
            raise ValueError("start equals end (an empty schedule)")
        return self


class RuleConfig(Strict):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]+$", max_length=MAX_NAME_CHARS,
                      description="the rule's name: in alert topics and payloads (at most 64 characters)")
    when: list[str] = Field(
        ..., min_length=1, description="alternatives; each is garments joined by '+', e.g. ['suit', 'blazer+pants']"
    )
    min_confidence: float = Field(0.5, ge=0, le=1, description="each garment of `when` needs at least this score")
    unless: list[str] = Field(
        default_factory=list,
        description="garments that veto the rule (dress unless pants); the rule waits while one is still being voted on",
    )
    zones: list[ZoneRef] = Field(
        default_factory=list,
        description="where the rule may alert: names of cameras[].zones (defined on every camera of the rule), or "
                    "polygons in frame pixels; the customer's foot point must be inside one; empty: anywhere")
    _cameras: dict | None = PrivateAttr(None)  # set by Config: camera name -> CameraConfig (named zones)
    cameras: list[str] = Field(default_factory=list, description="empty: all cameras")
    cooldown_s: float = Field(0.0, ge=0, le=604800, description="minimum seconds between two alerts of this rule (0..7 days)")
    schedule: Schedule | None = Field(None, description="when the rule may alert; null: always")

    @field_validator("when")
    @classmethod
    def _no_empty_garment_in_when(cls, when: list[str]) -> list[str]:
        for alternative in when:
            if not all(label.strip() for label in alternative.split("+")):
                raise ValueError(f"empty garment in {alternative!r}")
        return when

    @field_validator("unless")
    @classmethod
    def _no_empty_garment_in_unless(cls, unless: list[str]) -> list[str]:
        if not all(label.strip() for label in unless):
            raise ValueError("empty garment")
        return unless

    def zone_polygons(self, camera: str | None = None) -> list[list[Point]]:
        """The rule's zones on ``camera`` as pixel polygons: its literal polygons and its named zones
        from that camera's ``zones`` (known once the whole Config validated)."""
        polygons = [[(float(x), float(y)) for x, y in zone] for zone in self.zones if not isinstance(zone, str)]
        names = [zone for zone in self.zones if isinstance(zone, str)]
        if names:
            cam = (self._cameras or {}).get(camera)
            missing = [n for n in names if cam is None or n not in cam.zones]
            if missing:
                raise ConfigError(f"zone {missing[0]!r} is not defined on camera {camera!r}", field="rules[].zones")
            polygons += [cam.zone_polygon(n) for n in names]
        return polygons

    @field_validator("zones")
    @classmethod
    def _polygons(cls, zones):
        for polygon in zones:
            if isinstance(polygon, str):
                continue  # a zone's name: resolved against cameras[].zones by the Config
            if len(polygon) < 3:
                raise ValueError("a zone polygon needs at least 3 points")
            if any(not -MAX_PIXELS <= v <= MAX_PIXELS for point in polygon for v in point):
                raise ValueError(f"zone points are frame pixels within -{MAX_PIXELS}..{MAX_PIXELS}")
            if all(0 <= v <= 1 for point in polygon for v in point):
                raise ValueError("every point lies within 0..1: normalized coordinates? a polygon here is frame "
                                 "pixels; name a cameras[].zones entry with units: normalized instead")
        return zones


class AnalyticsConfig(Strict):
    window_s: float = Field(900.0, ge=1, le=86400, description="analytics window length (default 15 min; 1 s..1 day)")
    min_dwell_s: float = Field(
        1.0, ge=0, le=3600, description="a customer counts once their track lived this long (0..3600 s)"
    )


class TLSConfig(Strict):
    ca: Path | None = Field(None, description="CA certificate (PEM) that signed the broker's; null: the system's CAs")
    cert: Path | None = Field(None, description="client certificate (PEM), with key")
    key: Path | None = Field(None, description="client private key (PEM), with cert")
    insecure: bool = Field(False, description="skip hostname verification (testing only)")

    @model_validator(mode="after")
    def _cert_with_key(self):
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate needs both cert and key")
        return self


class OutboxConfig(Strict):
    max_messages: int = Field(10000, ge=1, le=10_000_000, description="bound of the durable outbox (1..10 million)")
    drop: Literal["oldest", "newest"] = Field("oldest", description="which alert to drop when full (counted)")



class DiscoveryConfig(Strict):
    """Home Assistant MQTT discovery (docs/mqtt.md): config topics published retained at every connect."""

    enabled: bool = Field(False, description="publish Home Assistant discovery configs; false removes earlier ones")
    prefix: str = Field("homeassistant", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", max_length=MAX_TOPIC_PREFIX_BYTES,
                        description="Home Assistant's discovery prefix")
    device_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$", max_length=MAX_NAME_CHARS,
        description="this box in Home Assistant (device, unique ids, its availability topic "
                    "{topic_prefix}/availability/devices/<device_id>); default <site>-<8 hex of the topic prefix "
                    "and camera names>, so two boxes of one site with other cameras never clash")


class MQTTConfig(Strict):
    host: str | None = Field(None, description="broker host name or address; null: start the embedded broker on 127.0.0.1")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is the usual TLS port)")
    topic_prefix: str | None = Field(
        None, description="default fashion-edge/<site>; no '#', '+' or NUL, not starting with '$', at most 1024 bytes")
    client_id: str | None = Field(
        None, description="default fashion-edge-<site>-<hostname>; 1..128 bytes of UTF-8 (MQTT 3.1.1 servers must "
                          "accept 1..23 bytes of [0-9a-zA-Z]; most take more)")
    username: str | None = Field(None, description="at most 65535 bytes of UTF-8 (MQTT's limit)")
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: Path | None = Field(None, description="file holding the password (e.g. a systemd credential)")
    tls: TLSConfig | None = Field(None, description="connect with TLS; null: plain TCP")
    keepalive_s: int = Field(30, ge=5, le=65535, description="MQTT keepalive (5..65535 s, the protocol's limit)")
    stats_interval_s: float = Field(10.0, ge=0.1, le=86400, description="how often stats are published (0.1 s..1 day)")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="the durable SQLite outbox of alerts")
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig, description="Home Assistant MQTT discovery")

    @model_validator(mode="after")
    def _one_password_source(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self

    # Settings no broker accepts (issue 22, 4): the broker closed the connection and the service
    # looped on "broker unreachable", or paho's thread died packing the string.
    @field_validator("topic_prefix")
    @classmethod
    def _publishable_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for wildcard in ("#", "+"):
            if wildcard in value:
                raise ValueError(f"contains {wildcard!r}: a wildcard, allowed only when subscribing, never in a "
                                 "topic published to")
        if value.startswith("$"):
            raise ValueError("starts with '$': topics starting with '$' belong to the broker ($SYS)")
        return mqtt_string(value, MAX_TOPIC_PREFIX_BYTES)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must be at least 1 character (or left out for the default)")
        return mqtt_string(value, MQTT_CLIENT_ID_BYTES)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return mqtt_string(value)


class StylesConfig(Strict):
    """Style mix in the analytics (issue 14, docs/styles.md): each settled customer's outfit
    embedding -> the nearest k-means style of ``map``; only the style id/name is stored."""

    enabled: bool = Field(False, description="assign customers to styles (needs a classifier with an embedding)")
    map: Path | None = Field(None, description="models/styles.json from python -m training.styles")

    @model_validator(mode="after")
    def _map_when_enabled(self):
        if self.enabled and self.map is None:
            raise ValueError("styles.enabled needs styles.map (models/styles.json)")
        return self


class CatalogConfig(Strict):
    """Similar items of the store's catalogue in alerts (ids and scores only, docs/styles.md)."""

    enabled: bool = Field(False, description="alerts of `rules` carry the top catalogue item ids")
    index: Path | None = Field(None, description="catalog.npz from fashion-edge catalog index DIR")
    top_k: int = Field(3, ge=1, le=20, description="items per alert (1..20)")
    rules: list[str] = Field(default_factory=lambda: ["dress", "suit"],
                             description="rules whose alerts carry matches; empty: every rule")

    @model_validator(mode="after")
    def _index_when_enabled(self):
        if self.enabled and self.index is None:
            raise ValueError("catalog.enabled needs catalog.index (catalog.npz)")
        return self


class SnapshotsConfig(Strict):
    """A picture of the customer per alert (docs/events.md). Off by default: privacy."""

    enabled: bool = Field(False, description="store a JPEG crop of the customer per alert on the device (events on "
                                             "the web page); privacy: no picture is taken unless true")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of snapshots (10..100)")
    retention_days: float = Field(7.0, gt=0, le=3650, description="pictures older than this many days are deleted "
                                                                  "(at start-up and after each new one)")
    max_mb: float = Field(500.0, gt=0, le=1_000_000, description="at most this many MB of pictures on the device; "
                                                                 "the oldest are deleted first")
    mqtt: bool = Field(False, description="also publish each picture on MQTT ({prefix}/cameras/{camera}/snapshot) "
                                          "and offer a Home Assistant image entity per camera; off: pictures never "
                                          "leave the device (the broker may be on another host)")


class EventsConfig(Strict):
    """The device's event list (docs/events.md): one row per alert, no picture unless snapshots.enabled."""

    retention_days: float = Field(90.0, gt=0, le=3650,
                                  description="event rows (alert id, camera, customer number, rule, time, garment "
                                              "labels, false-alert mark; no appearance) older than this many days "
                                              "are deleted")



def _split_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464', 'localhost:9464' -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen_address(value: str) -> str:
    _split_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_listen_address)]


class MetricsConfig(Strict):
    """Prometheus /metrics endpoint (edge/metrics.py); off by default, loopback by default."""

    enabled: bool = Field(False, description="serve /metrics in the Prometheus text format")
    listen: ListenAddress = Field("127.0.0.1:9464", description="HOST:PORT (0.0.0.0:9464 for a remote Prometheus)")

    @property
    def address(self) -> tuple[str, int]:
        return _split_listen(self.listen)


class PasswordedPage(Strict):
    """A page served over HTTP behind basic auth: the store's web page and the head office's chain
    view (``edge/chain/config.py``) share these fields and the rule that a page reachable from
    other machines has a password. Subclasses set their own ``enabled`` and ``listen``."""

    enabled: bool = Field(False, description="serve the page")
    listen: ListenAddress = Field("127.0.0.1:8080", description="HOST:PORT; a non-loopback host needs a password")
    username: str = Field("admin", min_length=1, description="HTTP basic-auth user when a password is set")
    password_env: str | None = Field(None, description="environment variable holding the page's password")
    password_file: Path | None = Field(None, description="file holding the page's password (first line)")

    @property
    def address(self) -> tuple[str, int]:
        return _split_listen(self.listen)

    @model_validator(mode="after")
    def _password_off_loopback(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        host, _ = self.address
        if self.enabled and not is_loopback(host) and not (self.password_env or self.password_file):
            raise ValueError(f"listen {self.listen} is not a loopback address: set password_file or password_env")
        return self


class WebConfig(PasswordedPage):
    """The local web page (edge/web/): live view, zones, the day's figures. Frames go only to it."""

    enabled: bool = Field(False, description="serve the local web page")
    frame_interval_s: float = Field(0.3, ge=0.05, le=10, description="how often the page fetches the live frame")
    jpeg_quality: int = Field(70, ge=10, le=100, description="JPEG quality of the live frame (10..100)")


class ServiceConfig(Strict):
    state_dir: Path | None = Field(
        None, description="SQLite files (outbox, analytics); a relative path is relative to the config file; "
                          "default $STATE_DIRECTORY (systemd), else state/ beside the config file")
    stuck_inference_s: float = Field(
        10.0, ge=0.1, le=3600, description="report an inference that runs longer (0.1..3600 s)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level of the daemon")
    time_zone: str | None = Field(
        None, description="the store's time zone (IANA name, e.g. Europe/Berlin) of the days and times on the web "
                          "page and in fashion-edge report (24 h); null: the system's")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus /metrics endpoint")
    web: WebConfig = Field(default_factory=WebConfig, description="the local web page")

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is no IANA time zone name (e.g. Europe/Berlin, UTC)") from None
        return value

    @model_validator(mode="after")
    def _one_listener_per_port(self):
        if self.metrics.enabled and self.web.enabled:
            metrics, web = self.metrics.address, self.web.address
            if metrics[1] != 0 and metrics == web:
                raise ValueError(f"service.metrics.listen and service.web.listen are both {self.web.listen}: "
                                 "give each its own port")
        return self


class Config(Strict):
    _base_dir: Path | None = PrivateAttr(None)  # set by load_config

    site: str = Field("store", pattern=r"^[A-Za-z0-9_-]+$", max_length=MAX_NAME_CHARS,
                      description="in every MQTT topic and the default client id (at most 64 characters)")
    cameras: list[CameraConfig] = Field(..., min_length=1, description="the cameras (at least one)")
    detector: DetectorConfig = Field(..., description="the person (and garment) detector")
    garments: GarmentsConfig = Field(default_factory=GarmentsConfig, description="how garments are found on a person")
    classifier: ClassifierConfig = Field(..., description="the garment classifier")
    attributes: AttributesConfig = Field(default_factory=AttributesConfig, description="the person-attribute model")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="the people tracker")
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig, description="when a customer's garment is decided")
    identity: IdentityConfig = Field(default_factory=IdentityConfig, description="one customer across a visit")  # issue 21
    rules: list[RuleConfig] = Field(default_factory=list, description="alert rules")
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig, description="footfall analytics windows")
    mqtt: MQTTConfig = Field(default_factory=MQTTConfig, description="the MQTT broker and what is published")
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig, description="pictures of alerts (off: privacy)")
    events: EventsConfig = Field(default_factory=EventsConfig, description="the device's event list and its retention")  # issue 23
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="state, logging, metrics, web page")
    styles: StylesConfig = Field(default_factory=StylesConfig, description="style mix in the analytics")  # issue 14
    catalog: CatalogConfig = Field(default_factory=CatalogConfig, description="similar catalogue items in alerts")  # issue 14

    @model_validator(mode="after")
    def _resolve_zone_names(self):
        """Rules find their named zones through the cameras; a zone name missing on one of the
        rule's cameras is refused here (not when the first customer walks in)."""
        cameras = {c.name: c for c in self.cameras}
        for index, rule in enumerate(self.rules):
            names = [z for z in rule.zones if isinstance(z, str)]
            for camera_name in rule.cameras or list(cameras):
                camera = cameras.get(camera_name)
                if camera is None:
                    continue  # an unknown camera name is the pre-flight's line
                missing = [n for n in names if n not in camera.zones]
                if missing:
                    known = ", ".join(sorted(camera.zones)) or "none"
                    raise ValueError(f"rules[{index}].zones: zone {missing[0]!r} is not defined on camera "
                                     f"{camera_name!r} (its zones: {known}); define it in cameras[].zones or limit "
                                     "the rule with rules[].cameras")
            rule._cameras = cameras
        return self

    @model_validator(mode="after")
    def _unique_names(self):
        for kind, names in (("cameras", [c.name for c in self.cameras]), ("rules", [r.name for r in self.rules])):
            duplicates = {n for n in names if names.count(n) > 1}
            if duplicates:
                raise ValueError(f"duplicate {kind} name(s): {', '.join(sorted(duplicates))}")
        return self

    @property
    def topic_prefix(self) -> str:
        return (self.mqtt.topic_prefix or f"fashion-edge/{self.site}").rstrip("/")

    def state_dir(self) -> Path:
        """Where the outbox and analytics live: ``service.state_dir`` (relative: to the config file),
        else ``$STATE_DIRECTORY`` (set by systemd), else ``state/`` beside the config file. Never the
        current directory, so ``report --config FILE`` finds the daemon's database from anywhere."""
        if self.service.state_dir is not None:
            return self.service.state_dir
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        return self.base_dir / "state"

    @property
    def base_dir(self) -> Path:
        """The config file's folder (relative paths are resolved against it); cwd for a parsed dict."""
        return self._base_dir or Path.cwd()


def _field_path(loc: tuple) -> str:
    return re.sub(r"\.(\d+)", r"[\1]", ".".join(str(p) for p in loc)) or "(top level)"


def resolve_paths(node, base: Path) -> None:
    """Make every relative Path field of a pydantic model tree absolute, relative to ``base``."""
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if isinstance(value, Path) and not value.is_absolute():
                object.__setattr__(node, name, (base / value).resolve())
            else:
                resolve_paths(value, base)
    elif isinstance(node, list):
        for item in node:
            resolve_paths(item, base)


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _regular_file_size(path: Path) -> int:
    """The size of the regular file at ``path``; anything else is refused before it is opened (a FIFO
    would block the open, /dev/zero would be read until MemoryError)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config ({exc.strerror or exc})", path=path) from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "no file")
        raise ConfigError(f"not a regular file ({kind}); give the config file itself", path=path)
    return info.st_size


def _too_large(path: Path, size: int) -> ConfigError:
    return ConfigError(f"{size} bytes: larger than any config (at most {MAX_CONFIG_BYTES} bytes)", path=path)


def _check_shape(data: object, path: Path) -> None:
    """Refuse data nested deeper than MAX_CONFIG_DEPTH or expanding (through YAML aliases, which
    share one object) to more than MAX_CONFIG_VALUES values: validation walks every expanded value.
    Iterative, and each shared object is counted once per size (memo by id)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[object, int, bool]] = [(data, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_CONFIG_DEPTH} levels (no config is)", path=path)
        children = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_CONFIG_VALUES:
                raise ConfigError(f"expands to more than {MAX_CONFIG_VALUES} values (YAML aliases?); "
                                  "no config is that large", path=path)
            sizes[id(node)] = total
            continue
        if id(node) in sizes:
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def read_yaml(path: str | Path) -> object:
    """Parsed YAML of a config file; a missing file, one that is no regular file, larger than
    MAX_CONFIG_BYTES, malformed or nested too deep is a one-line ConfigError."""
    path = Path(path)
    size = _regular_file_size(path)
    if size > MAX_CONFIG_BYTES:
        raise _too_large(path, size)
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, the open does not wait
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError("not a regular file; give the config file itself", path=path)
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config ({exc.strerror or exc})", path=path) from None
    if len(raw) > MAX_CONFIG_BYTES:  # grew since the stat
        raise _too_large(path, len(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}", path=path) from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_CONFIG_DEPTH} levels (no config is)", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"malformed YAML at {where}: {problem}", path=path) from None
    _check_shape(data, path)
    return data


def _error_message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return error["msg"].removeprefix("Value error, ")


def validation_errors(model: type[BaseModel], data: object, path: str | Path = "<config>") -> list[ConfigError]:
    """Every problem ``model.model_validate(data)`` finds, one ``ConfigError`` (one line) each."""
    if not isinstance(data, dict):
        return [ConfigError("the top level must be a mapping of settings", path=path)]
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [ConfigError(_error_message(e), path=path, field=_field_path(e["loc"])) for e in exc.errors()]
    return []


def validate(model: type[BaseModel], data: object, path: str | Path = "<config>"):
    """``model.model_validate(data)`` with the first error as a one-line ConfigError naming the field."""
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of settings", path=path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_error_message(first), path=path, field=_field_path(first["loc"])) from None


def is_live_uri(uri: str) -> bool:
    """A camera index ('0') or a stream URL (rtsp://, http://): live, not a file (no end, wall clock)."""
    return uri.strip().isdigit() or "://" in uri


def _resolve_source(source: str, base: Path) -> str:
    if is_live_uri(source) or Path(source).is_absolute():
        return source
    return str((base / source).resolve())


def parse_config(data: object, path: str | Path = "<config>") -> Config:
    return validate(Config, data, path)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    config = parse_config(read_yaml(path), path)
    base = path.resolve().parent
    config._base_dir = base
    resolve_paths(config, base)
    for camera in config.cameras:
        camera.source = _resolve_source(camera.source, base)
    return config

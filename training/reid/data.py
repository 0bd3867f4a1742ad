"""PETA training identities seen more than once, rendered as a store camera sees them, and their
person-attribute features through the daemon's own reader (cached per attribute model)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import ConfigError
from training.attributes.data import in_validation

PAD = 0.15  # grey frame around the person, fraction of its height (the reader's margin crops into it)
BACKGROUND = 150  # the scenario renderer's plain backdrop


def frame_person(person: np.ndarray, height: int | None = None, jpeg: int | None = None):
    """The person on a grey frame, optionally resized to ``height`` px tall and JPEG-compressed at
    quality ``jpeg``. Returns (frame BGR, person box xyxy)."""
    if height is not None:
        width = max(8, round(person.shape[1] * height / person.shape[0]))
        person = cv2.resize(person, (width, height), interpolation=cv2.INTER_AREA)
    ph, pw = person.shape[:2]
    pad = max(4, round(PAD * ph))
    frame = np.full((ph + 2 * pad, pw + 2 * pad, 3), BACKGROUND, np.uint8)
    frame[pad:pad + ph, pad:pad + pw] = person
    if jpeg is not None:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return frame, np.array([pad, pad, pad + pw, pad + ph], np.float32)


@dataclass
class Image:
    identity: str  # "<subset>:<id>" as in labels.csv
    subset: str
    path: Path


def training_images(peta_root: Path, val_fraction: float, seed: int, subsets: list[str] | None = None) -> list[Image]:
    """Every PETA image of a *training* identity (the attribute model's split) with at least two
    images, sorted; validation identities are never returned."""
    labels = peta_root / "labels.csv"
    try:
        with labels.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise ConfigError("PETA labels not found", path=labels) from None
    by_identity: dict[str, list[dict]] = {}
    for row in rows:
        if subsets and row["subset"] not in subsets:
            continue
        if in_validation(row["identity"], val_fraction, seed):
            continue
        by_identity.setdefault(row["identity"], []).append(row)
    return [Image(identity, row["subset"], peta_root / row["image"])
            for identity in sorted(by_identity) if len(by_identity[identity]) >= 2
            for row in sorted(by_identity[identity], key=lambda r: r["image"])]


def held_out(identity: str, fraction: float, seed: int) -> bool:
    """Stable hash split of training identities: the held-out ones pick the settings and measure
    the distance scale; the head is fitted on the rest."""
    digest = hashlib.sha256(f"reid:{seed}:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass
class Features:
    identity: np.ndarray  # (n,) str
    subset: np.ndarray  # (n,) str
    image: np.ndarray  # (n,) int, the source image's index (its renderings share it)
    features: np.ndarray  # (n, d) float32, L2-normalised pooled features


def extract(images: list[Image], reader, renderings: int, person_height: tuple[int, int], jpeg: int,
            seed: int, cache: Path | None = None) -> Features:
    """``renderings`` store-camera renderings of each image (seeded height, JPEG; every second one
    mirrored), read by ``reader`` (``PersonAttributeModel.read``: the daemon's preprocessing)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as arrays:
            if int(arrays["renderings"]) == renderings and len(arrays["image"]) == len(images) * renderings:
                return Features(arrays["identity"], arrays["subset"], arrays["image"], arrays["features"])
    from edge.preprocess import person_box_with_margin

    identity, subset, index, features = [], [], [], []
    for i, image in enumerate(tqdm(images, desc="features", unit="image")):
        pixels = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
        if pixels is None:
            raise ConfigError("unreadable image", path=image.path)
        for r in range(renderings):
            rng = np.random.default_rng([seed, i, r])
            person = np.ascontiguousarray(pixels[:, ::-1]) if r % 2 == 1 else pixels
            frame, box = frame_person(person, int(rng.integers(person_height[0], person_height[1] + 1)), jpeg)
            x1, y1, x2, y2 = person_box_with_margin(box, reader.margin, frame.shape)
            embedding = reader.read(frame[y1:y2, x1:x2]).embedding
            if embedding is None:
                continue
            identity.append(image.identity)
            subset.append(image.subset)
            index.append(i)
            features.append(embedding)
    out = Features(np.array(identity), np.array(subset), np.array(index), np.stack(features).astype(np.float32))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, identity=out.identity, subset=out.subset, image=out.image, features=out.features,
                 renderings=renderings)
        tmp.replace(cache)
    return out

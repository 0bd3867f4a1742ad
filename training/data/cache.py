"""Decode, crop and letterbox images once; keep the result as a .npy file under ``.cache/``.

The cached array holds exactly what ``edge.preprocess.classifier_input`` gives the daemon for
the same crop (RGB uint8, letterboxed square), so training sees the serving-time pixels.
The cache key is a hash of every sample's identity (file, crop box) and the size, so a changed
dataset or a different size never reuses a stale array.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import DatasetError
from edge.preprocess import classifier_input

from .samples import Sample

CACHE_VERSION = "1"


def cache_file(samples: list[Sample], size: int, cache_dir: Path, name: str) -> Path:
    digest = hashlib.sha1(f"v{CACHE_VERSION}|{size}".encode())
    for sample in samples:
        digest.update(sample.cache_token().encode())
        digest.update(b"\n")
    return Path(cache_dir) / f"{name}-{size}px-{len(samples)}-{digest.hexdigest()[:12]}.npy"


def decode_sample(sample: Sample, size: int) -> np.ndarray:
    """One sample -> letterboxed RGB uint8 square; a clear DatasetError for a bad file or box."""
    return classifier_input(crop_bgr(sample), size)


def crop_bgr(sample: Sample) -> np.ndarray:
    """One sample as the BGR crop the daemon would hand the classifier (before its letterbox)."""
    if sample.pixels is not None:
        image = np.asarray(sample.pixels)
    else:
        if not sample.path.is_file():
            raise DatasetError("image file not found", path=sample.path)
        image = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError("cannot decode image (unreadable or not an image)", path=sample.path)
    if sample.box is not None:
        h, w = image.shape[:2]
        x1, y1, x2, y2 = sample.box
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise DatasetError(f"crop box {sample.box} is empty inside a {w}x{h} image", path=sample.path)
        image = image[y1:y2, x1:x2]
    return image


def load_images(
    samples: list[Sample],
    size: int,
    cache_dir: Path | None,
    name: str = "images",
    workers: int = 2,
) -> np.ndarray:
    """All samples as one (N, size, size, 3) uint8 RGB array, cached when ``cache_dir`` is set."""
    path = cache_file(samples, size, cache_dir, name) if cache_dir is not None else None
    if path is not None and path.is_file():
        images = np.load(path)
        if images.shape == (len(samples), size, size, 3):
            return images
    images = np.empty((len(samples), size, size, 3), dtype=np.uint8)
    # OpenCV releases the GIL while decoding, so two threads use both cores.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = pool.map(lambda s: decode_sample(s, size), samples)
        for i, image in enumerate(tqdm(decoded, total=len(samples), desc=f"decode {name}", unit="img")):
            images[i] = image
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, images)
        tmp.replace(path)  # atomic: a killed run never leaves a half-written cache
    return images

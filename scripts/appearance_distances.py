"""Appearance distances that justify the tracker's defaults (edge/config.py TrackerConfig).

On colorful-fashion *train* photos (never the validation split the scenario benchmark uses):
each person box (union of the garment boxes, with head room) against (a) the same photo seen
again as a store camera would (shrunk to 120-300 px tall, JPEG 40-80, shifted by a few pixels,
brightness +-15 %) and (b) another person's photo, degraded the same way. Prints percentiles.

    python scripts/appearance_distances.py [--n 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import shared_dir  # noqa: E402
from scenarios.photos import load_people  # noqa: E402
from edge.tracking.appearance import describe, distance  # noqa: E402


def seen_by_camera(person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height = int(rng.uniform(120, 300))
    scale = height / person.shape[0]
    small = cv2.resize(person, (max(8, int(person.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    small = np.clip(small.astype(np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(40, 80))])
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--shared", type=Path, default=shared_dir())
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    people = load_people(args.shared / "datasets" / "colorful-fashion", "train", limit=args.n)
    same, other = [], []
    for i, person in enumerate(people):
        a = seen_by_camera(person.image, rng)
        b = seen_by_camera(person.image, rng)
        dx = int(rng.integers(-3, 4))
        box_a = [0, 0, a.shape[1], a.shape[0]]
        box_b = [max(0, dx), 0, b.shape[1] + min(0, dx), b.shape[0]]
        da, db = describe(a, box_a), describe(b, box_b)
        c = seen_by_camera(people[(i + 1 + int(rng.integers(len(people) - 1))) % len(people)].image, rng)
        dc = describe(c, [0, 0, c.shape[1], c.shape[0]])
        same.append(distance(da, db))
        other.append(distance(da, dc))
    for name, values in (("same person", same), ("other person", other)):
        p = np.percentile(values, [5, 25, 50, 75, 95])
        print(f"{name:13s} n={len(values)} p5 {p[0]:.3f} p25 {p[1]:.3f} p50 {p[2]:.3f} p75 {p[3]:.3f} p95 {p[4]:.3f}")
    same, other = np.array(same), np.array(other)
    for threshold in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
        print(f"threshold {threshold:.2f}: same person refused {np.mean(same > threshold):.3f}, "
              f"other person accepted {np.mean(other <= threshold):.3f}")


if __name__ == "__main__":
    main()

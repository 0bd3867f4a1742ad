"""Person detector input per camera: recall of small, distant people against cost per frame on large frames.

    python scripts/bench_detector_input.py [--frames 30] [--size 1920x1080] [--json-out docs/data/detector_input.json]

Frames: a store-like backdrop (``scenarios.render``) at ``--size`` with real PETA pedestrian
crops (CCTV pictures of people: ../shared/datasets/peta) pasted at heights from 40 to 320 px, 8 per
frame, none overlapping, JPEG quality 60 like a camera stream. The truth is each pasted rectangle.

Variants: the COCO YOLO11n int8 person detector at 224 / 416 / 640 on the whole frame, and 416 /
640 on the whole frame plus ``cols x rows`` overlapping tiles (``edge.detect.tiles.TiledDetector``).
Per variant: recall by person height (a truth box is found by a person box with IoU >= 0.5, or
60 % of its height lying 80 % inside it: the crops carry background) at
score >= 0.5 (what starts a track) and >= 0.25, person boxes matching no one per frame, and the
median wall and CPU ms per frame of ``detect`` with 1 interpreter thread (all variants alternate on each frame,
so they share the machine's noise).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

from edge.boxes import iou_matrix  # noqa: E402
from edge.detect.tiles import TiledDetector  # noqa: E402
from edge.detect.yolo import YoloDetector  # noqa: E402
from scenarios.render import Scenario  # noqa: E402

REPO = repo_root()

HEIGHT_BINS = [(40, 60), (60, 90), (90, 130), (130, 200), (200, 320)]


def peta_people(shared: Path, count: int, seed: int) -> list[np.ndarray]:
    root = shared / "datasets" / "peta"
    with open(root / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["height"]) >= 100]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(rows), size=min(count, len(rows)), replace=False)
    images = []
    for i in chosen:
        image = cv2.imread(str(root / rows[i]["image"]))
        if image is not None:
            images.append(image)
    return images


def compose(backdrop: np.ndarray, people: list[np.ndarray], rng, per_frame: int) -> tuple[np.ndarray, np.ndarray]:
    frame = backdrop.copy()
    h, w = frame.shape[:2]
    boxes = []
    tries = 0
    while len(boxes) < per_frame and tries < 500:
        tries += 1
        lo, hi = HEIGHT_BINS[rng.integers(len(HEIGHT_BINS))]
        height = int(rng.uniform(lo, hi))
        person = people[rng.integers(len(people))]
        width = max(4, int(round(height * person.shape[1] / person.shape[0])))
        x1, y1 = int(rng.uniform(0, w - width)), int(rng.uniform(0.1 * h, h - height))
        box = np.array([x1, y1, x1 + width, y1 + height], np.float32)
        if boxes and iou_matrix(box[None], np.array(boxes)).max() > 0:
            continue
        interp = cv2.INTER_AREA if height < person.shape[0] else cv2.INTER_LINEAR
        frame[y1:y1 + height, x1:x1 + width] = cv2.resize(person, (width, height), interpolation=interp)
        boxes.append(box)
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.array(boxes, np.float32)


def match_quality(truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(truth, boxes) match quality, >= 0.5 for a hit: the IoU, or, since a pasted PETA crop carries
    background around the person, 0.5 for a box at least 60 % of the crop's height lying 80 % inside it."""
    quality = iou_matrix(truth, boxes)
    x1 = np.maximum(truth[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(truth[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(truth[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(truth[:, None, 3], boxes[None, :, 3])
    inside = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None) / np.maximum(
        ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None, :], 1e-6)
    tall = (boxes[None, :, 3] - boxes[None, :, 1]) >= 0.6 * (truth[:, None, 3] - truth[:, None, 1])
    return np.maximum(quality, np.where((inside >= 0.8) & tall, 0.5, 0.0))


def score(found_xyxy: np.ndarray, found_scores: np.ndarray, truth: np.ndarray, min_score: float) -> tuple[np.ndarray, int]:
    """(hit per truth box, unmatched person boxes) with greedy one-to-one matching at IoU >= 0.5."""
    keep = found_scores >= min_score
    boxes = found_xyxy[keep]
    hit = np.zeros(len(truth), bool)
    if len(boxes) == 0:
        return hit, 0
    ious = match_quality(truth, boxes)
    used = set()
    for t in np.argsort(-ious.max(axis=1)):
        for b in np.argsort(-ious[t]):
            if ious[t, b] < 0.5:
                break
            if b not in used:
                used.add(b)
                hit[t] = True
                break
    return hit, len(boxes) - len(used)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--per-frame", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    coco = args.shared / "models" / "coco-yolo"
    manifest = REPO / "models" / "manifests" / "coco-yolo.json"

    def detector(name: str) -> YoloDetector:
        return YoloDetector(coco / name, manifest_path=manifest, conf=0.25, threads=1, classes=["person"])

    d224, d416, d640 = (detector(f) for f in ("yolo11n_full_integer_quant_224.tflite",
                                              "yolo11n_full_integer_quant_416.tflite",
                                              "yolo11n_full_integer_quant.tflite"))
    variants = {"224": d224, "416": d416, "640": d640,
                "416 + 2x2 tiles": TiledDetector(d416, 2, 2), "416 + 3x2 tiles": TiledDetector(d416, 3, 2),
                "640 + 2x2 tiles": TiledDetector(d640, 2, 2)}
    rng = np.random.default_rng(args.seed)
    people = peta_people(args.shared, 400, args.seed)
    backdrop = Scenario("bench", 10, (w, h), [], store_backdrop=True, seed=args.seed).backdrop()
    truth_heights, hits, unmatched, times, cpu_times = [], {}, {}, {}, {}
    for _ in tqdm(range(args.frames), desc=f"{w}x{h} frames", unit="frame", file=sys.stderr):
        frame, truth = compose(backdrop, people, rng, args.per_frame)
        truth_heights.append(truth[:, 3] - truth[:, 1])
        names = list(variants)
        rng.shuffle(names)  # a different order each frame: the same noise for all
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            found = variants[name].detect(frame)
            times.setdefault(name, []).append(time.perf_counter() - t0)
            cpu_times.setdefault(name, []).append(time.process_time() - c0)
            for min_score in (0.5, 0.25):
                hit, extra = score(found.xyxy, found.scores, truth, min_score)
                hits.setdefault((name, min_score), []).append(hit)
                unmatched.setdefault((name, min_score), []).append(extra)
    heights = np.concatenate(truth_heights)
    result = {"size": f"{w}x{h}", "frames": args.frames, "people": int(len(heights)), "threads": 1,
              "load_avg_1m": round(os.getloadavg()[0], 2),
              "command": "python scripts/bench_detector_input.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "variants": {}}
    for name, detector_ in variants.items():
        entry = {"ms_per_frame": round(float(np.median(times[name])) * 1000, 1),
                 "cpu_ms_per_frame": round(float(np.median(cpu_times[name])) * 1000, 1),
                 "detector_calls_per_frame": getattr(detector_, "calls_per_frame", 1)}
        for min_score in (0.5, 0.25):
            hit = np.concatenate(hits[(name, min_score)])
            entry[f"score>={min_score}"] = {
                "recall_by_height": {f"{lo}-{hi}px": round(float(hit[(heights >= lo) & (heights < hi)].mean()), 3)
                                     for lo, hi in HEIGHT_BINS},
                "recall": round(float(hit.mean()), 3),
                "unmatched_per_frame": round(float(np.mean(unmatched[(name, min_score)])), 2)}
        result["variants"][name] = entry
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

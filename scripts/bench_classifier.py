#!/usr/bin/env python3
"""Latency of the garment classifier on this CPU, through the edge code path.

    python scripts/bench_classifier.py [--model models/garment-classifier.tflite] [--threads 2]

Prints the file size and milliseconds per crop: interpreter only (``invoke``), and the whole
``GarmentClassifier.classify`` (letterbox + quantise + invoke + label scores) on real photos
from ../shared/datasets/clothing. Median and 90th percentile over ``--runs`` crops after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

from edge.classify.classifier import GarmentClassifier  # noqa: E402

REPO = repo_root()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models/garment-classifier.tflite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--images", type=Path, default=shared_dir() / "datasets/clothing/images")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    classifier = GarmentClassifier(args.model, threads=args.threads)
    crops = [cv2.imread(str(p)) for p in sorted(args.images.glob("*.jpg"))[:50]]
    crops = [c for c in crops if c is not None]
    if not crops:
        print(f"error: no images in {args.images}", file=sys.stderr)
        return 2
    tensor = classifier.input_tensor(crops[0])
    for crop in crops[:20]:  # warm-up: caches, XNNPACK packing
        classifier.classify(crop)
    invoke_ms, classify_ms = [], []
    interpreter = classifier.model.interpreter
    for i in tqdm(range(args.runs), desc="classifier runs", unit="run", file=sys.stderr):
        crop = crops[i % len(crops)]
        tensor = classifier.input_tensor(crop)
        interpreter.set_tensor(classifier.model.input.index, tensor)
        t0 = time.perf_counter()
        interpreter.invoke()
        invoke_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        classifier.classify(crop)
        classify_ms.append((time.perf_counter() - t0) * 1000)
    result = {
        "model": str(args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model),
        "size_bytes": args.model.stat().st_size,
        "input": list(classifier.model.input.shape),
        "threads": args.threads,
        "runs": args.runs,
        "invoke_ms_median": round(statistics.median(invoke_ms), 3),
        "invoke_ms_p90": round(percentile(invoke_ms, 90), 3),
        "classify_ms_median": round(statistics.median(classify_ms), 3),
        "classify_ms_p90": round(percentile(classify_ms, 90), 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']}: {result['size_bytes'] / 1024:.0f} KiB, input {result['input']}, {args.threads} threads")
        print(f"  invoke   median {result['invoke_ms_median']:.2f} ms  p90 {result['invoke_ms_p90']:.2f} ms per crop")
        print(f"  classify median {result['classify_ms_median']:.2f} ms  p90 {result['classify_ms_p90']:.2f} ms per crop "
              "(letterbox + quantise + invoke + scores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark a YOLO TFLite detector: per-frame latency with the daemon's own detector class.

    python scripts/bench_detector.py [--model models/garment-detector.tflite] [--threads 2]
        [--runs 100] [--image ../shared/media/bus.jpg] [--compare ../shared/models/coco-yolo/yolov8n_full_integer_quant_416.tflite]

Reports median and p90 of (a) ``invoke`` alone and (b) the whole ``detect`` call (letterbox,
quantise, invoke, decode, NMS, box mapping) on a real frame. ``--compare`` runs a second model
interleaved with the first, so both see the same machine noise (the box is shared by others).
Prints one JSON object; ``--json-out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

from edge.detect.yolo import YoloDetector  # noqa: E402
from edge.errors import FashionEdgeError  # noqa: E402

REPO = repo_root()


def _stats(samples_s: list[float]) -> dict:
    ms = np.array(samples_s) * 1000
    return {"median_ms": round(float(np.median(ms)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "min_ms": round(float(ms.min()), 2)}


def bench(models: dict[str, YoloDetector], frame: np.ndarray, runs: int, warmup: int) -> dict:
    invoke = {name: [] for name in models}
    detect = {name: [] for name in models}
    tensors = {name: np.zeros(d.model.input.shape, d.model.input.dtype) for name, d in models.items()}
    for i in tqdm(range(warmup + runs), desc=f"{len(models)} model(s), {warmup} warm-up", unit="run",
                  file=sys.stderr):
        for name, det in models.items():  # interleaved: same noise for every model
            t0 = time.perf_counter()
            det.model.run(tensors[name])
            t1 = time.perf_counter()
            det.detect(frame)
            t2 = time.perf_counter()
            if i >= warmup:
                invoke[name].append(t1 - t0)
                detect[name].append(t2 - t1)
    return {name: {"invoke": _stats(invoke[name]), "detect": _stats(detect[name]),
                   "input_size": models[name].input_size,
                   "size_mb": round(models[name].model_path.stat().st_size / 1e6, 2)} for name in models}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models/garment-detector.tflite")
    parser.add_argument("--compare", type=Path, action="append", default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--image", type=Path, default=shared_dir() / "media/bus.jpg")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--manifest", action="store_true",
                        help="record the first model's latency under metrics.latency in its manifest")
    args = parser.parse_args(argv)
    try:
        frame = cv2.imread(str(args.image))
        if frame is None:
            raise FashionEdgeError("cannot read image", path=args.image)
        models = {str(p): YoloDetector(p, threads=args.threads) for p in [args.model, *args.compare]}
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"threads": args.threads, "runs": args.runs, "image": args.image.name,
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "load_avg_1m": round(os.getloadavg()[0], 2), "models": bench(models, frame, args.runs, args.warmup)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    if args.manifest:
        from edge.runtime import manifest_path

        path = manifest_path(args.model)
        manifest = json.loads(path.read_text())
        first = result["models"][str(args.model)]
        manifest.setdefault("metrics", {})["latency"] = {
            "threads": args.threads, "invoke": first["invoke"], "detect": first["detect"],
            "load_avg_1m": result["load_avg_1m"], "command": "python scripts/bench_detector.py --manifest"}
        path.write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

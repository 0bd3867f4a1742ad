#!/usr/bin/env python3
"""Person-attribute model: latency on this CPU through the edge reader, and the input-size study.

    python scripts/bench_attributes.py [--model models/person-attributes.tflite] [--threads 1,2] [--runs 300]
    python scripts/bench_attributes.py --sizes 128x64,160x80,192x96,224x112 [--json docs/data/attribute_sizes.json]

Latency: milliseconds per person crop, interpreter only (``invoke``) and the whole
``PersonAttributeModel.read`` (letterbox + quantise + invoke + scores), on real PETA crops; median and
90th percentile over ``--runs`` crops after warm-up, for each thread count.

``--sizes``: how big the input must be. For each HxW the same backbone (ImageNet MobileNetV2 1.0,
frozen) is exported int8 and timed, and a linear probe on its pooled features (trained on the
attribute training split, scored on the validation split, PETA crops only) gives each attribute's
AUC: what the pixels still carry at that size, before any fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.attributes.model import PersonAttributeModel  # noqa: E402

REPO = repo_root()


def peta_crops(n: int = 60) -> list[np.ndarray]:
    folder = shared_dir() / "datasets" / "peta" / "images"
    paths = sorted(folder.rglob("*.jp*g"))[:: max(1, len(list(folder.rglob("*.jp*g"))) // n)][:n]
    return [c for c in (cv2.imread(str(p)) for p in paths) if c is not None]


def latency(model_path: Path, threads: int, runs: int, crops: list[np.ndarray]) -> dict:
    reader = PersonAttributeModel(model_path, threads=threads)
    interp = reader.model.interpreter
    for crop in crops[:20]:
        reader.read(crop)
    invoke, read = [], []
    for i in tqdm(range(runs), desc=f"{threads} thread(s)", unit="run", file=sys.stderr):
        crop = crops[i % len(crops)]
        interp.set_tensor(reader.model.input.index, reader._tensor(crop))
        t0 = time.perf_counter()
        interp.invoke()
        invoke.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        reader.read(crop)
        read.append((time.perf_counter() - t0) * 1000)
    return {"threads": threads, "input": list(reader.model.input.shape), "size_bytes": model_path.stat().st_size,
            "invoke_ms_median": round(statistics.median(invoke), 3), "invoke_ms_p90": round(float(np.percentile(invoke, 90)), 3),
            "read_ms_median": round(statistics.median(read), 3), "read_ms_p90": round(float(np.percentile(read, 90)), 3)}


def probe_auc(train_x, train_t, val_x, val_t) -> dict:
    """Per attribute: a balanced logistic regression (plain gradient descent) on standardised features."""
    from training.attributes import labels as L
    from training.attributes.metrics import roc_auc

    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    xt, xv = (train_x - mu) / sd, (val_x - mu) / sd
    out = {}
    for k, name in enumerate(L.ATTRIBUTES):
        known = train_t[:, k] >= 0
        x, y = xt[known], train_t[known, k]
        if y.sum() < 5 or (1 - y).sum() < 5:
            continue
        w, b = np.zeros(x.shape[1]), 0.0
        sw = np.where(y == 1, (1 - y).sum() / y.sum(), 1.0)
        sw /= sw.mean()
        for _ in range(300):
            p = 1 / (1 + np.exp(-(x @ w + b)))
            g = (p - y) * sw
            w -= 0.05 * (x.T @ g / len(y) + 1e-2 * w)
            b -= 0.05 * g.mean()
        out[name] = round(roc_auc(xv @ w + b, val_t[:, k]), 4)
    return out


def size_study(sizes: list[tuple[int, int]], runs: int, crops: list[np.ndarray]) -> list[dict]:
    import keras

    from export.attributes import export_int8, write_manifest
    from training.attributes.config import load_attribute_config
    from training.attributes.data import load_split
    from training.attributes.train import build_model, framed_set

    config = load_attribute_config(REPO / "configs" / "attributes.yaml")
    sources = [s.model_dump() for s in config.data if s.format == "peta"]
    train = load_split(sources, "train", config.seed, config.output.cache_dir)
    val = load_split(sources, "val", config.seed, config.output.cache_dir)
    rows = []
    for h, w in sizes:
        config.model.input_height, config.model.input_width = h, w
        model = build_model(config)
        features = keras.Model(model.input, model.get_layer("dropout").input)

        def feats(samples):
            images = framed_set(samples, config)
            return np.concatenate([features.predict_on_batch(images[i:i + 128].astype(np.float32) / 255.0)
                                   for i in tqdm(range(0, len(images), 128), desc=f"{h}x{w} features", unit="batch", file=sys.stderr)])

        aucs = probe_auc(feats(train), train.target_matrix(), feats(val), val.target_matrix())
        tmp = REPO / "runs" / "attributes" / "sizes" / f"{h}x{w}.tflite"
        export_int8(model, framed_set(train.subset(np.arange(len(train)) < 50), config), tmp)
        from training.attributes import labels as L

        write_manifest(tmp, list(L.ATTRIBUTES), h, w, config.model.margin, {}, {})
        rows.append({**latency(tmp, 1, runs, crops), "size": f"{h}x{w}", "probe_auc": aucs})
        print(json.dumps(rows[-1]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "person-attributes.tflite")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--sizes", default="", help="HxW,... : the input-size study instead of the latency of --model")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    crops = peta_crops()
    if args.sizes:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
        result = size_study(sizes, args.runs, crops)
        print(f"{'input':>8} {'invoke ms':>10} " + " ".join(f"{n:>8}" for n in result[0]["probe_auc"]))
        for r in result:
            print(f"{r['size']:>8} {r['invoke_ms_median']:>10.2f} " + " ".join(f"{v:>8.3f}" for v in r["probe_auc"].values()))
    else:
        if not args.model.is_file():
            print(f"error: {args.model}: model file not found", file=sys.stderr)
            return 2
        result = [latency(args.model, int(t), args.runs, crops) for t in args.threads.split(",")]
        for r in result:
            print(f"{args.model.name}: input {r['input']}, {r['size_bytes'] / 1024:.0f} KiB, {r['threads']} thread(s): "
                  f"invoke median {r['invoke_ms_median']:.2f} ms (p90 {r['invoke_ms_p90']:.2f}), "
                  f"read median {r['read_ms_median']:.2f} ms (p90 {r['read_ms_p90']:.2f}) per crop")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

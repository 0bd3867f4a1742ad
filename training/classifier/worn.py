"""Worn-garment crops: how a classifier does on garments people wear (the daemon's domain).

    python -m training.classifier.worn --model models/garment-classifier.tflite [--out FILE.json]
    python -m training.classifier.worn --model ../shared/models/imagenet/mobilenet_v2_1.0_224_quant.tflite \\
        --manifest models/manifests/imagenet-mobilenet-v2.json --to-product suit=blazer cardigan=longsleeve sweatshirt=hoodie

Crops: the boxes of colorful-fashion's **val** split (never trained on; ``min_side_px`` 40 and a
5 % margin as in training), through ``GarmentClassifier.classify`` (the daemon's code path).

* ``product``: boxes whose label maps to a product label (hat, dress, pants, shorts, skirt,
  shoe -> shoes; configs/label_map.yaml): top-1 over all the model's labels (scored as product
  labels), per-label recall. In the daemon these labels are taken from the garment detector
  (their refinement lists have one entry), so this is what the body-region fallback relies on.
* ``refinement``: boxes the detector would call ``jacket`` or ``shirt`` - the labels the daemon
  asks the classifier to name more finely (``garments.refinements`` in edge/config.py:
  jacket -> blazer / outwear / hoodie / ..., shirt -> t-shirt / shirt / longsleeve / polo / ...).
  The dataset has no finer truth, so what is measured is the share of answers the daemon accepts
  (inside the refinement list; otherwise the detector's plain label is kept) and how the answers
  split (e.g. blazer vs outwear for jackets).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from edge.paths import repo_root, shared_dir


def worn_report(model: Path, manifest: Path | None = None, to_product: dict[str, str] | None = None,
                label_map_path: Path | None = None, root: Path | None = None, split: str = "val",
                min_side_px: int = 40, margin: float = 0.05, threads: int = 2) -> dict:
    """``label_map_path`` defaults to configs/label_map.yaml, ``root`` to the shared colorful-fashion set."""
    from edge.classify.classifier import GarmentClassifier
    from edge.config import GarmentsConfig

    from ..data.cache import crop_bgr
    from ..data.yolo_crops import load_yolo_crops
    from ..labels import load_label_map
    from .evaluate import evaluate
    from .ship import daemon_probabilities

    label_map_path = label_map_path or repo_root() / "configs/label_map.yaml"
    root = root or shared_dir() / "datasets/colorful-fashion"
    label_map = load_label_map(label_map_path)
    samples = load_yolo_crops(root, split, min_side_px, margin, None, 0)
    mapped = label_map.apply(samples, "colorful-fashion")
    labels = label_map.labels
    crops = [crop_bgr(s) for s in mapped]
    probs = daemon_probabilities(model, crops, labels, manifest, None, to_product, threads, desc="worn crops")
    truth = np.array([labels.index(s.label) for s in mapped])
    metrics = evaluate(probs, truth, labels, label_map.ten_classes)
    present = sorted({s.label for s in mapped})
    report = {
        "model": str(model),
        "crops": f"{root.name} {split} split, boxes >= {min_side_px} px, margin {margin}",
        "product": {"n": metrics["n"], "top1": metrics["top1"],
                    "recall": {c: metrics["per_class"][c]["recall"] for c in present},
                    "support": {c: metrics["per_class"][c]["support"] for c in present}},
        "refinement": {},
    }
    refinements = GarmentsConfig().refinements
    classifier = GarmentClassifier(model, manifest, threads=threads)
    for detector_label in ("jacket", "shirt"):
        boxes = [s for s in samples if s.label == detector_label]
        answers = Counter(classifier.classify(crop_bgr(s)).label for s in boxes)
        finer = set(refinements[detector_label])
        accepted = sum(n for label, n in answers.items() if label in finer)
        report["refinement"][detector_label] = {
            "n": len(boxes), "accepted": accepted / max(1, len(boxes)), "accepted_labels": sorted(finer),
            "answers": {label: n / max(1, len(boxes)) for label, n in answers.most_common()},
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.classifier.worn", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--to-product", nargs="*", default=[], metavar="GARMENT=PRODUCT")
    parser.add_argument("--out", type=Path, help="also write the report here (JSON)")
    args = parser.parse_args(argv)
    from edge.errors import FashionEdgeError

    try:
        to_product = dict(item.split("=", 1) for item in args.to_product)
        report = worn_report(args.model, args.manifest, to_product)
    except (FashionEdgeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

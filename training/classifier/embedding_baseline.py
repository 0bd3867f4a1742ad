"""Alternative measured against the shipped backbone: the ImageNet MobileNet v1 1.0 int8
embedding extractor in ../shared/models/imagenet (frozen) plus a trained softmax head.

    python -m training.classifier.embedding_baseline --config configs/classifier.yaml

Same data, split, label map and evaluation as the main run; features come from the TFLite
extractor through the edge runtime (224 px, its own input quantisation). Writes
``<report_dir>/alternatives/embedding_extractor.json`` with accuracy, latency and file size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge.errors import FashionEdgeError

DEFAULT_EXTRACTOR = "models/imagenet/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.classifier.embedding_baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/classifier.yaml"))
    parser.add_argument("--extractor", type=Path, help=f"default: ../shared/{DEFAULT_EXTRACTOR}")
    parser.add_argument("--epochs", type=int, default=80)
    args = parser.parse_args(argv)
    try:
        from ..labels import load_label_map
        from .config import load_classifier_config
        from edge.paths import repo_relative as rel
        from edge.paths import shared_dir

        from .evaluate import evaluate, summary
        from .teacher import fit_teacher
        from .train import configure_threads

        config = load_classifier_config(args.config)
        configure_threads(config.train.threads)
        extractor_path = args.extractor or (shared_dir() / DEFAULT_EXTRACTOR)
        label_map = load_label_map(config.label_map)
        teacher, data = fit_teacher(config, label_map, extractor_path, epochs=args.epochs)
        metrics = evaluate(teacher.validation_probabilities, data.validation.labels, label_map.labels, label_map.ten_classes)
        ms = teacher.ms_per_image
        if ms != ms:  # cached features: time a few images for the latency figure
            from edge.runtime import TFLiteModel

            from .teacher import _features

            _, ms = _features(TFLiteModel(extractor_path, threads=2), data.validation.images[:100], "timing")
        record = {
            "name": "MobileNet v1 1.0 int8 embedding extractor (frozen, ImageNet) + softmax head",
            "command": f"python -m training.classifier.embedding_baseline --config {rel(args.config)}",
            "extractor": rel(extractor_path),
            "extractor_size_bytes": Path(extractor_path).stat().st_size,
            "extractor_ms_per_image_2_threads": round(ms, 2),
            "metrics": summary(metrics),
            "per_class_recall": {k: round(v["recall"], 4) for k, v in metrics["per_class"].items()},
        }
        out = Path(config.output.report_dir) / "alternatives" / "embedding_extractor.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps(record["metrics"]), f"{ms:.1f} ms/img")
        return 0
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

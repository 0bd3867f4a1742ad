"""``fashion-edge classify --model M [--top K] [--json] IMAGE...``: run the garment classifier on images.

Each image is classified whole (give it a garment crop). ``--json`` prints one object per line:
``{"image", "label", "score", "scores": {label: probability}}``; ``scores`` lists the output labels
(garment labels when the model's manifest has a ``garment_map``), highest first. An unreadable
image prints one error line naming it; the others are still processed and the exit code is 1.
"""

from __future__ import annotations

import json

from ..classify.classifier import GarmentClassifier
from .images import for_each_image


def main(args) -> int:
    classifier = GarmentClassifier(args.model)

    def report(path, image) -> None:
        result = classifier.classify(image)
        ranked = sorted(result.scores.items(), key=lambda item: -item[1])
        if args.json:
            scores = {label: round(score, 4) for label, score in ranked}
            print(json.dumps({"image": path, "label": result.label, "score": round(result.score, 4),
                              "scores": scores}), flush=True)
            return
        top = ", ".join(f"{label} {score:.2f}" for label, score in ranked[: max(1, args.top)])
        print(f"{path}: {result.label} ({result.score:.2f})  top: {top}")

    return for_each_image("classify", args.images, report)

"""``fashion-edge classify --model M [--manifest J] [--top K] [--vid-stride N] [--save DIR] [--json] SOURCE...``.

SOURCE is an image, a video (every N-th frame) or a folder of them. Each image is classified whole
(give it a garment crop). ``--json`` prints one object per line:
``{"image", "frame" (videos only), "label", "score", "scores": {label: probability}}``; ``scores``
lists the output labels (garment labels when the model's manifest has a ``garment_map``), highest
first. ``--save DIR`` writes each image with its top labels drawn. An unreadable input prints one
error line naming it; the others are still processed and the exit code is 1.
"""

from __future__ import annotations

import json

from ..classify.classifier import GarmentClassifier
from .images import Item, Saver, colour_for, draw_label, for_each_image


def annotate(image, ranked: list[tuple[str, float]], top: int):
    out = image.copy()
    y = 0
    for rank, (label, score) in enumerate(ranked[: max(1, top)]):
        y += max(18, min(image.shape[:2]) // 14)
        draw_label(out, f"{label} {score:.2f}", 4, y, colour_for(rank))
    return out


def main(args) -> int:
    classifier = GarmentClassifier(args.model, manifest_path=args.manifest)
    saver = Saver(args.save)

    def report(item: Item) -> None:
        result = classifier.classify(item.image)
        ranked = sorted(result.scores.items(), key=lambda pair: -pair[1])
        saved = saver.save(item, annotate(item.image, ranked, args.top)) if args.save else None
        if args.json:
            line = {"image": item.path, **({"frame": item.frame} if item.frame is not None else {}),
                    "label": result.label, "score": round(result.score, 4),
                    "scores": {label: round(score, 4) for label, score in ranked}}
            if saved is not None:
                line["saved"] = str(saved)
            print(json.dumps(line), flush=True)
            return
        top = ", ".join(f"{label} {score:.2f}" for label, score in ranked[: max(1, args.top)])
        print(f"{item.name}: {result.label} ({result.score:.2f})  top: {top}" + (f" -> {saved}" if saved else ""))

    return for_each_image("classify", args.images, report, vid_stride=args.vid_stride)

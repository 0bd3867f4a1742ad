"""``fashion-edge detect --model M [--conf C] [--iou I] [--json] IMAGE...``: run the detector on images.

``--json`` prints one object per image and line:
``{"image": path, "detections": [{"label", "score", "box": [x1, y1, x2, y2]}]}`` (original-image pixels).
An unreadable image prints one error line naming it on stderr; the other images are still
processed, and the exit code is 1 at the end. A bad model is a one-line error and exit code 2.
"""

from __future__ import annotations

import json

from ..detect.yolo import YoloDetector
from .images import for_each_image


def main(args) -> int:
    detector = YoloDetector(args.model, conf=args.conf, iou=args.iou)

    def report(path, image) -> None:
        detections = detector.detect(image)
        if args.json:
            print(json.dumps({"image": path, "detections": detections.to_json()}), flush=True)
            return
        h, w = image.shape[:2]
        print(f"{path} ({w}x{h}): {len(detections)} detection(s)")
        for item in detections.to_json():
            x1, y1, x2, y2 = item["box"]
            print(f"  {item['label']:<16} {item['score']:.2f}  [{x1:7.1f} {y1:7.1f} {x2:7.1f} {y2:7.1f}]")

    return for_each_image("detect", args.images, report)

"""``fashion-edge detect --model M [--manifest J] [--conf C] [--iou I] [--vid-stride N] [--save DIR] [--json] SOURCE...``.

SOURCE is an image, a video (every N-th frame) or a folder of them, as with ``yolo predict``.
``--json`` prints one object per image (or sampled frame) and line:
``{"image": path, "frame": N (videos only), "detections": [{"label", "score", "box": [x1, y1, x2, y2]}]}``
(original-image pixels). ``--save DIR`` writes each image with its boxes drawn. An unreadable input
prints one error line naming it on stderr; the others are still processed, and the exit code is 1
at the end. A bad model or manifest is a one-line error and exit code 2.
"""

from __future__ import annotations

import json

import cv2

from ..detect.yolo import YoloDetector
from .images import Item, Saver, colour_for, draw_label, for_each_image


def annotate(image, detections, labels: list[str]):
    out = image.copy()
    thickness = max(1, min(image.shape[:2]) // 300)
    for item in detections.to_json():
        x1, y1, x2, y2 = (int(round(v)) for v in item["box"])
        colour = colour_for(labels.index(item["label"]) if item["label"] in labels else 0)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        draw_label(out, f"{item['label']} {item['score']:.2f}", x1, y1, colour)
    return out


def main(args) -> int:
    detector = YoloDetector(args.model, manifest_path=args.manifest, conf=args.conf, iou=args.iou)
    saver = Saver(args.save)

    def report(item: Item) -> None:
        detections = detector.detect(item.image)
        saved = saver.save(item, annotate(item.image, detections, detector.labels)) if args.save else None
        if args.json:
            line = {"image": item.path, **({"frame": item.frame} if item.frame is not None else {}),
                    "detections": detections.to_json()}
            if saved is not None:
                line["saved"] = str(saved)
            print(json.dumps(line), flush=True)
            return
        h, w = item.image.shape[:2]
        print(f"{item.name} ({w}x{h}): {len(detections)} detection(s)" + (f" -> {saved}" if saved else ""))
        for det in detections.to_json():
            x1, y1, x2, y2 = det["box"]
            print(f"  {det['label']:<16} {det['score']:.2f}  [{x1:7.1f} {y1:7.1f} {x2:7.1f} {y2:7.1f}]")

    return for_each_image("detect", args.images, report, vid_stride=args.vid_stride)

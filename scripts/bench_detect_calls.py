"""Python around each detector call: the plain path against the daemon's path, per call, in one run.

    python scripts/bench_detect_calls.py [--frames 60] [--repeats 5] [--json-out docs/data/detect_calls.json]

Steps measured on real frames of the demo clip (768x432) for the person detector (COCO YOLO11n int8
416, person class only as the pipeline asks) and on person crops of them for the garment detector
(the project's 416 model, garment classes only):

* preprocess: ``detector_input`` + ``to_model_input`` with the pixel lookup (a padded copy, a
  colour-converted copy and a lookup copy per call) vs ``DetectorInputBuffer.fill`` (reused buffer);
* decode: the whole head dequantised then ``decode_yolo`` vs ``YoloDetector.decode`` (thresholds on
  the raw int8 scores, only passing columns dequantised);

The two variants of a step run alternately on the same frame (same cache state, same machine noise);
medians over every call. The outputs are checked equal on every call. Figures are CPU ms per call.
"""

from __future__ import annotations

import argparse
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

from edge.detect.yolo import YoloDetector, decode_yolo  # noqa: E402
from edge.preprocess import detector_input, lookup_pixels  # noqa: E402

REPO = repo_root()


def plain_tensor(detector: YoloDetector, frame: np.ndarray) -> np.ndarray:
    image_rgb, _ = detector_input(frame, detector.input_size)
    return lookup_pixels(image_rgb, detector._input_lut)[None]


def plain_decode(detector: YoloDetector, raw: np.ndarray):
    head = detector.model.outputs[0].dequantize(raw)[0]
    out = decode_yolo(head, detector.input_size, detector.thresholds, detector.iou, detector.max_detections)
    if detector.classes is not None:  # what the pipeline then keeps (with_label)
        keep = np.isin(out[2], detector.classes)
        out = tuple(a[keep] for a in out)
    return out


def timed(fn, *args):
    """Result and the CPU time of the call (process time: on a shared box another process's turn on
    the core does not count; OpenCV's own worker threads do)."""
    t0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - t0


def measure(detector: YoloDetector, images: list[np.ndarray], repeats: int, label: str) -> dict:
    samples = {"preprocess_plain": [], "preprocess_buffer": [], "decode_plain": [], "decode_raw": []}
    candidates = []
    for r in tqdm(range(repeats), desc=label, unit="pass", file=sys.stderr):
        for i, image in enumerate(images):
            order = (r + i) % 2  # alternate which variant runs first
            for variant in ((0, 1) if order == 0 else (1, 0)):
                if variant == 0:
                    plain, dt = timed(plain_tensor, detector, image)
                    samples["preprocess_plain"].append(dt)
                else:
                    fast, dt = timed(detector.input_tensor, image)
                    samples["preprocess_buffer"].append(dt)
            fast_tensor = fast[0]
            assert np.array_equal(plain, fast_tensor)
            raw = detector.model.run(fast_tensor)[0]
            for variant in ((0, 1) if order == 0 else (1, 0)):
                if variant == 0:
                    plain_out, dt = timed(plain_decode, detector, raw)
                    samples["decode_plain"].append(dt)
                else:
                    fast_out, dt = timed(detector.decode, raw)
                    samples["decode_raw"].append(dt)
            for a, b in zip(plain_out, fast_out):
                assert np.array_equal(a, b), "decode differs"
            candidates.append(len(fast_out[1]))
    result = {k: round(float(np.median(v)) * 1000, 3) for k, v in samples.items()}
    result["calls"] = len(samples["decode_raw"])
    result["boxes_per_call"] = round(float(np.mean(candidates)), 2)
    result["preprocess_speedup"] = round(result["preprocess_plain"] / result["preprocess_buffer"], 2)
    result["decode_speedup"] = round(result["decode_plain"] / result["decode_raw"], 2)
    return result


def clip_frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        if ok:
            frames.append(frame)
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=shared_dir() / "media/one-by-one-person-detection.mp4")
    parser.add_argument("--person-model", type=Path,
                        default=shared_dir() / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite")
    parser.add_argument("--garment-model", type=Path, default=REPO / "models/garment-detector.tflite")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    frames = clip_frames(args.clip, args.frames)
    people = YoloDetector(args.person_model, manifest_path=REPO / "models/manifests/coco-yolo.json", conf=0.4,
                          class_conf={"person": 0.1}, threads=1, classes=["person"])
    garments = YoloDetector(args.garment_model, conf=0.3, threads=1)
    garments = YoloDetector(args.garment_model, conf=0.3, threads=1, classes=garments.garment_labels)
    crops = []
    for frame in frames:  # the person crops the pipeline would scan
        for x1, y1, x2, y2 in people.detect(frame).with_label("person").xyxy.astype(int):
            if min(x2 - x1, y2 - y1) >= 40:
                crops.append(frame[y1:y2, x1:x2])
    result = {"load_avg_1m_before": round(os.getloadavg()[0], 2),
              "person_detector": measure(people, frames, args.repeats, "person detector"),
              "garment_detector_on_crops": measure(garments, crops, args.repeats, "garment detector"),
              "frames": len(frames), "crops": len(crops), "threads": 1,
              "load_avg_1m_after": round(os.getloadavg()[0], 2),
              "command": "python scripts/bench_detect_calls.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

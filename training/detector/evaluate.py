"""Evaluate detectors on the prepared validation split, float and int8 through the same decode.

* ``TorchPredictor``: the Ultralytics PyTorch model's raw head output, decoded by
  ``edge.detect.yolo.decode_yolo`` after ``edge.preprocess.detector_input`` (the daemon's
  letterbox), so float and int8 differ only by the model.
* ``edge.detect.yolo.YoloDetector``: the exported TFLite model exactly as the daemon runs it.

Writes per-class AP50 / AP50-95, PR curves, a confusion matrix and person recall against the
teacher on the store-like frames into a report folder (``models/reports/detector``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import DatasetError
from edge.preprocess import detector_input
from training.detector_data import GARMENT_CLASSES, PRODUCT_CLASSES
from training.detector_data.yolo_labels import boxes_to_xyxy, read_labels
from training.plots import plot_confusion_matrix, pr_figure
from training.recover_coco import as_unit_chw

from edge.boxes import iou_matrix

from .metrics import DetectionEvaluator


@dataclass
class Sample:
    image: Path
    gt_xyxy: np.ndarray
    gt_classes: np.ndarray


def load_split(data_dir: Path, split: str, limit: int | None = None) -> list[Sample]:
    images_dir = data_dir / "images" / split
    if not images_dir.is_dir():
        raise DatasetError("split folder not found (run the prepare step)", path=images_dir)
    samples = []
    for image in sorted(images_dir.iterdir())[:limit]:
        label = data_dir / "labels" / split / f"{image.stem}.txt"
        if not label.is_file():
            raise DatasetError(f"image {image.name} has no label file", path=label)
        frame_shape = cv2.imread(str(image)).shape
        boxes = read_labels(label, len(PRODUCT_CLASSES))
        samples.append(Sample(image, boxes_to_xyxy(boxes, frame_shape[1], frame_shape[0]),
                              np.array([b.cls for b in boxes], np.int64)))
    return samples


class TorchPredictor:
    """Float PyTorch model with the daemon's letterbox and decode."""

    def __init__(self, weights: str | Path, imgsz: int, conf: float, iou: float, max_det: int = 300, threads: int = 1):
        from export.ultralytics_env import setup_ultralytics

        setup_ultralytics()
        import torch

        # One thread: on the shared 2-core box, torch's 2 OpenMP threads next to another job
        # spin-wait and run a single 416 px frame 10-30x slower (2.5 s instead of 0.08 s).
        torch.set_num_threads(threads)
        from ultralytics import YOLO

        self.torch = torch
        yolo = YOLO(str(weights))
        self.model = yolo.model.float().eval()
        self.labels = [yolo.names[i] for i in range(len(yolo.names))]
        self.imgsz, self.iou, self.max_det = imgsz, iou, max_det
        self.thresholds = np.full(len(self.labels), conf, np.float32)

    def raw(self, frame_bgr: np.ndarray):
        rgb, geometry = detector_input(frame_bgr, self.imgsz)
        x = self.torch.from_numpy(as_unit_chw(rgb)[None])
        with self.torch.no_grad():
            out = self.model(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        return out[0].numpy(), geometry

    def __call__(self, frame_bgr: np.ndarray):
        from edge.detect.yolo import decode_yolo

        output, geometry = self.raw(frame_bgr)
        xyxy, scores, classes = decode_yolo(output, self.imgsz, self.thresholds, self.iou, self.max_det)
        return geometry.to_image(xyxy, frame_bgr.shape), scores, classes


class TFLitePredictor:
    """The exported model through the daemon's own detector class."""

    def __init__(self, model_path: str | Path, conf: float, iou: float, max_det: int = 300, threads: int = 2):
        from edge.detect.yolo import YoloDetector

        self.detector = YoloDetector(model_path, conf=conf, iou=iou, max_detections=max_det, threads=threads)
        self.labels = self.detector.labels

    def __call__(self, frame_bgr: np.ndarray):
        det = self.detector.detect(frame_bgr)
        return det.xyxy, det.scores, det.class_ids


def evaluate(predict, samples: list[Sample], num_classes: int, desc: str) -> DetectionEvaluator:
    evaluator = DetectionEvaluator(num_classes)
    for sample in tqdm(samples, desc=desc, unit="img"):
        frame = cv2.imread(str(sample.image))
        xyxy, scores, classes = predict(frame)
        evaluator.add(xyxy, scores, classes, sample.gt_xyxy, sample.gt_classes)
    return evaluator


def summarise(evaluator: DetectionEvaluator, labels: list[str]) -> dict:
    res = evaluator.results()
    per_class = {labels[c]: {"ap50": round(r["ap50"], 4), "ap50_95": round(r["ap50_95"], 4), "n_gt": r["n_gt"]}
                 for c, r in res.items() if r["n_gt"] > 0}
    garments = [per_class[g] for g in GARMENT_CLASSES if g in per_class]
    return {
        "per_class": per_class,
        "garment_map50": round(float(np.mean([g["ap50"] for g in garments])), 4) if garments else None,
        "garment_map50_95": round(float(np.mean([g["ap50_95"] for g in garments])), 4) if garments else None,
        "all_map50": round(float(np.mean([v["ap50"] for v in per_class.values()])), 4),
    }


def person_recall(predict, samples: list[Sample], conf: float, match_iou: float, person_id: int = 0) -> dict:
    """Recall (at ``conf``) and AP50 of person boxes against the teacher's labels."""
    evaluator = DetectionEvaluator(1)
    found = total = 0
    for sample in tqdm(samples, desc="store person", unit="img"):
        frame = cv2.imread(str(sample.image))
        xyxy, scores, classes = predict(frame)
        keep = classes == person_id
        gt = sample.gt_xyxy[sample.gt_classes == person_id]
        evaluator.add(xyxy[keep], scores[keep], np.zeros(int(keep.sum()), np.int64), gt, np.zeros(len(gt), np.int64))
        confident = xyxy[keep][scores[keep] >= conf]
        iou = iou_matrix(gt, confident)
        total += len(gt)
        found += int((iou >= match_iou).any(axis=1).sum()) if iou.size else 0
    res = evaluator.results()[0]
    return {"teacher_boxes": total, "recall": round(found / total, 4) if total else None,
            "ap50_vs_teacher": round(res["ap50"], 4), "conf": conf, "match_iou": match_iou, "frames": len(samples)}


# -- figures -------------------------------------------------------------------------------------


def pr_curves(evaluators: dict[str, DetectionEvaluator], labels: list[str]) -> dict[str, dict[str, tuple]]:
    """{model: {label: (recall, precision, ap50)}} of the classes with true boxes."""
    curves = {}
    for name, evaluator in evaluators.items():
        curves[name] = {}
        for c, r in evaluator.results().items():
            if r["n_gt"] == 0 or r["curve"] is None or len(r["curve"][0]) == 0:
                continue
            recall, precision = r["curve"]
            curves[name][labels[c]] = (recall, precision, r["ap50"])
    return curves


def plot_pr(evaluators: dict[str, DetectionEvaluator], labels: list[str], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = pr_figure(pr_curves(evaluators, labels), "PR curves at IoU 0.5")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(evaluator: DetectionEvaluator, labels: list[str], path: Path, title: str) -> None:
    # the evaluator counts [predicted, true] (Ultralytics' layout); the project's plots are [true, predicted].
    # The extra class is "background": a missed box (true row) or a box with no object (predicted column).
    plot_confusion_matrix(evaluator.confusion.T, list(labels) + ["background"], path,
                          f"{title} (conf >= {evaluator.confusion_conf}, IoU >= {evaluator.confusion_iou})")


def side_by_side_table(float_summary: dict, int8_summary: dict | None) -> str:
    rows = ["| class | n | float AP50 | float AP50-95 | int8 AP50 | int8 AP50-95 |", "|---|---|---|---|---|---|"]
    for name, f in float_summary["per_class"].items():
        q = (int8_summary or {}).get("per_class", {}).get(name, {})
        rows.append(f"| {name} | {f['n_gt']} | {f['ap50']:.3f} | {f['ap50_95']:.3f} | "
                    f"{q.get('ap50', float('nan')):.3f} | {q.get('ap50_95', float('nan')):.3f} |")
    q = int8_summary or {}
    rows.append(f"| **garments (10)** | | **{float_summary['garment_map50']:.3f}** | {float_summary['garment_map50_95']:.3f} | "
                f"**{q.get('garment_map50') or float('nan'):.3f}** | {q.get('garment_map50_95') or float('nan'):.3f} |")
    return "\n".join(rows)


def evaluate_all(cfg, weights: str | Path, tflite: str | Path | None = None, report_dir: Path | None = None,
                 limit: int | None = None) -> dict:
    """Float (and int8, if the TFLite exists) on val; person recall on store_val; figures + JSON."""
    ev = cfg.section("evaluate")
    imgsz = int(cfg.get("train", "imgsz"))
    data_dir = cfg.local_path(cfg.get("data", "out"))
    report_dir = report_dir or cfg.local_path("models/reports/detector")
    tflite = Path(tflite) if tflite else cfg.local_path(cfg.get("export", "model"))
    val = load_split(data_dir, "val", limit)
    store = load_split(data_dir, "store_val", limit)
    labels = PRODUCT_CLASSES
    results = {"weights": str(weights), "val_images": len(val), "store_val_frames": len(store), "imgsz": imgsz}
    evaluators = {}
    predictors = {"float": TorchPredictor(weights, imgsz, ev["conf"], ev["iou"])}
    if tflite.is_file():
        predictors["int8"] = TFLitePredictor(tflite, ev["conf"], ev["iou"])
    for name, predict in predictors.items():
        evaluators[name] = evaluate(predict, val, len(labels), f"val {name}")
        results[name] = summarise(evaluators[name], labels)
        # [true, predicted] with background last: figures can be redrawn without a model run
        results[name]["confusion"] = {"labels": list(labels) + ["background"],
                                      "counts": evaluators[name].confusion.T.tolist()}
        results[name]["store_person"] = person_recall(predict, store, ev["store_conf"], ev["match_iou"])
    plot_pr(evaluators, labels, report_dir / "pr_curves.png")
    for name, evaluator in evaluators.items():
        plot_confusion(evaluator, labels, report_dir / f"confusion_{name}.png", f"{name} model, val")
    results["table"] = side_by_side_table(results["float"], results.get("int8"))
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(results, indent=1))
    print(results["table"])
    for name in predictors:
        print(f"{name}: garment mAP50 {results[name]['garment_map50']}  store person {results[name]['store_person']}")
    return results

"""Detector figures beyond the export report (docs/detector.md quotes them with these commands).

    # person AP50 / recall against the teacher on store_val, any number of models (.tflite or .pt)
    python scripts/detector_checks.py store-person MODEL... [--per-box]
    # one class's recall and precision on val at fixed score thresholds (int8 through the daemon)
    python scripts/detector_checks.py thresholds MODEL --label dress --at 0.5 0.6 0.7
    # the same pooled over the degraded val set, clean + every person height (camera_eval build)
    python scripts/detector_checks.py thresholds MODEL --camera-val runs/detector_val_camera

Both read the prepared dataset (`python -m training.detector --steps prepare`, default
runs/detector_data): the same files and the same decode as the export's evaluation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root  # noqa: E402

from training.detector.evaluate import TFLitePredictor, TorchPredictor, load_split, person_recall  # noqa: E402
from edge.boxes import iou_matrix  # noqa: E402
from training.detector_data import PRODUCT_CLASSES  # noqa: E402

REPO = repo_root()

EVAL_CONF, EVAL_IOU, IMGSZ = 0.001, 0.6, 416  # as configs/detector.yaml's evaluate section


def predictor(model: str, conf: float = EVAL_CONF):
    if model.endswith(".pt"):
        return TorchPredictor(model, IMGSZ, conf, EVAL_IOU)
    return TFLitePredictor(model, conf, EVAL_IOU)


def store_person(args) -> None:
    store = load_split(args.data, "store_val")
    for model in args.models:
        predict = predictor(model)
        print(model, person_recall(predict, store, 0.25, 0.5))
        if not args.per_box:
            continue
        # best score of a person box matching each teacher box (0 = none at any score), per frame
        for sample in store:
            gt = sample.gt_xyxy[sample.gt_classes == 0]
            if not len(gt):
                continue
            xyxy, scores, classes = predict(cv2.imread(str(sample.image)))
            people, people_scores = xyxy[classes == 0], scores[classes == 0]
            iou = iou_matrix(gt, people)
            best = [float(people_scores[row >= 0.5].max()) if (row >= 0.5).any() else 0.0 for row in iou]
            sizes = [f"{int(b[2] - b[0])}x{int(b[3] - b[1])}" for b in gt]
            print(f"  {sample.image.stem}: " + ", ".join(f"{s} {b:.2f}" for s, b in zip(sizes, best)))


def thresholds(args) -> None:
    """Greedy matching by score (IoU >= 0.5, one detection per truth box), like the AP evaluator."""
    class_id = PRODUCT_CLASSES.index(args.label)
    if args.camera_val is not None:
        # a store camera sees every scale: pool clean val and each degraded person height
        from training.detector.camera_eval import HEIGHTS, load_folder, split_name

        val = [s for h in [None, *HEIGHTS] for s in load_folder(args.camera_val / split_name(h))]
    else:
        val = load_split(args.data, "val")
    predict = predictor(args.model, conf=min(args.at))
    true_scores, false_scores, n_truth = [], [], 0
    for sample in val:
        xyxy, scores, classes = predict(cv2.imread(str(sample.image)))
        keep = classes == class_id
        boxes, box_scores = xyxy[keep], scores[keep]
        truth = sample.gt_xyxy[sample.gt_classes == class_id]
        n_truth += len(truth)
        iou = iou_matrix(boxes, truth)
        used: set[int] = set()
        for i in np.argsort(-box_scores):
            candidates = [j for j in np.argsort(-iou[i]) if iou[i, j] >= 0.5 and j not in used] if len(truth) else []
            if candidates:
                used.add(candidates[0])
                true_scores.append(box_scores[i])
            else:
                false_scores.append(box_scores[i])
    true_scores, false_scores = np.array(true_scores), np.array(false_scores)
    for at in args.at:
        tp, fp = int((true_scores >= at).sum()), int((false_scores >= at).sum())
        print(f"{args.label} >= {at}: recall {tp / max(n_truth, 1):.3f} ({tp}/{n_truth}) "
              f"precision {tp / max(tp + fp, 1):.3f} (false boxes {fp})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "detector_data", help="prepared dataset")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("store-person", help="person AP50 / recall vs the teacher on store_val")
    p.add_argument("models", nargs="+")
    p.add_argument("--per-box", action="store_true", help="best matching score of each teacher box")
    p.set_defaults(run=store_person)
    p = sub.add_parser("thresholds", help="one class's recall/precision on val at score thresholds")
    p.add_argument("model")
    p.add_argument("--label", default="dress", choices=PRODUCT_CLASSES)
    p.add_argument("--at", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    p.add_argument("--camera-val", type=Path, default=None,
                   help="pool the degraded val set (clean + h240/h160/h110 folders) instead of --data's val split")
    p.set_defaults(run=thresholds)
    args = parser.parse_args()
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

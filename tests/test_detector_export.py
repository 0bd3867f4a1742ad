"""int8 TFLite export of YOLOv8 detectors and the float-vs-int8 parity report.

A 32 px random model checks the graph/manifest mechanics in seconds; the COCO weights recovered
from ../shared at 160 px give a real parity figure (person AP50 on real photos against the
COCO teacher), so a broken quantisation would fail here, not only in production.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.errors import FashionEdgeError
from edge.runtime import TFLiteModel, sha256_file
from export.detector import ParityError, convert, parity, write_manifest
from export.ultralytics_env import setup_ultralytics


@pytest.fixture(scope="module")
def fashion_images(shared_dir):
    return sorted((shared_dir / "datasets/colorful-fashion/images").glob("*.jpg"))[:8]


def test_tiny_model_exports_with_manifest(tmp_path, fashion_images):
    setup_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()
    out = tmp_path / "tiny.tflite"
    figures = convert(model, 32, fashion_images[:4], out)
    assert figures["float_graph_max_abs_diff"] < 1e-3
    tfl = TFLiteModel(out)
    assert tfl.input.shape == (1, 32, 32, 3) and tfl.input.dtype == np.int8
    assert tfl.outputs[0].shape == (1, 4 + 3, 16 + 4 + 1) and tfl.outputs[0].dtype == np.int8
    manifest = json.loads(write_manifest(out, ["person", "hat", "dress"], 32, {"note": "tiny"}).read_text())
    assert manifest["layout"] == "nhwc-int8" and manifest["task"] == "detect" and manifest["input_size"] == 32
    assert manifest["sha256"] == sha256_file(out) and manifest["garment_labels"] == ["hat", "dress"]
    assert manifest["quantisation"]["input"]["zero_point"] == -128


def test_parity_bound():
    assert parity(0.70, 0.69)["passed"]
    with pytest.raises(ParityError) as err:
        parity(0.70, 0.60, max_drop=0.03)
    assert "10.0 points below float" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, FashionEdgeError)


def test_recovered_coco_model_int8_parity(tmp_path, shared_dir, fashion_images):
    """Float vs int8 person AP50 (teacher boxes as truth) through the daemon's decode."""
    from training.detector.evaluate import TFLitePredictor, TorchPredictor
    from training.detector.metrics import DetectionEvaluator
    from training.detector_data.teacher import PersonTeacher, TeacherSettings
    from training.recover_coco import recover, save_checkpoint

    model, _ = recover(shared_dir / "models/coco-yolo/yolov8n_full_integer_quant_416.tflite",
                       "yolov8n.yaml", shared_dir / "media/bus.jpg", 416)
    ckpt = tmp_path / "coco.pt"
    save_checkpoint(model, ckpt)
    out = tmp_path / "coco160.tflite"
    convert(model, 160, fashion_images, out)
    labels = [line.strip() for line in (shared_dir / "models/coco-yolo/coco_labels.txt").read_text().splitlines()
              if line.strip()]
    write_manifest(out, labels, 160, {})
    teacher = PersonTeacher(TeacherSettings(model=shared_dir / "models/coco-yolo/yolo11n_full_integer_quant.tflite"))
    images = [shared_dir / "media/bus.jpg", shared_dir / "media/zidane.jpg"] + fashion_images[:4]
    predictors = {"float": TorchPredictor(ckpt, 160, 0.001, 0.6), "int8": TFLitePredictor(out, 0.001, 0.6)}
    ap = {}
    for name, predict in predictors.items():
        evaluator = DetectionEvaluator(1)
        for path in images:
            frame = cv2.imread(str(path))
            gt, _ = teacher.people(frame)
            xyxy, scores, classes = predict(frame)
            person = classes == 0
            evaluator.add(xyxy[person], scores[person], np.zeros(int(person.sum())), gt, np.zeros(len(gt)))
        ap[name] = evaluator.results()[0]["ap50"]
    assert ap["float"] > 0.6, ap  # the recovered COCO model finds people even at 160 px
    report = parity(ap["float"], ap["int8"], max_drop=0.10)
    assert report["passed"] and report["map50_drop"] == pytest.approx(ap["float"] - ap["int8"], abs=1e-4)

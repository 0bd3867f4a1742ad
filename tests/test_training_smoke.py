"""End-to-end smoke runs of ``python -m training.classifier`` on tiny real data (CI-sized).

1. MobileNet v1 0.25 with the local ImageNet weights, a few dozen real clothing photos, 1+1
   epochs at 96 px: trains, evaluates, exports int8 and runs the parity check; it is far below
   the configured accuracy floor, so it is *not* shipped: the output path stays empty and the
   candidate + its manifest stay in the report folder, loadable by the edge classifier.
2. The seeds' small CNN on a Fashion-MNIST-format IDX pair written by the test (three easy
   synthetic classes): must actually learn them, and passes the floor, so it is shipped.
"""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.runtime import sha256_file
from training.classifier.__main__ import main

LABELS = ["dress", "pants", "shoes"]
DATASET_LABELS = {"Dress": "dress", "Pants": "pants", "Shoes": "shoes"}


def _tiny_clothing(shared_dir: Path, root: Path, per_label: int = 16) -> Path:
    rows = list(csv.DictReader((shared_dir / "datasets/clothing/labels.csv").read_text().splitlines()))
    (root / "images").mkdir(parents=True)
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "sender_id", "label", "kids"])
        writer.writeheader()
        for label in DATASET_LABELS:
            for r in [r for r in rows if r["label"] == label][:per_label]:
                writer.writerow(r)
                (root / "images" / f"{r['image']}.jpg").symlink_to(shared_dir / "datasets/clothing/images" / f"{r['image']}.jpg")
    return root


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_smoke_train_export_parity_manifest(shared_dir, tmp_path):
    root = _tiny_clothing(shared_dir, tmp_path / "clothing")
    _write_yaml(tmp_path / "labels.yaml", {"labels": LABELS, "ten_classes": LABELS, "datasets": {"clothing": DATASET_LABELS}})
    config = _write_yaml(tmp_path / "classifier.yaml", {
        "seed": 7,
        "label_map": "labels.yaml",
        "cache_dir": "cache",
        "data": [{"format": "clothing", "name": "clothing", "root": str(root), "split_file": "split.json",
                  "validation_fraction": 0.25}],
        "model": {"backbone": "mobilenet_v1", "alpha": 0.25, "image_size": 96,
                  "weights": str(shared_dir / "models/imagenet/mobilenet_2_5_224_tf_no_top.h5")},
        "train": {"batch_size": 16, "head": {"epochs": 2, "learning_rate": 0.001},
                  "finetune": {"epochs": 1, "learning_rate": 0.0001}, "unfreeze_from": "conv_dw_12"},
        "export": {"calibration_images": 16, "max_accuracy_drop": 1.0, "min_ten_class_accuracy": 0.99},
        "output": {"model": "out/tiny.tflite", "report_dir": "out/report"},
    })
    assert main(["--config", str(config)]) == 2  # below the floor: not shipped
    assert not (tmp_path / "out/tiny.tflite").exists()

    report = tmp_path / "out/report"
    model, manifest_file = report / "candidate.tflite", report / "candidate.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["shipped"] is False and manifest["ship_checks"]["min_ten_class_accuracy"] is False
    assert manifest["labels"] == LABELS and manifest["input_size"] == 96
    assert manifest["task"] == "classify" and manifest["color_order"] == "RGB" and manifest["output"] == "probabilities"
    assert manifest["normalisation"] == "unit"
    assert manifest["input"]["dtype"] == "uint8" and manifest["input"]["zero_point"] == 0
    assert manifest["input"]["scale"] == pytest.approx(1 / 255)
    assert manifest["sha256"] == sha256_file(model)
    assert manifest["training"]["split"]["group_by"] == "sender_id"
    assert set(manifest["metrics"]) == {"float", "int8"}

    metrics = json.loads((report / "metrics.json").read_text())
    parity = metrics["parity"]
    assert parity["n"] == metrics["int8"]["n"] > 0
    assert 0 <= parity["top1_agreement"] <= 1 and parity["passed"] is True
    assert parity["accuracy_drop"] == pytest.approx(parity["float_accuracy"] - parity["int8_accuracy"])
    assert metrics["shipped"] is False and metrics["training"]["epochs"]["finetune"] == 1
    for name in ("training_curves.png", "confusion_int8.png", "confusion_float.png", "classification_report.txt"):
        assert (report / name).stat().st_size > 0
    assert json.loads((tmp_path / "split.json").read_text())["group_by"] == "sender_id"

    # the edge side loads the candidate with its manifest
    from edge.classify.classifier import GarmentClassifier

    classifier = GarmentClassifier(model)
    image = cv2.imread(str(next((root / "images").iterdir())))
    result = classifier.classify(image)
    assert result.label in LABELS and sum(result.scores.values()) == pytest.approx(1.0, abs=0.02)


def _write_idx(path: Path, array: np.ndarray) -> Path:
    path.write_bytes(struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())
    return path


def _stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three easy classes: bright top half (0), bright bottom half (1), bright left half (3)."""
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1, 3] * (n // 3), np.uint8)
    images = rng.integers(0, 60, size=(len(labels), 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        region = {0: (slice(0, 14), slice(None)), 1: (slice(14, 28), slice(None)), 3: (slice(None), slice(0, 14))}[int(label)]
        image[region] += 180
    return images, labels


def test_idx_pair_trains_the_small_cnn(tmp_path):
    train_x, train_y = _stripes(90, 0)
    val_x, val_y = _stripes(30, 1)
    paths = {
        "train_images": str(_write_idx(tmp_path / "train-images-idx3-ubyte", train_x)),
        "train_labels": str(_write_idx(tmp_path / "train-labels-idx1-ubyte", train_y)),
        "val_images": str(_write_idx(tmp_path / "t10k-images-idx3-ubyte", val_x)),
        "val_labels": str(_write_idx(tmp_path / "t10k-labels-idx1-ubyte", val_y)),
    }
    _write_yaml(tmp_path / "labels.yaml", {
        "labels": ["t-shirt", "pants", "dress"], "ten_classes": ["t-shirt", "pants", "dress"],
        "datasets": {"fashion-mnist": {"T-shirt/top": "t-shirt", "Trouser": "pants", "Dress": "dress"}},
    })
    config = _write_yaml(tmp_path / "idx.yaml", {
        "seed": 1,
        "label_map": "labels.yaml",
        "cache_dir": None,
        "data": [{"format": "idx", "name": "fashion-mnist", **paths}],
        "model": {"backbone": "small_cnn", "image_size": 32, "dropout": 0.0},
        "train": {"batch_size": 16, "finetune": {"epochs": 8, "learning_rate": 0.003}, "patience": 8,
                  "augment": {"flip": False, "zoom": 0, "translate": 0, "rotation_deg": 0, "brightness": 0,
                              "contrast": 0, "saturation": 0}},
        "export": {"calibration_images": 30, "max_accuracy_drop": 0.1, "min_ten_class_accuracy": 0.8},
        "output": {"model": "out/idx.tflite", "report_dir": "out/report"},
    })
    assert main(["--config", str(config)]) == 0
    metrics = json.loads((tmp_path / "out/report/metrics.json").read_text())
    assert metrics["training"]["backbone"] == "small_cnn" and metrics["shipped"] is True
    assert metrics["int8"]["top1"] >= 0.8  # it learned the three patterns, through the int8 export
    assert json.loads((tmp_path / "out/idx.json").read_text())["labels"] == ["t-shirt", "pants", "dress"]


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    config = _write_yaml(tmp_path / "bad.yaml", {"label_map": "x.yaml", "data": [{"format": "clothing", "name": "c"}],
                                                  "output": {"model": "m.tflite", "report_dir": "r"}})
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml: data[0]: clothing needs root" in err
    _write_yaml(config, {"label_map": "x.yaml", "data": [{"format": "folder", "name": "c", "root": "nowhere"}],
                         "output": {"model": "m.tflite", "report_dir": "r"}, "trian": {}})
    assert main(["--config", str(config)]) == 2
    assert "bad.yaml: trian: unknown key" in capsys.readouterr().err


def test_cross_validation_reports_mean_and_std(shared_dir, tmp_path):
    root = _tiny_clothing(shared_dir, tmp_path / "clothing", per_label=12)
    _write_yaml(tmp_path / "labels.yaml", {"labels": LABELS, "ten_classes": LABELS, "datasets": {"clothing": DATASET_LABELS}})
    config = _write_yaml(tmp_path / "cv.yaml", {
        "label_map": "labels.yaml",
        "data": [{"format": "clothing", "name": "clothing", "root": str(root), "split_file": "split.json"}],
        "model": {"backbone": "small_cnn", "image_size": 32},
        "train": {"batch_size": 16, "finetune": {"epochs": 2, "learning_rate": 0.003}},
        "output": {"model": "out/cv.tflite", "report_dir": "out/report"},
    })
    assert main(["--config", str(config), "--folds", "3"]) == 0
    cv = json.loads((tmp_path / "out/report/cv_3fold.json").read_text())
    assert cv["group_by"] == "sender_id" and len(cv["per_fold"]) == 3
    assert sum(f["n"] for f in cv["per_fold"]) == 36  # every image validated exactly once
    tops = [f["top1"] for f in cv["per_fold"]]
    assert cv["aggregate"]["top1"]["mean"] == pytest.approx(np.mean(tops))
    assert cv["aggregate"]["top1"]["std"] == pytest.approx(np.std(tops))
    assert not (tmp_path / "out/cv.tflite").exists()  # cross-validation never ships

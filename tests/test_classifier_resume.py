"""Resumable training (per-epoch checkpoints, --resume), the stage-1 feature cache, and
partial labels (a set loss for images that may be one of several labels)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import yaml

from training.classifier.__main__ import main
from training.classifier.train import SetCrossEntropy

COLOURS_BGR = {"dress": (40, 40, 220), "pants": (40, 200, 40), "shoes": (220, 40, 40), "top": (40, 120, 130)}


def _images(root: Path, labels, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for label in labels:
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            image = np.clip(np.array(COLOURS_BGR[label]) + rng.normal(0, 12, size=(36, 30, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / label / f"{i}.png"), image)


def test_set_loss_is_cross_entropy_for_one_label_and_set_mass_for_several():
    p = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], np.float32)
    one_hot = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    ours = SetCrossEntropy(0.1, reduction=None)(one_hot, p).numpy()
    ref = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction=None)(one_hot, p).numpy()
    assert ours == pytest.approx(ref, rel=1e-5)
    sets = np.array([[1, 1, 0], [0, 1, 1], [1, 1, 0]], np.float32)
    assert SetCrossEntropy(0.0, reduction=None)(sets, p).numpy() == pytest.approx(-np.log([0.9, 0.5, 0.2]), rel=1e-5)


def _config(tmp: Path, epochs: int, backbone: dict, partial: bool) -> Path:
    source = {"format": "folder", "name": "colours", "root": "data"}
    if partial:
        source["partial_labels"] = {"top": ["dress", "pants"]}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 3, "label_map": "labels.yaml", "cache_dir": "cache",
        "data": [source],
        "model": backbone,
        "train": {"batch_size": 8, "head": {"epochs": 3, "learning_rate": 0.003},
                  "finetune": {"epochs": epochs, "learning_rate": 0.003}, "patience": 10, "unfreeze_from": "conv_dw_13",
                  "augment": {"flip": False, "zoom": 0, "translate": 0, "rotation_deg": 0, "brightness": 0,
                              "contrast": 0, "saturation": 0}},
        "export": {"calibration_images": 8, "max_accuracy_drop": 1.0,
                   "ship_rule": {"compare_shipped": False}},  # each run ships: this is about resuming
        "output": {"model": "out/m.tflite", "report_dir": "out/report", "run_dir": "runs/r"},
    }, sort_keys=False))
    return path


@pytest.fixture
def workspace(tmp_path):
    _images(tmp_path / "data/train", ["dress", "pants", "shoes", "top"], 8, 0)
    _images(tmp_path / "data/val", ["dress", "pants", "shoes"], 4, 1)
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump({
        "labels": ["dress", "pants", "shoes"], "ten_classes": ["dress", "pants", "shoes"],
        "datasets": {"colours": {"dress": "dress", "pants": "pants", "shoes": "shoes", "top": None}}}))
    return tmp_path


def test_resume_continues_after_the_last_saved_epoch(workspace):
    small = {"backbone": "small_cnn", "image_size": 32}
    assert main(["--config", str(_config(workspace, 2, small, partial=True))]) == 0
    run = workspace / "runs/r"
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 2 and (run / "last.keras").is_file() and (run / "best.keras").is_file()
    # a longer schedule, resumed: only epoch 3 runs, the history keeps all three
    assert main(["--config", str(_config(workspace, 3, small, partial=True)), "--resume"]) == 0
    state = json.loads((run / "state.json").read_text())
    assert state["epochs_done"] == 3 and len(state["history"]["loss"]) == 3
    metrics = json.loads((workspace / "out/report/metrics.json").read_text())
    assert metrics["training"]["epochs"]["finetune"] == 3
    partial = metrics["training"]["data"][0]["partial"]
    assert partial == {"top": {"images": 8, "labels": ["dress", "pants"]}}


def test_stage1_features_are_cached_and_stage1_is_not_repeated(workspace, shared_dir, capsys):
    v1 = {"backbone": "mobilenet_v1", "alpha": 0.25, "image_size": 64,
          "weights": str(shared_dir / "models/imagenet/mobilenet_2_5_224_tf_no_top.h5")}
    assert main(["--config", str(_config(workspace, 1, v1, partial=False))]) == 0
    features = list((workspace / "runs/r").glob("features-*.npz"))
    assert len(features) == 1 and (workspace / "runs/r/stage1.keras").is_file()
    cached = np.load(features[0])
    assert cached["train"].shape == (2 * 24, 256)  # train.head_mirror (default): images and their mirrors
    assert cached["validation"].shape == (12, 256)
    capsys.readouterr()
    # a fresh run (no --resume) reads the cached features instead of running the backbone again
    assert main(["--config", str(_config(workspace, 1, v1, partial=False))]) == 0
    assert "features read from" in capsys.readouterr().out
    # --resume after a finished run: neither stage 1 nor the finished epoch runs again
    assert main(["--config", str(_config(workspace, 1, v1, partial=False)), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "stage 1: done in the saved run" in out and "resuming after epoch 1" in out


def test_resume_needs_a_run_dir(workspace, capsys):
    config = _config(workspace, 1, {"backbone": "small_cnn", "image_size": 32}, partial=False)
    data = yaml.safe_load(config.read_text())
    del data["output"]["run_dir"]
    config.write_text(yaml.safe_dump(data))
    assert main(["--config", str(config), "--resume"]) == 2
    assert "output.run_dir: --resume needs a run folder" in capsys.readouterr().err

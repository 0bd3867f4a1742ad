"""The ship rule of ``python -m training.classifier``: a candidate replaces ``output.model`` only
if its int8 model beats every reference through the daemon's GarmentClassifier.

Fast and end to end through the CLI (``--from-keras``, no training): three-class images whose
class is their dominant colour, and hand-set Keras models that read the mean colour (a perfect
one and one that always mistakes green for red), exported to int8 by the real exporter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import yaml

from edge.runtime import sha256_file
from training.classifier.__main__ import main
from training.classifier.ship import decide, product_matrix

LABELS = ["dress", "pants", "shoes"]  # red, green, blue
COLOURS_BGR = {"dress": (40, 40, 220), "pants": (40, 200, 40), "shoes": (220, 40, 40)}
SIZE = 32


def _images(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for label, bgr in COLOURS_BGR.items():
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(24, 48, size=2)
            image = np.clip(np.array(bgr) + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / label / f"{i}.png"), image)


def _colour_model(path: Path, green_is_red: bool) -> Path:
    """Mean RGB -> softmax; ``green_is_red`` sends green (pants) to dress."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dropout(0.0, name="dropout")(x)
    dense = keras.layers.Dense(3, activation="softmax", name="probabilities")
    model = keras.Model(inputs, dense(x), name="colour_model")
    kernel = 12 * np.eye(3, dtype=np.float32)  # R -> dress, G -> pants, B -> shoes
    if green_is_red:
        kernel[1] = [12, 0, 0]
    dense.set_weights([kernel, -4 * np.ones(3, np.float32)])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    history = {"stage": ["finetune"], "accuracy": [1.0], "val_accuracy": [1.0], "loss": [0.1], "val_loss": [0.1],
               "epoch_seconds": [0.0]}
    (path.parent / "history.json").write_text(json.dumps({"history": history, "distillation": None, "train_seconds": 0}))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ship")
    _images(tmp / "data/train", 12, 0)
    _images(tmp / "data/val", 8, 1)
    (tmp / "labels.yaml").write_text(yaml.safe_dump({
        "labels": LABELS, "ten_classes": LABELS, "datasets": {"colours": {x: x for x in LABELS}}}))
    good = _colour_model(tmp / "good/model.keras", green_is_red=False)
    bad = _colour_model(tmp / "bad/model.keras", green_is_red=True)
    return tmp, good, bad


def _config(tmp: Path, name: str, references: list[dict]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 1, "label_map": "labels.yaml", "cache_dir": None,
        "data": [{"format": "folder", "name": "colours", "root": "data"}],
        "model": {"backbone": "small_cnn", "image_size": SIZE},
        "export": {"calibration_images": 20, "max_accuracy_drop": 0.05,
                   "ship_rule": {"metrics": ["ten_class_accuracy", "top1"], "references": references}},
        "output": {"model": f"{name}/garment.tflite", "report_dir": f"{name}/report"},
    }, sort_keys=False))
    return path


def _export(tmp: Path, keras_model: Path, name: str) -> Path:
    """A shipped int8 model of ``keras_model`` (through the CLI, no references)."""
    assert main(["--config", str(_config(tmp, name, [])), "--from-keras", str(keras_model)]) == 0
    return tmp / name / "garment.tflite"


def test_worse_candidate_is_refused(setup, capsys):
    tmp, good, bad = setup
    reference = _export(tmp, good, "reference-good")
    config = _config(tmp, "worse", [{"name": "good model", "model": str(reference)}])
    assert main(["--config", str(config), "--from-keras", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "not shipped (ship_rule)" in err and "does not beat good model" in err
    assert not (tmp / "worse/garment.tflite").exists()
    manifest = json.loads((tmp / "worse/report/candidate.json").read_text())
    assert manifest["shipped"] is False and manifest["ship_checks"]["ship_rule"] is False
    checks = manifest["ship_rule"]["checks"]["good model"]
    assert checks["top1"]["reference"] == pytest.approx(1.0) and checks["top1"]["candidate"] == pytest.approx(2 / 3)
    assert manifest["ship_rule"]["references"][0]["sha256"] == sha256_file(reference)


def test_better_candidate_replaces_the_shipped_model(setup, capsys):
    tmp, good, bad = setup
    worse = _export(tmp, bad, "reference-bad")
    # the model already shipped at output.model is the bad one: compare_shipped makes it a reference
    (tmp / "better").mkdir()
    shutil.copy(worse, tmp / "better/garment.tflite")
    shutil.copy(worse.with_suffix(".json"), tmp / "better/garment.json")
    old_sha = sha256_file(tmp / "better/garment.tflite")
    config = _config(tmp, "better", [{"name": "bad model", "model": str(worse)}])
    assert main(["--config", str(config), "--from-keras", str(good)]) == 0
    shipped = tmp / "better/garment.tflite"
    manifest = json.loads(shipped.with_suffix(".json").read_text())
    assert sha256_file(shipped) != old_sha and manifest["sha256"] == sha256_file(shipped)
    assert manifest["shipped"] is True and all(manifest["ship_checks"].values())
    names = [r["name"] for r in manifest["ship_rule"]["references"]]
    assert names == ["bad model", "shipped garment.tflite"]
    assert manifest["ship_rule"]["candidate"]["top1"] == pytest.approx(1.0)
    assert not (tmp / "better/report/candidate.tflite").exists()
    assert not (tmp / "better/report/candidate.json").exists()

    # the same candidate again: it does not beat itself (strictly better), so it is refused
    assert main(["--config", str(config), "--from-keras", str(good)]) == 2
    assert "does not beat shipped garment.tflite" in capsys.readouterr().err
    assert sha256_file(shipped) == manifest["sha256"]


def test_decide_needs_every_metric_of_every_reference():
    cand = {"ten_class_accuracy": 0.9, "top1": 0.8}
    ok, checks = decide(cand, [{"name": "a", "metrics": {"ten_class_accuracy": 0.85, "top1": 0.7}}], ["ten_class_accuracy", "top1"])
    assert ok and checks["a"]["top1"]["beaten"]
    ok, checks = decide(cand, [{"name": "a", "metrics": {"ten_class_accuracy": 0.85, "top1": 0.7}},
                               {"name": "b", "metrics": {"ten_class_accuracy": 0.9, "top1": 0.5}}], ["ten_class_accuracy", "top1"])
    assert not ok and checks["b"]["ten_class_accuracy"]["beaten"] is False  # a tie is not a win


def test_reference_labels_are_scored_as_product_labels():
    matrix = product_matrix(["suit", "dress", "cardigan", "sweatshirt", "gown?"], ["blazer", "dress", "hoodie", "longsleeve"],
                            {"suit": "blazer", "cardigan": "longsleeve", "sweatshirt": "hoodie"})
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]

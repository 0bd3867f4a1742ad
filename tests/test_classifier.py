"""Garment classifier: the ImageNet MobileNetV2 baseline with its garment map on real dataset photos."""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict

import cv2
import numpy as np
import pytest

from edge.classify import Classification, GarmentClassifier
from edge.classify.classifier import softmax
from edge.errors import ConfigError, ModelError
from edge.preprocess import classifier_input, to_model_input


@pytest.fixture(scope="module")
def imagenet_model(shared_dir):
    return shared_dir / "models" / "imagenet" / "mobilenet_v2_1.0_224_quant.tflite"


@pytest.fixture(scope="module")
def baseline(imagenet_model):
    return GarmentClassifier(imagenet_model)  # manifest from models/manifests/ (matched by SHA-256)


@pytest.fixture(scope="module")
def clothing(shared_dir):
    """label -> sorted image paths (adult garments only)."""
    root = shared_dir / "datasets" / "clothing"
    by_label: dict[str, list] = defaultdict(list)
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["kids"] == "False":
                by_label[row["label"]].append(root / "images" / f"{row['image']}.jpg")
    return {label: sorted(paths) for label, paths in by_label.items()}


def test_baseline_manifest_and_labels(baseline, repo_dir):
    assert baseline.manifest_file == repo_dir / "models" / "manifests" / "imagenet-mobilenet-v2.json"
    assert len(baseline.model_labels) == 1001 and baseline.model_labels[0] == "background"
    assert baseline.input_size == 224 and baseline.normalisation == "symmetric"
    assert {"suit", "dress", "skirt", "pants", "t-shirt", "outwear", "cardigan", "sweatshirt", "hat", "shoes"} <= set(baseline.labels)


def test_coral_model_is_fed_raw_pixels(baseline, shared_dir):
    """The quant graph's [-1, 1] input at scale 1/128, zero point 128 is the raw pixel value."""
    crop = cv2.imread(str(shared_dir / "media" / "bus.jpg"))[400:900, 50:250]
    tensor = baseline.input_tensor(crop)
    assert tensor.shape == (1, 224, 224, 3) and tensor.dtype == np.uint8
    expected = classifier_input(crop, 224).astype(np.int16)  # RGB, letterboxed
    assert np.abs(tensor[0].astype(np.int16) - expected).max() <= 1
    # The lookup-table path is exactly the shared preprocessing.
    shared = to_model_input(classifier_input(crop, 224), "symmetric", np.uint8, baseline.model.input.quant)
    np.testing.assert_array_equal(tensor, shared)


def test_baseline_recognises_whole_images(baseline, shared_dir):
    probs = baseline.probabilities(cv2.imread(str(shared_dir / "media" / "bus.jpg")))
    assert probs.shape == (1001,) and abs(float(probs.sum()) - 1) < 0.02
    assert baseline.model_labels[int(probs.argmax())] == "minibus" and probs.max() > 0.5


def test_baseline_maps_real_garment_photos(baseline, clothing):
    # Measured once: 29 of these 36 photos map to the right garment (shoes 12, t-shirt 9, shorts 8).
    wanted = {"Shoes": "shoes", "T-Shirt": "t-shirt", "Shorts": "shorts"}
    right = 0
    for dataset_label, garment in wanted.items():
        for path in clothing[dataset_label][:12]:
            result = baseline.classify(cv2.imread(str(path)))
            assert isinstance(result, Classification)
            assert result.label in baseline.labels and result.scores[result.label] == result.score
            assert set(result.scores) == set(baseline.labels)
            assert sum(result.scores.values()) <= 1.0 + 1e-3  # summed mass, not renormalised
            right += result.label == garment
    assert right >= 24, f"only {right}/36 photos mapped to the right garment"


def test_off_garment_crop_scores_low(baseline, shared_dir):
    """A bus is not clothing: the garment mass (not renormalised) stays small."""
    result = baseline.classify(cv2.imread(str(shared_dir / "media" / "bus.jpg")))
    assert result.score < 0.1


def test_explicit_label_map(imagenet_model, clothing):
    classifier = GarmentClassifier(imagenet_model, label_map={"jersey": "tee", "sweatshirt": "tee", "running shoe": "shoe"})
    assert classifier.labels == ["tee", "shoe"]
    image = cv2.imread(str(clothing["T-Shirt"][0]))
    result = classifier.classify(image)
    probs = classifier.probabilities(image)
    index = {label: i for i, label in enumerate(classifier.model_labels)}
    expected = probs[index["jersey, T-shirt, tee shirt"]] + probs[index["sweatshirt"]]
    assert result.scores["tee"] == pytest.approx(float(expected), abs=1e-6)
    # An empty map means the model's own labels.
    raw = GarmentClassifier(imagenet_model, label_map={})
    assert raw.labels == raw.model_labels and len(raw.classify(image).scores) == 1001
    with pytest.raises(ConfigError, match="label_map.tshirt: not a label of the classifier model"):
        GarmentClassifier(imagenet_model, label_map={"tshirt": "tee"})


def test_logits_output_goes_through_softmax(imagenet_model, tmp_path, repo_dir, clothing):
    manifest = json.loads((repo_dir / "models/manifests/imagenet-mobilenet-v2.json").read_text())
    path = tmp_path / "logits.json"
    path.write_text(json.dumps({**manifest, "output": "logits"}))
    image = cv2.imread(str(clothing["Shoes"][0]))
    as_logits = GarmentClassifier(imagenet_model, manifest_path=path).probabilities(image)
    as_probs = GarmentClassifier(imagenet_model).probabilities(image)
    np.testing.assert_allclose(as_logits, softmax(as_probs), rtol=1e-5)
    assert softmax(np.array([0.0, np.log(3.0)])) == pytest.approx([0.25, 0.75])


# -- bad input ---------------------------------------------------------------------------------


def test_missing_corrupt_and_manifestless_models(imagenet_model, tmp_path):
    with pytest.raises(ModelError, match="gone.tflite: model file not found"):
        GarmentClassifier(tmp_path / "gone.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"\x00TFL3" + bytes(range(256)) * 8)
    with pytest.raises(ModelError, match="garbage.tflite: not a valid TFLite model"):
        GarmentClassifier(garbage)
    renamed = tmp_path / "my_classifier.tflite"
    shutil.copy(imagenet_model, renamed)
    with pytest.raises(ModelError, match="my_classifier.tflite: no manifest") as err:
        GarmentClassifier(renamed)
    assert "\n" not in str(err.value)


def test_wrong_shaped_and_mis_described_models(shared_dir, imagenet_model, repo_dir, tmp_path):
    detector = shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_224.tflite"
    manifest_file = repo_dir / "models/manifests/imagenet-mobilenet-v2.json"
    with pytest.raises(ModelError, match="describes a 'detect' model, not a classifier"):
        GarmentClassifier(detector)
    with pytest.raises(ModelError, match=r"yolo11n_full_integer_quant_224.tflite: output shape \[\[1, 84, 1029\]\]"):
        GarmentClassifier(detector, manifest_path=manifest_file)
    manifest = json.loads(manifest_file.read_text())
    for field, value, message in [
        ("normalisation", "imagenet", "normalisation: unknown normalisation"),
        ("input_size", 192, "input_size: manifest input_size 192"),
        ("color_order", "BRG", "color_order: color_order must be RGB or BGR"),
        ("output", "softmax", "output: output must be"),
    ]:
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps({**manifest, field: value}))
        with pytest.raises(ModelError, match=f"{field}.json: {message}"):
            GarmentClassifier(imagenet_model, manifest_path=path)

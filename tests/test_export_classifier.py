"""int8 export of the classifier: calibration, input quantisation, manifest, parity gate, and
agreement between the exporter's evaluation path and the daemon's classifier."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from edge.errors import ModelError
from edge.preprocess import classifier_input
from export.classifier import export_int8, write_manifest
from export.parity import ParityError, check_parity, parity_report, tflite_probabilities

LABELS = ["pants", "shoes", "t-shirt"]
SIZE = 96


@pytest.fixture(scope="module")
def real_images(shared_dir):
    """48 real clothing photos (16 per label), letterboxed RGB at 96 px, with label indices."""
    rows = list(csv.DictReader((shared_dir / "datasets/clothing/labels.csv").read_text().splitlines()))
    images, labels, paths = [], [], []
    for index, name in enumerate(["Pants", "Shoes", "T-Shirt"]):
        for row in [r for r in rows if r["label"] == name][:16]:
            path = shared_dir / "datasets/clothing/images" / f"{row['image']}.jpg"
            images.append(classifier_input(cv2.imread(str(path)), SIZE))
            labels.append(index)
            paths.append(path)
    return np.stack(images), np.array(labels), paths


@pytest.fixture(scope="module")
def exported(real_images, shared_dir, tmp_path_factory):
    import keras

    from training.classifier.config import ModelConfig
    from training.classifier.models import backbone_of, build_model
    from training.classifier.train import configure_threads, predict

    configure_threads(2)
    images, labels, _ = real_images
    config = ModelConfig(image_size=SIZE, weights=shared_dir / "models/imagenet/mobilenet_2_5_224_tf_no_top.h5")
    model = build_model(config, len(LABELS), seed=0)
    backbone_of(model).trainable = False
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32) / 255, labels, epochs=4, batch_size=16, verbose=0)
    out = tmp_path_factory.mktemp("export") / "clf.tflite"
    export_int8(model, images[::2], "unit", out)
    float_probs = predict(model, images, "unit")
    return out, float_probs


def test_int8_input_takes_raw_pixels_and_output_is_probabilities(exported):
    from edge.runtime import TFLiteModel

    model = TFLiteModel(exported[0])
    assert model.input.dtype == np.uint8 and model.input.shape == (1, SIZE, SIZE, 3)
    assert model.input.quant[0] == pytest.approx(1 / 255) and model.input.quant[1] == 0
    assert model.outputs[0].dtype == np.uint8 and model.outputs[0].shape == (1, len(LABELS))


def test_int8_agrees_with_float_on_real_images(exported, real_images):
    path, float_probs = exported
    images, labels, _ = real_images
    int8_probs = tflite_probabilities(path, images, "unit")
    assert np.allclose(int8_probs.sum(axis=1), 1.0, atol=0.03)
    report = parity_report(float_probs, int8_probs, labels, max_drop=0.01)
    assert report["top1_agreement"] >= 0.85
    assert report["mean_abs_probability_diff"] < 0.1
    assert report["float_accuracy"] > 0.5  # the head learned something, so agreement means something


def test_manifest_and_the_daemon_path_give_the_exporters_answers(exported, real_images):
    from edge.classify.classifier import GarmentClassifier
    from edge.runtime import sha256_file

    path, _ = exported
    manifest_file = write_manifest(path, LABELS, SIZE, "unit", {"training": {"note": "test"}})
    manifest = json.loads(manifest_file.read_text())
    for key in ("labels", "input_size", "color_order", "normalisation", "input", "output", "sha256"):
        assert key in manifest
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["input"] == {"dtype": "uint8", "scale": pytest.approx(1 / 255), "zero_point": 0}
    images, _, paths = real_images
    reference = tflite_probabilities(path, images[:8], "unit")
    classifier = GarmentClassifier(path)
    for i, image_path in enumerate(paths[:8]):
        daemon = classifier.probabilities(cv2.imread(str(image_path)))
        assert np.allclose(daemon, reference[i], atol=1e-6)  # same pixels in, same numbers out

    with pytest.raises(ModelError, match="do not match 96px / 4 labels"):
        write_manifest(path, LABELS + ["hat"], SIZE, "unit", {})


def test_parity_gate_fails_past_the_bound():
    truth = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    float_probs = np.eye(3)[truth]
    int8_probs = float_probs.copy()
    int8_probs[0] = [0.1, 0.8, 0.1]  # one of ten flipped: 10 points lost
    report = parity_report(float_probs, int8_probs, truth, max_drop=0.01)
    assert report["top1_agreement"] == pytest.approx(0.9) and report["accuracy_drop"] == pytest.approx(0.1)
    assert report["passed"] is False
    with pytest.raises(ParityError, match=r"x\.tflite: int8 accuracy 0\.9000 is 10\.00 points below float 1\.0000 \(allowed 1\.00\)"):
        check_parity(report, "x.tflite")
    lenient = parity_report(float_probs, int8_probs, truth, max_drop=0.1)
    assert lenient["passed"] is True
    check_parity(lenient, "x.tflite")

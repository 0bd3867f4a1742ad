"""YOLO detector: real COCO int8 models on real images, a real channels-first float model, NMS, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from edge.detect.nms import class_aware_nms, iou_matrix, nms
from edge.detect.yolo import YoloDetector, decode_yolo
from edge.errors import ConfigError, ModelError
from edge.preprocess import detector_input, to_model_input

# Reference person boxes (xyxy, original pixels), taken once from yolo11n 640 and checked by eye
# on a drawing: bus.jpg (810x1080) has three people standing in front of the bus and one cut by
# the left edge; zidane.jpg (1280x720) has two men, the left one pointing across the frame.
BUS_PERSONS = np.array(
    [[52, 403, 242, 901], [675, 392, 808, 877], [224, 412, 343, 857], [4, 555, 61, 872]], np.float32
)
ZIDANE_PERSONS = np.array([[749, 46, 1151, 709], [120, 205, 1111, 706]], np.float32)


@pytest.fixture(scope="module")
def coco(shared_dir):
    return shared_dir / "models" / "coco-yolo"


@pytest.fixture(scope="module")
def media(shared_dir):
    return shared_dir / "media"


def assert_matches(found: np.ndarray, reference: np.ndarray, min_iou: float = 0.7) -> None:
    """Every reference box has exactly one found box with IoU > min_iou (and nothing else is found)."""
    assert len(found) == len(reference), f"{len(found)} boxes found, {len(reference)} expected: {found}"
    ious = iou_matrix(reference, found)
    best = ious.argmax(axis=1)
    assert len(set(best.tolist())) == len(reference), ious
    assert (ious.max(axis=1) > min_iou).all(), ious


@pytest.mark.parametrize(
    "model_file",
    [
        "yolo11n_full_integer_quant.tflite",
        "yolo11n_full_integer_quant_416.tflite",
        "yolov8n_full_integer_quant.tflite",
        "yolov8n_full_integer_quant_416.tflite",
    ],
)
def test_bus_has_four_people_where_they_stand(coco, media, model_file):
    detector = YoloDetector(coco / model_file, conf=0.25)  # manifest found in models/manifests/
    detections = detector.detect(cv2.imread(str(media / "bus.jpg")))
    persons = detections.with_label("person")
    assert_matches(persons.xyxy, BUS_PERSONS)
    assert "bus" in detections.names()
    assert detections.xyxy.dtype == np.float32 and (detections.scores >= 0.25).all()
    assert (np.diff(detections.scores) <= 1e-6).all(), "highest score first"


@pytest.mark.parametrize("model_file", ["yolo11n_full_integer_quant.tflite", "yolo11n_full_integer_quant_416.tflite"])
def test_zidane_has_two_people(coco, media, model_file):
    detector = YoloDetector(coco / model_file, conf=0.25)
    persons = detector.detect(cv2.imread(str(media / "zidane.jpg"))).with_label("person")
    assert_matches(persons.xyxy, ZIDANE_PERSONS)


def test_detector_attributes_and_shipped_manifest(coco, repo_dir):
    detector = YoloDetector(coco / "yolo11n_full_integer_quant_416.tflite")
    assert detector.input_size == 416 and detector.layout == "nhwc"
    assert len(detector.labels) == 80 and detector.labels[0] == "person" and detector.labels[27] == "tie"
    assert detector.garment_labels == []  # COCO: people only, garments come from body regions
    assert detector.manifest_file == repo_dir / "models" / "manifests" / "coco-yolo.json"


def test_per_class_threshold_and_max_detections(coco, media):
    image = cv2.imread(str(media / "bus.jpg"))
    strict_person = YoloDetector(coco / "yolo11n_full_integer_quant.tflite", conf=0.25, class_conf={"person": 0.8})
    names = strict_person.detect(image).names()
    assert names.count("person") == 2 and "bus" in names  # only the 0.88 and 0.84 people remain
    capped = YoloDetector(coco / "yolo11n_full_integer_quant.tflite", conf=0.25, max_detections=2)
    assert len(capped.detect(image)) == 2
    with pytest.raises(ConfigError, match="class_conf.pedestrian"):
        YoloDetector(coco / "yolo11n_full_integer_quant.tflite", class_conf={"pedestrian": 0.5})


@pytest.mark.parametrize("model_file", ["yolo11n_full_integer_quant.tflite", "yolov8n_full_integer_quant.tflite"])
def test_input_lookup_equals_shared_preprocessing(coco, media, model_file):
    """The per-pixel lookup table gives exactly edge.preprocess' tensor (yolov8n 640 has an odd scale)."""
    detector = YoloDetector(coco / model_file)
    frame = cv2.imread(str(media / "zidane.jpg"))
    tensor, geometry = detector.input_tensor(frame)
    image_rgb, expected_geometry = detector_input(frame, detector.input_size)
    expected = to_model_input(image_rgb, "unit", detector.model.input.dtype, detector.model.input.quant)
    assert tensor.dtype == np.int8 and tensor.shape == (1, 640, 640, 3)
    np.testing.assert_array_equal(tensor, expected)
    assert geometry == expected_geometry


def test_empty_frame_gives_no_detections(coco):
    detector = YoloDetector(coco / "yolo11n_full_integer_quant_224.tflite", conf=0.25)
    detections = detector.detect(np.full((240, 320, 3), 114, np.uint8))
    assert len(detections) == 0 and detections.labels == detector.labels


# -- manifests and bad models ------------------------------------------------------------------


def test_manifest_beside_model_and_explicit_manifest(coco, tmp_path, repo_dir):
    model = tmp_path / "people.tflite"
    shutil.copy(coco / "yolo11n_full_integer_quant_224.tflite", model)
    with pytest.raises(ModelError, match="people.tflite.*no manifest") as err:
        YoloDetector(model)
    assert "\n" not in str(err.value)
    labels = json.loads((repo_dir / "models/manifests/coco-yolo.json").read_text())["labels"]
    renamed = [f"thing{i}" for i in range(len(labels))]
    (tmp_path / "people.json").write_text(json.dumps({"task": "detect", "labels": renamed}))
    assert YoloDetector(model).labels[0] == "thing0"
    # Explicit wins over the one beside the model.
    assert YoloDetector(model, manifest_path=repo_dir / "models/manifests/coco-yolo.json").labels[0] == "person"


def test_missing_and_corrupt_model(tmp_path):
    with pytest.raises(ModelError, match="nothere.tflite: model file not found"):
        YoloDetector(tmp_path / "nothere.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match="garbage.tflite: not a valid TFLite model") as err:
        YoloDetector(garbage)
    assert "\n" not in str(err.value)


def test_wrong_shaped_models(shared_dir, coco, repo_dir, tmp_path):
    classifier = shared_dir / "models/imagenet/mobilenet_v2_1.0_224_quant.tflite"
    coco_manifest = repo_dir / "models/manifests/coco-yolo.json"
    with pytest.raises(ModelError, match=r"mobilenet_v2_1.0_224_quant.tflite: output shape \[1, 1001\]") as err:
        YoloDetector(classifier, manifest_path=coco_manifest)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="describes a 'classify' model"):
        YoloDetector(classifier)  # its shipped manifest says classify
    # Label count that does not fit the head (79 instead of 80).
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"labels": json.loads(coco_manifest.read_text())["labels"][:79]}))
    with pytest.raises(ModelError, match=r"yolo11n_full_integer_quant_224.tflite: output shape \[1, 84, 1029\]"):
        YoloDetector(coco / "yolo11n_full_integer_quant_224.tflite", manifest_path=short)
    # A layout that contradicts the tensors.
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**json.loads(coco_manifest.read_text()), "layout": "nchw-float"}))
    with pytest.raises(ModelError, match="wrong.json: layout"):
        YoloDetector(coco / "yolo11n_full_integer_quant_224.tflite", manifest_path=wrong)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{labels: ")
    with pytest.raises(ModelError, match="bad.json: manifest is not valid JSON"):
        YoloDetector(coco / "yolo11n_full_integer_quant_224.tflite", manifest_path=bad_json)


# -- channels-first float layout (Ultralytics format=litert) -----------------------------------

# A real TFLite file with the litert export's I/O: input [1, 3, 64, 64] float32, output
# [1, 4+2, 3] float with boxes in input pixels. Its "head" is hand-written so the answer is known:
#   anchor 0: box cx,cy,w,h = 32,32,20,40, class 0 score = mean of input channel 0 (R)
#   anchor 1: box 36,32,20,40 (IoU 0.67 with anchor 0), class 1 score = mean of channel 2 (B)
#   anchor 2: box 50,10,8,8, class 0 score = channel 1 (G) at row 10, column 50
# It checks channel order (RGB), the NHWC->NCHW transpose (row/column not swapped), pixel-box
# decoding and class-aware NMS, end to end through the interpreter. Built with TensorFlow in a
# subprocess (~5 s) so that the test process, like edge/, never imports it.
FLOAT_HEAD_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    def make(layout):
        @tf.function(input_signature=[tf.TensorSpec([1, 3, 64, 64], tf.float32)])
        def head(x):
            boxes = tf.constant([[32.0, 36.0, 50.0], [32.0, 32.0, 10.0], [20.0, 20.0, 8.0], [40.0, 40.0, 8.0]])
            red, blue, green_px = tf.reduce_mean(x[0, 0]), tf.reduce_mean(x[0, 2]), x[0, 1, 10, 50]
            zero = tf.zeros(())
            scores = tf.stack([tf.stack([red, zero, green_px]), tf.stack([zero, blue, zero])])
            out = tf.expand_dims(tf.concat([boxes, scores], 0), 0)
            return out if layout == "rows" else tf.transpose(out, [0, 2, 1])  # [1, 6, 3] or [1, 3, 6]

        converter = tf.lite.TFLiteConverter.from_concrete_functions([head.get_concrete_function()], head)
        open(os.path.join(sys.argv[1], f"head_{layout}.tflite"), "wb").write(converter.convert())

    make("rows")
    make("columns")
    """
)


@pytest.fixture(scope="module")
def float_heads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("float_head")
    script = folder / "make.py"
    script.write_text(FLOAT_HEAD_SCRIPT)
    subprocess.run([sys.executable, str(script), str(folder)], check=True, capture_output=True, timeout=300)
    paths = {}
    for layout in ("rows", "columns"):
        path = folder / f"head_{layout}.tflite"
        (folder / f"head_{layout}.json").write_text(
            json.dumps({"task": "detect", "labels": ["shirt", "pants"], "layout": "nchw-float", "input_size": 64})
        )
        paths[layout] = path
    return paths


def magenta_with_green_dot(row: int, col: int) -> np.ndarray:
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 255  # B
    image[..., 2] = 255  # R
    image[row, col, 1] = 255  # G
    return image


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_channels_first_float_model_end_to_end(float_heads, layout):
    detector = YoloDetector(float_heads[layout], conf=0.5, iou=0.5)
    assert detector.layout == "nchw" and detector.input_size == 64
    assert detector.model.input.dtype == np.float32 and detector.model.input.shape == (1, 3, 64, 64)
    assert detector.garment_labels == ["shirt", "pants"]

    found = detector.detect(magenta_with_green_dot(10, 50))
    by_label = sorted(zip(found.names(), found.xyxy.tolist()))
    # Anchors 0 and 1 overlap (IoU 0.67 > 0.5) but have different classes: both survive.
    assert by_label == [("pants", [26, 12, 46, 52]), ("shirt", [22, 12, 42, 52]), ("shirt", [46, 6, 54, 14])]

    # The green dot at (row 50, col 10) is not where anchor 2 looks: a swapped transpose would fire.
    assert len(detector.detect(magenta_with_green_dot(50, 10))) == 2
    # Pure blue (BGR 255,0,0): the model's channel 0 (R) is empty, channel 2 (B) is full.
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[..., 0] = 255
    assert detector.detect(blue).names() == ["pants"]


# -- decode and NMS units ----------------------------------------------------------------------


def synthetic_head(normalised: bool, size: int = 320) -> np.ndarray:
    """(4+2, 4) head. Anchors (cx, cy, w, h): 0 = (100,100,60,60) class 0 0.9; 1 = (102,100,62,60)
    class 0 0.8 (IoU 0.94 with 0); 2 = (200,200,30,30) class 1 0.7; 3 = (250,250,40,40) class 0 0.1."""
    cxcywh = np.array([[100, 102, 200, 250], [100, 100, 200, 250], [60, 62, 30, 40], [60, 60, 30, 40]], np.float32)
    scores = np.array([[0.9, 0.8, 0.0, 0.1], [0.0, 0.0, 0.7, 0.0]], np.float32)
    return np.concatenate([cxcywh / (size if normalised else 1), scores], axis=0)


def test_decode_normalised_and_pixel_boxes_agree():
    thresholds = np.array([0.25, 0.25], np.float32)
    norm = decode_yolo(synthetic_head(True), 320, thresholds, 0.5, 100)
    pix = decode_yolo(synthetic_head(False), 320, thresholds, 0.5, 100)
    for a, b in zip(norm, pix):
        np.testing.assert_allclose(a, b, atol=1e-3)
    xyxy, scores, class_ids = pix
    # Anchor 1 (IoU 0.94 with anchor 0, same class) is suppressed; anchor 3 (0.1) is below threshold.
    np.testing.assert_allclose(scores, [0.9, 0.7])
    assert class_ids.tolist() == [0, 1]
    np.testing.assert_allclose(xyxy[0], [70, 70, 130, 130])
    np.testing.assert_allclose(xyxy[1], [185, 185, 215, 215])


def test_decode_per_class_thresholds():
    head = synthetic_head(False)
    _, _, class_ids = decode_yolo(head, 320, np.array([0.25, 0.75], np.float32), 0.5, 100)
    assert class_ids.tolist() == [0]  # class 1's 0.7 is under its 0.75
    _, scores, _ = decode_yolo(head, 320, np.array([0.05, 0.75], np.float32), 0.5, 100)
    np.testing.assert_allclose(scores, [0.9, 0.1])


def test_nms_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]  # class-agnostic: 1 and 2 go
    kept = class_aware_nms(boxes, scores, np.array([0, 0, 1, 0]), 0.5)
    assert kept.tolist() == [0, 2, 3]  # box 2 is another class: it stays on top of box 0
    assert class_aware_nms(boxes, scores, np.array([0, 0, 1, 0]), 0.5, max_keep=2).tolist() == [0, 2]
    assert class_aware_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).tolist() == []
    # A looser threshold keeps the 0.82-IoU pair.
    assert nms(boxes[:2], scores[:2], 0.9).tolist() == [0, 1]

"""The detector's fast path (reused input buffer, thresholds on raw int8 scores, dequantising only the
columns that pass) gives exactly what the plain path gives: ``edge.preprocess.detector_input`` +
``to_model_input`` for the tensor, ``decode_yolo`` on the whole dequantised head for the boxes.
Real models on real images and video frames (landscape, portrait, small crops upscaled, sizes that
change from call to call so the buffer's padding is refilled)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.detect.yolo import YoloDetector, decode_yolo
from edge.preprocess import DetectorInputBuffer, detector_input, letterbox, pixel_lookup, to_model_input


@pytest.fixture(scope="module")
def frames(shared_dir) -> list[np.ndarray]:
    media = shared_dir / "media"
    images = [cv2.imread(str(media / "bus.jpg")), cv2.imread(str(media / "zidane.jpg"))]
    capture = cv2.VideoCapture(str(media / "one-by-one-person-detection.mp4"))
    for index in (40, 300, 700):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok
        images.append(frame)
    capture.release()
    gif = cv2.VideoCapture(str(media / "people-detection.gif"))
    ok, frame = gif.read()
    assert ok
    images.append(frame)
    # person-sized crops (the garment detector's input): tall, small and upscaled, one odd size
    images += [images[0][403:901, 52:242], images[2][100:260, 300:370], images[0][555:872, 4:61].copy()]
    images.append(np.ascontiguousarray(images[1][::3, ::2]))  # 240x640: wide
    return images


def plain_tensor(detector: YoloDetector, frame: np.ndarray):
    image_rgb, geometry = detector_input(frame, detector.input_size)
    return to_model_input(image_rgb, "unit", detector.model.input.dtype, detector.model.input.quant), geometry


def plain_decode(detector: YoloDetector, raw: np.ndarray):
    head = detector.model.outputs[0].dequantize(raw)[0]
    return decode_yolo(head, detector.input_size, detector.thresholds, detector.iou, detector.max_detections)


MODELS = [("coco", "yolo11n_full_integer_quant_416.tflite"), ("coco", "yolov8n_full_integer_quant.tflite"),
          ("repo", "models/garment-detector.tflite")]


def model_path(shared_dir, repo_dir, where, name):
    return (shared_dir / "models" / "coco-yolo" / name) if where == "coco" else repo_dir / name


@pytest.mark.parametrize("where,name", MODELS)
def test_reused_buffer_gives_the_plain_tensor(shared_dir, repo_dir, frames, where, name):
    detector = YoloDetector(model_path(shared_dir, repo_dir, where, name))
    for frame in frames + frames[::-1]:  # every size change refills the padding
        tensor, geometry = detector.input_tensor(frame)
        expected, expected_geometry = plain_tensor(detector, frame)
        assert tensor.dtype == expected.dtype and tensor.shape == expected.shape
        np.testing.assert_array_equal(tensor, expected)
        assert geometry == expected_geometry


def test_uint8_buffer_is_detector_input(frames):
    buffer = DetectorInputBuffer(320)
    for frame in frames:
        tensor, geometry = buffer.fill(frame)
        image_rgb, expected_geometry = detector_input(frame, 320)
        np.testing.assert_array_equal(tensor[0], image_rgb)
        assert geometry == expected_geometry == letterbox(frame, 320)[1]


@pytest.mark.parametrize("where,name", MODELS)
def test_raw_threshold_decode_equals_whole_head_decode(shared_dir, repo_dir, frames, where, name):
    # a low person threshold as the pipeline sets it (tracker.low_score), so many candidates pass
    detector = YoloDetector(model_path(shared_dir, repo_dir, where, name), conf=0.3, class_conf={"person": 0.1})
    found = 0
    for frame in frames:
        tensor, _ = detector.input_tensor(frame)
        raw = detector.model.run(tensor)[0]
        fast = detector.decode(raw)
        plain = plain_decode(detector, raw)
        for a, b in zip(fast, plain):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        found += len(fast[1])
    assert found > 10  # the comparison saw real boxes


def test_classes_keep_the_same_boxes_of_those_classes(shared_dir, frames):
    path = shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_416.tflite"
    people = YoloDetector(path, conf=0.25, class_conf={"person": 0.1}, classes=["person"])
    everything = YoloDetector(path, conf=0.25, class_conf={"person": 0.1})
    persons_seen = 0
    for frame in frames:
        only = people.detect(frame)
        expected = everything.detect(frame).with_label("person")
        assert set(only.names()) <= {"person"}
        np.testing.assert_array_equal(only.xyxy, expected.xyxy)
        np.testing.assert_array_equal(only.scores, expected.scores)
        persons_seen += len(only)
    assert persons_seen >= 8


def test_threshold_no_raw_value_reaches(shared_dir):
    """A threshold above the highest score the int8 output can hold finds nothing (not everything),
    and a changed threshold is picked up."""
    detector = YoloDetector(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_224.tflite",
                            conf=0.25)
    frame = cv2.imread(str(shared_dir / "media" / "bus.jpg"))
    assert len(detector.detect(frame)) > 0
    scale, zero_point = detector.model.outputs[0].quant
    detector.thresholds[:] = (127 - zero_point) * scale + 0.01
    assert (detector._raw_thresholds() > np.iinfo(np.int8).max).all()
    assert len(detector.detect(frame)) == 0


def test_pixel_lookup_pad_matches(shared_dir):
    detector = YoloDetector(shared_dir / "models" / "coco-yolo" / "yolov8n_full_integer_quant.tflite")
    lut = pixel_lookup(detector.model.input)
    tensor, _ = DetectorInputBuffer(detector.input_size, lut).fill(np.zeros((10, 640, 3), np.uint8))
    assert tensor[0, 0, 0, 0] == lut[114]  # the grey padding, in the model's values

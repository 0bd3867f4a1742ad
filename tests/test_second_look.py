"""The second look (edge/detect/second_look.py) with the real COCO int8 detector: a person the
whole-frame pass misses is found in a crop around where the tracker expects them; nothing is
looked at where the whole frame already has the person; crops are capped; a neighbour in the crop
is not taken for the expected person. Through the pipeline it runs in every scenario test with the
shipped models (its figures: docs/identity.md, "A second look")."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import SecondLookConfig
from edge.detect.second_look import SecondLook
from edge.detect.yolo import YoloDetector
from edge.detections import Detections


@pytest.fixture(scope="module")
def detector(shared_dir):
    return YoloDetector(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_416.tflite",
                        conf=0.25, threads=1, classes=["person"])


@pytest.fixture(scope="module")
def small_bus(shared_dir):
    """bus.jpg at a quarter of its size on a 1080p canvas: its people are ~115 px tall (~25 px in a
    416 input), which the whole-frame pass does not find (test_detect_tiles.py)."""
    bus = cv2.imread(str(shared_dir / "media" / "bus.jpg"))
    small = cv2.resize(bus, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    canvas = np.full((1080, 1920, 3), 114, np.uint8)
    canvas[100:100 + small.shape[0], 300:300 + small.shape[1]] = small
    return canvas, small.shape


def _people_in_bus(detector, small_bus):
    """The bus people's boxes in canvas pixels, found on the quarter-size photo alone (as a crop)."""
    canvas, (h, w, _) = small_bus
    found = detector.detect(canvas[100:100 + h, 300:300 + w])
    assert len(found) >= 2
    return found.xyxy + np.array([300, 100, 300, 100], np.float32)


def test_a_person_the_whole_frame_misses_is_found_where_expected(detector, small_bus):
    canvas, _ = small_bus
    people = _people_in_bus(detector, small_bus)
    whole = detector.detect(canvas)
    assert len(whole) == 0
    look = SecondLook(detector, SecondLookConfig())
    expected = people[:1] + np.array([4, 3, 4, 3], np.float32)  # the Kalman guess: a few px off
    found = look.look(canvas, whole, expected)
    assert look.crops == 1
    assert len(found) == 1 and set(found.names()) == {"person"}
    assert found.data["second_look"].tolist() == [True]  # marked: the tracker bridges gaps with it only
    iou = _iou(found.xyxy[0], people[0])
    assert iou >= 0.7
    # where nobody is, nothing is found (one crop looked at)
    empty = np.array([[1500, 700, 1540, 815]], np.float32)
    assert len(look.look(canvas, whole, empty)) == 0 and look.crops == 2


def test_no_crop_where_the_whole_frame_has_the_person(detector, shared_dir):
    frame = cv2.imread(str(shared_dir / "media" / "zidane.jpg"))
    whole = detector.detect(frame)
    assert len(whole) == 2
    look = SecondLook(detector, SecondLookConfig())
    out = look.look(frame, whole, whole.xyxy + 5)
    assert look.crops == 0
    np.testing.assert_array_equal(out.xyxy, whole.xyxy)


def test_crops_are_capped_and_a_neighbour_is_not_the_expected_person(detector, small_bus):
    canvas, _ = small_bus
    people = _people_in_bus(detector, small_bus)
    whole = Detections.empty(detector.labels)
    capped = SecondLook(detector, SecondLookConfig(max_crops=1))
    found = capped.look(canvas, whole, people[:3])
    assert capped.crops == 1 and len(found) == 1
    # the crop around the first person shows the others too: only the one on the expected box counts
    assert _iou(found.xyxy[0], people[0]) >= 0.7
    assert SecondLook(detector, SecondLookConfig(max_crops=0)).look(canvas, whole, people).xyxy.shape[0] == 0


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

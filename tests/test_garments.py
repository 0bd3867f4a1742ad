"""Top-down garment crops: body regions of real detected people, garment-box assignment, quality flags."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import GarmentsConfig
from edge.detect.yolo import YoloDetector
from edge.detections import Detections
from edge.garments import (
    BODY_REGIONS,
    assign_garments,
    crop_weight,
    body_region_boxes,
    containment,
    foot_point,
    garment_crops,
)


def people(boxes, track_ids=None, scores=None) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return Detections(
        boxes,
        np.asarray(scores if scores is not None else [0.9] * n, np.float32),
        np.zeros(n, np.int32),
        ["person"],
        None if track_ids is None else np.asarray(track_ids, np.int64),
    )


@pytest.fixture(scope="module")
def bus(shared_dir):
    return cv2.imread(str(shared_dir / "media" / "bus.jpg"))


@pytest.fixture(scope="module")
def bus_people(shared_dir, bus):
    detector = YoloDetector(shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite", conf=0.25)
    persons = detector.detect(bus).with_label("person")
    persons.track_ids = np.arange(1, len(persons) + 1, dtype=np.int64)
    return persons


def test_foot_point_and_body_regions():
    assert foot_point(np.array([10, 20, 30, 220], np.float32)) == (20.0, 220.0)
    regions = body_region_boxes([100, 100, 200, 300])  # 200 px tall
    np.testing.assert_allclose(regions["upper"], [100, 130, 200, 210])  # 15-55 %
    np.testing.assert_allclose(regions["lower"], [100, 190, 200, 290])  # 45-95 %
    np.testing.assert_allclose(regions["full"], [100, 120, 200, 290])  # 10-95 %
    assert set(BODY_REGIONS) == {"upper", "lower", "full"}


def test_body_region_crops_of_real_people(bus, bus_people):
    cfg = GarmentsConfig(min_crop_px=40, edge_margin_px=8)
    crops = garment_crops(bus, bus_people, None, cfg)
    assert len(crops) == 3 * len(bus_people) == 12
    h, w = bus.shape[:2]
    for crop in crops:
        x1, y1, x2, y2 = crop.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert crop.crop.shape[2] == 3 and crop.crop.dtype == np.uint8
        assert abs(crop.crop.shape[0] - (y2 - y1)) <= 2 and abs(crop.crop.shape[1] - (x2 - x1)) <= 2
        assert crop.detector_label is None and crop.slot in BODY_REGIONS
        assert crop.track_id == int(bus_people.track_ids[crop.person_index])
        assert not np.shares_memory(crop.crop, bus)  # a copy: sources reuse frame buffers
    # The man at the right edge (x2 ~ 808 of 810) and the one cut by the left edge (x1 ~ 4) are not good;
    # the two people standing fully inside the frame are.
    good_people = {c.person_index for c in crops if c.good}
    cut_people = {c.person_index for c in crops if not c.good}
    touching = {i for i, box in enumerate(bus_people.xyxy) if box[0] <= 8 or box[2] >= w - 8}
    assert cut_people == touching and len(touching) == 2
    assert len(good_people) == 2 and not good_people & cut_people
    # Upper-body crop of the first person really is above the lower-body crop.
    upper = next(c for c in crops if c.person_index == 0 and c.slot == "upper")
    lower = next(c for c in crops if c.person_index == 0 and c.slot == "lower")
    assert upper.box[1] < lower.box[1] and upper.box[3] < lower.box[3]


def test_small_crops_are_not_good():
    frame = np.zeros((480, 640, 3), np.uint8)
    crops = garment_crops(frame, people([[300, 100, 330, 300]]), None, GarmentsConfig(min_crop_px=40))
    assert [c.good for c in crops] == [False, False, False]  # 30 px wide
    crops = garment_crops(frame, people([[300, 100, 360, 300]]), None, GarmentsConfig(min_crop_px=40))
    assert [(c.slot, c.good) for c in crops] == [("upper", True), ("lower", True), ("full", True)]
    assert crops[0].track_id is None  # persons without track ids


def test_garment_boxes_go_to_the_person_that_contains_them():
    frame = np.full((600, 800, 3), 90, np.uint8)
    persons = people([[100, 50, 300, 550], [250, 60, 450, 560]], track_ids=[7, 9])
    labels = ["person", "jacket", "pants", "hat"]
    garments = Detections(
        np.array(
            [
                [120, 150, 240, 300],  # jacket inside person 7 only
                [270, 300, 430, 520],  # pants: 19 % in person 7, 100 % in person 9
                [600, 100, 700, 200],  # hat nobody wears
                [200, 300, 400, 450],  # pants across both: 50 % / 75 % -> person 9
                [280, 20, 330, 80],  # hat: 20/60 of its height inside -> 33 % < min_overlap
            ],
            np.float32,
        ),
        np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32),
        np.array([1, 2, 3, 2, 3], np.int32),
        labels,
    )
    cfg = GarmentsConfig(min_overlap=0.6)
    owners = assign_garments(persons.xyxy, garments.xyxy, cfg.min_overlap)
    assert owners.tolist() == [0, 1, -1, 1, -1]
    np.testing.assert_allclose(containment(garments.xyxy[3:4], persons.xyxy), [[0.5, 0.75]])

    crops = garment_crops(frame, persons, garments, cfg)
    assert [(c.track_id, c.slot, c.detector_label) for c in crops] == [
        (7, "jacket", "jacket"),
        (9, "pants", "pants"),
        (9, "pants", "pants"),
    ]
    assert crops[0].detector_score == pytest.approx(0.9)
    np.testing.assert_allclose(crops[0].box, [120, 150, 240, 300])
    assert crops[0].crop.shape == (150, 120, 3) and all(c.good for c in crops)
    # An empty garment set (detector mode, nothing found) yields no crops, not body regions.
    assert garment_crops(frame, persons, garments[np.zeros(5, bool)], cfg) == []
    # With a lower min_overlap the hat reaches it (33 % in person 9) but person 7's box holds 20 %
    # of it too: too close to call, so it goes to neither.
    assert assign_garments(persons.xyxy, garments.xyxy, 0.3).tolist() == [0, 1, -1, 1, -1]
    assert assign_garments(np.zeros((0, 4)), garments.xyxy, 0.6).tolist() == [-1] * 5


def test_no_people_no_crops():
    frame = np.zeros((100, 100, 3), np.uint8)
    assert garment_crops(frame, Detections.empty(["person"]), None, GarmentsConfig()) == []


def test_a_garment_two_people_contain_alike_goes_to_neither():
    # Two people standing side by side, overlapping; a bag hangs in the overlap (both boxes
    # contain all of it): the first person must not get it by argmax order.
    persons = people([[100, 50, 300, 550], [200, 50, 400, 550]], track_ids=[1, 2])
    boxes = np.array([[210, 250, 290, 350], [110, 100, 190, 300], [310, 300, 390, 500]], np.float32)
    assert assign_garments(persons.xyxy, boxes, 0.6).tolist() == [-1, 0, 1]


def from_crops(garments: Detections, origin: np.ndarray) -> Detections:
    """The boxes as the pipeline hands them over: each with the person row whose crop it came from."""
    garments.data["origin"] = origin
    return garments


def test_origin_keeps_only_garments_owned_by_the_crop_they_came_from():
    frame = np.full((600, 800, 3), 90, np.uint8)
    persons = people([[100, 50, 300, 550], [280, 50, 480, 550]], track_ids=[7, 9])
    labels = ["person", "jacket", "pants"]
    # Both boxes were found on person 7's crop: the jacket is 7's, the pants lie inside person 9
    # (seen through the crop's overlap) and are left for 9's own scan.
    garments = Detections(np.array([[120, 150, 240, 300], [300, 300, 460, 520]], np.float32),
                          np.array([0.9, 0.8], np.float32), np.array([1, 2], np.int32), labels)
    crops = garment_crops(frame, persons, from_crops(garments, np.array([0, 0])), GarmentsConfig())
    assert [(c.track_id, c.slot) for c in crops] == [(7, "jacket")]
    crops = garment_crops(frame, persons, from_crops(garments, np.array([0, 1])), GarmentsConfig())
    assert [(c.track_id, c.slot) for c in crops] == [(7, "jacket"), (9, "pants")]


def test_an_edge_cut_person_still_gives_a_good_top():
    # Feet cut by the bottom of the frame: the person box touches the edge, the shirt does not.
    frame = np.full((400, 600, 3), 90, np.uint8)
    persons = people([[200, 40, 320, 400]], track_ids=[3])
    garments = Detections(np.array([[215, 90, 305, 230], [220, 230, 300, 400]], np.float32),
                          np.array([0.9, 0.9], np.float32), np.array([1, 2], np.int32), ["person", "shirt", "pants"])
    crops = garment_crops(frame, persons, from_crops(garments, np.array([0, 0])), GarmentsConfig(edge_margin_px=4))
    assert [(c.slot, c.good) for c in crops] == [("shirt", True), ("pants", False)]


def test_crop_weight_prefers_big_sharp_crops():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (160, 100, 3), dtype=np.uint8)  # texture: a high Laplacian variance
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    small = cv2.resize(sharp, (30, 48), interpolation=cv2.INTER_AREA)
    assert crop_weight(sharp) == pytest.approx(1.0)
    assert crop_weight(blurred) < 0.5 * crop_weight(sharp)
    assert crop_weight(small) < 0.4
    assert 0.1 <= min(crop_weight(blurred), crop_weight(small))


def test_a_garment_cut_by_the_crop_where_a_neighbour_stands_is_nobodys():
    # Person 7's crop ends inside person 9's box; a dress box found there, touching the crop's
    # right side, is most likely 9's dress cut by 7's crop, not 7's.
    frame = np.full((600, 800, 3), 90, np.uint8)
    persons = people([[100, 50, 300, 550], [260, 50, 460, 550]], track_ids=[7, 9])
    garments = Detections(np.array([[200, 250, 299, 450], [120, 150, 240, 300]], np.float32),
                          np.array([0.9, 0.9], np.float32), np.array([1, 2], np.int32), ["person", "dress", "jacket"])
    crops = garment_crops(frame, persons, from_crops(garments, np.array([0, 0])), GarmentsConfig(min_overlap=0.6))
    assert [(c.track_id, c.slot) for c in crops] == [(7, "jacket")]
    # Alone, the same box touching the crop's side is her own (a wide skirt).
    alone = people([[100, 50, 300, 550]], track_ids=[7])
    crops = garment_crops(frame, alone, from_crops(garments, np.array([0, 0])), GarmentsConfig(min_overlap=0.6))
    assert [(c.track_id, c.slot) for c in crops] == [(7, "dress"), (7, "jacket")]


def test_every_name_the_pipeline_gives_a_crop_is_one_the_preflight_expects():
    """One naming policy (garments.GarmentNaming) for the pipeline and the pre-flight: with the demo's
    real models and refinements, every answer the classifier could give any garment box yields a
    name inside ``producible`` (what check-config lets rules refer to), and nothing else does."""
    from pathlib import Path

    import numpy as np

    from edge.classify.classifier import Classification
    from edge.config import load_config
    from edge.garments import GarmentCrop, GarmentNaming
    from edge.stages import build_classifier, build_garment_detector

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    classifier, detector = build_classifier(config, threads=1), build_garment_detector(config, threads=1)
    naming = GarmentNaming(config.garments.refinements, classifier.labels)
    expected = naming.producible(detector.garment_labels)
    named = set()
    pixels = np.zeros((8, 8, 3), np.uint8)
    for box_label in detector.garment_labels:
        for answer in classifier.labels:
            crop = GarmentCrop(crop=pixels, box=np.zeros(4), slot=box_label, detector_label=box_label,
                               detector_score=0.7, good=True, track_id=1, person_index=0)
            label, _, _, _ = naming.name(crop, lambda _: Classification(answer, 0.9, {answer: 0.9}))
            named.add(label.lower())
    assert named == expected
    assert "blazer" in expected and "outwear" in expected  # a jacket box may be refined


def test_per_box_extras_follow_the_boxes_through_filters():
    garments = Detections(np.array([[0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7]], np.float32),
                          np.array([0.9, 0.5, 0.8], np.float32), np.array([1, 2, 1], np.int32),
                          ["person", "dress", "pants"], data={"origin": np.array([4, 5, 6])})
    assert garments.with_label("dress").data["origin"].tolist() == [4, 6]
    assert garments[garments.scores > 0.6].data["origin"].tolist() == [4, 6]
    assert garments[1].data["origin"].tolist() == [5]
    assert Detections.empty(["person"]).data == {}

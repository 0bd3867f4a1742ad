"""Tiled person detection on large frames (edge/detect/tiles.py) with the real COCO int8 detector:
small people the whole-frame pass misses are found, big people are not doubled by tile parts, and
a camera's detector input is a config choice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.config import CameraConfig
from edge.detect.tiles import TiledDetector, tile_windows
from edge.detect.yolo import YoloDetector


@pytest.fixture(scope="module")
def detector(shared_dir):
    return YoloDetector(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_416.tflite",
                        conf=0.25, threads=1, classes=["person"])


def test_windows_cover_the_frame_with_overlap():
    windows = tile_windows(1920, 1080, 3, 2, 0.2)
    assert len(windows) == 6
    covered = np.zeros((1080, 1920), bool)
    for x1, y1, x2, y2 in windows:
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    (a, _, a2, _), (b, _, _, _) = windows[0], windows[1]
    assert a2 - b == pytest.approx(0.2 * (a2 - a), abs=2)  # neighbours share 20 % of a tile
    assert tile_windows(640, 480, 1, 1, 0.2) == [(0, 0, 640, 480)]


def test_small_people_on_a_large_frame(shared_dir, detector):
    """bus.jpg at a quarter of its size on a 1080p canvas: its people are ~115 px tall, ~25 px in a
    416 input; the whole frame finds none of them, the 2x2 tiles find three."""
    bus = cv2.imread(str(shared_dir / "media" / "bus.jpg"))
    small = cv2.resize(bus, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    canvas = np.full((1080, 1920, 3), 114, np.uint8)
    canvas[100:100 + small.shape[0], 300:300 + small.shape[1]] = small
    assert len(detector.detect(canvas)) == 0
    found = TiledDetector(detector, 2, 2).detect(canvas)
    assert len(found) >= 3 and set(found.names()) == {"person"}
    inside = (found.xyxy[:, 0] >= 290) & (found.xyxy[:, 2] <= 310 + small.shape[1]) & (found.xyxy[:, 1] >= 90)
    assert inside.all()


def test_big_people_are_not_doubled_by_tile_parts(shared_dir, detector):
    """zidane.jpg upscaled to 1080p: two men who span several tiles stay two boxes."""
    frame = cv2.resize(cv2.imread(str(shared_dir / "media" / "zidane.jpg")), (1920, 1080))
    assert len(detector.detect(frame)) == 2
    assert len(TiledDetector(detector, 2, 2).detect(frame)) == 2


def test_small_frames_skip_the_tiles(shared_dir, detector):
    frame = cv2.imread(str(shared_dir / "media" / "zidane.jpg"))[:360, :600]
    tiled = TiledDetector(detector, 3, 2)
    np.testing.assert_array_equal(tiled.detect(frame).xyxy, detector.detect(frame).xyxy)
    assert tiled.labels == detector.labels and tiled.input_size == 416


def test_camera_detector_input_is_a_config_choice():
    camera = CameraConfig(name="street", source="0", detector={"tiles": [3, 2], "tile_overlap": 0.25})
    assert camera.detector.tiles == (3, 2) and camera.detector.model is None
    assert CameraConfig(name="door", source="0").detector is None
    for bad in ({"tiles": [0, 2]}, {"tiles": [9, 9]}, {"tile_overlap": 0.6}):
        with pytest.raises(Exception, match="tile"):
            CameraConfig(name="x", source="0", detector=bad)


def test_models_of_a_camera_use_its_detector_input(shared_dir):
    """A camera's own detector input (another model, tiles) is what that camera's Models run; the
    garment scans on person crops keep the plain detector; other cameras keep the shared one."""
    from conftest import demo_config_data

    from edge.config import parse_config
    from edge.pipeline import Models

    data = demo_config_data(shared_dir)
    data["cameras"].append({"name": "street", "source": data["cameras"][0]["source"], "detector": {
        "model": str(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_224.tflite"),
        "tiles": [3, 2]}})
    config = parse_config(data)
    plain, wide = Models(config, config.cameras[0]), Models(config, config.cameras[1])
    assert isinstance(plain.detector, YoloDetector) and plain.detector.input_size == 416
    assert isinstance(wide.detector, TiledDetector) and wide.detector.input_size == 224
    assert (wide.detector.cols, wide.detector.rows) == (3, 2)
    assert isinstance(wide.garment_detector, YoloDetector) and wide.garment_detector.input_size == 416
    assert wide.detector.classes.tolist() == [0]  # the person row only


def test_the_scenario_benchmark_takes_a_camera_detector_input():
    # scripts/bench_scenarios.py --tiles COLSxROWS: how docs/browsing.md's tiles runs were made
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_scenarios.py"
    spec = importlib.util.spec_from_file_location("bench_scenarios", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.scenario_camera(None) is None
    assert bench.scenario_camera("2x2").detector.tiles == (2, 2)
    assert bench.scenario_camera("3X2").detector.tiles == (3, 2)
    for bad in ("5x1", "2", "axb"):
        with pytest.raises(SystemExit, match=f"--tiles {bad}: give COLSxROWS, 1 to 4 each"):
            bench.scenario_camera(bad)

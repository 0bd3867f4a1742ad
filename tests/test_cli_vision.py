"""``python -m edge detect`` / ``classify`` as a user runs them: real models, real images, exit codes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def error_lines(stderr: str) -> list[str]:
    """stderr without the TFLite runtime's INFO chatter."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("INFO:")]


@pytest.fixture(scope="module")
def yolo416(shared_dir):
    return shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite"


@pytest.fixture(scope="module")
def imagenet(shared_dir):
    return shared_dir / "models/imagenet/mobilenet_v2_1.0_224_quant.tflite"


def test_detect_json_lines(repo_dir, shared_dir, yolo416):
    bus, zidane = shared_dir / "media/bus.jpg", shared_dir / "media/zidane.jpg"
    result = run_cli("detect", "--model", yolo416, "--json", bus, zidane, cwd=repo_dir)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(bus), str(zidane)]
    persons = [[d for d in line["detections"] if d["label"] == "person"] for line in lines]
    assert [len(p) for p in persons] == [4, 2]
    for det in persons[0]:
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080  # original-image pixels, not 416
        assert 0.25 <= det["score"] <= 1


def test_detect_conf_flag_and_table(repo_dir, shared_dir, yolo416):
    result = run_cli("detect", "--model", yolo416, "--conf", "0.8", shared_dir / "media/bus.jpg", cwd=repo_dir)
    assert result.returncode == 0
    assert "bus.jpg (810x1080): 3 detection(s)" in result.stdout  # bus 0.90, people 0.86, 0.82
    assert result.stdout.count("person") == 2


def test_detect_bad_image_among_good_ones(repo_dir, shared_dir, yolo416, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    result = run_cli("detect", "--model", yolo416, "--json", tmp_path / "missing.jpg", broken,
                     shared_dir / "media/zidane.jpg", cwd=repo_dir)
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1 and "zidane.jpg" in result.stdout  # the good one still ran
    errors = error_lines(result.stderr)
    assert errors == [
        f"fashion-edge detect: error: {tmp_path / 'missing.jpg'}: image file not found",
        f"fashion-edge detect: error: {broken}: cannot decode image",
    ]


@pytest.mark.parametrize("which", ["missing", "corrupt", "classifier"])
def test_detect_bad_model_is_one_line_exit_2(repo_dir, shared_dir, imagenet, tmp_path, which):
    model = {"missing": tmp_path / "none.tflite", "corrupt": tmp_path / "corrupt.tflite", "classifier": imagenet}[which]
    if which == "corrupt":
        model.write_bytes(b"garbage" * 100)
    result = run_cli("detect", "--model", model, shared_dir / "media/bus.jpg", cwd=repo_dir)
    assert result.returncode == 2 and result.stdout == ""
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"fashion-edge detect: error: {model}: ")


def test_classify_json_and_table(repo_dir, shared_dir, imagenet):
    root = shared_dir / "datasets/clothing"
    with open(root / "labels.csv", newline="") as fh:
        shoes = sorted(r["image"] for r in csv.DictReader(fh) if r["label"] == "Shoes" and r["kids"] == "False")[:2]
    images = [root / "images" / f"{name}.jpg" for name in shoes]
    result = run_cli("classify", "--model", imagenet, "--json", *images, cwd=repo_dir)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in images]
    for line in lines:
        assert line["label"] == "shoes" and line["scores"]["shoes"] == line["score"]
        assert "suit" in line["scores"] and sum(line["scores"].values()) <= 1.001
    table = run_cli("classify", "--model", imagenet, "--top", "2", images[0], cwd=repo_dir)
    assert table.returncode == 0
    assert table.stdout.startswith(f"{images[0]}: shoes (") and table.stdout.count(",") == 1  # two labels shown


def test_classify_bad_input(repo_dir, shared_dir, imagenet, tmp_path):
    result = run_cli("classify", "--model", imagenet, "--json", tmp_path / "nope.png", cwd=repo_dir)
    assert result.returncode == 1 and result.stdout == ""
    assert error_lines(result.stderr) == [f"fashion-edge classify: error: {tmp_path / 'nope.png'}: image file not found"]
    detector = shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_224.tflite"
    result = run_cli("classify", "--model", detector, shared_dir / "media/bus.jpg", cwd=repo_dir)
    assert result.returncode == 2
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and str(detector) in errors[0] and "not a classifier" in errors[0]


def _frames(path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_detect_folder_with_video_stride_and_save(repo_dir, shared_dir, yolo416, tmp_path):
    """What `yolo predict source=folder vid_stride=10 save=True` gives: every image, every 10th video frame,
    an annotated JPEG for each, and no runtime chatter on stderr."""
    import cv2
    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bus.jpg").write_bytes((shared_dir / "media/bus.jpg").read_bytes())
    (folder / "walk.gif").write_bytes((shared_dir / "media/people-detection.gif").read_bytes())
    (folder / "notes.txt").write_text("not an image")  # ignored, like yolo predict
    frames = _frames(folder / "walk.gif")
    result = run_cli("detect", "--model", yolo416, "--vid-stride", 10, "--save", tmp_path / "out", "--json", folder,
                     cwd=repo_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""  # no "INFO: Created TensorFlow Lite XNNPACK delegate" line
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(Path(l["image"]).name, l.get("frame")) for l in lines] == \
        [("bus.jpg", None)] + [("walk.gif", i) for i in range(0, frames, 10)]
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert saved == sorted(["bus.jpg"] + [f"walk_f{i:06d}.jpg" for i in range(0, frames, 10)])
    original = cv2.imread(str(shared_dir / "media/bus.jpg"))
    annotated = cv2.imread(lines[0]["saved"])
    assert annotated.shape == original.shape
    x1, y1, x2, y2 = (int(v) for v in lines[0]["detections"][0]["box"])
    edge = np.abs(annotated[y1:y1 + 3, x1:x2].astype(int) - original[y1:y1 + 3, x1:x2].astype(int)).mean()
    assert edge > 20  # the box is drawn on the top edge of the first detection


def test_detect_and_classify_take_a_manifest(repo_dir, shared_dir, yolo416, imagenet, tmp_path):
    """A copied model has no manifest beside it and none shipped lists its name: --manifest supplies it."""
    import yaml

    demo = yaml.safe_load((repo_dir / "configs/demo.yaml").read_text())
    manifest = (repo_dir / "configs" / demo["detector"]["manifest"]).resolve()
    model = tmp_path / "my-detector.tflite"
    model.write_bytes(yolo416.read_bytes())
    bus = shared_dir / "media/bus.jpg"
    without = run_cli("detect", "--model", model, bus, cwd=repo_dir)
    assert without.returncode == 2 and "no manifest" in without.stderr
    with_manifest = run_cli("detect", "--model", model, "--manifest", manifest, "--conf", "0.8", bus, cwd=repo_dir)
    assert with_manifest.returncode == 0, with_manifest.stderr
    assert "bus.jpg (810x1080): 3 detection(s)" in with_manifest.stdout
    missing = run_cli("classify", "--model", imagenet, "--manifest", tmp_path / "none.json", bus, cwd=repo_dir)
    assert missing.returncode == 2
    assert error_lines(missing.stderr) == [f"fashion-edge classify: error: {tmp_path / 'none.json'}: manifest file not found"]


def test_classify_video_frames_and_save(repo_dir, shared_dir, imagenet, tmp_path):
    gif = shared_dir / "media/people-detection.gif"
    result = run_cli("classify", "--model", imagenet, "--vid-stride", 1000, "--save", tmp_path / "out", gif,
                     cwd=repo_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{gif} frame 0: ") and len(result.stdout.splitlines()) == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["people-detection_f000000.jpg"]

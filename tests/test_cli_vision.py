"""``python -m edge detect`` / ``classify`` as a user runs them: real models, real images, exit codes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

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

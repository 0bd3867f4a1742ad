"""The shipped garment detector (models/garment-detector.tflite) through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge.runtime import sha256_file
from training.detector_data import PRODUCT_CLASSES

SHIP_MIN_GARMENT_MAP50 = 0.55


@pytest.fixture(scope="module")
def shipped(repo_dir):
    model = repo_dir / "models" / "garment-detector.tflite"
    if not model.is_file():
        pytest.skip("no garment detector shipped in models/ (see models/reports/detector/)")
    return model


def test_manifest_describes_the_shipped_file(shipped):
    manifest = json.loads(shipped.with_suffix(".json").read_text())
    assert manifest["task"] == "detect" and manifest["layout"] == "nhwc-int8"
    assert manifest["labels"] == PRODUCT_CLASSES and manifest["input_size"] == 416
    assert manifest["sha256"] == sha256_file(shipped)
    assert shipped.stat().st_size <= 4 * 1024 * 1024
    assert manifest["metrics"]["val_garment_map50"] >= SHIP_MIN_GARMENT_MAP50
    assert manifest["metrics"]["parity"]["passed"]


def test_cli_finds_people_and_garments(shipped, repo_dir, shared_dir):
    images = [shared_dir / "media" / "bus.jpg", shared_dir / "media" / "zidane.jpg"]
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "detect", "--model", str(shipped), "--json", *map(str, images)],
        cwd=repo_dir, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [line["image"] for line in lines] == [str(p) for p in images]
    for line in lines:
        labels = [d["label"] for d in line["detections"]]
        assert "person" in labels, line
        assert any(label in PRODUCT_CLASSES[1:] for label in labels), line
        for det in line["detections"]:
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 and 0 <= y1 < y2 and 0 < det["score"] <= 1
    bus, zidane = lines
    # The COCO teacher finds 4 people on bus.jpg and 2 on zidane.jpg; the fine-tuned model finds the
    # two whole people by the bus and Zidane but misses the cut-off / partly hidden ones (a known
    # recall regression, docs/detector.md). These bounds guard against it getting worse.
    assert sum(d["label"] == "person" for d in bus["detections"]) >= 2
    assert sum(d["label"] == "person" for d in zidane["detections"]) >= 1

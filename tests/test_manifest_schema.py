"""Issue 22, item 5 (manifests): a manifest with bad bytes or wrongly typed fields is one line naming
the file and the field (ModelError; exit 2 from the CLI), never a traceback. One schema
(edge/manifest.py MANIFEST_SCHEMA) checked on load for every model kind. Real models from models/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import demo_config_data
from edge.classify.classifier import GarmentClassifier
from edge.detect.yolo import YoloDetector
from edge.errors import ModelError

REPO = Path(__file__).resolve().parents[1]
DETECTOR = REPO / "models" / "garment-detector.tflite"
CLASSIFIER = REPO / "models" / "garment-classifier.tflite"


def detector_copy(tmp_path: Path, manifest: dict | None = None, raw: bytes | None = None) -> Path:
    """The shipped garment detector with a manifest beside it (given as a dict or as raw bytes)."""
    model = tmp_path / "detector.tflite"
    shutil.copyfile(DETECTOR, model)
    side = model.with_suffix(".json")
    side.write_bytes(raw if raw is not None else json.dumps(manifest).encode())
    return model


def shipped(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


BAD_DETECTOR_FIELDS = [
    ("input_size", "big"), ("input_size", True), ("input_size", 0), ("input_size", 416.5),
    ("garment_labels", 5), ("garment_labels", ["dress", 3]), ("garment_labels", ["ballgown"]),
    ("layout", 5), ("labels", "person"), ("labels", []), ("task", ["detect"]), ("normalisation", None),
]


@pytest.mark.parametrize("key,value", BAD_DETECTOR_FIELDS)
def test_wrongly_typed_detector_fields_are_one_line_naming_the_field(tmp_path, key, value):
    model = detector_copy(tmp_path, {**shipped(DETECTOR), key: value})
    with pytest.raises(ModelError) as err:  # before: ValueError / TypeError tracebacks for several
        YoloDetector(model)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{model.with_suffix('.json')}: {key}:"), text


@pytest.mark.parametrize("raw,words", [
    (None, "not UTF-8 text"),  # filled in below: the shipped manifest with two bytes broken
    (b'{"labels": ["person"], "x": ' + b"[" * 20000 + b"]" * 20000 + b"}", "nested too deep"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),  # a UTF-8 byte-order mark: json refuses it
])
def test_manifest_bytes_that_are_not_json_text_are_one_line(tmp_path, raw, words):
    if raw is None:
        good = DETECTOR.with_suffix(".json").read_bytes()
        raw = good[:40] + b"\xff\xfe" + good[42:]
    model = detector_copy(tmp_path, raw=raw)
    with pytest.raises(ModelError) as err:  # before: UnicodeDecodeError / RecursionError tracebacks
        YoloDetector(model)
    text = str(err.value)
    assert "\n" not in text and str(model.with_suffix(".json")) in text and words in text, text


def test_classifier_manifest_is_checked_by_the_same_schema(tmp_path):
    bad = tmp_path / "classifier.json"
    bad.write_text(json.dumps({**shipped(CLASSIFIER), "input_size": "224px"}))
    with pytest.raises(ModelError) as err:  # before: ValueError: invalid literal for int()
        GarmentClassifier(CLASSIFIER, manifest_path=bad)
    assert str(err.value).startswith(f"{bad}: input_size:"), str(err.value)
    bad.write_text(json.dumps({**shipped(CLASSIFIER), "embedding": {"output": "1", "size": 1280}}))
    with pytest.raises(ModelError, match="embedding"):
        GarmentClassifier(CLASSIFIER, manifest_path=bad)


def test_every_shipped_manifest_passes_the_schema():
    from edge.manifest import MANIFEST_SCHEMA, validate_manifest

    paths = [DETECTOR.with_suffix(".json"), CLASSIFIER.with_suffix(".json"),
             *sorted((REPO / "models" / "manifests").glob("*.json"))]
    for path in paths:
        validate_manifest(json.loads(path.read_text()), path)
    assert {"labels", "input_size", "garment_labels", "embedding"} <= set(MANIFEST_SCHEMA)


def test_check_config_and_run_say_one_line_and_exit_2(tmp_path, shared_dir):
    model = detector_copy(tmp_path, {**shipped(DETECTOR), "garment_labels": 5})
    data = demo_config_data(shared_dir)
    data["garments"]["detector"] = str(model)
    data["service"] = {"state_dir": str(tmp_path / "state")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    for command in ("check-config", "run"):
        args = [command, config] if command == "check-config" else [command, "--config", config]
        result = subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                                cwd=REPO, timeout=120)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"{model.with_suffix('.json')}: garment_labels: 'garment_labels' must be a list" in result.stderr, \
            result.stderr[-2000:]

"""The re-identification head (training/reid, edge/identity/head.py; issue 21): fitted on PETA
training identities it separates people better on identities it never saw; the daemon refuses a
head fitted on another attribute model; the identity stage takes the thresholds measured for the
embedding it is given, from that embedding's manifest (edge/identity/calibration.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.config import IdentityConfig, load_config
from edge.errors import ModelError
from edge.identity.calibration import (MANIFEST_KEY, SHIPPED_HEAD_THRESHOLDS, SHIPPED_RAW_SCALE,
                                      SHIPPED_RAW_THRESHOLDS, THRESHOLDS, read_calibration)
from edge.identity.head import ReidHead
from edge.pipeline import CameraPipeline
from training.reid.__main__ import fit, load_config as load_reid_config

from conftest import REPO


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, shared_dir):
    """A head fitted on two PETA sub-datasets' training identities (one rendering per image)."""
    folder = tmp_path_factory.mktemp("reid")
    text = (REPO / "configs" / "reid.yaml").read_text()
    for key, value in {"subsets": "[SARC3D, i-LID, TownCentre]", "renderings": "1", "holdout": "0.3",
                       "dims": "[64]", "shrink": "[2.0]", "out": str(folder / "head.npz"),
                       "report_dir": str(folder / "report"), "cache_dir": str(folder / "cache"),
                       "attribute_model": str(REPO / "models" / "person-attributes.tflite"),
                       "peta": str(shared_dir / "datasets" / "peta")}.items():
        text = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines())
    config_path = folder / "reid.yaml"
    config_path.write_text(text + "\n")
    manifest = fit(load_reid_config(config_path))
    return folder / "head.npz", manifest


def test_the_head_separates_held_out_people_better_than_the_raw_features(fitted):
    path, manifest = fitted
    assert manifest["held_out"]["auc"] > manifest["held_out_without_head"]["auc"] + 0.03, manifest
    assert manifest["held_out"]["same_pairs"] > 50 and manifest["training"]["data"]["identities"] > 100
    assert "research use only" in manifest["training"]["data"]["licence"]
    assert (path.parent / "report" / "selection.png").stat().st_size > 1000
    head = ReidHead.load(path, model_path=REPO / "models" / "person-attributes.tflite")
    assert (head.input_size, head.output_size) == (1280, 64)
    assert 0.5 < head.distance_scale <= 2 and head.distance_scale == manifest["distance_scale"]


def test_the_attribute_reader_gives_head_embeddings(fitted, shared_dir):
    import cv2

    from edge.attributes.model import PersonAttributeModel

    path, _ = fitted
    model = REPO / "models" / "person-attributes.tflite"
    crop = cv2.imread(str(shared_dir / "datasets" / "peta" / "images" / "3DPeS" / "1_12_FRAME_48_RGB.jpg"))
    raw = PersonAttributeModel(model).read(crop)
    through_head = PersonAttributeModel(model, reid_head=path)
    read = through_head.read(crop)
    assert raw.embedding.shape == (1280,) and read.embedding.shape == (64,)
    assert abs(float(np.linalg.norm(read.embedding)) - 1.0) < 1e-5
    np.testing.assert_allclose(read.embedding, through_head.reid_head.project(raw.embedding), atol=1e-6)
    assert read.scores == raw.scores  # the attribute scores do not change
    assert through_head.embedding_scale == through_head.reid_head.calibration.embedding_scale  # its own unit


def test_a_head_fitted_on_another_attribute_model_is_refused(fitted, tmp_path):
    path, _ = fitted
    copy = tmp_path / "head.npz"
    copy.write_bytes(path.read_bytes())
    manifest = json.loads(path.with_suffix(".json").read_text())
    manifest["attribute_model_sha256"] = "0" * 64
    copy.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError) as error:
        ReidHead.load(copy, model_path=REPO / "models" / "person-attributes.tflite")
    message = str(error.value)
    assert "head.json" in message and "attribute_model_sha256" in message and "training.reid" in message
    assert "\n" not in message


def test_the_identity_stage_takes_the_thresholds_of_its_embedding(fitted, tmp_path):
    path, manifest = fitted
    config = load_config(REPO / "configs" / "demo.yaml")
    raw = CameraPipeline(config, config.cameras[0], state_dir=tmp_path / "raw")
    shipped = json.loads((REPO / "models" / "person-attributes.json").read_text())[MANIFEST_KEY]
    for name in THRESHOLDS:
        assert getattr(raw.identity, name) == shipped[name]
    assert raw.customers.embedding_scale == shipped["embedding_scale"]

    # training.reid measured the head's own thresholds on PETA validation identities (a head fitted
    # on three sub-datasets in 64 dims is not the PETA head whose values are the defaults)
    measured = manifest[MANIFEST_KEY]
    assert measured["measured"]["data"]["identities"] >= 50
    assert 0 < measured["same_distance"] < measured["split_distance"]
    assert 0 < measured["embedding_same_distance"] < measured["embedding_split_distance"]
    assert {name: measured[name] for name in THRESHOLDS} != SHIPPED_HEAD_THRESHOLDS
    config = load_config(REPO / "configs" / "demo.yaml")
    config.attributes.reid_head = path
    config.identity.same_distance = 0.5  # an operator's own value is kept
    with_head = CameraPipeline(config, config.cameras[0], state_dir=tmp_path / "head")
    assert with_head.identity.same_distance == 0.5
    for name in set(THRESHOLDS) - {"same_distance"}:
        assert getattr(with_head.identity, name) == measured[name], name
    assert with_head.customers.embedding_scale == measured["embedding_scale"]
    assert with_head.customers.gallery.cfg is with_head.identity


def test_a_head_without_its_own_thresholds_gets_the_peta_heads_and_a_warning(fitted, tmp_path, caplog):
    path, _ = fitted
    copy = tmp_path / "head.npz"
    copy.write_bytes(path.read_bytes())
    manifest = json.loads(path.with_suffix(".json").read_text())
    del manifest[MANIFEST_KEY]
    copy.with_suffix(".json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="edge.identity.calibration"):
        head = ReidHead.load(copy, model_path=REPO / "models" / "person-attributes.tflite")
    assert head.calibration.thresholds == SHIPPED_HEAD_THRESHOLDS and not head.calibration.measured
    assert head.calibration.embedding_scale == head.distance_scale
    assert any("head.json" in r.getMessage() and "reid_distances.py --write-manifest" in r.getMessage()
               for r in caplog.records)


def test_a_retrained_attribute_model_without_thresholds_warns_and_uses_the_shipped_ones(tmp_path, caplog):
    from edge.attributes.model import PersonAttributeModel

    model = tmp_path / "person-attributes.tflite"
    model.write_bytes((REPO / "models" / "person-attributes.tflite").read_bytes())
    manifest = json.loads((REPO / "models" / "person-attributes.json").read_text())
    del manifest[MANIFEST_KEY]
    model.with_suffix(".json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING", logger="edge.identity.calibration"):
        reader = PersonAttributeModel(model)
    assert reader.identity_calibration.thresholds == SHIPPED_RAW_THRESHOLDS
    assert reader.embedding_scale == SHIPPED_RAW_SCALE and not reader.identity_calibration.measured
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert str(model.with_suffix(".json")) in warning and MANIFEST_KEY in warning


def test_the_shipped_defaults_are_what_was_measured_for_the_shipped_model():
    """The values a model without its own calibration gets are the shipped model's measured ones."""
    manifest_path = REPO / "models" / "person-attributes.json"
    calibration = read_calibration(json.loads(manifest_path.read_text()), manifest_path)
    assert calibration.measured and calibration.thresholds == SHIPPED_RAW_THRESHOLDS
    assert calibration.embedding_scale == pytest.approx(SHIPPED_RAW_SCALE, abs=0.001)


@pytest.mark.parametrize("name, value", [("same_distance", -0.1), ("split_distance", "far"),
                                         ("embedding_scale", 3.0), ("view_distance", None)])
def test_a_bad_calibration_is_refused_naming_file_and_field(tmp_path, name, value):
    from edge.attributes.model import PersonAttributeModel

    model = tmp_path / "person-attributes.tflite"
    model.write_bytes((REPO / "models" / "person-attributes.tflite").read_bytes())
    manifest = json.loads((REPO / "models" / "person-attributes.json").read_text())
    manifest[MANIFEST_KEY][name] = value
    model.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError) as error:
        PersonAttributeModel(model)
    message = str(error.value)
    assert "person-attributes.json" in message and f"{MANIFEST_KEY}.{name}" in message and "\n" not in message


def test_unset_thresholds_are_the_shipped_models_when_nothing_says_otherwise():
    cfg = IdentityConfig()
    assert cfg.same_distance is None
    assert cfg.fill_embedding_thresholds() is cfg
    assert (cfg.same_distance, cfg.split_distance, cfg.view_distance) == (0.49, 1.03, 0.13)


def test_check_config_names_the_head_field_and_file(fitted, tmp_path, shared_dir):
    """``fashion-edge check-config`` with a head that is missing, then with the fitted one."""
    import subprocess
    import sys

    import yaml

    from conftest import demo_config_data

    data = demo_config_data(shared_dir)
    data["service"] = {**(data.get("service") or {}), "state_dir": str(tmp_path / "state")}
    data["attributes"]["reid_head"] = str(tmp_path / "missing.npz")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    run = subprocess.run([sys.executable, "-m", "edge", "check-config", str(bad)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert run.returncode != 0 and len(errors) == 1, run.stderr
    assert "attributes.reid_head: " in errors[0] and "missing.json" in errors[0] and "training.reid" in errors[0]

    data["attributes"]["reid_head"] = str(fitted[0])
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(data))
    run = subprocess.run([sys.executable, "-m", "edge", "check-config", str(good)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr

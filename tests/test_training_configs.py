"""The detector and styles training configs are validated like the daemon's (issue 25): every
shipped config loads, an unknown or mistyped key is one ConfigError line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.errors import ConfigError
from edge import paths
from training.detector.config import load_config as load_detector_config
from training.styles.__main__ import load_config as load_styles_config

REPO = Path(__file__).resolve().parents[1]
DETECTOR_CONFIGS = sorted(p for p in (REPO / "configs").glob("detector*.yaml") if "classmap" not in p.name)


def test_paths_helper_finds_this_checkout_and_the_shared_folder(monkeypatch, tmp_path):
    assert paths.repo_root() == REPO
    monkeypatch.setenv("FASHION_EDGE_SHARED", str(tmp_path))
    assert paths.shared_dir() == tmp_path.resolve()
    assert paths.shared_dir(default=REPO) == tmp_path.resolve()  # the variable wins over a config's setting
    monkeypatch.delenv("FASHION_EDGE_SHARED")
    assert paths.shared_dir() == (REPO.parent / "shared").resolve()
    assert paths.shared_dir(default=tmp_path) == tmp_path.resolve()  # a config's own `shared` setting
    assert paths.repo_relative(REPO / "models" / "x.tflite") == "models/x.tflite"
    assert paths.repo_relative(REPO.parent / "no-such-sibling" / "media") == "../no-such-sibling/media"  # not /work/...


@pytest.mark.parametrize("path", DETECTOR_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_detector_config_loads(path):
    cfg = load_detector_config(path)
    assert cfg.work_dir == (REPO / "runs" / "detector").resolve()
    # the 320 px recipe is issue 26's smaller garment detector; every other one trains at 416
    assert int(cfg.get("train", "imgsz")) == (320 if path.name == "detector_camera320.yaml" else 416)
    assert cfg.local_path(cfg.get("export", "model")).suffix == ".tflite"
    assert cfg.shared_path("media").name == "media"


def test_four_detector_configs_are_checked():
    assert {p.name for p in DETECTOR_CONFIGS} >= {"detector.yaml", "detector_finetune.yaml", "detector_camera.yaml",
                                                   "detector_camera2.yaml", "detector_camera320.yaml"}


@pytest.mark.parametrize("change, field, message", [
    (lambda raw: raw["train"].update(epoch=3), "train.epoch", "unknown key"),
    (lambda raw: raw.update(run_nmae="x"), "run_nmae", "unknown key"),
    (lambda raw: raw["data"].update(store_frame_step="often"), "data.store_frame_step", "integer"),
    (lambda raw: raw["export"].update(max_map50_drop=2.0), "export.max_map50_drop", "less than or equal to 1"),
    (lambda raw: raw["data"]["teacher"].update(confidence=0.5), "data.teacher.confidence", "unknown key"),
])
def test_a_bad_detector_config_is_one_line_naming_file_and_field(tmp_path, change, field, message):
    raw = yaml.safe_load((REPO / "configs" / "detector_finetune.yaml").read_text())
    change(raw)
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_detector_config(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and f"{field}:" in text and message in text


def test_styles_config_loads_with_paths_beside_the_file():
    config = load_styles_config(REPO / "configs" / "styles.yaml")
    assert config.model == REPO / "models" / "garment-classifier.tflite"
    assert config.data.clothing.root == (REPO.parent / "shared" / "datasets" / "clothing").resolve()
    assert config.k_range == (4, 12) and config.names == {}


@pytest.mark.parametrize("change, field, message", [
    ({"k_rnage": [4, 6]}, "k_rnage", "unknown key"),
    ({"k_range": [1, 3]}, "k_range", "2 <= low <= high"),
    ({"n_init": "many"}, "n_init", "integer"),
    ({"data": {"clothing": {"root": "c"}, "colorful_fashion": {"root": "f"}}}, "data.clothing.split_file", "required"),
])
def test_a_bad_styles_config_is_one_line_naming_file_and_field(tmp_path, change, field, message):
    raw = yaml.safe_load((REPO / "configs" / "styles.yaml").read_text())
    raw.update(change)
    path = tmp_path / "styles.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_styles_config(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and f"{field}:" in text and message.lower() in text.lower()


def test_detector_config_paths_are_relative_to_the_file_like_every_config(tmp_path, monkeypatch):
    """One path convention (issue 25): data.out, export.model and work_dir start at the config's
    folder, as in the daemon's, classifier's and styles' configs; names under `shared` start there."""
    monkeypatch.delenv("FASHION_EDGE_SHARED", raising=False)
    raw = yaml.safe_load((REPO / "configs" / "detector.yaml").read_text())
    folder = tmp_path / "store" / "configs"
    folder.mkdir(parents=True)
    (folder / "detector.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_detector_config(folder / "detector.yaml")
    assert cfg.work_dir == tmp_path / "store" / "runs" / "detector"
    assert cfg.local_path(cfg.get("data", "out")) == tmp_path / "store" / "runs" / "detector_data"
    assert cfg.local_path(cfg.get("export", "model")) == tmp_path / "store" / "models" / "garment-detector.tflite"
    assert cfg.shared == tmp_path / "shared"
    assert cfg.shared_path(cfg.get("data", "fashion_dir")) == tmp_path / "shared" / "datasets" / "colorful-fashion"
    assert cfg.local_path("/abs/model.tflite") == Path("/abs/model.tflite")

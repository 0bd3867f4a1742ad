"""Detector training config: where a run starts from and what it is called (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.errors import ConfigError
from training.detector.__main__ import main
from training.detector.config import load_config
from training.detector.train import init_weights, run_name

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path, init: dict, **top) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "detector_finetune.yaml").read_text())
    raw["init"] = init
    raw.update(top)
    path = tmp_path / "detector.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_checkpoint_init_starts_from_the_named_weights(tmp_path):
    weights = tmp_path / "stage1.pt"
    weights.write_bytes(b"not read here")
    cfg = load_config(_config(tmp_path, {"mode": "checkpoint", "checkpoint": str(weights)}))
    assert init_weights(cfg) == str(weights)
    assert run_name(cfg) == "train_finetune" and run_name(cfg, "other") == "other"


def test_checkpoint_init_errors_name_the_field(tmp_path):
    cfg = load_config(_config(tmp_path, {"mode": "checkpoint", "checkpoint": str(tmp_path / "missing.pt")}))
    with pytest.raises(ConfigError, match=r"init\.checkpoint.*missing\.pt is missing"):
        init_weights(cfg)
    cfg = load_config(_config(tmp_path, {"mode": "checkpoint"}))
    with pytest.raises(ConfigError, match=r"init\.checkpoint"):
        init_weights(cfg)
    cfg = load_config(_config(tmp_path, {"mode": "imagenet"}))
    with pytest.raises(ConfigError, match=r"init\.mode.*unknown mode 'imagenet'"):
        init_weights(cfg)


def test_default_run_name_follows_the_init_mode(tmp_path):
    raw_path = _config(tmp_path, {"mode": "scratch"})
    raw = yaml.safe_load(raw_path.read_text())
    del raw["run_name"]
    raw_path.write_text(yaml.safe_dump(raw))
    assert run_name(load_config(raw_path)) == "train_scratch"


def test_cli_rejects_unknown_step(tmp_path, capsys):
    assert main(["--config", str(_config(tmp_path, {"mode": "scratch"})), "--steps", "prepare,deploy"]) == 2
    assert "unknown step(s) ['deploy']" in capsys.readouterr().err

"""Ultralytics fine-tuning of YOLOv8n on the prepared dataset (CPU, offline)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge.errors import ConfigError

from .config import DetectorTrainingConfig


def init_weights(cfg: DetectorTrainingConfig) -> str:
    """What training starts from: the recovered COCO checkpoint or the bare model YAML."""
    init = cfg.section("init")
    mode = init.get("mode", "recovered")
    if mode == "scratch":
        return str(init.get("model_yaml", "yolov8n.yaml"))
    if mode == "checkpoint":  # fine-tune a model an earlier run trained (a second stage)
        if "checkpoint" not in init:
            raise ConfigError("missing (mode checkpoint needs a .pt path)", path=cfg.path, field="init.checkpoint")
        ckpt = cfg.local_path(init["checkpoint"])
        if not ckpt.is_file():
            raise ConfigError(f"{ckpt} is missing; train the first stage first", path=cfg.path, field="init.checkpoint")
        return str(ckpt)
    if mode != "recovered":
        raise ConfigError(f"unknown mode {mode!r}; expected recovered, checkpoint or scratch", path=cfg.path,
                          field="init.mode")
    ckpt = recovered_checkpoint(cfg)
    if not ckpt.is_file():
        raise ConfigError(f"{ckpt} is missing; run the 'recover' step first", path=cfg.path, field="init.mode")
    return str(ckpt)


def run_name(cfg: DetectorTrainingConfig, name: str | None = None) -> str:
    """Ultralytics run folder under work_dir: --name, else the config's run_name, else train_<init mode>."""
    return name or cfg.raw.get("run_name") or f"train_{cfg.section('init').get('mode', 'recovered')}"


def recovered_checkpoint(cfg: DetectorTrainingConfig) -> Path:
    return cfg.work_dir / "init" / "yolov8n_coco_recovered.pt"


def train(cfg: DetectorTrainingConfig, time_hours: float | None = None, name: str | None = None) -> Path:
    """Run Ultralytics training; returns the best.pt path. Writes train_summary.json beside it."""
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    from ultralytics import YOLO

    t = dict(cfg.section("train"))
    data_yaml = cfg.local_path(cfg.get("data", "out")) / "data.yaml"
    if not data_yaml.is_file():
        raise ConfigError(f"{data_yaml} is missing; run the 'prepare' step first", path=cfg.path, field="data.out")
    hours = time_hours if time_hours is not None else t.pop("time_hours", None)
    t.pop("time_hours", None)
    start_from = init_weights(cfg)
    run = run_name(cfg, name)
    model = YOLO(start_from)
    started = time.time()
    model.train(
        data=str(data_yaml),
        project=str(cfg.work_dir),
        name=run,
        exist_ok=True,
        time=hours,
        plots=True,
        verbose=True,
        amp=False,
        **t,
    )
    best = cfg.work_dir / run / "weights" / "best.pt"
    summary = {"start_from": start_from, "time_hours_budget": hours, "wall_s": round(time.time() - started, 1),
               "train_args": t, "best": str(best)}
    (cfg.work_dir / run / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return best

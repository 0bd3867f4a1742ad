"""configs/attributes.yaml, validated like every config (pydantic, unknown keys rejected; relative
paths against the config file's folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.config import read_yaml, resolve_paths, validate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(Strict):
    format: Literal["peta", "colorful_fashion", "co_parsing", "folder"]
    root: Path
    val_fraction: float = Field(0.2, gt=0, lt=1, description="peta/co_parsing/folder: share of groups in validation")
    limit: int | None = Field(None, ge=1, description="read at most N rows (smoke runs)")
    licence: str = Field("", description="the licence named in the model card")


class ModelConfig(Strict):
    weights: Path | None = Field(None, description="MobileNetV2 1.0 ImageNet weights: the quantised Coral .tflite (recovered)")
    input_height: int = Field(192, ge=32)
    input_width: int = Field(96, ge=32)
    margin: float = Field(0.05, ge=0, le=0.5, description="person box grown by this share of its size each side")
    dropout: float = Field(0.2, ge=0, lt=1)


class AugmentConfig(Strict):
    flip: bool = True
    p_camera: float = Field(0.7, ge=0, le=1, description="share of samples given store-camera degradations")
    person_h: tuple[int, int] = (50, 260)


class TrainConfig(Strict):
    epochs: int = Field(12, ge=1)
    head_epochs: int = Field(30, ge=0, description="stage 1: the head alone on frozen features (0: skip)")
    oversample: dict[str, int] = Field(
        default_factory=dict, description="attribute (or dress_or_skirt) -> copies per epoch of the crops wearing it")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    unfreeze_from: str | None = "block_6_expand"
    max_pos_weight: float = Field(8.0, ge=1)
    threads: int = Field(2, ge=1)
    augment: AugmentConfig = AugmentConfig()


class OutputConfig(Strict):
    model: Path
    report_dir: Path
    run_dir: Path
    cache_dir: Path | None = None


class ExportConfig(Strict):
    calibration_images: int = Field(300, ge=10)
    max_auc_drop: float = Field(0.01, ge=0)


class AttributeConfig(Strict):
    seed: int = 42
    data: list[SourceConfig]
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    output: OutputConfig


def load_attribute_config(path: str | Path) -> AttributeConfig:
    path = Path(path)
    config = validate(AttributeConfig, read_yaml(path), path)
    resolve_paths(config, path.resolve().parent)
    return config

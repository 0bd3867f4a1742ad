"""configs/classifier.yaml, validated (pydantic, unknown keys rejected).

Relative paths are resolved against the config file's folder, so the config works from any
working directory; ``../shared`` therefore appears as ``../../shared`` in configs/. Reading,
validation and path resolution are the daemon's own (``edge.config``), so errors read the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.config import read_yaml, resolve_paths, validate
from edge.preprocess import NORMALISATIONS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(Strict):
    """One dataset. ``name`` selects its section of the label map."""

    format: Literal["clothing", "yolo_crops", "folder", "idx", "deepfashion"]
    name: str = Field(..., description="dataset name in the label map (datasets.<name>)")
    root: Path | None = Field(None, description="dataset folder (clothing, yolo_crops, folder, deepfashion)")
    validate_on: bool = Field(
        True, description="evaluate on this source's validation side (False: train side only)"
    )
    limit_per_class: int | None = Field(None, ge=1, description="keep at most N train images per class (smoke runs)")
    limit_validation_per_class: int | None = Field(None, ge=1)
    # clothing
    split_file: Path | None = Field(None, description="clothing: sender-grouped split JSON (created once)")
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    # yolo_crops
    split: str = Field("train", description="yolo_crops: split list used for training")
    validation_split: str | None = Field(None, description="yolo_crops: split list used for validation")
    min_side_px: int = Field(32, ge=4)
    margin: float = Field(0.05, ge=0, le=0.5)
    max_per_class: int | None = Field(None, ge=1)
    # folder: root/train/<class> and root/val/<class> when present, else root/<class> as train only
    # idx
    train_images: Path | None = None
    train_labels: Path | None = None
    val_images: Path | None = None
    val_labels: Path | None = None
    # deepfashion
    use_bbox: bool = True
    # partial labels (train side only)
    partial_labels: dict[str, list[str]] = Field(
        default_factory=dict,
        description="dataset label -> the product labels it may be (e.g. colorful-fashion jacket: [blazer, "
                    "outwear]); such images train with a set loss (-log of the probability summed over the set) "
                    "instead of being dropped; capped like max_per_class",
    )

    @model_validator(mode="after")
    def _paths_for_format(self):
        if self.format == "idx":
            if not (self.train_images and self.train_labels):
                raise ValueError("idx needs train_images and train_labels")
        elif self.root is None:
            raise ValueError(f"{self.format} needs root")
        if self.format == "clothing" and self.split_file is None:
            raise ValueError("clothing needs split_file")
        return self


class ModelConfig(Strict):
    backbone: Literal["mobilenet_v1", "mobilenet_v2", "small_cnn"] = "mobilenet_v1"
    alpha: float = Field(0.25, description="MobileNet width multiplier")
    weights: Path | None = Field(
        None, description="local ImageNet .h5 (no download), or for mobilenet_v2 1.0 the quantised ImageNet "
                          ".tflite its float weights are recovered from; null = from scratch")
    image_size: int = Field(160, ge=16, le=512)
    normalisation: str = Field("unit", description="one of edge.preprocess.NORMALISATIONS")
    dropout: float = Field(0.2, ge=0, lt=1)
    bn_trainable: bool = Field(
        False, description="stage 2 also updates BatchNorm (batch statistics); False keeps ImageNet statistics"
    )

    @model_validator(mode="after")
    def _known_normalisation(self):
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}")
        return self


class AugmentConfig(Strict):
    flip: bool = True
    zoom: float = Field(0.2, ge=0, lt=1, description="random zoom in/out by up to this fraction")
    translate: float = Field(0.08, ge=0, lt=0.5)
    rotation_deg: float = Field(10, ge=0, le=45)
    brightness: float = Field(0.15, ge=0, lt=1)
    contrast: float = Field(0.2, ge=0, lt=1)
    saturation: float = Field(0.2, ge=0, lt=1)


class StageConfig(Strict):
    epochs: int = Field(..., ge=0)
    learning_rate: float = Field(..., gt=0)


class DistillConfig(Strict):
    teacher: Path = Field(..., description="TFLite embedding extractor used as the teacher's frozen backbone")
    weight: float = Field(0.5, ge=0, le=0.5, description="share of the teacher's probabilities in the targets")


class TrainConfig(Strict):
    batch_size: int = Field(32, ge=1)
    head: StageConfig = StageConfig(epochs=30, learning_rate=1e-3)
    finetune: StageConfig = StageConfig(epochs=25, learning_rate=3e-4)
    unfreeze_from: str | None = Field(
        "conv_dw_6", description="first backbone layer trained in stage 2 (None: whole backbone)"
    )
    patience: int = Field(5, ge=1, description="early stopping on validation accuracy")
    class_weights: bool = True
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)
    augment: AugmentConfig = AugmentConfig()
    distill: DistillConfig | None = Field(None, description="soft targets from a stronger teacher (training/classifier/teacher.py)")
    head_mirror: bool = Field(True, description="stage 1 also trains on mirrored images' features (2x feature time)")
    threads: int = Field(2, ge=1, description="TensorFlow intra-op threads")


class ReferenceModel(Strict):
    """A model the candidate must beat (ship rule), run through the daemon's GarmentClassifier."""

    name: str
    model: Path
    manifest: Path | None = Field(None, description="as classifier.manifest (default: beside the model / models/manifests)")
    label_map: dict[str, str] | None = Field(None, description="as classifier.label_map (model label -> garment label)")
    to_product: dict[str, str | None] = Field(
        default_factory=dict,
        description="garment label -> product label for scoring (e.g. suit: blazer); labels that are neither "
                    "product labels nor mapped score nothing",
    )


ShipMetric = Literal["ten_class_accuracy", "top1", "macro_f1"]


class ShipRuleConfig(Strict):
    """Ship when the int8 candidate beats every reference on every metric (validation split, daemon
    code path) and passes the parity gate."""

    metrics: list[ShipMetric] = Field(default_factory=lambda: ["ten_class_accuracy"], min_length=1)
    references: list[ReferenceModel] = Field(default_factory=list)
    compare_shipped: bool = Field(True, description="the model at output.model, if there is one, is a reference too")


class ExportConfig(Strict):
    calibration_images: int = Field(300, ge=1, description="representative training images for int8 calibration")
    max_accuracy_drop: float = Field(0.01, ge=0, description="parity: fail if int8 loses more than this (fraction)")
    min_ten_class_accuracy: float = Field(
        0.0, ge=0, le=1, description="optional absolute floor besides the ship rule (0: none)"
    )
    ship_rule: ShipRuleConfig = Field(default_factory=ShipRuleConfig)
    threads: int = Field(2, ge=1)
    flip_average: bool = Field(
        False, description="shipped model averages the crop and its mirror image (test-time flip, 2x latency)"
    )


class OutputConfig(Strict):
    model: Path
    report_dir: Path
    run_dir: Path | None = Field(
        None, description="stage-1 feature cache and per-epoch checkpoints (runs/..., ignored by git); "
                          "needed for --resume")


class ClassifierConfig(Strict):
    seed: int = 42
    label_map: Path
    cache_dir: Path | None = Field(None, description="decoded/resized image cache (.npy); null = no cache")
    data: list[SourceConfig] = Field(..., min_length=1)
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    output: OutputConfig


def parse_classifier_config(data: object, path: Path, base: Path | None = None) -> ClassifierConfig:
    """Validate parsed YAML; relative paths resolve against ``base`` (default: the file's folder)."""
    config = validate(ClassifierConfig, data, path)
    resolve_paths(config, base or Path(path).resolve().parent)
    return config


def load_classifier_config(path: str | Path) -> ClassifierConfig:
    path = Path(path)
    return parse_classifier_config(read_yaml(path), path)

"""configs/detector*.yaml -> a validated settings object (paths resolved against the file's folder).

The YAML is validated by pydantic with ``extra="forbid"``, as the daemon's config is
(``edge.config``): an unknown or misspelt key, or a value of the wrong type, is a one-line
``ConfigError`` naming the file and the field (``train.epoch: unknown setting``). The checks that
depend on the step being run stay where the step runs (``init.mode``, ``init.checkpoint``: see
``training.detector.train.init_weights``), and the steps read their settings through
``section()`` / ``get()`` as the YAML gives them, so a default lives in one place: the step.

Paths, as in every other config of the project: relative to the config file's folder (configs/),
so ``../models/...``, ``../runs/...`` and ``../../shared`` (``$FASHION_EDGE_SHARED`` overrides
``shared``). Dataset and model names inside the shared folder (``data.fashion_dir``,
``data.media_dir``, ``data.teacher.model``, ``init.tflite``) are relative to ``shared``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.config import read_yaml, validate
from edge.errors import ConfigError
from edge.paths import shared_dir


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TeacherSection(Strict):
    """COCO teacher that labels people on the training images (docs/detector.md)."""

    model: str = Field(..., description="int8 TFLite COCO detector, under `shared`")
    conf: float = Field(0.40, ge=0, le=1, description="person score a pseudo-label needs")
    min_area: float = Field(0.002, ge=0, le=1, description="smallest person box, as a share of the image area")
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU of the teacher")


class DataSection(Strict):
    out: str = Field(..., description="prepared Ultralytics dataset folder")
    fashion_dir: str | None = Field(None, description="colorful-fashion dataset, under `shared`")
    media_dir: str | None = Field(None, description="store-like clips and test photos, under `shared`")
    teacher: TeacherSection | None = Field(None, description="person pseudo-labels (the prepare step)")
    store_frame_step: int | None = Field(None, ge=1, description="every n-th frame of the store clip (store_val)")
    store_train_frame_step: int | None = Field(
        None, ge=1, description="every n-th frame of the clip's training part (default: store_frame_step)")
    store_train_fraction: float | None = Field(None, gt=0, lt=1, description="leading share of the clip that trains")
    oversample: dict[str, int] | None = Field(
        None, description="garment class -> times a training image holding it is linked")
    source: str | None = Field(None, description="camera training: the prepared dataset it starts from")


class PseudoLabelSection(Strict):
    teacher: str = Field(..., description="garment detector (int8 .tflite) that labels store frames")
    conf: float = Field(0.5, ge=0, le=1, description="score a garment pseudo-label needs")


class CameraSection(Strict):
    """Camera-scale training set (training.detector_data.camera.AugmentSettings + the mix)."""

    seed: int = Field(0, description="seed of the degradations and the fashion-image draw")
    p_degrade: float = Field(0.7, ge=0, le=1, description="share of fashion images replaced by a store-like crop")
    max_fashion: int | None = Field(None, ge=1, description="fashion images per epoch (random, seeded)")
    store_step: int = Field(1, ge=1, description="every n-th prepared store frame")
    person_h: tuple[int, int] = Field((90, 300), description="person height range of a degraded sample, px")
    jpeg_quality: tuple[int, int] = Field((25, 80), description="JPEG quality range of a degraded sample")
    store_pseudo_labels: PseudoLabelSection | None = Field(None, description="garment labels on store frames (off)")


class InitSection(Strict):
    mode: str = Field("recovered", description="recovered (COCO weights from the int8 TFLite) | checkpoint | scratch")
    tflite: str | None = Field(None, description="recovered: the COCO int8 TFLite, under `shared`")
    model_yaml: str | None = Field(None, description="Ultralytics model YAML (recovered, scratch)")
    bn_calibration_images: int | None = Field(None, ge=1, description="training images batch-norm is re-estimated on")
    verify_tolerance_px: float | None = Field(None, gt=0, description="recovered vs TFLite person boxes, px")
    checkpoint: str | None = Field(None, description="checkpoint: the .pt a run starts from")


class TrainSection(Strict):
    """Ultralytics training arguments (passed to ``YOLO.train``; add a field to pass another)."""

    imgsz: int = Field(..., ge=32, description="input size, px (square)")
    epochs: int | None = Field(None, ge=1, description="upper bound; time_hours stops earlier")
    time_hours: float | None = Field(None, gt=0, description="training budget in hours")
    batch: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0)
    cache: str | bool | None = Field(None, description="ram | disk | false")
    warmup_epochs: float | None = Field(None, ge=0)
    close_mosaic: int | None = Field(None, ge=0, description="last epochs without mosaic")
    patience: int | None = Field(None, ge=0)
    seed: int | None = None
    device: str | None = Field(None, description="cpu (these machines)")
    lr0: float | None = Field(None, gt=0, description="initial learning rate")
    optimizer: str | None = Field(None, description="Ultralytics optimizer name (SGD, AdamW, auto)")


class EvaluateSection(Strict):
    conf: float = Field(0.001, ge=0, le=1, description="score threshold for mAP (the whole PR curve)")
    iou: float = Field(0.6, gt=0, le=1, description="NMS IoU")
    store_conf: float = Field(0.25, ge=0, le=1, description="person recall vs the teacher on store_val frames")
    match_iou: float = Field(0.5, gt=0, le=1, description="IoU a person box needs to match the teacher's")


class ExportSection(Strict):
    model: str = Field(..., description="int8 TFLite written by the export step")
    calibration_images: int = Field(300, ge=1, description="training images for int8 calibration")
    max_map50_drop: float = Field(0.03, ge=0, le=1, description="parity: mAP50 the int8 model may lose vs float")
    ship_min_garment_map50: float = Field(0.55, ge=0, le=1, description="below this the model is not shipped")


class DetectorTrainingSettings(Strict):
    """The whole file; sections a step does not need may be left out (the step says so if it does)."""

    shared: str = Field("../../shared", description="the read-only shared folder ($FASHION_EDGE_SHARED wins)")
    work_dir: str = Field("../runs/detector", description="Ultralytics runs, checkpoints, logs")
    run_name: str | None = Field(None, description="run folder under work_dir (default train_<init mode>)")
    data: DataSection | None = None
    camera: CameraSection | None = None
    init: InitSection | None = None
    train: TrainSection | None = None
    evaluate: EvaluateSection | None = None
    export: ExportSection | None = None


@dataclass
class DetectorTrainingConfig:
    """A loaded detector training config: the YAML as written (``raw``, read by the steps through
    ``section``/``get``) after validation, and the resolved shared and work folders."""

    path: Path
    raw: dict
    shared: Path
    work_dir: Path
    base: Path  # the config file's folder: relative paths start here

    def section(self, name: str) -> dict:
        value = self.raw.get(name)
        if not isinstance(value, dict):
            raise ConfigError("missing or not a mapping", path=self.path, field=name)
        return value

    def get(self, section: str, key: str):
        values = self.section(section)
        if key not in values:
            raise ConfigError("missing", path=self.path, field=f"{section}.{key}")
        return values[key]

    def local_path(self, value: str | Path) -> Path:
        """A path setting of the file (data.out, init.checkpoint, export.model, ...), resolved."""
        return (self.base / value).resolve() if not Path(value).is_absolute() else Path(value)

    def shared_path(self, value: str | Path) -> Path:
        return (self.shared / value).resolve()


def load_config(path: str | Path) -> DetectorTrainingConfig:
    path = Path(path)
    raw = read_yaml(path)
    settings = validate(DetectorTrainingSettings, raw, path)
    base = path.resolve().parent
    shared = shared_dir(default=base / settings.shared)
    work_dir = (base / settings.work_dir).resolve()
    return DetectorTrainingConfig(path=path, raw=raw, shared=shared, work_dir=work_dir, base=base)

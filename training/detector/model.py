"""The shipped garment detector's exact YOLOv8n graph: class-branch width 80 with 11 classes.

The shipped ``models/garment-detector.tflite`` was trained from the COCO checkpoint and kept the
COCO model's class-branch width (``cv3`` hidden channels 80 = COCO's ``min(nc, 100)``), while
``DetectionModel('yolov8n.yaml', nc=11)`` in the installed Ultralytics builds width 64. Fine-tuning
from the recovered weights must keep those layers, so ``build_model`` makes the COCO-shaped graph
and swaps only the last 1x1 class convs for ``nc`` outputs, and ``GarmentTrainer`` (an Ultralytics
``DetectionTrainer``) uses it instead of rebuilding from YAML, for a new run and for ``resume``.
"""

from __future__ import annotations


def build_model(nc: int = 11, cls_width: int = 80, model_yaml: str = "yolov8n.yaml", verbose: bool = False):
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(model_yaml, nc=cls_width, verbose=verbose)
    detect = model.model[-1]
    for seq in detect.cv3:
        old = seq[2]
        seq[2] = torch.nn.Conv2d(old.in_channels, nc, 1)
    detect.nc = nc
    detect.no = nc + detect.reg_max * 4
    model.yaml["nc"] = nc
    model.yaml["cls_width"] = cls_width
    model.nc = nc
    return model


def cls_width_of(model) -> int:
    return int(model.model[-1].cv3[0][0].conv.weight.shape[0])


def garment_trainer_class():
    """An Ultralytics DetectionTrainer whose model is ``build_model`` (then the weights loaded)."""
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    from ultralytics.models.yolo.detect import DetectionTrainer

    class GarmentTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            width = 80
            if isinstance(cfg, dict) and cfg.get("cls_width"):
                width = int(cfg["cls_width"])
            elif weights is not None and hasattr(weights, "model"):
                width = cls_width_of(weights)
            model = build_model(self.data["nc"], width)
            model.names = self.data["names"]
            if weights is not None:
                model.load(weights)
            return model

    return GarmentTrainer

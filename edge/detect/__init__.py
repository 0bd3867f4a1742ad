"""Detector stage: YOLO TFLite models (people and, for the project's own model, garments)."""

from .nms import class_aware_nms, iou_matrix, nms
from .yolo import YoloDetector, decode_yolo

__all__ = ["YoloDetector", "decode_yolo", "nms", "class_aware_nms", "iou_matrix"]

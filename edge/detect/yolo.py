"""YOLO (Ultralytics v8 / 11) TFLite detector: letterbox -> interpreter -> decode -> class-aware NMS.

Two export layouts are supported; which one a file has is read from its tensors (a manifest
``layout`` is checked against them, never trusted blindly):

* ``nhwc`` - ``format=tflite int8=True``: input ``[1, S, S, 3]`` (int8/uint8/float), output
  ``[1, 4+nc, N]``; the box rows cx, cy, w, h are normalised to 0..1 (some exports leave them in
  input pixels: detected, see ``decode_yolo``).
* ``nchw`` - ``format=litert``: input ``[1, 3, S, S]`` float32, output ``[1, 4+nc, N]`` float,
  boxes in input pixels.

An output stored as ``[1, N, 4+nc]`` is transposed. Quantisation parameters always come from the
interpreter. Class scores have no objectness row (v8/11 heads); a box's class is its best score.

Manifest (lookup order in ``edge/manifest.py``: explicit > beside the model > shipped)::

    {"task": "detect", "labels": [...], "layout": "nhwc-int8" | "nchw-float" (optional),
     "input_size": 640 (optional, checked), "garment_labels": [...] (optional), "source": "..."}
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..detections import Detections
from ..errors import ConfigError, ModelError
from ..labels import GARMENT_VOCABULARY
from ..preprocess import DetectorInputBuffer, detector_input, pixel_lookup, to_model_input
from ..runtime import TFLiteModel
from ..manifest import load_manifest
from .nms import class_aware_nms

PERSON_LABEL = "person"
# Candidates kept (by score) before NMS: bounds NMS time on frames with many weak boxes.
MAX_CANDIDATES = 3000


def decode_yolo(
    output: np.ndarray,
    input_size: int,
    thresholds: np.ndarray,
    iou: float,
    max_detections: int,
    normalised: bool | None = None,
    classes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one YOLO head output ``(4+nc, N)`` (float, dequantised) into kept detections.

    ``thresholds`` holds one score threshold per class. Returns ``(xyxy, scores, class_ids)``
    with boxes in model-input pixels, highest score first, after class-aware NMS.
    ``normalised`` says whether the box rows are 0..1 (None: read it from ``output``, which must then
    be the whole head); ``classes`` (class ids) keeps only boxes whose best class is one of them.
    """
    output = np.asarray(output, np.float32)
    boxes_cxcywh, class_scores = output[:4], output[4:]
    # Normalised boxes have centres within ~0..1; pixel boxes' centres span 0..input_size.
    # The anchor grid covers the whole image, so max(cx, cy) tells them apart regardless of content.
    if normalised is None:
        normalised = bool(boxes_cxcywh.size) and float(boxes_cxcywh[:2].max()) <= 2.0
    if normalised:
        boxes_cxcywh = boxes_cxcywh * input_size
    class_ids = class_scores.argmax(axis=0)
    scores = class_scores[class_ids, np.arange(class_scores.shape[1])]
    keep = scores >= thresholds[class_ids]
    if classes is not None:  # a lookup table: np.isin costs ~0.1 ms a call on these tiny arrays
        allowed = np.zeros(class_scores.shape[0], bool)
        allowed[classes] = True
        keep &= allowed[class_ids]
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
    cx, cy, w, h = boxes_cxcywh[:, keep]
    scores, class_ids = scores[keep], class_ids[keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    if len(scores) > MAX_CANDIDATES:
        top = np.argpartition(-scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
        xyxy, scores, class_ids = xyxy[top], scores[top], class_ids[top]
    kept = class_aware_nms(xyxy, scores, class_ids, iou, max_detections)
    return xyxy[kept].astype(np.float32), scores[kept].astype(np.float32), class_ids[kept].astype(np.int32)


class YoloDetector:
    """A YOLO TFLite detector; ``detect(frame_bgr)`` returns ``Detections`` in frame pixels."""

    def __init__(
        self,
        model_path: str | Path,
        manifest_path: str | Path | None = None,
        conf: float = 0.25,
        class_conf: dict[str, float] | None = None,
        iou: float = 0.5,
        max_detections: int = 100,
        threads: int = 2,
        class_conf_field: str = "class_conf",  # config field named in errors (detector.class_conf, ...)
        classes: list[str] | None = None,
    ):
        """``classes``: the labels the caller uses (None: all). Only their score rows are scanned
        for candidates, and only boxes whose best class is one of them come back; the boxes that do
        are the same as without it (a box's class is still its best score over every class)."""
        self.model_path = Path(model_path)
        self.model = TFLiteModel(self.model_path, threads=threads)  # missing / corrupt -> ModelError
        manifest, self.manifest_file = load_manifest(self.model_path, manifest_path)
        if manifest.get("task", "detect") != "detect":
            raise ModelError(f"manifest {self.manifest_file.name} describes a {manifest['task']!r} model, not a detector",
                             path=self.model_path)
        self.labels: list[str] = list(manifest["labels"])
        self.layout, self.input_size = self._check_input(manifest)
        self._rows_first = self._check_output()
        self.conf, self.iou, self.max_detections = conf, iou, max_detections
        self.thresholds = np.full(len(self.labels), conf, np.float32)
        for name, threshold in (class_conf or {}).items():
            if name not in self.labels:
                raise ConfigError(
                    f"unknown label {name!r}; the model's labels come from {self.manifest_file}",
                    field=f"{class_conf_field}.{name}",
                )
            self.thresholds[self.labels.index(name)] = threshold
        self._garment_labels = manifest.get("garment_labels")
        self._input_lut = pixel_lookup(self.model.input)
        self._input_buffer = DetectorInputBuffer(self.input_size, self._input_lut) \
            if self.layout == "nhwc" and (self._input_lut is not None or self.model.input.dtype == np.uint8) else None
        self.classes: np.ndarray | None = None
        if classes is not None:
            self.use_classes(classes)
        self._raw_thresholds_for: bytes | None = None

    def use_classes(self, names: list[str] | None) -> None:
        """Decode only boxes whose best class is one of ``names`` (None: all classes)."""
        if names is None:
            self.classes = None
            return
        unknown = [name for name in names if name not in self.labels]
        if unknown or not names:
            raise ConfigError(f"unknown label {unknown[0]!r}; the model's labels come from {self.manifest_file}"
                              if unknown else "no classes to decode", field="classes")
        self.classes = np.array(sorted({self.labels.index(name) for name in names}), np.int64)

    def input_tensor(self, frame_bgr: np.ndarray):
        """``(tensor fed to the interpreter, letterbox geometry)`` for one BGR frame. The tensor may be
        a reused buffer (valid until the next call)."""
        if self._input_buffer is not None:  # the common case: an int8/uint8 NHWC input
            return self._input_buffer.fill(frame_bgr)
        image_rgb, geometry = detector_input(frame_bgr, self.input_size)
        if self._input_lut is not None:  # not reached today (kept for an NCHW integer input)
            tensor = cv2.LUT(image_rgb, self._input_lut)[None]
        else:
            tensor = to_model_input(image_rgb, "unit", self.model.input.dtype, self.model.input.quant)
        if self.layout == "nchw":
            tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        return tensor, geometry

    # -- model checks -------------------------------------------------------------------------

    def _check_input(self, manifest: dict) -> tuple[str, int]:
        shape = self.model.input.shape
        if len(shape) != 4 or shape[0] != 1:
            raise ModelError(f"input shape {list(shape)} is not an image batch [1, S, S, 3]", path=self.model_path)
        if shape[3] == 3 and shape[1] == shape[2]:
            layout, size = "nhwc", shape[1]
        elif shape[1] == 3 and shape[2] == shape[3]:
            layout, size = "nchw", shape[2]
        else:
            raise ModelError(
                f"input shape {list(shape)} is neither [1, S, S, 3] nor [1, 3, S, S]", path=self.model_path
            )
        declared = manifest.get("layout")
        if declared is not None and not str(declared).startswith(layout):
            raise ModelError(
                f"manifest layout {declared!r} does not match the model input {list(shape)}",
                path=self.manifest_file,
                field="layout",
            )
        declared_size = manifest.get("input_size")
        if declared_size is not None and int(declared_size) != size:
            raise ModelError(
                f"manifest input_size {declared_size} does not match the model input {list(shape)}",
                path=self.manifest_file,
                field="input_size",
            )
        return layout, int(size)

    def _check_output(self) -> bool:
        """True if the output is (4+nc, N) rows-first, False if stored (N, 4+nc)."""
        if len(self.model.outputs) != 1:
            raise ModelError(
                f"expected 1 output tensor (a YOLO head), found {len(self.model.outputs)}", path=self.model_path
            )
        shape = self.model.outputs[0].shape
        rows = 4 + len(self.labels)
        if len(shape) == 3 and shape[0] == 1:
            if shape[1] == rows:
                return True
            if shape[2] == rows:
                return False
        raise ModelError(
            f"output shape {list(shape)} is not a YOLO detector head [1, {rows}, N] "
            f"(4 box rows + {len(self.labels)} labels from {self.manifest_file.name})",
            path=self.model_path,
        )

    # -- public -------------------------------------------------------------------------------

    @property
    def garment_labels(self) -> list[str]:
        """Detector labels that are garments (not 'person'); empty for a COCO model.

        The manifest's ``garment_labels`` wins; otherwise labels found in the garment vocabulary.
        """
        if self._garment_labels is not None:
            return [label for label in self._garment_labels if label in self.labels]
        return [label for label in self.labels if label != PERSON_LABEL and label.lower() in GARMENT_VOCABULARY]

    def _raw_thresholds(self) -> np.ndarray:
        """Per class, the smallest raw output value whose dequantised score passes the class's
        threshold (the same float comparison ``decode_yolo`` makes), so candidates are found on the
        raw int8 scores. Float outputs: the thresholds themselves."""
        key = self.thresholds.tobytes()
        if self._raw_thresholds_for != key:
            info = self.model.outputs[0]
            if info.quant is None or info.dtype.kind == "f":
                self._raw_floor = self.thresholds.copy()
            else:
                limits = np.iinfo(info.dtype)
                values = np.arange(limits.min, limits.max + 1, dtype=np.int64)
                scores = info.dequantize(values.astype(info.dtype))
                passing = scores[None, :] >= self.thresholds[:, None]
                # no value passes -> one above the dtype's range: never reached
                self._raw_floor = np.where(passing.any(axis=1), values[passing.argmax(axis=1)], limits.max + 1)
            self._raw_thresholds_for = key
        return self._raw_floor

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw head output (the interpreter's tensor) -> ``(xyxy, scores, class_ids)`` in model-input
        pixels. Thresholds the raw scores first and dequantises only the columns that pass: the
        same boxes as ``decode_yolo`` on the whole dequantised head (tests/test_detect_decode.py)."""
        head = raw[0] if self._rows_first else raw[0].T  # (4+nc, N), a view
        info = self.model.outputs[0]
        floor = self._raw_thresholds()
        scores = head[4:]
        if self.classes is not None:
            rows = self.classes
            candidates = scores[rows[0]] >= floor[rows[0]]
            for row in rows[1:]:
                candidates |= scores[row] >= floor[row]
        else:
            candidates = scores.max(axis=0) >= floor.min()
        columns = np.flatnonzero(candidates)
        if len(columns) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32)
        # Normalised or pixel boxes, read from the whole head (its box-centre maximum) as decode_yolo does.
        normalised = float(info.dequantize(head[:2].max().reshape(1))[0]) <= 2.0
        output = info.dequantize(head[:, columns])
        return decode_yolo(output, self.input_size, self.thresholds, self.iou, self.max_detections,
                           normalised=normalised, classes=self.classes)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        tensor, geometry = self.input_tensor(frame_bgr)
        raw = self.model.run(tensor)[0]
        xyxy, scores, class_ids = self.decode(raw)
        if len(scores) == 0:
            return Detections.empty(self.labels)
        xyxy = geometry.to_image(xyxy, frame_bgr.shape)
        # Boxes wholly inside the letterbox padding collapse to nothing once clipped.
        real = (xyxy[:, 2] - xyxy[:, 0] > 1) & (xyxy[:, 3] - xyxy[:, 1] > 1)
        return Detections(xyxy[real], scores[real], class_ids[real], self.labels)

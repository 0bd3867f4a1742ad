"""Export a trained Ultralytics YOLOv8 detector to a full-int8 TFLite model + manifest.

Route: the PyTorch graph is rebuilt as TensorFlow ops (``tf.nn.conv2d`` and friends) with
batch-norm folded into each conv, checked against PyTorch in float, then converted by
``tf.lite.TFLiteConverter`` with int8 weights, activations, input and output, calibrated on
training images. Why not Ultralytics' own exporters: ``format=tflite`` needs onnx2tf and
``format=litert`` needs litert-torch, neither is in the project's environment, and this route
gives the daemon's preferred layout (channels-last int8 in/out, like the COCO files in
../shared): input ``[1, S, S, 3]`` int8, output ``[1, 4 + nc, N]`` int8 with cx, cy, w, h
normalised to 0..1 and per-class sigmoid scores - manifest ``layout: "nhwc-int8"``.

Parity: the int8 model (through ``edge.detect.yolo.YoloDetector``) and the float PyTorch model
(same letterbox and decode) are evaluated on the validation split; the export fails when the
int8 mAP50 is lower by more than ``max_map50_drop`` (default 0.03 = 3 points).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DatasetError, FashionEdgeError, ModelError
from edge.preprocess import detector_input, normalise
from edge.runtime import sha256_file

DEFAULT_MAX_MAP50_DROP = 0.03


class ParityError(FashionEdgeError):
    """The int8 model lost more accuracy than allowed."""


# -- PyTorch -> plain arrays ------------------------------------------------------------------


def _fused_conv(conv_module) -> dict:
    """Ultralytics Conv (conv + BN + act) or plain nn.Conv2d -> HWIO weight, bias, stride, pad."""
    import torch

    conv = getattr(conv_module, "conv", conv_module)
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    bn = getattr(conv_module, "bn", None)
    if isinstance(bn, torch.nn.BatchNorm2d):
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        w = w * scale[:, None, None, None]
        b = bn.bias.detach().double() + (b - bn.running_mean.detach().double()) * scale
    if conv.groups != 1:
        raise ModelError(f"grouped convolutions (groups={conv.groups}) are not supported by this exporter")
    act = getattr(conv_module, "act", None)
    silu = isinstance(act, torch.nn.SiLU)
    if act is not None and not silu and not isinstance(act, torch.nn.Identity):
        raise ModelError(f"activation {type(act).__name__} is not supported by this exporter")
    return {
        "w": w.permute(2, 3, 1, 0).float().numpy(),  # OIHW -> HWIO
        "b": b.float().numpy(),
        "stride": conv.stride[0],
        "pad": conv.padding[0],
        "silu": silu,
    }


# -- TensorFlow graph ---------------------------------------------------------------------------


class _TFYolo:
    """YOLOv8 detection graph in TF ops; NHWC float in [0, 1] -> [1, 4 + nc, N]."""

    def __init__(self, torch_model, imgsz: int):
        from ultralytics.nn.modules import C2f, SPPF, Concat, Conv, Detect

        self.imgsz = imgsz
        self.layers = []
        for m in torch_model.model:
            kind = type(m).__name__
            if isinstance(m, Conv):
                spec = {"conv": _fused_conv(m)}
            elif isinstance(m, C2f):
                spec = {"cv1": _fused_conv(m.cv1), "cv2": _fused_conv(m.cv2), "c": m.c,
                        "m": [{"cv1": _fused_conv(b.cv1), "cv2": _fused_conv(b.cv2), "add": b.add} for b in m.m]}
                kind = "C2f"
            elif isinstance(m, SPPF):
                spec = {"cv1": _fused_conv(m.cv1), "cv2": _fused_conv(m.cv2), "k": m.m.kernel_size}
            elif isinstance(m, Concat):
                spec = {}
            elif type(m).__name__ == "Upsample":
                spec = {"scale": int(m.scale_factor)}
            elif isinstance(m, Detect):
                if getattr(m, "end2end", False):
                    raise ModelError("end-to-end (NMS-free) heads are not supported by this exporter")
                spec = {"box": [[_fused_conv(c) for c in seq] for seq in m.cv2],
                        "cls": [[_fused_conv(c) for c in seq] for seq in m.cv3],
                        "reg_max": m.reg_max, "nc": m.nc, "stride": [float(s) for s in m.stride]}
                kind = "Detect"
            else:
                raise ModelError(f"layer type {kind} is not supported by this exporter (YOLOv8 detect only)")
            self.layers.append((kind, m.f, m.i, spec))
        self.save = set(torch_model.save)
        self.nc = self.layers[-1][3]["nc"]

    @staticmethod
    def _conv(x, c):
        import tensorflow as tf

        if c["pad"]:
            p = c["pad"]
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])  # PyTorch pads symmetrically; TF SAME does not
        y = tf.nn.conv2d(x, c["w"], strides=c["stride"], padding="VALID") + c["b"]
        return y * tf.sigmoid(y) if c["silu"] else y

    def _c2f(self, x, s):
        import tensorflow as tf

        y = self._conv(x, s["cv1"])
        parts = [y[..., : s["c"]], y[..., s["c"] :]]
        for b in s["m"]:
            h = self._conv(self._conv(parts[-1], b["cv1"]), b["cv2"])
            parts.append(parts[-1] + h if b["add"] else h)
        return self._conv(tf.concat(parts, -1), s["cv2"])

    def _sppf(self, x, s):
        import tensorflow as tf

        x = self._conv(x, s["cv1"])
        outs = [x]
        for _ in range(3):
            outs.append(tf.nn.max_pool2d(outs[-1], s["k"], 1, "SAME"))
        return self._conv(tf.concat(outs, -1), s["cv2"])

    def _detect(self, feats, s):
        import tensorflow as tf

        reg = s["reg_max"]
        boxes, scores, anchors, strides = [], [], [], []
        for i, x in enumerate(feats):
            h, w = int(x.shape[1]), int(x.shape[2])
            b, c = x, x
            for conv in s["box"][i]:
                b = self._conv(b, conv)
            for conv in s["cls"][i]:
                c = self._conv(c, conv)
            boxes.append(tf.reshape(b, [1, h * w, 4 * reg]))
            scores.append(tf.reshape(c, [1, h * w, s["nc"]]))
            ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
            anchors.append(np.stack([xs.ravel(), ys.ravel()], 1))
            strides.append(np.full((h * w, 1), s["stride"][i]))
        box = tf.concat(boxes, 1)
        cls = tf.sigmoid(tf.concat(scores, 1))
        # DFL: softmax over reg_max bins per side; the expectation (a matmul with 0..reg_max-1, so
        # int8 accumulates in int32) is the distance in stride units.
        n = box.shape[1]
        probs = tf.nn.softmax(tf.reshape(box, [n * 4, reg]), axis=-1)
        dist = tf.reshape(tf.matmul(probs, np.arange(reg, dtype=np.float32)[:, None]), [1, n, 4])
        # Every tensor from here on is in normalised image units (0..~1): int8 tensors share one
        # scale across all anchors, so pixel or grid units would cost the coarse levels precision.
        anchor = np.concatenate(anchors).astype(np.float32)[None]
        stride = np.concatenate(strides).astype(np.float32)[None]
        dist = dist * (stride / self.imgsz)  # l, t, r, b
        lt, rb = dist[..., :2], dist[..., 2:]
        centre = anchor * stride / self.imgsz + (rb - lt) * 0.5
        size = lt + rb
        out = tf.concat([centre, size, cls], -1)  # [1, N, 4 + nc], boxes normalised 0..1
        return tf.transpose(out, [0, 2, 1])

    def __call__(self, x):
        import tensorflow as tf

        outputs = []
        for kind, f, i, s in self.layers:
            if f != -1:
                x = outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f]
            if kind == "Conv":
                x = self._conv(x, s["conv"])
            elif kind == "C2f":
                x = self._c2f(x, s)
            elif kind == "SPPF":
                x = self._sppf(x, s)
            elif kind == "Concat":
                x = tf.concat(x, -1)
            elif kind == "Upsample":
                size = [int(x.shape[1]) * s["scale"], int(x.shape[2]) * s["scale"]]
                x = tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=False, half_pixel_centers=False)
            elif kind == "Detect":
                x = self._detect(x, s)
            outputs.append(x if i in self.save else None)
        return x


# -- conversion -----------------------------------------------------------------------------------


def read_letterboxed(path: Path, imgsz: int) -> np.ndarray:
    """An image file as the detector sees it: letterboxed RGB uint8 (edge.preprocess)."""
    frame = cv2.imread(str(path))
    if frame is None:
        raise DatasetError("cannot read image", path=path)
    rgb, _ = detector_input(frame, imgsz)
    return rgb


def _letterboxed(images: list[Path], imgsz: int) -> list[np.ndarray]:
    """Calibration / check batches: letterboxed RGB in [0, 1], NHWC, one image each."""
    return [normalise(read_letterboxed(path, imgsz), "unit")[None] for path in images]


def load_torch_model(weights: str | Path):
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    from ultralytics import YOLO

    yolo = YOLO(str(weights))
    model = yolo.model.float().eval()
    labels = [yolo.names[i] for i in range(len(yolo.names))]
    return model, labels


def convert(torch_model, imgsz: int, calibration: list[Path], out: Path, check_images: list[Path] | None = None) -> dict:
    """Write the int8 TFLite file; returns float graph-vs-PyTorch check figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import torch

    graph = _TFYolo(torch_model, imgsz)
    fn = tf.function(graph, input_signature=[tf.TensorSpec([1, imgsz, imgsz, 3], tf.float32, name="images")])
    concrete = fn.get_concrete_function()

    # Float check: the TF graph must reproduce PyTorch before quantisation hides mistakes.
    check = _letterboxed((check_images or calibration)[:2], imgsz)
    worst = 0.0
    for x in check:
        tf_out = concrete(tf.constant(x)).numpy()
        with torch.no_grad():
            pt = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        pt = (pt[0] if isinstance(pt, (list, tuple)) else pt).numpy()
        pt[:, :4] /= imgsz
        worst = max(worst, float(np.abs(tf_out - pt).max()))
    if worst > 1e-3:
        raise ModelError(f"TF graph differs from PyTorch by {worst:.2e} (expected < 1e-3); exporter bug")

    samples = _letterboxed(calibration, imgsz)

    def representative():
        for x in samples:
            yield [x]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    started = time.time()
    blob = converter.convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return {"float_graph_max_abs_diff": worst, "calibration_images": len(samples),
            "convert_s": round(time.time() - started, 1)}


def quantisation_info(model_path: Path) -> dict:
    from edge.runtime import TFLiteModel

    m = TFLiteModel(model_path)
    info = {"input": {"dtype": m.input.dtype.name, "shape": list(m.input.shape)},
            "output": {"dtype": m.outputs[0].dtype.name, "shape": list(m.outputs[0].shape)},
            "weights": "int8 per-channel", "activations": "int8"}
    if m.input.quant:
        info["input"].update(scale=m.input.quant[0], zero_point=m.input.quant[1])
    if m.outputs[0].quant:
        info["output"].update(scale=m.outputs[0].quant[0], zero_point=m.outputs[0].quant[1])
    return info


def write_manifest(model_path: Path, labels: list[str], imgsz: int, metrics: dict, extra: dict | None = None,
                   config: str = "configs/detector.yaml") -> Path:
    from edge.runtime import manifest_path

    manifest = {
        "task": "detect",
        "labels": labels,
        "garment_labels": [label for label in labels if label != "person"],
        "layout": "nhwc-int8",
        "input_size": imgsz,
        "normalisation": "unit",
        "colour_order": "RGB",
        "quantisation": quantisation_info(model_path),
        "sha256": sha256_file(model_path),
        "size_bytes": model_path.stat().st_size,
        "metrics": metrics,
        "source": f"YOLOv8n fine-tuned by `python -m training.detector --config {config}` "
                  "from COCO weights recovered out of ../shared/models/coco-yolo (AGPL-3.0)",
    }
    manifest.update(extra or {})
    path = manifest_path(model_path)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def parity(float_map50: float, int8_map50: float, max_drop: float = DEFAULT_MAX_MAP50_DROP) -> dict:
    """Parity report; raises ParityError when int8 lost more than ``max_drop`` mAP50."""
    drop = float_map50 - int8_map50
    report = {"float_map50": round(float_map50, 4), "int8_map50": round(int8_map50, 4),
              "map50_drop": round(drop, 4), "max_map50_drop": max_drop, "passed": drop <= max_drop}
    if not report["passed"]:
        raise ParityError(f"int8 mAP50 {int8_map50:.4f} is {drop * 100:.1f} points below float {float_map50:.4f} "
                          f"(allowed {max_drop * 100:.1f})", field="export.max_map50_drop")
    return report

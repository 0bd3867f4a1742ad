"""Recover trainable COCO weights from an int8 YOLOv8n TFLite export.

The only COCO-pretrained YOLO weights on these machines are int8 TFLite exports
(``../shared/models/coco-yolo/``). In those files batch-norm is folded into each convolution,
so a conv with the dequantised folded weight and bias, followed by an *identity* batch-norm,
reproduces the layer. Ultralytics' ``Conv`` has ``bias=False``, so the folded bias goes into
``bn.bias`` with ``bn.weight = 1``, ``running_mean = 0`` and ``running_var = 1 - eps``
(``sqrt(var + eps) = 1``).

Which TFLite conv is which PyTorch conv? Tensor names and op order of the converted graph
do not follow Ultralytics' module order, so we match by *data*: run the TFLite model once
with every intermediate tensor kept, then run the PyTorch model with a pre-hook on each
``nn.Conv2d``. When a conv is about to run, its input (computed with the weights recovered so
far) is compared with the dequantised input of every still-unassigned TFLite conv of the same
weight shape; the closest one gives the weights. YOLOv8n has no two same-shape convs reading
the same tensor, so the match is unambiguous (YOLO11n's C3k and split depthwise convs would
need extra rules, which is why we recover v8n).

``python -m training.recover_coco --tflite ../shared/models/coco-yolo/yolov8n_full_integer_quant_416.tflite
--out runs/recover/yolov8n_coco.pt`` writes an Ultralytics checkpoint and a verification JSON
(bus.jpg / zidane.jpg: recovered float model vs the TFLite file, matched boxes).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.paths import repo_root, shared_dir
from edge.preprocess import normalise, to_model_input
from edge.runtime import tensor_info
from export.detector import read_letterboxed  # noqa: F401 - also imported from here by training
from export.ultralytics_env import setup_ultralytics


def as_unit_chw(rgb: np.ndarray) -> np.ndarray:
    """Letterboxed RGB uint8 -> float32 CHW in [0, 1] (the 'unit' normalisation) for PyTorch."""
    return normalise(rgb, "unit").transpose(2, 0, 1)




@dataclass
class TFLiteConv:
    op_index: int
    weight: np.ndarray  # float32, PyTorch layout [out, in/groups, kh, kw]
    bias: np.ndarray  # float32 [out]
    groups: int
    input_nhwc: np.ndarray  # dequantised input activation of the op (may include explicit padding)


def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not path.is_file():
        raise ModelError("TFLite file not found", path=path)
    # Without the default XNNPACK delegate every op stays visible and its tensors are kept.
    interp = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    return interp


def _dequant(detail: dict, values: np.ndarray) -> np.ndarray:
    q = detail["quantization_parameters"]
    scales, zeros = np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"], np.float32)
    if scales.size == 0:
        return values.astype(np.float32)
    if scales.size == 1:
        return (values.astype(np.float32) - zeros[0]) * scales[0]
    shape = [1] * values.ndim
    shape[q["quantized_dimension"]] = -1
    return (values.astype(np.float32) - zeros.reshape(shape)) * scales.reshape(shape)


def quantised_input(interp, image_rgb_uint8: np.ndarray) -> np.ndarray:
    """The interpreter's input tensor for a letterboxed RGB image: the daemon's own conversion."""
    info = tensor_info(interp.get_input_details()[0])
    return to_model_input(image_rgb_uint8, "unit", info.dtype, info.quant)


def read_tflite_convs(path: Path, image_rgb_uint8: np.ndarray) -> tuple[list[TFLiteConv], np.ndarray]:
    """All CONV_2D / DEPTHWISE_CONV_2D ops with float weights and their input activations."""
    interp = _interpreter(path)
    interp.set_tensor(interp.get_input_details()[0]["index"], quantised_input(interp, image_rgb_uint8))
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    convs = []
    for op in interp._get_ops_details():  # noqa: SLF001 - the public API has no op list
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        x_idx, w_idx, b_idx = (list(op["inputs"]) + [-1])[:3]
        w = _dequant(details[w_idx], interp.get_tensor(w_idx))
        if op["op_name"] == "DEPTHWISE_CONV_2D":  # [1, kh, kw, C] -> [C, 1, kh, kw]
            weight, groups = w.transpose(3, 0, 1, 2), w.shape[3]
        else:  # [out, kh, kw, in] -> [out, in, kh, kw]
            weight, groups = w.transpose(0, 3, 1, 2), 1
        bias = _dequant(details[b_idx], interp.get_tensor(b_idx)) if b_idx >= 0 else np.zeros(weight.shape[0])
        x = _dequant(details[x_idx], interp.get_tensor(x_idx))[0]
        convs.append(TFLiteConv(op["index"], np.ascontiguousarray(weight), bias.astype(np.float32), groups, x))
    out_detail = interp.get_output_details()[0]
    output = _dequant(out_detail, interp.get_tensor(out_detail["index"]))
    return convs, output


def _match_error(torch_nchw: np.ndarray, tflite_nhwc: np.ndarray) -> float:
    """Relative error between a torch input and a TFLite op input (cropping explicit padding)."""
    t = torch_nchw[0].transpose(1, 2, 0)
    th, tw = t.shape[:2]
    fh, fw = tflite_nhwc.shape[:2]
    if tflite_nhwc.shape[2] != t.shape[2] or fh < th or fw < tw:
        return float("inf")
    if (fh, fw) != (th, tw):  # the converter pads explicitly (PAD op) before a VALID conv
        top, left = (fh - th) // 2, (fw - tw) // 2
        tflite_nhwc = tflite_nhwc[top : top + th, left : left + tw]
    return float(np.abs(t - tflite_nhwc).mean() / (np.abs(t).mean() + 1e-6))


def take_best_conv(name, conv2d, x, candidates, unassigned, assigned, parents, tflite_path) -> None:
    """Give ``conv2d`` (module ``name``, input ``x``) the TFLite conv among ``candidates`` whose
    recorded input matches ``x`` best; BN folded into the TFLite conv becomes an identity BN."""
    import torch

    shape = tuple(conv2d.weight.shape)
    if not candidates:
        raise ModelError(f"no TFLite conv with weight shape {shape} left for {name}", path=tflite_path)
    errors = [_match_error(x, c.input_nhwc) for c in candidates]
    best = int(np.argmin(errors))
    chosen = candidates[best]
    unassigned.remove(chosen)
    assigned.append((name, chosen.op_index, errors[best]))
    with torch.no_grad():
        conv2d.weight.copy_(torch.from_numpy(chosen.weight))
        if conv2d in parents:
            bn = parents[conv2d].bn
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(chosen.bias))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        else:
            conv2d.bias.copy_(torch.from_numpy(chosen.bias))


def recover(tflite_path: Path, model_yaml: str = "yolov8n.yaml", image_path: Path | None = None, imgsz: int = 416):
    """Ultralytics DetectionModel with weights recovered from ``tflite_path`` (COCO, 80 classes)."""
    setup_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.nn.modules import Conv

    image_path = image_path or shared_dir() / "media" / "bus.jpg"
    rgb = read_letterboxed(image_path, imgsz)
    convs, _ = read_tflite_convs(tflite_path, rgb)

    model = DetectionModel(model_yaml, nc=80, verbose=False).eval()
    parents = {}  # nn.Conv2d -> its Ultralytics Conv (to reach the batch-norm)
    for module in model.modules():
        if isinstance(module, Conv):
            parents[module.conv] = module
    unassigned = list(convs)
    assigned: list[tuple[str, int, float]] = []

    def make_hook(name):
        def hook(conv2d, inputs):
            if name.endswith("dfl.conv"):
                return  # fixed DFL integral weights, not learned
            x = inputs[0].detach().numpy()
            shape = tuple(conv2d.weight.shape)
            candidates = [c for c in unassigned if c.weight.shape == shape and c.groups == conv2d.groups]
            take_best_conv(name, conv2d, x, candidates, unassigned, assigned, parents, tflite_path)

        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.from_numpy(as_unit_chw(rgb)[None]))
    for h in handles:
        h.remove()
    # The DFL's fixed integral (a 16->1 1x1 conv) is in the TFLite graph too; it is not learned.
    unassigned = [c for c in unassigned if c.weight.shape != tuple(model.model[-1].dfl.conv.weight.shape)]
    if unassigned:
        raise ModelError(f"{len(unassigned)} TFLite convs were not matched to the {model_yaml} graph", path=tflite_path)
    worst = max(err for _, _, err in assigned)
    return model, {"assigned": len(assigned), "worst_input_error": worst}


def calibrate_batchnorm(model, images: list[Path], imgsz: int = 416, batch: int = 8) -> int:
    """Turn the identity batch-norms into ones that match real activation statistics.

    Identity BN reproduces the TFLite layer only in eval mode; in train mode BN normalises by
    *batch* statistics, which would scramble the recovered network on the first step. For each
    Conv we measure the per-channel mean/var of the conv output (pre-BN) on real images and set
    ``running_mean = mu``, ``running_var = var``, ``weight = sqrt(var + eps)``,
    ``bias = mu + folded_bias``: eval output is unchanged (``y + folded_bias``), and train-mode
    normalisation is close to the identity from the start. Returns the number of images used.
    """
    import torch
    from ultralytics.nn.modules import Conv

    stats = {}

    def hook(conv_module, _inputs, output):
        y = output.detach().double()
        s = stats.setdefault(conv_module, [0.0, 0.0, 0])
        s[0] = s[0] + y.sum(dim=(0, 2, 3))
        s[1] = s[1] + (y * y).sum(dim=(0, 2, 3))
        s[2] += y.shape[0] * y.shape[2] * y.shape[3]

    convs = [m for m in model.modules() if isinstance(m, Conv) and isinstance(m.bn, torch.nn.BatchNorm2d)]
    handles = [m.conv.register_forward_hook(hook) for m in convs]
    tensors = []
    for path in images:
        tensors.append(torch.from_numpy(as_unit_chw(read_letterboxed(path, imgsz))))
    model.eval()
    with torch.no_grad():
        for start in range(0, len(tensors), batch):
            model(torch.stack(tensors[start : start + batch]))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for m in convs:
            total, total_sq, n = stats[m.conv]
            mu = total / n
            var = (total_sq / n - mu * mu).clamp(min=1e-6)
            folded_bias = m.bn.bias.double()  # identity BN: output = conv + folded bias
            m.bn.running_mean.copy_(mu.float())
            m.bn.running_var.copy_(var.float())
            m.bn.weight.copy_(torch.sqrt(var + m.bn.eps).float())
            m.bn.bias.copy_((mu + folded_bias).float())
    return len(tensors)


# --- verification: recovered float model vs the TFLite file on real images -----------------


def _decode(raw: np.ndarray, size: int, conf: float = 0.25, iou: float = 0.45):
    """[1, 4+nc, N] (cx, cy, w, h in pixels or normalised) -> list of (box xyxy px, score, class)."""
    pred = raw[0].T
    boxes = pred[:, :4].copy()
    if boxes.max() <= 2.0:  # TFLite exports normalise to 0..1
        boxes *= size
    scores = pred[:, 4:]
    cls = scores.argmax(1)
    best = scores.max(1)
    keep = best >= conf
    boxes, best, cls = boxes[keep], best[keep], cls[keep]
    xyxy = np.stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2,
                     boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2], 1)
    out = []
    for c in np.unique(cls):
        idx = np.where(cls == c)[0]
        kept = cv2.dnn.NMSBoxes(
            [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in xyxy[idx]],
            best[idx].tolist(), conf, iou)
        for k in np.asarray(kept).reshape(-1):
            out.append((xyxy[idx[k]], float(best[idx[k]]), int(c)))
    return out


def verify(model, tflite_path: Path, images: list[Path], imgsz: int = 416, tolerance_px: float = 8.0) -> dict:
    """Same people, boxes within ``tolerance_px`` (model-input pixels) on every image."""
    import torch

    from edge.runtime import TFLiteModel

    tfl = TFLiteModel(tflite_path, threads=2)
    report = {"images": [], "tolerance_px": tolerance_px, "passed": True}
    for path in images:
        rgb = read_letterboxed(path, imgsz)
        tfl_raw = tfl.outputs[0].dequantize(tfl.run(quantised_input(tfl.interpreter, rgb))[0])
        with torch.no_grad():
            pt_raw = model(torch.from_numpy(as_unit_chw(rgb)[None]))
        pt_raw = (pt_raw[0] if isinstance(pt_raw, (list, tuple)) else pt_raw).numpy()
        ref = [d for d in _decode(tfl_raw, imgsz) if d[2] == 0]
        got = [d for d in _decode(pt_raw, imgsz) if d[2] == 0]
        shifts = []
        for box, _, _ in ref:
            if not got:
                shifts.append(float("inf"))
                continue
            shifts.append(float(min(np.abs(box - g[0]).max() for g in got)))
        ok = len(ref) == len(got) and all(s <= tolerance_px for s in shifts)
        report["images"].append({"image": path.name, "tflite_people": len(ref), "recovered_people": len(got),
                                 "max_box_shift_px": max(shifts) if shifts else 0.0, "passed": ok})
        report["passed"] &= ok
    return report


def save_checkpoint(model, out: Path) -> None:
    """An Ultralytics-style checkpoint ``YOLO(out)`` and ``train(model=out)`` accept."""
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    model.names = {i: n for i, n in enumerate(_coco_names())}
    torch.save({"model": model.float(), "train_args": {}, "epoch": -1, "optimizer": None,
                "date": None, "version": "recovered-from-tflite"}, out)


def _coco_names() -> list[str]:
    path = shared_dir() / "models" / "coco-yolo" / "coco_labels.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite", type=Path, default=shared_dir() / "models/coco-yolo/yolov8n_full_integer_quant_416.tflite")
    parser.add_argument("--out", type=Path, default=repo_root() / "runs/recover/yolov8n_coco.pt")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--tolerance-px", type=float, default=8.0)
    parser.add_argument("--calibration-dir", type=Path, default=shared_dir() / "datasets/colorful-fashion/images")
    parser.add_argument("--calibration-images", type=int, default=64)
    args = parser.parse_args(argv)
    model, stats = recover(args.tflite, imgsz=args.imgsz)
    calibration = sorted(args.calibration_dir.glob("*.jpg"))[: args.calibration_images]
    stats["bn_calibration_images"] = calibrate_batchnorm(model, calibration, args.imgsz)
    media = shared_dir() / "media"
    report = verify(model, args.tflite, [media / "bus.jpg", media / "zidane.jpg"], args.imgsz, args.tolerance_px)
    report.update(stats)
    print(json.dumps(report, indent=1))
    if not report["passed"]:
        print("recovery did NOT verify against the TFLite file", file=sys.stderr)
        return 1
    save_checkpoint(model, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

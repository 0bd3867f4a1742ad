"""Recover the shipped garment detector's float weights from its int8 TFLite file.

The stage-2 ``best.pt`` that produced ``models/garment-detector.tflite`` is not kept (runs/ is
ignored by git and a fresh checkout has none). The same data matching as ``training.recover_coco``
(which recovers the COCO YOLOv8n) works on the project's own export: ``export/detector.py``
writes plain CONV_2D ops with explicit padding and BN folded in, and the DFL as a softmax + matmul
(no conv). Only the class count differs (11 instead of 80).

``python -m training.detector.recover_shipped --tflite models/garment-detector.tflite
--out runs/detector/init/garment_shipped_recovered.pt`` writes an Ultralytics checkpoint (names =
PRODUCT_CLASSES) and a verification JSON: recovered float model vs the int8 file on val images
(same detections within a tolerance) after batch-norm re-estimation on training images.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.paths import repo_root, shared_dir
from training.detector_data import PRODUCT_CLASSES
from training.recover_coco import (
    _decode,
    as_unit_chw,
    calibrate_batchnorm,
    quantised_input,
    read_letterboxed,
    read_tflite_convs,
    take_best_conv,
)
from export.ultralytics_env import setup_ultralytics


def _conv_descendants(tflite_path: Path) -> dict[int, int]:
    """op index of each conv -> output channels of the conv two conv-hops downstream (head chains).

    In the detect head ``cv2.i.0`` (box branch) and ``cv3.i.0`` (class branch) have the same weight
    shape when ``nc <= 64`` and read the same tensor, so data cannot tell them apart; the chain can:
    the box branch ends in a 1x1 conv with ``4 * reg_max`` outputs, the class branch in one with
    ``nc``.
    """
    from training.recover_coco import _interpreter

    interp = _interpreter(tflite_path)
    ops = interp._get_ops_details()  # noqa: SLF001
    details = {d["index"]: d for d in interp.get_tensor_details()}
    consumers: dict[int, list[dict]] = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)
    is_conv = lambda op: op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")  # noqa: E731

    def next_convs(op) -> list[dict]:
        found, stack, seen = [], [int(t) for t in op["outputs"]], set()
        while stack:
            t = stack.pop()
            for c in consumers.get(t, []):
                if c["index"] in seen:
                    continue
                seen.add(c["index"])
                if is_conv(c):
                    found.append(c)
                else:
                    stack.extend(int(o) for o in c["outputs"])
        return found

    out = {}
    for op in ops:
        if not is_conv(op):
            continue
        chans = set()
        for c1 in next_convs(op):
            for c2 in next_convs(c1):
                chans.add(int(details[int(c2["inputs"][1])]["shape"][0]))
        if len(chans) == 1:
            out[op["index"]] = chans.pop()
    return out


def recover(tflite_path: Path, nc: int, model_yaml: str = "yolov8n.yaml", image_path: Path | None = None,
            imgsz: int = 416, cls_width: int = 80):
    """Ultralytics DetectionModel (``nc`` classes) with weights recovered from ``tflite_path``."""
    setup_ultralytics()
    import torch
    from ultralytics.nn.modules import Conv

    image_path = image_path or shared_dir() / "media" / "bus.jpg"
    rgb = read_letterboxed(image_path, imgsz)
    convs, _ = read_tflite_convs(tflite_path, rgb)
    downstream = _conv_descendants(tflite_path)
    from training.detector.model import build_model

    model = build_model(nc, cls_width=cls_width, model_yaml=model_yaml).eval()
    parents = {m.conv: m for m in model.modules() if isinstance(m, Conv)}
    detect = model.model[-1]
    unassigned = list(convs)
    assigned: list[tuple[str, int, float]] = []

    def make_hook(name):
        def hook(conv2d, inputs):
            if name.endswith("dfl.conv"):
                return
            x = inputs[0].detach().numpy()
            shape = tuple(conv2d.weight.shape)
            candidates = [c for c in unassigned if c.weight.shape == shape and c.groups == conv2d.groups]
            head = re.search(r"\.cv([23])\.\d+\.0\.conv$", name)
            if head:  # first conv of a head branch: its twin reads the same tensor (see _conv_descendants)
                want = 4 * detect.reg_max if head.group(1) == "2" else nc
                candidates = [c for c in candidates if downstream.get(c.op_index) == want]
            take_best_conv(name, conv2d, x, candidates, unassigned, assigned, parents, tflite_path)

        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.from_numpy(as_unit_chw(rgb)[None]))
    for h in handles:
        h.remove()
    dfl_shape = tuple(model.model[-1].dfl.conv.weight.shape)
    unassigned = [c for c in unassigned if c.weight.shape != dfl_shape]
    if unassigned:
        raise ModelError(f"{len(unassigned)} TFLite convs were not matched to the {model_yaml} graph", path=tflite_path)
    return model, {"assigned": len(assigned), "worst_input_error": max(e for _, _, e in assigned)}


def verify(model, tflite_path: Path, images: list[Path], imgsz: int = 416, conf: float = 0.25,
           tolerance_px: float = 8.0) -> dict:
    """Every int8 detection (score >= conf) has a float one of the same class within tolerance."""
    import torch

    from edge.runtime import TFLiteModel

    tfl = TFLiteModel(tflite_path, threads=2)
    report = {"images": [], "tolerance_px": tolerance_px, "conf": conf}
    matched = total = 0
    shifts_all = []
    for path in images:
        rgb = read_letterboxed(path, imgsz)
        ref = _decode(tfl.outputs[0].dequantize(tfl.run(quantised_input(tfl.interpreter, rgb))[0]), imgsz, conf)
        with torch.no_grad():
            pt = model(torch.from_numpy(as_unit_chw(rgb)[None]))
        got = _decode((pt[0] if isinstance(pt, (list, tuple)) else pt).numpy(), imgsz, conf * 0.6)
        for box, _, cls in ref:
            same = [g[0] for g in got if g[2] == cls]
            shift = min((float(np.abs(box - g).max()) for g in same), default=float("inf"))
            total += 1
            matched += shift <= tolerance_px
            shifts_all.append(shift)
        report["images"].append({"image": path.name, "int8_boxes": len(ref), "float_boxes": len(got)})
    report.update({"int8_boxes": total, "matched": matched,
                   "match_rate": round(matched / total, 4) if total else None,
                   "median_shift_px": float(np.median([s for s in shifts_all if np.isfinite(s)] or [0]))})
    report["passed"] = bool(total and matched / total >= 0.9)
    return report


def save_checkpoint(model, out: Path, names: list[str]) -> None:
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    model.names = {i: n for i, n in enumerate(names)}
    torch.save({"model": model.float(), "train_args": {}, "epoch": -1, "optimizer": None,
                "date": None, "version": "recovered-from-tflite"}, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite", type=Path, default=repo_root() / "models/garment-detector.tflite")
    parser.add_argument("--out", type=Path, default=repo_root() / "runs/detector/init/garment_shipped_recovered.pt")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--calibration-images", type=int, default=128)
    args = parser.parse_args(argv)
    fashion = shared_dir() / "datasets/colorful-fashion"
    train_ids = [s.strip() for s in (fashion / "splits/train.txt").read_text().split() if s.strip()]
    val_ids = [s.strip() for s in (fashion / "splits/val.txt").read_text().split() if s.strip()]
    model, stats = recover(args.tflite, len(PRODUCT_CLASSES), imgsz=args.imgsz)
    step = max(1, len(train_ids) // args.calibration_images)
    calib = [fashion / "images" / f"{i}.jpg" for i in train_ids[::step]][: args.calibration_images]
    stats["bn_calibration_images"] = calibrate_batchnorm(model, calib, args.imgsz)
    media = shared_dir() / "media"
    checks = [media / "bus.jpg", media / "zidane.jpg"] + [fashion / "images" / f"{i}.jpg" for i in val_ids[:8]]
    report = verify(model, args.tflite, checks, args.imgsz)
    report.update(stats)
    print(json.dumps({k: v for k, v in report.items() if k != "images"}, indent=1))
    if not report["passed"]:
        print("recovery did NOT verify against the TFLite file", file=sys.stderr)
        return 1
    save_checkpoint(model, args.out, PRODUCT_CLASSES)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

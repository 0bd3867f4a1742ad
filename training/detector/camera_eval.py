"""Garment detection at store-camera scale: the degraded validation set and its evaluation.

    python -m training.detector.camera_eval build [--out runs/detector_val_camera]
    python -m training.detector.camera_eval evaluate --model models/garment-detector.tflite --name shipped
    python -m training.detector.camera_eval plot

``build`` writes, from colorful-fashion ``splits/val.txt`` only, one folder per setting beside the
clean images (Ultralytics layout, same label files)::

    runs/detector_val_camera/clean/{images,labels}   the val photos as they are (symlinks)
    runs/detector_val_camera/h240/...                person 240 px tall, blur, JPEG 50
    runs/detector_val_camera/h160/... , h110/...
    runs/detector_val_camera/manifest.json           settings, per-image person height, sha256 of every file

Person boxes (class 0) are the COCO teacher's (``yolo11n_full_integer_quant.tflite`` at the
thresholds of ``training.detector_data.teacher``), the person height H refers to the tallest one
(without one, the extent of the garment boxes). The degradation (``degrade_fixed``): area resize
of the whole photo so that person is H px tall (never enlarged), Gaussian blur sigma 0.5, JPEG
quality 50; ``noise_sigma`` (default 0) would add sensor noise from the fixed ``seed``. Labels are
normalised, so a uniform resize leaves them unchanged.

``evaluate`` runs a model on every folder: int8 TFLite through ``edge.detect.yolo.YoloDetector``
(the daemon's letterbox, decode and NMS), a ``.pt`` through ``TorchPredictor`` (the same decode),
score >= 0.001, NMS IoU 0.6; COCO-style AP (``training.detector.metrics``). Results are merged
into ``models/reports/detector/camera_scale.json`` under ``--name``; ``plot`` draws garment mAP50
against person height for every model there (``camera_scale.png``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from edge.errors import DatasetError
from edge.paths import repo_root, shared_dir
from training.detector_data import GARMENT_CLASSES, PRODUCT_CLASSES
from training.detector_data.camera import FixedDegradation, degrade_fixed, person_height

HEIGHTS = (240, 160, 110)
DEFAULT_OUT = repo_root() / "runs" / "detector_val_camera"
REPORT = repo_root() / "models" / "reports" / "detector" / "camera_scale.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_name(height: int | None) -> str:
    return "clean" if height is None else f"h{height}"


def build_degraded_val(fashion_dir: Path, out: Path, heights=HEIGHTS, seed: int = 0, teacher=None,
                       limit: int | None = None, settings: FixedDegradation = FixedDegradation(),
                       noise_sigma: float = 0.0, split_file: str = "val.txt") -> dict:
    """Write clean + one folder per height; returns the manifest. ``teacher``: a PersonTeacher-like
    object (``people(frame) -> (xyxy, scores)``), or None for the default COCO teacher."""
    from training.detector_data.prepare import read_split
    from training.detector_data.yolo_labels import Box, boxes_to_xyxy, find_image, read_labels, write_labels, xyxy_pixels_to_box

    if teacher is None:
        from training.detector_data.teacher import DEFAULT_TEACHER, PersonTeacher, TeacherSettings

        teacher = PersonTeacher(TeacherSettings(model=shared_dir() / DEFAULT_TEACHER))
    ids = read_split(fashion_dir / "splits" / split_file)[:limit]
    train_ids = set(read_split(fashion_dir / "splits" / "train.txt")) if (fashion_dir / "splits" / "train.txt").is_file() else set()
    overlap = sorted(set(ids) & train_ids)
    if overlap:
        raise DatasetError(f"{len(overlap)} ids are in both {split_file} and train.txt, e.g. {overlap[:3]}",
                           path=fashion_dir / "splits")
    names = [split_name(None)] + [split_name(h) for h in heights]
    for name in names:
        for sub in ("images", "labels"):
            d = out / name / sub
            d.mkdir(parents=True, exist_ok=True)
            for f in d.iterdir():
                f.unlink()
    manifest = {"source": str(fashion_dir / "splits" / split_file), "ids": len(ids), "heights": list(heights),
                "seed": seed, "noise_sigma": noise_sigma,
                "degradation": {"resize": "cv2.INTER_AREA, whole image, tallest person -> H px (never enlarged)",
                                "blur_sigma": settings.blur_sigma, "jpeg_quality": settings.jpeg_quality},
                "images": {}}
    for stem in ids:
        label_path = fashion_dir / "labels" / f"{stem}.txt"
        image_path = find_image(fashion_dir / "images", stem, label_path)
        frame = cv2.imread(str(image_path))
        if frame is None:
            raise DatasetError("cannot decode image", path=image_path)
        h, w = frame.shape[:2]
        people, _ = teacher.people(frame)
        garments = read_labels(label_path, len(GARMENT_CLASSES))
        boxes = [xyxy_pixels_to_box(0, b, w, h) for b in people] + [Box(b.cls + 1, b.cx, b.cy, b.w, b.h) for b in garments]
        xyxy = boxes_to_xyxy(boxes, w, h)
        cls = np.array([b.cls for b in boxes], np.int64)
        ph = person_height(xyxy, cls, h)
        entry = {"person_h": round(ph, 1), "people": len(people), "files": {}}
        clean = out / "clean" / "images" / image_path.name
        os.symlink(os.path.relpath(image_path.resolve(), clean.parent.resolve()), clean)
        write_labels(out / "clean" / "labels" / f"{stem}.txt", boxes)
        for height in heights:
            img, _ = degrade_fixed(frame, xyxy, ph, height, settings)
            if noise_sigma > 0:
                rng = np.random.default_rng([seed, zlib.crc32(stem.encode()), height])
                img = np.clip(img.astype(np.float32) + rng.normal(0, noise_sigma, img.shape), 0, 255).astype(np.uint8)
            dst = out / split_name(height) / "images" / f"{stem}.png"  # lossless: the JPEG step is inside
            cv2.imwrite(str(dst), img)
            write_labels(out / split_name(height) / "labels" / f"{stem}.txt", boxes)
            entry["files"][split_name(height)] = {"size": [img.shape[1], img.shape[0]],
                                                  "person_h": round(min(ph, ph * height / max(ph, 1.0)), 1),
                                                  "sha256": _sha(dst)}
        manifest["images"][stem] = entry
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _predictor(model: Path, conf: float, iou: float, imgsz: int):
    from training.detector.evaluate import TFLitePredictor, TorchPredictor

    if model.suffix == ".pt":
        return TorchPredictor(model, imgsz, conf, iou)
    return TFLitePredictor(model, conf, iou)


def evaluate_scales(model: Path, data: Path = DEFAULT_OUT, heights=HEIGHTS, conf: float = 0.001, iou: float = 0.6,
                    imgsz: int = 416, limit: int | None = None) -> dict:
    """garment mAP50 / per-class AP50 on clean and every degraded folder, through the daemon's decode."""
    from training.detector.evaluate import evaluate, load_split, summarise

    predict = _predictor(model, conf, iou, imgsz)
    labels = PRODUCT_CLASSES
    results = {"model": str(model), "conf": conf, "iou": iou, "scales": {}}
    for height in [None, *heights]:
        name = split_name(height)
        if not (data / name).is_dir():
            raise DatasetError("degraded set missing (run: python -m training.detector.camera_eval build)", path=data / name)
        samples = load_folder(data / name, limit)
        ev = evaluate(predict, samples, len(labels), f"{model.name} {name}")
        s = summarise(ev, labels)
        results["scales"][name] = {"person_h": height, "images": len(samples), "garment_map50": s["garment_map50"],
                                   "garment_map50_95": s["garment_map50_95"],
                                   "ap50": {k: v["ap50"] for k, v in s["per_class"].items()}}
    degraded = [results["scales"][split_name(h)]["garment_map50"] for h in heights]
    results["degraded_mean_map50"] = round(float(np.mean(degraded)), 4)
    return results


def load_folder(folder: Path, limit: int | None = None):
    """Samples of one folder (images/ + labels/), like training.detector.evaluate.load_split."""
    from training.detector.evaluate import Sample
    from training.detector_data.yolo_labels import boxes_to_xyxy, read_labels

    samples = []
    for image in sorted((folder / "images").iterdir())[:limit]:
        boxes = read_labels(folder / "labels" / f"{image.stem}.txt", len(PRODUCT_CLASSES))
        shape = cv2.imread(str(image)).shape
        samples.append(Sample(image, boxes_to_xyxy(boxes, shape[1], shape[0]), np.array([b.cls for b in boxes], np.int64)))
    return samples


def merge_report(name: str, results: dict, report: Path = REPORT) -> dict:
    data = json.loads(report.read_text()) if report.is_file() else {"models": {}}
    data["models"][name] = results
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(data, indent=1))
    return data


def plot(report: Path = REPORT, out: Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(report.read_text())
    out = out or report.with_suffix(".png")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, res in data["models"].items():
        scales = res["scales"]
        hs = sorted(h for h in HEIGHTS if split_name(h) in scales)
        xs = hs + [600]
        ys = [scales[split_name(h)]["garment_map50"] for h in hs] + [scales["clean"]["garment_map50"]]
        axes[0].plot(xs, ys, marker="o", label=f"{name} (degraded mean {res['degraded_mean_map50']:.3f})")
        dress = [scales[split_name(h)]["ap50"].get("dress") for h in hs] + [scales["clean"]["ap50"].get("dress")]
        axes[1].plot(xs, dress, marker="o", label=name)
    for ax, title in zip(axes, ["garment mAP50 (10 classes)", "dress AP50"]):
        ax.set_xlabel("person height in px (600 = clean photo, ~500-600 px)")
        ax.set_ylabel(title)
        ax.set_title(f"{title} vs person height, val, int8 via YoloDetector")
        ax.set_xticks(list(HEIGHTS) + [600])
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def table(report: Path = REPORT) -> str:
    data = json.loads(report.read_text())
    rows = ["| model | clean | H=240 | H=160 | H=110 | degraded mean | dress clean / 240 / 160 / 110 |", "|---|---|---|---|---|---|---|"]
    for name, res in data["models"].items():
        s = res["scales"]
        g = [s[k]["garment_map50"] for k in ("clean", "h240", "h160", "h110")]
        d = [s[k]["ap50"].get("dress", float("nan")) for k in ("clean", "h240", "h160", "h110")]
        rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in g) + f" | {res['degraded_mean_map50']:.3f} | "
                    + " / ".join(f"{v:.3f}" for v in d) + " |")
    return "\n".join(rows)


def per_class_table(report: Path = REPORT) -> str:
    """AP50 per class and scale, one column per (model, scale)."""
    data = json.loads(report.read_text())
    keys = ("clean", "h240", "h160", "h110")
    cols = [(name, k) for name in data["models"] for k in keys]
    rows = ["| class | " + " | ".join(f"{n[:14]} {k}" for n, k in cols) + " |", "|---|" + "---|" * len(cols)]
    for cls in PRODUCT_CLASSES:
        vals = [data["models"][n]["scales"][k]["ap50"].get(cls) for n, k in cols]
        rows.append(f"| {cls} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in vals) + " |")
    rows.append("| **garments** | " + " | ".join(f"**{data['models'][n]['scales'][k]['garment_map50']:.3f}**"
                                             for n, k in cols) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.detector.camera_eval", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--limit", type=int, default=None)
    e = sub.add_parser("evaluate")
    e.add_argument("--model", type=Path, default=repo_root() / "models/garment-detector.tflite")
    e.add_argument("--name", default="shipped")
    e.add_argument("--data", type=Path, default=DEFAULT_OUT)
    e.add_argument("--report", type=Path, default=REPORT)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--imgsz", type=int, default=416)
    p = sub.add_parser("plot")
    p.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    if args.cmd == "build":
        m = build_degraded_val(shared_dir() / "datasets/colorful-fashion", args.out, seed=args.seed, limit=args.limit)
        hs = [e["person_h"] for e in m["images"].values()]
        print(f"wrote {args.out}: {m['ids']} images x (clean + {m['heights']}); person height in the clean photos "
              f"median {np.median(hs):.0f} px, min {min(hs):.0f}")
    elif args.cmd == "evaluate":
        res = evaluate_scales(args.model, args.data, limit=args.limit, imgsz=args.imgsz)
        merge_report(args.name, res, args.report)
        print(json.dumps({k: v["garment_map50"] for k, v in res["scales"].items()}), "degraded mean", res["degraded_mean_map50"])
        print(table(args.report))
        print(f"figure: {plot(args.report)}")
    elif args.cmd == "plot":
        print(plot(args.report))
        print(table(args.report))
        print(per_class_table(args.report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

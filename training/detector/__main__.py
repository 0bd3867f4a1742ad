"""``python -m training.detector --config configs/detector.yaml [--steps ...]``.

Steps (in order): prepare (dataset + teacher person labels), recover (COCO weights from the
int8 TFLite, verified), train (Ultralytics, CPU), evaluate (float and int8 side by side,
figures), export (int8 TFLite + manifest + parity check).
"""

from __future__ import annotations

import argparse
import sys

from edge.errors import FashionEdgeError

STEPS = ["prepare", "recover", "train", "evaluate", "export"]


def run_prepare(cfg) -> None:
    from training.detector_data.prepare import PrepareSettings, prepare
    from training.detector_data.teacher import TeacherSettings

    data = cfg.section("data")
    teacher = dict(data.get("teacher", {}))
    settings = PrepareSettings(
        fashion_dir=cfg.shared_path(data["fashion_dir"]),
        media_dir=cfg.shared_path(data["media_dir"]),
        out=cfg.local_path(data["out"]),
        teacher=TeacherSettings(model=cfg.shared_path(teacher.pop("model")), **teacher),
        frame_step=int(data.get("store_frame_step", 10)),
        store_train_fraction=float(data.get("store_train_fraction", 0.8)),
        train_frame_step=data.get("store_train_frame_step"),
        oversample=dict(data.get("oversample") or {}),
    )
    print(f"dataset: {prepare(settings)}")


def run_recover(cfg) -> None:
    import json

    from training.detector.train import recovered_checkpoint
    from training.recover_coco import calibrate_batchnorm, recover, save_checkpoint, verify

    init = cfg.section("init")
    if init.get("mode") != "recovered":
        print("init.mode is not 'recovered'; nothing to recover")
        return
    tflite = cfg.shared_path(init["tflite"])
    imgsz = int(cfg.get("train", "imgsz"))
    model, stats = recover(tflite, init.get("model_yaml", "yolov8n.yaml"), cfg.shared_path("media/bus.jpg"), imgsz)
    # BN statistics from training images (the prepared train split, colorful-fashion + store frames)
    train_images = sorted((cfg.local_path(cfg.get("data", "out")) / "images" / "train").iterdir())
    step = max(1, len(train_images) // int(init.get("bn_calibration_images", 128)))
    stats["bn_calibration_images"] = calibrate_batchnorm(model, train_images[::step], imgsz)
    media = cfg.shared_path("media")
    report = verify(model, tflite, [media / "bus.jpg", media / "zidane.jpg"], imgsz,
                    float(init.get("verify_tolerance_px", 8.0)))
    report.update(stats)
    print(json.dumps(report, indent=1))
    if not report["passed"]:
        raise FashionEdgeError("recovered model does not reproduce the TFLite detections", path=tflite)
    out = recovered_checkpoint(cfg)
    save_checkpoint(model, out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))


def run_train(cfg, time_hours, name) -> None:
    from training.detector.train import train

    print(f"best: {train(cfg, time_hours, name)}")


def run_evaluate(cfg, weights) -> None:
    from training.detector.evaluate import evaluate_all

    evaluate_all(cfg, weights)


def run_export(cfg, weights) -> None:
    from training.detector.export_step import export_from_config

    export_from_config(cfg, weights)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.detector", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/detector.yaml")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {STEPS}")
    parser.add_argument("--time-hours", type=float, default=None, help="override train.time_hours")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--init", choices=["recovered", "checkpoint", "scratch"], default=None, help="override init.mode")
    parser.add_argument("--name", default=None, help="Ultralytics run name under work_dir")
    parser.add_argument("--weights", default=None, help="best.pt to evaluate/export (default: the run's best.pt)")
    args = parser.parse_args(argv)
    from training.detector.config import load_config

    try:
        cfg = load_config(args.config)
        if args.epochs is not None:
            cfg.section("train")["epochs"] = args.epochs
        if args.init is not None:
            cfg.section("init")["mode"] = args.init
        steps = [s.strip() for s in args.steps.split(",") if s.strip()]
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise FashionEdgeError(f"unknown step(s) {unknown}; expected some of {STEPS}", field="--steps")
        from training.detector.train import run_name

        weights = args.weights or str(cfg.work_dir / run_name(cfg, args.name) / "weights" / "best.pt")
        for step in STEPS:
            if step not in steps:
                continue
            print(f"== {step}", flush=True)
            if step == "prepare":
                run_prepare(cfg)
            elif step == "recover":
                run_recover(cfg)
            elif step == "train":
                run_train(cfg, args.time_hours, args.name)
            elif step == "evaluate":
                run_evaluate(cfg, weights)
            elif step == "export":
                run_export(cfg, weights)
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

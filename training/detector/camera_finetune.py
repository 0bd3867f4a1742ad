"""Camera-scale fine-tuning (issue 10): build the degraded training set, then train or resume.

    python -m training.detector.camera_finetune --config configs/detector_camera.yaml [--steps data,train]
    python -m training.detector.camera_finetune --config configs/detector_camera.yaml --resume

* ``data``: ``training.detector_data.camera_dataset.build_camera_train`` from ``data.source`` into
  ``data.out`` (settings in the config's ``camera`` section).
* ``train``: Ultralytics from ``init.checkpoint`` with ``training.detector.model.GarmentTrainer``
  (keeps the shipped model's 80-wide class branch). Ultralytics writes ``weights/last.pt`` after
  every epoch; ``--resume`` continues from it (same optimiser state, epoch and time budget:
  Ultralytics' ``time`` is the total for the run, so pass ``--time-hours`` to extend it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.errors import ConfigError, FashionEdgeError


def run_data(cfg) -> dict:
    from training.detector_data.camera import AugmentSettings
    from training.detector_data.camera_dataset import build_camera_train
    from training.detector_data.prepare import read_split

    cam = dict(cfg.section("camera"))
    settings = AugmentSettings(person_h=tuple(cam.get("person_h", (90, 300))),
                               jpeg_quality=tuple(cam.get("jpeg_quality", (25, 80))))
    val_ids = set(read_split(cfg.shared_path(cfg.get("data", "fashion_dir")) / "splits" / "val.txt"))
    teacher, teacher_conf = None, 0.5
    pseudo = cam.get("store_pseudo_labels")
    if pseudo:  # garment labels for the store frames from a garment detector (an int8 .tflite)
        from training.detector.evaluate import TFLitePredictor

        model = cfg.local_path(pseudo["teacher"])
        if not model.is_file():
            raise ConfigError(f"file not found: {model}", path=cfg.path, field="camera.store_pseudo_labels.teacher")
        teacher_conf = float(pseudo.get("conf", 0.5))
        teacher = TFLitePredictor(model, teacher_conf, 0.6)
    summary = build_camera_train(cfg.local_path(cfg.get("data", "source")), cfg.local_path(cfg.get("data", "out")),
                                 val_ids, seed=int(cam.get("seed", 0)), p_degrade=float(cam.get("p_degrade", 0.7)),
                                 max_fashion=cam.get("max_fashion"), store_step=int(cam.get("store_step", 1)),
                                 settings=settings, store_teacher=teacher, store_teacher_conf=teacher_conf)
    print(json.dumps(summary["images"]), json.dumps(summary["person_h"]), json.dumps(summary["store_pseudo_labels"]))
    return summary


def run_train(cfg, resume: bool, time_hours: float | None) -> Path:
    from training.detector.model import garment_trainer_class
    from training.detector.train import init_weights, run_name
    from export.ultralytics_env import setup_ultralytics

    setup_ultralytics()
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(2)
    run = run_name(cfg)
    last = cfg.work_dir / run / "weights" / "last.pt"
    trainer = garment_trainer_class()
    started = time.time()
    if resume:
        if not last.is_file():
            raise ConfigError(f"{last} is missing: nothing to resume", path=cfg.path, field="run_name")
        if time_hours is not None:  # Ultralytics reads the budget from the checkpoint's train_args
            import torch as _t

            ckpt = _t.load(last, weights_only=False)
            ckpt["train_args"]["time"] = time_hours
            _t.save(ckpt, last)
        YOLO(str(last)).train(resume=True, trainer=trainer)
    else:
        t = dict(cfg.section("train"))
        hours = time_hours if time_hours is not None else t.pop("time_hours", None)
        t.pop("time_hours", None)
        data_yaml = cfg.local_path(cfg.get("data", "out")) / "data.yaml"
        if not data_yaml.is_file():
            raise ConfigError(f"{data_yaml} is missing; run the 'data' step first", path=cfg.path, field="data.out")
        YOLO(init_weights(cfg)).train(data=str(data_yaml), project=str(cfg.work_dir), name=run, exist_ok=True,
                                      time=hours, plots=True, verbose=True, amp=False, trainer=trainer, **t)
    best = cfg.work_dir / run / "weights" / "best.pt"
    (cfg.work_dir / run / f"train_summary_{int(started)}.json").write_text(json.dumps(
        {"resume": resume, "wall_s": round(time.time() - started, 1), "best": str(best), "last": str(last)}, indent=1))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.detector.camera_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/detector_camera.yaml")
    parser.add_argument("--steps", default="data,train")
    parser.add_argument("--resume", action="store_true", help="continue the run from weights/last.pt")
    parser.add_argument("--time-hours", type=float, default=None)
    args = parser.parse_args(argv)
    from training.detector.config import load_config

    try:
        cfg = load_config(args.config)
        steps = ["train"] if args.resume else [s.strip() for s in args.steps.split(",") if s.strip()]
        if "data" in steps:
            print("== data", flush=True)
            run_data(cfg)
        if "train" in steps:
            print("== train", flush=True)
            print(f"best: {run_train(cfg, args.resume, args.time_hours)}")
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Export the camera-scale candidate, measure it beside the shipped model, apply the ship rule.

    python -m training.detector.camera_ship --config configs/detector_camera.yaml [--weights W.pt] [--dry-run]

1. ``training.detector.export_step.export_from_config``: int8 TFLite of ``--weights`` (default the run's
   ``best.pt``) at ``export.model`` (under runs/, not where the daemon loads), float vs int8 on
   the clean val split with the existing parity gate (``export.max_map50_drop``); its report goes
   to ``<candidate>_report/`` beside the candidate, so the shipped model's report is untouched.
2. ``training.detector.camera_eval.evaluate_scales`` on the candidate (int8, YoloDetector), merged
   into ``models/reports/detector/camera_scale.json`` beside the shipped model's row.
3. Ship rule (issue 10): the candidate ships when, on the same data and decode, its degraded mean
   garment mAP50 (H = 240, 160, 110) is higher than the shipped model's, its clean garment mAP50
   is at most 1 point lower, and parity passed. Shipping copies the TFLite file and its manifest to
   ``models/garment-detector.tflite`` / ``.json`` and the export report into
   ``models/reports/detector/``. The decision is written to ``camera_ship_decision.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from edge.errors import FashionEdgeError
from edge.paths import repo_root

SHIPPED = repo_root() / "models" / "garment-detector.tflite"
MAX_CLEAN_DROP = 0.01


def decide(shipped: dict, candidate: dict, parity_passed: bool, max_clean_drop: float = MAX_CLEAN_DROP) -> dict:
    """The ship rule on two ``evaluate_scales`` results."""
    clean_drop = shipped["scales"]["clean"]["garment_map50"] - candidate["scales"]["clean"]["garment_map50"]
    gain = candidate["degraded_mean_map50"] - shipped["degraded_mean_map50"]
    checks = {"degraded_mean_higher": gain > 0, "clean_drop_within": clean_drop <= max_clean_drop + 1e-9,
              "parity_passed": bool(parity_passed)}
    return {"ship": all(checks.values()), "checks": checks, "degraded_mean_gain": round(gain, 4),
            "clean_drop": round(clean_drop, 4), "max_clean_drop": max_clean_drop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.detector.camera_ship", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/detector_camera.yaml")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--shipped-name", default="round 2 WiSE 0.5 (shipped)",
                        help="the row of the model in models/ in the report (evaluated there when missing)")
    parser.add_argument("--name", default="camera fine-tune (candidate)")
    parser.add_argument("--dry-run", action="store_true", help="decide, but copy nothing into models/")
    parser.add_argument("--out", type=Path, default=None, help="candidate TFLite (default export.model)")
    parser.add_argument("--report", type=Path, default=None, help="camera_scale.json to merge into")
    args = parser.parse_args(argv)
    from export.detector import ParityError
    from training.detector.export_step import export_from_config
    from training.detector.camera_eval import REPORT, evaluate_scales, merge_report, plot, table
    from training.detector.config import load_config
    from training.detector.train import run_name

    cfg = load_config(args.config)
    run_dir = cfg.work_dir / run_name(cfg)
    weights = Path(args.weights) if args.weights else run_dir / "weights" / "best.pt"
    out = args.out.resolve() if args.out else cfg.local_path(cfg.get("export", "model"))
    report_dir = out.parent / f"{out.stem}_report"
    report = args.report or REPORT
    try:
        metrics = export_from_config(cfg, weights, out=out, report_dir=report_dir)
        parity = metrics["parity"]
    except ParityError as exc:
        print(f"parity gate failed: {exc}", file=sys.stderr)
        parity = {"passed": False, "error": str(exc)}
    except FashionEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = json.loads(report.read_text()) if report.is_file() else {"models": {}}
    if args.shipped_name not in data["models"]:
        data = merge_report(args.shipped_name, evaluate_scales(SHIPPED), report)
    shipped = data["models"][args.shipped_name]
    candidate = evaluate_scales(out)
    candidate["weights"] = str(weights)
    candidate["parity"] = parity
    merge_report(args.name, candidate, report)
    plot(report)
    decision = decide(shipped, candidate, parity.get("passed", False))
    decision.update({"candidate": str(out), "weights": str(weights), "shipped_before": args.shipped_name,
                     "candidate_name": args.name, "dry_run": args.dry_run})
    if decision["ship"] and not args.dry_run:
        from edge.runtime import manifest_path

        shutil.copy(out, SHIPPED)
        manifest = json.loads(manifest_path(out).read_text())
        manifest["metrics"]["camera_scale"] = {k: v["garment_map50"] for k, v in candidate["scales"].items()}
        manifest["source"] = ("YOLOv8n fine-tuned at store-camera scale by `python -m training.detector.camera_finetune "
                              f"--config {args.config}` from the stage-2 model (float weights recovered from its int8 file)")
        manifest_path(SHIPPED).write_text(json.dumps(manifest, indent=1) + "\n")
        dest = repo_root() / "models" / "reports" / "detector"
        for f in report_dir.iterdir():
            if f.is_file():
                shutil.copy(f, dest / f.name)
        decision["shipped_to"] = str(SHIPPED)
    decision_path = REPORT.parent / "camera_ship_decision.json" if report == REPORT else report.with_name(
        report.stem + "_decision.json")
    decision_path.write_text(json.dumps(decision, indent=1))
    print(table(report))
    print(json.dumps(decision, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``export`` step of ``python -m training.detector``: a trained run's weights -> the int8
TFLite model the daemon loads, judged before it ships.

``export.detector`` does the conversion (PyTorch -> TF graph -> int8 TFLite), the manifest and the
parity rule; this step adds what needs the training side: the config's paths, calibration images
from the prepared dataset, and the float vs int8 evaluation (``training.detector.evaluate``). The
import runs one way: training imports export, never the reverse.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge.errors import FashionEdgeError
from edge.paths import repo_root
from edge.runtime import manifest_path
from export.detector import DEFAULT_MAX_MAP50_DROP, convert, load_torch_model, parity, write_manifest

from .evaluate import evaluate_all


def _config_name(path: Path) -> str:
    """The config as the manifest's ``source`` names it: repo-relative inside the checkout, else absolute."""
    path, repo = Path(path).resolve(), repo_root()
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)


def export_from_config(cfg, weights: str | Path, out: Path | None = None, report_dir: Path | None = None) -> dict:
    """Export, evaluate float vs int8 on val, check parity, write manifest + report."""
    ex = cfg.section("export")
    imgsz = int(cfg.get("train", "imgsz"))
    out = out or cfg.local_path(ex["model"])
    data_dir = cfg.local_path(cfg.get("data", "out"))
    train_images = sorted((data_dir / "images" / "train").iterdir())
    n = int(ex.get("calibration_images", 300))
    calibration = train_images[:: max(1, len(train_images) // n)][:n]
    model, labels = load_torch_model(weights)
    conversion = convert(model, imgsz, calibration, out, check_images=[cfg.shared_path("media/bus.jpg")])
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {conversion}")
    # A preliminary manifest so the daemon's detector can load the file for evaluation.
    config = _config_name(cfg.path)
    write_manifest(out, labels, imgsz, {}, config=config)
    results = evaluate_all(cfg, weights, tflite=out, report_dir=report_dir)
    report = parity(results["float"]["garment_map50"], results["int8"]["garment_map50"],
                    float(ex.get("max_map50_drop", DEFAULT_MAX_MAP50_DROP)))
    metrics = {
        "val_garment_map50": results["int8"]["garment_map50"],
        "val_garment_map50_95": results["int8"]["garment_map50_95"],
        "val_per_class": results["int8"]["per_class"],
        "store_person": results["int8"]["store_person"],
        "float_val_garment_map50": results["float"]["garment_map50"],
        "parity": report,
        "conversion": conversion,
    }
    write_manifest(out, labels, imgsz, metrics, config=config)
    ship_min = float(ex.get("ship_min_garment_map50", 0.55))
    metrics["shippable"] = results["int8"]["garment_map50"] >= ship_min
    print(json.dumps({k: v for k, v in metrics.items() if k != "val_per_class"}, indent=1))
    if not metrics["shippable"]:
        # Keep the candidate for inspection, but never leave it where the daemon would load it.
        keep = cfg.work_dir / "candidate"
        keep.mkdir(parents=True, exist_ok=True)
        out.replace(keep / out.name)
        manifest_path(out).replace(keep / manifest_path(out).name)
        raise FashionEdgeError(
            f"int8 garment mAP50 {results['int8']['garment_map50']:.3f} is below the ship bound {ship_min}; "
            f"candidate moved to {keep}", field="export.ship_min_garment_map50")
    return metrics

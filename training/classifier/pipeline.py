"""One run: data -> train -> float evaluation -> int8 export -> int8 evaluation (edge path) ->
parity -> ship (model + manifest) -> report folder. Also K-fold cross-validation."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from edge.errors import DatasetError, ModelError
from edge.paths import repo_relative

from ..data.clothing import grouped_folds
from ..labels import load_label_map
from .config import ClassifierConfig
from .data import Arrays, TrainingData, build_training_data
from .evaluate import summary

# Paths in reports relative to the repo (../shared stays ../shared), never /work/...
rel = repo_relative


def _sample(images: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))]


def run_training(config: ClassifierConfig, config_path: Path, log=print, from_keras: Path | None = None,
                 resume: bool = False) -> dict:
    """Train, evaluate, export and (if every check passes) ship. Returns the metrics record.

    ``from_keras``: skip training and re-export a float model saved by an earlier run
    (``<cache_dir>/last_run/float_model.keras``), e.g. after changing the export settings.
    """
    from export.classifier import export_int8, write_manifest
    from export.parity import check_parity, parity_report, tflite_probabilities

    from .evaluate import classification_report, evaluate, plot_confusion, plot_history
    from .train import predict, train_classifier

    started = time.monotonic()
    label_map = load_label_map(config.label_map)
    data = build_training_data(config, label_map)
    log(f"train {len(data.train.labels)} images, validation {len(data.validation.labels)} images, {len(label_map.labels)} labels")
    report_dir = Path(config.output.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)

    if from_keras is None:
        soft_targets, teacher_record = None, None
        if config.train.distill is not None:
            soft_targets, teacher_record = _teacher_targets(config, label_map, data, log)
        model, history = train_classifier(config, data, len(label_map.labels), log=log, soft_targets=soft_targets,
                                          run_dir=config.output.run_dir, resume=resume)
        train_s = time.monotonic() - started
        # keep the float model (ignored cache) so export settings can be revisited without retraining
        saved = Path(config.cache_dir or report_dir) / "last_run" / "float_model.keras"
        saved.parent.mkdir(parents=True, exist_ok=True)
        model.save(saved)
        (saved.parent / "history.json").write_text(
            json.dumps({"history": history, "distillation": teacher_record, "train_seconds": train_s}) + "\n"
        )
        log(f"float model saved to {rel(saved)}")
    else:
        import keras

        from .train import configure_threads

        configure_threads(config.train.threads)
        log(f"no training: evaluating and exporting {rel(from_keras)}")
        model = keras.models.load_model(from_keras)
        saved_run = json.loads((Path(from_keras).parent / "history.json").read_text())
        if "history" not in saved_run:  # written by the first version: the history alone
            saved_run = {"history": saved_run, "distillation": None, "train_seconds": float("nan")}
        history, teacher_record, train_s = saved_run["history"], saved_run["distillation"], saved_run["train_seconds"]
    if config.export.flip_average:
        from .models import flip_averaged

        model = flip_averaged(model)
    norm = config.model.normalisation
    float_probs = predict(model, data.validation.images, norm)
    float_metrics = evaluate(float_probs, data.validation.labels, label_map.labels, label_map.ten_classes)
    log(f"float: top-1 {float_metrics['top1']:.4f}, ten-class {float_metrics.get('ten_class_accuracy', float('nan')):.4f}")

    candidate = report_dir / "candidate.tflite"
    calibration = _sample(data.train.images, config.export.calibration_images, config.seed)
    log(f"int8 export, calibrated on {len(calibration)} training images")
    export_int8(model, calibration, norm, candidate)
    int8_probs = tflite_probabilities(candidate, data.validation.images, norm, config.export.threads)
    int8_metrics = evaluate(int8_probs, data.validation.labels, label_map.labels, label_map.ten_classes)
    parity = parity_report(float_probs, int8_probs, data.validation.labels, config.export.max_accuracy_drop)
    log(f"int8: top-1 {int8_metrics['top1']:.4f}, ten-class {int8_metrics.get('ten_class_accuracy', float('nan')):.4f}, "
        f"agreement {parity['top1_agreement']:.4f}, drop {parity['accuracy_drop'] * 100:.2f} points")

    title = f"{model.name} {config.model.image_size}px"
    plot_history(history, report_dir / "training_curves.png", f"{title}: training curves")
    plot_confusion(float_metrics, report_dir / "confusion_float.png", f"{title} float: validation confusion")
    plot_confusion(int8_metrics, report_dir / "confusion_int8.png", f"{title} int8: validation confusion")

    ten = int8_metrics.get("ten_class_accuracy", 0.0)
    # The ship rule runs the candidate through the daemon's GarmentClassifier, which reads the
    # manifest beside the model: write a provisional one (rewritten below with the outcome).
    write_manifest(candidate, label_map.labels, config.model.image_size, norm,
                   {"ten_classes": label_map.ten_classes, "shipped": False})
    from .ship import apply_ship_rule

    ship_rule = apply_ship_rule(config, candidate, data.validation.samples, data.validation.labels,
                                label_map.labels, label_map.ten_classes, log)
    ship_checks = {
        "parity": parity["passed"],
        "min_ten_class_accuracy": ten >= config.export.min_ten_class_accuracy,
        "ship_rule": ship_rule["beats_all"],
    }
    training_record = {
        "config": rel(config_path),
        "command": f"python -m training.classifier --config {rel(config_path)}",
        "label_map": rel(config.label_map),
        "backbone": model.name,
        "weights": rel(config.model.weights) if config.model.weights else None,
        "image_size": config.model.image_size,
        "seed": config.seed,
        "data": data.provenance,
        "split": _split_record(config, data),
        "epochs": {"head": history["stage"].count("head"), "finetune": history["stage"].count("finetune")},
        "distillation": teacher_record,
        "train_seconds": None if train_s != train_s else round(train_s),
        "reexported_from": rel(from_keras) if from_keras else None,
        "calibration_images": int(len(calibration)),
        "host": f"{platform.machine()} {os.cpu_count()} cpu",
    }
    record = {
        "training": training_record,
        "metrics": {"float": summary(float_metrics), "int8": summary(int8_metrics)},
        "parity": parity,
        "ship_rule": {k: v for k, v in ship_rule.items() if k != "candidate_full"},
        "ship_checks": ship_checks,
        "shipped": False,
        "float": float_metrics,
        "int8": int8_metrics,
        "history": history,
    }
    shipped = all(ship_checks.values())
    out = Path(config.output.model) if shipped else candidate
    if shipped:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidate, out)
        candidate.unlink()
        candidate.with_suffix(".json").unlink(missing_ok=True)  # the provisional manifest
    # a candidate that fails a check still gets its manifest, so it can be tried with the edge code
    manifest = write_manifest(
        out, label_map.labels, config.model.image_size, norm,
        {"ten_classes": label_map.ten_classes, "shipped": shipped, "ship_checks": ship_checks,
         "training": training_record, "metrics": record["metrics"], "parity": parity,
         "ship_rule": record["ship_rule"]},
    )
    record["shipped"] = shipped
    record["model"] = {"path": rel(out), "manifest": rel(manifest), "size_bytes": out.stat().st_size,
                       "sha256": json.loads(manifest.read_text())["sha256"]}
    log(f"{'shipped' if shipped else 'NOT shipped, candidate'} {rel(out)} ({out.stat().st_size / 1024:.0f} KiB) + {rel(manifest)}")
    (report_dir / "classification_report.txt").write_text(
        classification_report(int8_metrics, f"int8 TFLite ({rel(out)}), validation split")
        + "\n" + classification_report(float_metrics, "float Keras model, validation split")
    )
    record["total_seconds"] = round(time.monotonic() - started)
    (report_dir / "metrics.json").write_text(json.dumps(record, indent=1) + "\n")
    if not shipped:
        failed = ", ".join(k for k, ok in ship_checks.items() if not ok)
        check_parity(parity, candidate)  # raises ParityError with the figures if parity failed
        beaten = [name for name, per in ship_rule["checks"].items() if not all(c["beaten"] for c in per.values())]
        why = []
        if not ship_checks["ship_rule"]:
            why.append(f"does not beat {', '.join(beaten)} on {'/'.join(ship_rule['metrics'])}")
        if not ship_checks["min_ten_class_accuracy"]:
            why.append(f"int8 ten-class accuracy {ten:.4f} < {config.export.min_ten_class_accuracy}")
        raise ModelError(
            f"not shipped ({failed}): {'; '.join(why)}; "
            f"candidate kept with its manifest, see {rel(report_dir / 'metrics.json')}",
            path=candidate,
        )
    return record


def _teacher_targets(config: ClassifierConfig, label_map, data: TrainingData, log) -> tuple[np.ndarray, dict]:
    from .teacher import fit_teacher

    distill = config.train.distill
    teacher, teacher_data = fit_teacher(config, label_map, distill.teacher, log=log)
    if teacher.train_keys != data.train.keys:
        raise DatasetError("teacher and student training images differ (same config, other order?)", field="train.distill")
    one_hot = np.eye(len(label_map.labels), dtype=np.float32)[data.train.labels]
    targets = (1 - distill.weight) * one_hot + distill.weight * teacher.train_probabilities
    val_top1 = float((teacher.validation_probabilities.argmax(1) == teacher_data.validation.labels).mean())
    record = {"teacher": rel(distill.teacher), "weight": distill.weight, "teacher_validation_top1": val_top1}
    return targets.astype(np.float32), record


def _split_record(config: ClassifierConfig, data: TrainingData) -> dict | None:
    if data.split is None:
        return None
    source = next(s for s in config.data if s.format == "clothing")
    return {
        "file": rel(source.split_file),
        "group_by": data.split["group_by"],
        "seed": data.split["seed"],
        "validation_images": len(data.split["validation_images"]),
        "validation_groups": len(data.split["validation_groups"]),
    }


def run_cross_validation(config: ClassifierConfig, folds: int, log=print) -> dict:
    """K sender-grouped folds of the clothing dataset (other sources always train); float metrics."""
    from .evaluate import evaluate
    from .train import predict, train_classifier

    label_map = load_label_map(config.label_map)
    if config.train.distill is not None:
        # the teacher is fitted on the fixed split; its targets would leak fold validation images
        log("cross-validation trains without distillation (train.distill ignored)")
        config = config.model_copy(deep=True)
        config.train.distill = None
    data = build_training_data(config, label_map)
    clothing = next((s for s in config.data if s.format == "clothing"), None)
    if clothing is None:
        raise DatasetError("--folds needs a clothing source (folds are grouped by sender)", field="data")
    # pool the clothing images of both sides, then re-split them K ways by sender
    from ..data.clothing import load_clothing

    samples = [s for s in label_map.apply(load_clothing(clothing.root), clothing.name)]
    key_to_group = {s.key: s.group for s in samples}
    fold_of_group = grouped_folds(samples, folds, config.seed)
    is_clothing_train = data.train.sources == "clothing"
    pool = Arrays(
        np.concatenate([data.train.images[is_clothing_train], data.validation.images]),
        np.concatenate([data.train.labels[is_clothing_train], data.validation.labels]),
        np.concatenate([data.train.sources[is_clothing_train], data.validation.sources]),
        [k for k, c in zip(data.train.keys, is_clothing_train) if c] + data.validation.keys,
    )
    extra = Arrays(data.train.images[~is_clothing_train], data.train.labels[~is_clothing_train], data.train.sources[~is_clothing_train])
    pool_fold = np.array([fold_of_group[key_to_group[k]] for k in pool.keys])
    results = []
    for k in range(folds):
        val_mask = pool_fold == k
        fold_data = TrainingData(
            train=Arrays(np.concatenate([pool.images[~val_mask], extra.images]),
                         np.concatenate([pool.labels[~val_mask], extra.labels]),
                         np.concatenate([pool.sources[~val_mask], extra.sources])),
            validation=Arrays(pool.images[val_mask], pool.labels[val_mask], pool.sources[val_mask]),
            provenance=data.provenance, split=None,
        )
        log(f"fold {k + 1}/{folds}: train {len(fold_data.train.labels)}, validation {int(val_mask.sum())}")
        model, _ = train_classifier(config, fold_data, len(label_map.labels), log=log)
        probs = predict(model, fold_data.validation.images, config.model.normalisation)
        metrics = summary(evaluate(probs, fold_data.validation.labels, label_map.labels, label_map.ten_classes))
        log(f"fold {k + 1}: top-1 {metrics['top1']:.4f}, ten-class {metrics.get('ten_class_accuracy', float('nan')):.4f}")
        results.append(metrics)
    keys = ("top1", "top3", "macro_f1", "ten_class_accuracy")
    aggregate = {
        key: {"mean": float(np.mean([r[key] for r in results if key in r])), "std": float(np.std([r[key] for r in results if key in r]))}
        for key in keys
    }
    record = {"folds": folds, "seed": config.seed, "group_by": "sender_id", "distillation": False, "per_fold": results, "aggregate": aggregate}
    report_dir = Path(config.output.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"cv_{folds}fold.json").write_text(json.dumps(record, indent=1) + "\n")
    return record

"""Export, check and ship a trained person-attribute model; write its report and model card.

1. int8 export (``export.attributes``), calibrated on training crops.
2. Validation through the daemon's code path: every validation crop framed by
   ``edge.preprocess.person_box_with_margin`` and read by ``edge.attributes.model.PersonAttributeModel``.
3. Parity gate: no attribute's AUC may drop more than ``export.max_auc_drop`` from float to int8.
4. Operating points: per attribute, the score at a false-positive rate of 0.05 on validation
   (``operating_points``): the manifest's ``thresholds``.
5. Report (``output.report_dir``): metrics.json (per attribute, per source, per PETA height
   bucket), training curves and AUC-by-height PNGs, MODEL_CARD.md naming every training set and
   its licence. The model replaces ``output.model`` unless ``--no-ship``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edge.errors import ModelError

from . import labels as L
from .metrics import summary
from .train import framed_set, predict

HEIGHT_BUCKETS = (("<100", 0, 100), ("100-180", 100, 180), (">180", 180, 10**9))
MIN_PRECISION = 0.9


def score_table(scores: np.ndarray, targets: np.ndarray) -> dict:
    """Per attribute (and the derived dress_or_skirt) summary on the known labels."""
    full, truth = L.with_derived(scores), L.any_dress_or_skirt_truth(targets)
    out = {name: summary(full[:, k], targets[:, k], MIN_PRECISION) for k, name in enumerate(L.ATTRIBUTES)}
    out["dress_or_skirt"] = summary(full[:, -1], truth, MIN_PRECISION)
    return out


OPERATING_FPR = 0.05


def operating_points(scores: np.ndarray, targets: np.ndarray, fpr: float = OPERATING_FPR) -> dict[str, float]:
    """Score at which each attribute counts as worn: the score that 5 % of the validation crops
    *not* wearing it reach (false-positive rate 0.05).

    A false-positive rate does not depend on how common an attribute is, and a store's base rates
    are not PETA's (a suit shop, a summer day in shorts); precision per customer comes from the
    consensus (several agreeing looks, edge/consensus.py) and the rules (a dress needs the garment
    and the person to agree). Measured alternatives: a per-crop precision of 0.9 set pants at 0.10
    (77 % of PETA wears trousers: most dresses would be vetoed) and suit above 0.95; Youden's J set
    suit at 0.02 and dress at 0.04 (a false-positive rate near 30 %)."""
    full = L.with_derived(scores)
    truths = [targets[:, k] for k in range(len(L.ATTRIBUTES))] + [L.any_dress_or_skirt_truth(targets)]
    out = {}
    for k, name in enumerate(list(L.ATTRIBUTES) + ["dress_or_skirt"]):
        negatives = full[truths[k] == 0, k]
        thr = float(np.quantile(negatives, 1.0 - fpr)) if len(negatives) else 0.5
        out[name] = float(min(0.99, max(0.01, thr)))
    return out


def edge_scores(model_path: Path, val_set) -> np.ndarray:
    """Scores of the int8 model through the daemon's reader (edge.attributes.model), which reads
    the manifest beside the model and frames each crop with its margin."""
    from edge.attributes.model import PersonAttributeModel
    from edge.preprocess import person_box_with_margin

    reader = PersonAttributeModel(model_path, threads=2)
    out = np.zeros((len(val_set), len(L.ATTRIBUTES)), np.float32)
    for i in range(len(val_set)):
        x1, y1, x2, y2 = person_box_with_margin(val_set.boxes[i], reader.margin, val_set.images[i].shape)
        out[i] = reader.probabilities(val_set.images[i][y1:y2, x1:x2])
    return out


def by_height(scores: np.ndarray, val_set) -> dict:
    """PETA validation crops by person height bucket (the store camera's range)."""
    targets = val_set.target_matrix()
    heights = np.asarray(val_set.heights)
    peta = np.array([s.startswith("peta") for s in val_set.sources])
    out = {}
    for name, lo, hi in HEIGHT_BUCKETS:
        mask = peta & (heights >= lo) & (heights < hi)
        out[name] = {"crops": int(mask.sum()), **score_table(scores[mask], targets[mask])} if mask.any() else {"crops": 0}
    return out


def by_source(scores: np.ndarray, val_set) -> dict:
    targets = val_set.target_matrix()
    sources = np.array([s.split("/")[0] for s in val_set.sources])
    return {src: {"crops": int((sources == src).sum()), **score_table(scores[sources == src], targets[sources == src])}
            for src in sorted(set(sources))}


def plot_report(report_dir: Path, history: list[dict], height_table: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    epochs = [h["epoch"] for h in history]
    for name in list(L.ATTRIBUTES) + ["dress_or_skirt"]:
        axes[0].plot(epochs, [h["val_auc"].get(name, np.nan) for h in history], marker="o", label=name)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation AUC (float)")
    axes[0].set_title("Training: validation AUC per attribute")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    names = ["suit", "dress_or_skirt", "pants", "shorts", "outwear"]
    buckets = [b for b, _, _ in HEIGHT_BUCKETS]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [height_table[b].get(name, {}).get("auc", np.nan) if height_table[b].get("crops") else np.nan for b in buckets]
        axes[1].bar(np.arange(len(buckets)) + i * width, values, width, label=name)
    axes[1].set_xticks(np.arange(len(buckets)) + width * (len(names) - 1) / 2)
    axes[1].set_xticklabels([f"{b} px\n({height_table[b].get('crops', 0)} crops)" for b in buckets])
    axes[1].set_ylim(0.5, 1.0)
    axes[1].set_ylabel("AUC (int8, through the edge reader)")
    axes[1].set_title("PETA validation by person height")
    axes[1].legend(fontsize=8)
    axes[1].grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(report_dir / "attributes.png", dpi=110)
    plt.close(fig)


def model_card(config, config_path: Path, manifest: dict, table: dict) -> str:
    lines = [
        "# Model card: person attributes (clothing at store-camera scale)",
        "",
        "Reads what a person wears from the whole person crop: " + ", ".join(L.ATTRIBUTES) +
        " (+ the derived `dress_or_skirt`). It reads clothing only: it was trained with no gender, age or other "
        "attribute of the person, and it outputs none.",
        "",
        f"- Network: MobileNetV2 1.0 (ImageNet weights recovered from the quantised Coral classifier), "
        f"input {config.model.input_height}x{config.model.input_width} RGB, person box + {config.model.margin:.0%} margin, "
        f"int8 TFLite, {manifest['size_bytes'] / 1e6:.2f} MB, sha256 {manifest['sha256'][:12]}...",
        f"- Trained by: `python -m training.attributes --config {config_path}` (resumable with `--resume`).",
        "- Retrain on a store's own labelled crops: `python -m training.attributes --config configs/attributes_store.yaml` "
        "(docs/attributes.md says how to lay out the folder).",
        "",
        "## Training data and licences",
        "",
    ]
    for s in config.data:
        lines.append(f"- `{s.format}` from `{s.root.name}`: {s.licence or 'licence: see ../shared/README.md'}")
    research = [s.format for s in config.data if "research" in (s.licence or "").lower()]
    lines += [""]
    if research:
        lines += ["**Research use only:** " + ", ".join(research) + " are research-only data (PETA, the street-fashion "
                  "photos). A model trained on them is for research and evaluation; a store deploying commercially "
                  "retrains on data it may use (the command above).", ""]
    else:
        lines += ["No research-only data: every training set above is named with its licence.", ""]
    lines += [
        "## Validation (int8, through the daemon's reader)",
        "",
        "| attribute | crops | positives | AUC | AP | recall at precision 0.9 | operating point |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        lines.append(f"| {name} | {row['n']} | {row['positives']} | {row['auc']:.3f} | {row['ap']:.3f} | "
                     f"{row['recall_at_p90']:.3f} | {manifest['thresholds'].get(name, float('nan')):.3f} |")
    lines += ["", "Per source and per person height: `metrics.json` and `attributes.png` beside this card.", ""]
    return "\n".join(lines)


def _round(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def calibrate_identity(config, candidate: Path, out_dir: Path, log=print) -> bool:
    """The identity stage's thresholds for this model's pooled features (a new model has other
    distances than the shipped one: edge/identity/calibration.py), measured on the PETA validation
    identities of this run's split when PETA is among the data. A store's own crops have no
    identities: the model then ships without, and the daemon warns that it uses the shipped
    model's thresholds."""
    peta = next((source for source in config.data if source.format == "peta"), None)
    if peta is None:
        log("identity calibration: no PETA among the data (no people seen from several sides), so the identity "
            "stage will use the shipped model's thresholds with this model and warn at start; measure them with: "
            f"python scripts/reid_distances.py --model {config.output.model} --peta <PETA folder> "
            f"--val-fraction 0.2 --split-seed 42 --write-manifest")
        return False
    from training.reid.calibrate import calibrate

    return calibrate(candidate, Path(peta.root), peta.val_fraction, config.seed, out_dir, log=log)


def ship(config, config_path: Path, model, state: dict, train_set, val_set, replace: bool = True, log=print) -> dict:
    report_dir = Path(config.output.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(config.output.run_dir)
    targets = val_set.target_matrix()
    float_scores = predict(model, framed_set(val_set, config))
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(train_set), size=min(config.export.calibration_images, len(train_set)), replace=False)
    calibration = framed_set(train_set.subset(np.isin(np.arange(len(train_set)), pick)), config)
    from export.attributes import export_int8, write_manifest

    candidate = run_dir / "candidate.tflite"
    export_int8(model, calibration, candidate)
    shape = (list(L.ATTRIBUTES), config.model.input_height, config.model.input_width, config.model.margin)
    write_manifest(candidate, *shape, thresholds={}, extra={})  # what the edge reader needs; completed below
    int8_scores = edge_scores(candidate, val_set)
    float_table, int8_table = score_table(float_scores, targets), score_table(int8_scores, targets)
    drops = {k: float_table[k]["auc"] - int8_table[k]["auc"] for k in float_table}
    log("float/int8 AUC: " + ", ".join(f"{k} {float_table[k]['auc']:.3f}/{int8_table[k]['auc']:.3f}" for k in float_table))
    measured = {k: v for k, v in drops.items() if np.isfinite(v)}  # an attribute without both classes in val has no AUC
    worst = max(measured, key=measured.get) if measured else None
    thresholds = operating_points(int8_scores, targets)
    heights = by_height(int8_scores, val_set)
    report = {
        "config": str(config_path),
        "float": float_table, "int8": int8_table, "auc_drop": drops,
        "parity_ok": worst is None or bool(drops[worst] <= config.export.max_auc_drop),
        "thresholds": thresholds, "by_source": by_source(int8_scores, val_set), "peta_by_height": heights,
        "history": state.get("history", []), "best_epoch": state.get("best_epoch"),
        "train_crops": len(train_set), "val_crops": len(val_set),
    }
    (report_dir / "metrics.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    plot_report(report_dir, state.get("history", []), heights)
    if not report["parity_ok"]:
        raise ModelError(f"int8 parity: {worst} AUC drops {drops[worst]:.4f} (> {config.export.max_auc_drop})",
                         path=candidate)
    extra = {
        "training": {"config": str(config_path), "command": f"python -m training.attributes --config {config_path}",
                     "data": [{"format": s.format, "root": s.root.name, "licence": s.licence} for s in config.data],
                     "seed": config.seed, "best_epoch": state.get("best_epoch")},
        "licence_note": "trained on research-only data (PETA, street-fashion photos): retrain on a store's own crops "
                        "for commercial use (docs/attributes.md)",
        "validation": {k: {"auc": _round(v["auc"]), "recall_at_p90": _round(v["recall_at_p90"])} for k, v in int8_table.items()},
        "parity": {"max_auc_drop": None if worst is None else round(float(drops[worst]), 4)},
    }
    manifest_file = write_manifest(candidate, *shape, thresholds, extra)
    calibrate_identity(config, candidate, report_dir / "identity", log)
    manifest = json.loads(manifest_file.read_text())
    (report_dir / "MODEL_CARD.md").write_text(model_card(config, config_path, manifest, int8_table))
    if replace:
        out = Path(config.output.model)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidate, out)
        manifest["shipped"] = True
        out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"shipped {out} (+ {out.with_suffix('.json').name})")
    return report

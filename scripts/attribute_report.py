"""PETA validation report of issue 20: the person-attribute model against the shipped garment path.

    nice -n 10 python scripts/attribute_report.py [--model models/person-attributes.tflite]
        [--config configs/demo.yaml] [--peta ../shared/datasets/peta] [--out docs/attributes-report]

For every output (suit, dress, skirt, pants, shorts, outwear, dress_or_skirt): ROC AUC, average
precision and recall at precision 0.9, over all PETA validation crops and by person height
(< 100, 100-180, > 180 px, the original crop's height), for

* **model**: the person-attribute model through the daemon's reader (``PersonAttributeModel``, the
  crop framed by ``person_box_with_margin``: a PETA image is the person box itself);
* **garments**: the shipped decision path where it can answer: the config's garment detector
  (``garments.detector``, built as ``edge.pipeline.Models`` builds it, with the config's score
  thresholds) on the person crop, jacket boxes renamed by the garment classifier as
  ``CameraPipeline._name_garment`` does; per crop, the best score of each label (0 when no box):
  dress, skirt, pants, shorts as such, dress_or_skirt = max(dress, skirt), outwear = best of the
  config's ``outwear`` rule garment labels (outwear, hoodie, jacket), suit = min(best blazer, best
  pants) (the garment-only suit rule, ``blazer+pants``, of the configs before issue 20).

The validation split is training's (``training.attributes.data.load_peta``, split "val",
val_fraction 0.2, seed 42, by identity), read at the original pixel size. PETA's skirt label means
"dress or skirt", so dress and skirt alone have no positives on PETA (n/a); dress_or_skirt is
their measure. Writes ``<out>.json`` (every figure), ``<out>.png`` (AUC by height, model vs
garment path) and prints the table. PETA: Deng, Luo, Loy, Tang, ACM MM 2014 (research use only).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

from edge.attributes.model import PersonAttributeModel  # noqa: E402
from edge.attributes.reader import ATTRIBUTE_PREFIX  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.detections import Detections  # noqa: E402
from edge.garments import garment_crops, refined_names  # noqa: E402
from edge.pipeline import Models  # noqa: E402
from edge.preprocess import person_box_with_margin  # noqa: E402
from edge.runtime import sha256_file  # noqa: E402
from training.attributes import labels as L  # noqa: E402
from training.attributes.data import load_peta  # noqa: E402
from training.attributes.metrics import summary  # noqa: E402
from training.attributes.ship import HEIGHT_BUCKETS, MIN_PRECISION  # noqa: E402

REPO = repo_root()

OUTPUTS = (*L.ATTRIBUTES, "dress_or_skirt")
PATHS = ("model", "garments")
SMALL = {"model": "model_small", "garments": "garments_small"}  # the same crops resized to --small-height
VAL_FRACTION, SEED = 0.2, 42  # configs/attributes.yaml: the split the model was validated on
TARGETS = {"suit": 0.95, "dress_or_skirt": 0.95, "outwear": 0.90}  # issue 20's AUC targets
PLOTTED = ("suit", "dress_or_skirt", "pants", "shorts", "outwear")
MIN_PLOTTED_CROPS = 20  # a height bucket with fewer crops is left out of the figure (it stays in the table)


def truth_matrix(targets: np.ndarray) -> np.ndarray:
    """(N, len(OUTPUTS)): 1 worn, 0 not, -1 unknown; dress_or_skirt from PETA's set label."""
    return np.concatenate([targets[:, : len(L.ATTRIBUTES)], L.any_dress_or_skirt_truth(targets)[:, None]], axis=1)


class GarmentPath:
    """Per-crop scores of the shipped garment detector + classifier, as the daemon names garments."""

    def __init__(self, config):
        self.config = config
        models = Models(config)
        if models.garment_detector is None:
            raise SystemExit(f"{config.garments.detector}: the config has no garment detector")
        self.detector, self.classifier = models.garment_detector, models.classifier
        self.classifier_labels = set(self.classifier.labels)
        rules = {rule.name: rule for rule in config.rules}
        # the garment labels the config's outwear rule accepts (configs/demo.yaml: outwear, hoodie, jacket);
        # its person.* readings are the attribute model's, not the garment path's
        when = rules["outwear"].when if "outwear" in rules else ["outwear"]
        self.outwear_labels = tuple(a for a in when if ATTRIBUTE_PREFIX not in a) or ("outwear",)
        self.boxes = self.classifier_calls = 0  # running totals (main() takes them per pass)

    def named_garments(self, crop: np.ndarray) -> list[tuple[str, float]]:
        """(label, score) of each garment box on one person crop (the whole image here)."""
        h, w = crop.shape[:2]
        person = Detections(np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int32),
                            ["person"], np.zeros(1, np.int64))
        garments = self.detector.detect(crop).with_label(*self.detector.garment_labels)
        out = []
        # Every box is scored, also those garment_crops marks not good (small, or touching the crop's
        # edge: here the image's edge is the person box's, not a frame's, so "cut" would be wrong).
        garments.data["origin"] = np.zeros(len(garments), np.int64)
        for garment in garment_crops(crop, person, garments, self.config.garments):
            out.append(self._name(garment))
        self.boxes += len(out)
        return out

    def _name(self, garment) -> tuple[str, float]:
        # edge/pipeline.py CameraPipeline._name_garment: the classifier may name a detector box more
        # finely (jacket -> blazer / outwear / hoodie ...); an answer outside the box's class is overruled.
        finer, plain = refined_names(self.config.garments.refinements, garment.detector_label)
        if not finer & self.classifier_labels:
            return plain, garment.detector_score
        self.classifier_calls += 1
        result = self.classifier.classify(garment.crop)
        if result.label in finer:
            return result.label, result.score
        return plain, garment.detector_score

    def scores(self, crop: np.ndarray) -> np.ndarray:
        best: dict[str, float] = {}
        for label, score in self.named_garments(crop):
            best[label] = max(best.get(label, 0.0), float(score))

        def b(label):
            return best.get(label, 0.0)

        def any_of(alternative: str) -> float:  # "blazer+pants": all of them -> the weakest
            return min(b(part) for part in alternative.split("+"))

        row = {"suit": min(b("blazer"), b("pants")), "dress": b("dress"), "skirt": b("skirt"), "pants": b("pants"),
               "shorts": b("shorts"), "outwear": max(any_of(a) for a in self.outwear_labels)}
        row["dress_or_skirt"] = max(row["dress"], row["skirt"])
        return np.array([row[name] for name in OUTPUTS], np.float32)


def model_scores(reader: PersonAttributeModel, image: np.ndarray) -> np.ndarray:
    """The daemon's reading of a person whose box is the whole image (framed with the model's margin)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = person_box_with_margin([0, 0, w, h], reader.margin, image.shape)
    reading = reader.read(image[y1:y2, x1:x2]).scores
    return np.array([reading.get(name, np.nan) for name in OUTPUTS], np.float32)


def resize_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """The crop as a camera that sees the person ``height`` px tall would (never enlarged)."""
    h, w = image.shape[:2]
    if h <= height:
        return image
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def table(scores: np.ndarray, truth: np.ndarray) -> dict:
    return {name: summary(scores[:, k], truth[:, k], MIN_PRECISION) for k, name in enumerate(OUTPUTS)}


def by_height(scores: np.ndarray, truth: np.ndarray, heights: np.ndarray) -> dict:
    out = {"all": {"crops": len(truth), **table(scores, truth)}}
    for bucket, lo, hi in HEIGHT_BUCKETS:
        mask = (heights >= lo) & (heights < hi)
        out[bucket] = {"crops": int(mask.sum()), **(table(scores[mask], truth[mask]) if mask.any() else {})}
    return out


def share(hit: np.ndarray, among: np.ndarray) -> float:
    return float(hit[among].mean()) if among.any() else float("nan")


def finite(value):
    """The report with NaN / inf as null (strict JSON): a measure PETA cannot give (no positives)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def groups(report: dict) -> list[tuple[str, dict, dict]]:
    """(row label, model block, garment block): all crops, each height bucket, the resized crops."""
    out = [(bucket, report["model"][bucket], report["garments"][bucket])
           for bucket in ["all"] + [b for b, _, _ in HEIGHT_BUCKETS]]
    if report.get("small_height_px"):
        out.append((f"all, resized to {report['small_height_px']} px", report[SMALL["model"]]["all"],
                    report[SMALL["garments"]]["all"]))
    return out


def pair(m: dict, g: dict, key: str) -> tuple[str, str]:
    """Both paths' value of one measure, the better one in bold."""
    a, b = m[key], g[key]
    if math.isfinite(a) and math.isfinite(b) and a != b:
        return (f"**{fmt(a)}**", fmt(b)) if a > b else (fmt(a), f"**{fmt(b)}**")
    return fmt(a), fmt(b)


def markdown_table(report: dict) -> list[str]:
    """One row per output and height group: positives / known, then AUC, AP, R@P0.9 of both paths."""
    lines = ["| output | person height | positives / known | AUC model | AUC garments | AP model | AP garments | "
             "R@P0.9 model | R@P0.9 garments |", "|---|---|---|---|---|---|---|---|---|"]
    for name in OUTPUTS:
        if not report["model"]["all"][name]["positives"]:
            lines.append(f"| {name} | all | 0 / {report['model']['all'][name]['n']} | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        for label, model, garments in groups(report):
            m, g = model.get(name), garments.get(name)
            if m is None:
                continue
            cells = [c for key in ("auc", "ap", "recall_at_p90") for c in pair(m, g, key)]
            lines.append(f"| {name} | {label} | {m['positives']} / {m['n']} | " + " | ".join(cells) + " |")
    return lines


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in groups(report)[1:] if row[1]["crops"] >= MIN_PLOTTED_CROPS]  # buckets (+ resized)
    left_out = [f"{b} px: {report['model'][b]['crops']} crops" for b, _, _ in HEIGHT_BUCKETS
                if report["model"][b]["crops"] < MIN_PLOTTED_CROPS]
    labels = [label.replace("all, resized to ", "all at ").removesuffix(" px") for label, _, _ in rows]
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(3.6 * len(PLOTTED), 4.4), sharey=True)
    x = np.arange(len(rows))
    for ax, name in zip(axes, PLOTTED):
        for offset, index, label, colour in ((-0.2, 1, "attribute model", "#1f77b4"), (0.2, 2, "garment path", "#ff7f0e")):
            values = [row[index].get(name, {}).get("auc", np.nan) for row in rows]
            bars = ax.bar(x + offset, np.nan_to_num(values, nan=0.0), 0.4, label=label, color=colour)
            for bar, v in zip(bars, values):
                ax.text(bar.get_x() + bar.get_width() / 2, (v if math.isfinite(v) else 0.3) + 0.01, fmt(v, 2),
                        ha="center", va="bottom", fontsize=7)
        if name in TARGETS:
            ax.axhline(TARGETS[name], color="k", ls="--", lw=0.8, label="issue 20 target")
            ax.text(x[-1] + 0.45, TARGETS[name] + 0.005, f"target {TARGETS[name]:.2f}", ha="right", va="bottom", fontsize=7)
        positives = [row[1].get(name, {}).get("positives", 0) for row in rows]
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b} px\n{p} pos." for b, p in zip(labels, positives)], fontsize=7)
        ax.set_title(name)
        ax.set_ylim(0.3, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("ROC AUC on PETA val")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", fontsize=8, ncol=3)
    crops = ", ".join(f"{label} px: {row[1]['crops']}" for label, row in zip(labels, rows))
    note = f" (not drawn: {', '.join(left_out)})" if left_out else ""
    fig.suptitle(f"PETA val by person height, attribute model vs shipped garment path\ncrops {crops}{note}",
                 fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models/person-attributes.tflite"))
    parser.add_argument("--config", default=str(REPO / "configs/demo.yaml"),
                        help="the shipped config whose garment detector and classifier make the garment path")
    parser.add_argument("--peta", default=str(shared_dir() / "datasets/peta"))
    parser.add_argument("--out", default=str(REPO / "docs/attributes-report"), help="writes OUT.json and OUT.png")
    parser.add_argument("--scores", help="also write every crop's scores of both paths to this CSV")
    parser.add_argument("--limit", type=int, help="only the first N PETA rows (a quick check)")
    parser.add_argument("--small-height", type=int, default=80,
                        help="also score every crop resized to this person height (px; 0: not), since the PETA "
                             "images here are nearly all >= 100 px tall (default 80)")
    args = parser.parse_args(argv)

    reader = PersonAttributeModel(args.model, threads=1)
    config = load_config(args.config)
    garments = GarmentPath(config)
    val = load_peta(Path(args.peta), "val", VAL_FRACTION, SEED, limit=args.limit)
    truth = truth_matrix(val.target_matrix())
    heights = np.asarray(val.heights, np.float64)
    keys = list(PATHS) + (list(SMALL.values()) if args.small_height else [])
    scores = {key: np.zeros((len(val), len(OUTPUTS)), np.float32) for key in keys}
    work = {key: {"garment_boxes": 0, "classifier_calls": 0} for key in ("garments", SMALL["garments"])}

    def garment_scores(image, key):
        before = garments.boxes, garments.classifier_calls
        scores[key][i] = garments.scores(image)
        work[key]["garment_boxes"] += garments.boxes - before[0]
        work[key]["classifier_calls"] += garments.classifier_calls - before[1]
    for i, key in enumerate(tqdm(val.keys, desc="PETA val", unit="crop", mininterval=2)):
        # the original image (load_peta keeps a copy shrunk to 256 px): the daemon sees real pixels
        image_path = Path(args.peta) / key.split(":", 1)[1]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{image_path}: cannot decode image")
        scores["model"][i] = model_scores(reader, image)
        garment_scores(image, "garments")
        if args.small_height:
            small = resize_to_height(image, args.small_height)
            scores[SMALL["model"]][i] = model_scores(reader, small)
            garment_scores(small, SMALL["garments"])

    report = {
        "command": " ".join(["nice -n 10 python scripts/attribute_report.py",
                             *map(shlex.quote, argv if argv is not None else sys.argv[1:])]),
        "peta": {"root": os.path.relpath(args.peta, REPO), "split": "val", "val_fraction": VAL_FRACTION, "seed": SEED, "crops": len(val),
                 "subsets": {s: int(n) for s, n in zip(*np.unique(val.sources, return_counts=True))},
                 "citation": "Deng, Luo, Loy, Tang, Pedestrian attribute recognition at far distance, ACM MM 2014"},
        "attribute_model": {"file": Path(args.model).name, "sha256": sha256_file(args.model), "margin": reader.margin,
                  "thresholds": reader.thresholds},
        "garment_path": {"config": Path(args.config).name, "detector": Path(config.garments.detector).name,
                         "detector_sha256": sha256_file(config.garments.detector),
                         "classifier": Path(config.classifier.model).name,
                         "conf": config.garments.conf, "class_conf": dict(config.garments.class_conf),
                         "outwear_labels": list(garments.outwear_labels), "suit": "min(best blazer, best pants)",
                         "dress_or_skirt": "max(best dress, best skirt)",
                         **{key: {**work[key], "crops_with_a_garment_score": int((scores[key].max(axis=1) > 0).sum())}
                            for key in work if key in scores}},
        # how often the garment path says anything at all (a score > 0) on people who wear it / who do not
        "garment_path_answers": {name: {"positives": share(scores["garments"][:, k] > 0, truth[:, k] == 1),
                                        "negatives": share(scores["garments"][:, k] > 0, truth[:, k] == 0)}
                                 for k, name in enumerate(OUTPUTS)},
        "min_precision": MIN_PRECISION,
        "buckets_px": {b: [lo, hi] for b, lo, hi in HEIGHT_BUCKETS},
        **{key: by_height(scores[key], truth, heights) for key in PATHS},
        **({"small_height_px": args.small_height,
            **{key: {"all": {"crops": len(truth), **table(scores[key], truth)}} for key in SMALL.values()}}
           if args.small_height else {}),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(finite(report), indent=1, default=float) + "\n")
    plot(report, out.with_suffix(".png"))
    if args.scores:
        with open(args.scores, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["key", "height", *[f"truth_{n}" for n in OUTPUTS],
                             *[f"{key}_{n}" for key in keys for n in OUTPUTS]])
            for i, key in enumerate(val.keys):
                writer.writerow([key, int(heights[i]), *truth[i].astype(int),
                                 *[f"{v:.4f}" for key_ in keys for v in scores[key_][i]]])
    print("\n".join(markdown_table(report)))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

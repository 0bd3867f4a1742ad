"""Fit the re-identification head: ``python -m training.reid --config configs/reid.yaml``.

1. PETA *training* identities (the attribute model's split: validation identities never enter)
   with at least two images, each rendered ``renderings`` times as a store camera sees it (person
   ``person_height`` px tall, JPEG ``jpeg``, every second one mirrored) and read by the shipped
   attribute model through the daemon's reader. Cached per attribute model under ``cache_dir``: a
   second run (or one after an interruption) reads the cache.
2. ``holdout`` of those identities are held out. A Fisher discriminant is fitted on the rest for
   every ``dims`` x ``shrink``; the setting with the best held-out AUC (same person vs other
   people of the same sub-dataset, across views) wins, and the held-out median other-person
   distance becomes the head's ``distance_scale``.
3. Writes ``out`` (.npz: mean, projection) and its manifest beside it (.json: the attribute model's
   sha256, the scale, the figures, the data and its licence), a report (``report_dir``: JSON and a
   PNG of held-out AUC by setting).
4. Measures the identity stage's thresholds through the head on PETA *validation* identities and
   writes them into its manifest (``identity_calibration``; training/reid/calibrate.py).

After retraining the attribute model (on PETA or a store's crops, docs/attributes.md) re-run this:
the daemon refuses a head fitted on another attribute model. Validation figures:
``python scripts/reid_distances.py`` (docs/reid.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.config import read_yaml, resolve_paths, validate
from edge.errors import FashionEdgeError
from edge.runtime import sha256_file

from .data import extract, held_out, training_images
from .fit import fisher_projection, pair_figures, project


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReidConfig(Strict):
    """configs/reid.yaml; relative paths are relative to the file."""

    attribute_model: Path = Field(..., description="the person-attribute TFLite whose pooled features the head maps")
    peta: Path = Field(..., description="PETA folder (labels.csv)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="the attribute model's validation share (its split)")
    split_seed: int = Field(42, description="the attribute model's split seed")
    licence: str = Field(..., description="the training data's licence, copied into the manifest")
    subsets: list[str] = Field(default_factory=list, description="PETA sub-datasets to use (empty: all)")
    renderings: int = Field(3, ge=1, le=20, description="store-camera renderings per image")
    person_height: tuple[int, int] = Field((80, 250), description="rendered person height range, px")
    jpeg: int = Field(50, ge=10, le=100, description="rendered frame JPEG quality")
    holdout: float = Field(0.15, gt=0, lt=0.5, description="share of training identities held out")
    dims: list[int] = Field([64, 128, 256], description="output sizes tried")
    shrink: list[float] = Field([0.1, 0.5, 2.0], description="within-person covariance shrinkage tried")
    seed: int = Field(0, description="rendering and holdout seed")
    out: Path = Field(..., description="the head the daemon reads (.npz; the manifest .json beside it)")
    report_dir: Path = Field(..., description="selection report (JSON, PNG)")
    cache_dir: Path = Field(..., description="features per attribute model (resumable)")


def load_config(path: Path) -> ReidConfig:
    path = Path(path)
    config = validate(ReidConfig, read_yaml(path), path)
    resolve_paths(config, path.resolve().parent)
    return config


def plot_selection(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for shrink in sorted({r["shrink"] for r in rows}):
        picked = [r for r in rows if r["shrink"] == shrink]
        ax.plot([r["dims"] for r in picked], [r["auc"] for r in picked], marker="o", label=f"shrink {shrink}")
    ax.axhline(rows[0]["baseline_auc"], color="grey", linestyle="--", label="pooled features, no head")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("head output size")
    ax.set_ylabel("held-out AUC (same vs other person)")
    ax.set_title("Re-identification head: held-out training identities")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit(config: ReidConfig) -> dict:
    from edge.attributes.model import PersonAttributeModel

    reader = PersonAttributeModel(config.attribute_model, threads=1)
    if reader.embedding_size is None:
        raise FashionEdgeError(f"{config.attribute_model}: the manifest names no embedding output")
    digest = sha256_file(config.attribute_model)
    images = training_images(config.peta, config.val_fraction, config.split_seed, config.subsets)
    cache = config.cache_dir / f"features-{digest[:12]}-{config.seed}.npz"
    data = extract(images, reader, config.renderings, config.person_height, config.jpeg, config.seed, cache)
    held = np.array([held_out(i, config.holdout, config.seed) for i in data.identity])
    fit_x, fit_y = data.features[~held], data.identity[~held]
    check = (data.identity[held], data.subset[held], data.image[held])
    baseline = pair_figures(data.features[held], *check)
    rows, best = [], None
    for dims in config.dims:
        for shrink in config.shrink:
            mean, projection = fisher_projection(fit_x, fit_y, dims, shrink)
            figures = pair_figures(project(data.features[held], mean, projection), *check)
            rows.append({"dims": dims, "shrink": shrink, **figures, "baseline_auc": baseline["auc"]})
            print(f"dims {dims:4d} shrink {shrink:4.2f}: held-out AUC {figures['auc']:.4f}, "
                  f"same accepted at 1 % other {figures['same_accepted_at_1pct_other']:.3f}")
            if best is None or figures["auc"] > best[0]["auc"]:
                best = (rows[-1], mean, projection)
    chosen, mean, projection = best
    config.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(config.out, mean=mean, projection=projection)
    manifest = {
        "task": "person_reid_head",
        "kind": "fisher discriminant (linear) on the attribute model's pooled features",
        "input_size": int(projection.shape[0]), "output_size": int(projection.shape[1]),
        "attribute_model": config.attribute_model.name, "attribute_model_sha256": digest,
        "distance_scale": chosen["median_other"],
        "distance": "cosine (1 - a.b) of L2-normalised head outputs; distance_scale = the held-out median between "
                    "two different people, the unit the identity stage combines it with colour in",
        "selected": {"dims": chosen["dims"], "shrink": chosen["shrink"]},
        "held_out": {k: chosen[k] for k in ("auc", "same_accepted_at_1pct_other", "median_other", "same_pairs",
                                            "other_pairs")},
        "held_out_without_head": baseline,
        "training": {
            "command": "python -m training.reid --config configs/reid.yaml",
            "data": {"format": "peta", "identities": int(len(set(fit_y))), "images": int(len(set(data.image[~held]))),
                     "renderings": config.renderings, "licence": config.licence,
                     "held_out_identities": int(len(set(data.identity[held])))},
            "validation_identities": "never used (the attribute model's PETA validation split); measured there "
                                     "by scripts/reid_distances.py (docs/reid.md)",
        },
        "privacy": "maps clothing features; kept in memory per customer for identity.memory_s, never written",
        "sha256_npz": sha256_file(config.out),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    config.out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    # the identity stage's thresholds through this head, measured on PETA validation identities
    from .calibrate import calibrate

    calibrate(config.attribute_model, config.peta, config.val_fraction, config.split_seed,
              config.report_dir / "identity", head=config.out)
    manifest = json.loads(config.out.with_suffix(".json").read_text())
    config.report_dir.mkdir(parents=True, exist_ok=True)
    (config.report_dir / "selection.json").write_text(json.dumps({"rows": rows, "chosen": chosen,
                                                                  "without_head": baseline}, indent=2) + "\n")
    plot_selection(rows, config.report_dir / "selection.png")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.reid", description="fit the re-identification head")
    parser.add_argument("--config", type=Path, default=Path("configs/reid.yaml"))
    args = parser.parse_args(argv)
    try:
        manifest = fit(load_config(args.config))
    except FashionEdgeError as exc:
        print(f"training.reid: {exc}", file=sys.stderr)
        return 2
    held = manifest["held_out"]
    print(f"head {manifest['input_size']} -> {manifest['output_size']} (shrink {manifest['selected']['shrink']}): "
          f"held-out AUC {held['auc']:.4f} (without: {manifest['held_out_without_head']['auc']:.4f}), "
          f"distance scale {manifest['distance_scale']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

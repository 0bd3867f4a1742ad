"""Fit the style map: ``python -m training.styles --config configs/styles.yaml``.

1. Embed the colorful-fashion **train** photos (person level: the garment boxes of a photo pooled)
   and the clothing **train** photos (product level) through the daemon's classifier (cached).
2. k-means (k-means++, best of ``n_init``) for every k in ``k_range``; keep the k with the highest
   silhouette (sampled, seeded). Ties go to the smaller k.
3. Name each cluster by its dominant colour and garments ("black: pants+t-shirt"); ``names`` in
   the YAML (cluster id -> name) overrides an automatic name.
4. Write ``out`` (models/styles.json: centroids, names, counts, the classifier's sha256) and a
   contact sheet of each cluster's photos nearest its centre plus the silhouette-by-k plot under
   ``report_dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.classify.classifier import GarmentClassifier
from edge.config import read_yaml, resolve_paths, validate
from edge.errors import FashionEdgeError
from edge.runtime import sha256_file
from edge.styles import kmeans, silhouette

from .data import Embedded, clothing_items, embed_items, worn_items

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ClothingSource(Strict):
    root: Path = Field(..., description="clothing dataset folder (product photos)")
    split_file: Path = Field(..., description="sender-grouped split JSON; only its TRAIN side is embedded")


class WornSource(Strict):
    root: Path = Field(..., description="colorful-fashion dataset folder (worn photos, splits/train.txt only)")
    min_side_px: int = Field(40, ge=4, description="garment boxes shorter than this are left out")


class StylesData(Strict):
    clothing: ClothingSource
    colorful_fashion: WornSource


class StylesConfig(Strict):
    """configs/styles.yaml; relative paths are relative to the file (``../../shared`` for shared data)."""

    model: Path = Field(..., description="garment classifier TFLite with the embedding output")
    out: Path = Field(..., description="the style map the daemon reads (centroids, names, the model's sha256)")
    report_dir: Path = Field(..., description="contact_sheet.png, silhouette_by_k.png, styles.json (no centroids)")
    cache_dir: Path = Field(..., description="embeddings per dataset and model sha256")
    label_map: Path = Field(..., description="label map YAML (the clothing labels -> product labels)")
    data: StylesData
    k_range: tuple[int, int] = Field((4, 12), description="every k here is fitted; the best mean silhouette wins")
    seed: int = Field(0, description="k-means++ and silhouette-sample seed")
    n_init: int = Field(4, ge=1, description="k-means++ restarts per k, lowest inertia kept")
    silhouette_sample: int = Field(2000, ge=2, description="points the silhouette is averaged over (seeded sample)")
    contact_per_cluster: int = Field(10, ge=1, description="photos per cluster on the contact sheet")
    names: dict[int, str] = Field(default_factory=dict, description="cluster id -> name, over the automatic name")

    @field_validator("k_range")
    @classmethod
    def _k_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 2 <= low <= high:
            raise ValueError("must be [low, high] with 2 <= low <= high")
        return value


def load_config(path: Path) -> StylesConfig:
    """Validated (unknown keys rejected, one-line ConfigError naming file and field), paths resolved."""
    path = Path(path)
    config = validate(StylesConfig, read_yaml(path), path)
    resolve_paths(config, path.resolve().parent)
    return config


def choose_k(x: np.ndarray, k_range, seed: int, n_init: int, sample: int) -> tuple[int, dict[int, float], dict]:
    scores, fits = {}, {}
    for k in range(int(k_range[0]), int(k_range[1]) + 1):
        centres, labels, inertia = kmeans(x, k, seed=seed, n_init=n_init)
        scores[k] = round(silhouette(x, labels, sample=sample, seed=seed), 4)
        fits[k] = (centres, labels, inertia)
        print(f"k={k:2d}  silhouette {scores[k]:.4f}  inertia {inertia:.1f}", flush=True)
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores, fits[best]


def _distinctive(counts: Counter, n: int, overall: Counter, total: int, top: int, min_share: float) -> list[str]:
    """Names over-represented in a cluster (share in it / share overall), among those on at least
    ``min_share`` of its members: shoes are on everybody and name no style."""
    lift = {name: (c / n) / (overall[name] / total) for name, c in counts.items() if c / n >= min_share}
    return sorted(lift, key=lambda name: -lift[name])[:top]


def auto_name(labels: list[list[str]], colours: list[str], sources: list[str],
              all_labels: list[list[str]], all_colours: list[str]) -> str:
    """'<colour> <garment>+<garment> (worn|product|mixed)' from what sets the cluster apart."""
    n, total = max(len(labels), 1), max(len(all_labels), 1)
    garments = _distinctive(Counter(g for item in labels for g in set(item)), n,
                            Counter(g for item in all_labels for g in set(item)), total, 2, 0.2)
    colour = _distinctive(Counter(colours), n, Counter(all_colours), total, 1, 0.25)
    worn = sum(s == "worn" for s in sources) / n
    kind = "worn" if worn >= 0.8 else "product" if worn <= 0.2 else "mixed"
    return f"{colour[0] if colour else 'mixed colours'} {'+'.join(garments) or 'mixed'} ({kind})"


def contact_sheet(embedded: Embedded, centres: np.ndarray, labels: np.ndarray, names: list[str],
                  per_cluster: int, out: Path, thumb: int = 96) -> Path:
    """One row per cluster: its name, then the photos nearest its centre."""
    label_w = 300
    rows = []
    for j, name in enumerate(names):
        members = np.nonzero(labels == j)[0]
        row = np.full((thumb, label_w + per_cluster * thumb, 3), 255, np.uint8)
        cv2.putText(row, f"{j}: {name}"[:40], (4, thumb // 2 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(row, f"{len(members)} photos", (4, thumb // 2 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1,
                    cv2.LINE_AA)
        if len(members):
            distance = ((embedded.embeddings[members] - centres[j]) ** 2).sum(1)
            for n, index in enumerate(members[np.argsort(distance)][:per_cluster]):
                image = cv2.imread(str(embedded.items[index].path))
                if image is None:
                    continue
                scale = thumb / max(image.shape[:2])
                small = cv2.resize(image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))),
                                   interpolation=cv2.INTER_AREA)
                x0 = label_w + n * thumb + (thumb - small.shape[1]) // 2
                y0 = (thumb - small.shape[0]) // 2
                row[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        rows.append(row)
        rows.append(np.full((4, rows[-1].shape[1], 3), 200, np.uint8))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate(rows[:-1]))
    return out


def silhouette_plot(scores: dict[int, float], best: int, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], marker="o", color="#1f77b4")
    ax.axvline(best, color="#d62728", linestyle="--", label=f"chosen k = {best}")
    ax.set_xlabel("k (clusters)")
    ax.set_ylabel("mean silhouette (cosine space)")
    ax.set_title("Style clusters: silhouette by k")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def fit(config: StylesConfig) -> dict:
    classifier = GarmentClassifier(config.model)
    if classifier.embedding_size is None:
        raise FashionEdgeError(f"{config.model.name}: no embedding output (python -m export.embedding "
                               f"{config.model})")
    clothing = config.data.clothing
    worn = config.data.colorful_fashion
    products = embed_items(classifier, clothing_items(clothing.root, clothing.split_file, config.label_map,
                                                      "train"), config.cache_dir, "clothing-train")
    people = embed_items(classifier, worn_items(worn.root, "train", worn.min_side_px),
                         config.cache_dir, "colorful-train-persons")
    # Domain centring: worn and product photos differ more by domain (street vs flat lay) than by
    # garment, so uncentred k-means puts nearly every person in one cluster. Each domain is centred
    # on its own mean; the daemon sees worn crops and subtracts the worn mean (``centre``).
    worn_centre = people.embeddings.mean(0)
    product_centre = products.embeddings.mean(0)

    def centred(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
        x = x - centre
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    embedded = Embedded(people.items + products.items,
                        np.concatenate([centred(people.embeddings, worn_centre),
                                        centred(products.embeddings, product_centre)]),
                        people.colours + products.colours)
    x = embedded.embeddings.astype(np.float64)
    best, scores, (centres, labels, inertia) = choose_k(x, config.k_range, config.seed, config.n_init,
                                                       config.silhouette_sample)
    names, styles = [], []
    for j in range(best):
        members = np.nonzero(labels == j)[0]
        auto = auto_name([embedded.items[i].labels for i in members], [embedded.colours[i] for i in members],
                         [embedded.items[i].source for i in members], [i.labels for i in embedded.items],
                         embedded.colours)
        name = str(config.names.get(j, auto))
        names.append(name)
        sources = Counter(embedded.items[i].source for i in members)
        styles.append({"id": j, "name": name, "auto_name": auto, "count": int(len(members)),
                       "worn": int(sources["worn"]), "product": int(sources["product"])})
    result = {
        "model_sha256": sha256_file(config.model),
        "model": config.model.name,
        "embedding_size": int(x.shape[1]),
        "k": best,
        "silhouette": scores[best],
        "silhouette_by_k": {str(k): v for k, v in scores.items()},
        "inertia": round(inertia, 3),
        "fitted_on": {"colorful-fashion train persons": len(people.items), "clothing train products": len(products.items)},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m training.styles --config configs/styles.yaml",
        "styles": styles,
        "centre": [round(float(v), 6) for v in worn_centre],  # subtracted from a customer's embedding
        "product_centre": [round(float(v), 6) for v in product_centre],
        "centroids": [[round(float(v), 5) for v in c] for c in centres],
    }
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_text(json.dumps(result) + "\n")
    report = Path(config.report_dir)
    report.mkdir(parents=True, exist_ok=True)
    contact_sheet(embedded, centres, labels, names, config.contact_per_cluster, report / "contact_sheet.png")
    silhouette_plot(scores, best, report / "silhouette_by_k.png")
    summary = {k: v for k, v in result.items() if k not in ("centroids", "centre", "product_centre")}
    (report / "styles.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.styles", description="fit the k-means style map")
    parser.add_argument("--config", type=Path, default=Path("configs/styles.yaml"))
    args = parser.parse_args(argv)
    try:
        result = fit(load_config(args.config))
    except FashionEdgeError as exc:
        print(f"training.styles: {exc}", file=sys.stderr)
        return 2
    print(f"k={result['k']} (silhouette {result['silhouette']:.4f}); styles: "
          + "; ".join(f"{s['id']} {s['name']} ({s['count']})" for s in result["styles"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

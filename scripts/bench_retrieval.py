"""Retrieval figures of the outfit embedding (issue 14; docs/styles.md).

    python scripts/bench_retrieval.py [--model models/garment-classifier.tflite] [--out FILE.json]

* product -> product: every clothing **validation** photo (sender-grouped split, senders never in
  the index) queries an index of the clothing **train** photos; precision@5 = share of the 5 nearest
  (cosine) with the query's product label. Target >= 0.80.
* worn -> product: every colorful-fashion **val** garment box (>= 40 px) queries the same product
  index (the store's real use: a customer's crop against product photos). Strict: boxes whose
  class is one product label (hat, dress, pants, shorts, skirt, shoe -> shoes); lenient adds jacket
  (blazer/outwear/hoodie) and shirt (t-shirt/shirt/longsleeve/polo) scored against those sets.
Embeddings come from the daemon's GarmentClassifier (int8) and are cached in .cache/styles/.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

from edge.classify.classifier import GarmentClassifier  # noqa: E402
from training.styles.data import clothing_items, embed_items, worn_items  # noqa: E402

REPO = repo_root()

WORN_TO_PRODUCT = {"hat": {"hat"}, "dress": {"dress"}, "pants": {"pants"}, "shorts": {"shorts"},
                   "skirt": {"skirt"}, "shoe": {"shoes"}}
WORN_SETS = {"jacket": {"blazer", "outwear", "hoodie"}, "shirt": {"t-shirt", "shirt", "longsleeve", "polo"}}


def precision_at(queries: np.ndarray, index: np.ndarray, index_labels: np.ndarray, wanted: list[set[str]],
                 k: int = 5) -> np.ndarray:
    """Per query: share of its k nearest index items whose label is in ``wanted[query]``."""
    result = np.zeros(len(queries))
    for start in range(0, len(queries), 256):
        scores = queries[start:start + 256] @ index.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for row, neighbours in enumerate(top):
            result[start + row] = np.mean([index_labels[j] in wanted[start + row] for j in neighbours])
    return result


def per_label(values: np.ndarray, labels: list[str]) -> dict[str, dict]:
    groups: dict[str, list[float]] = defaultdict(list)
    for value, label in zip(values, labels):
        groups[label].append(float(value))
    return {label: {"n": len(v), "p@5": round(float(np.mean(v)), 4)} for label, v in sorted(groups.items())}


def float_figures(args, classifier, train, val, worn, index_labels, val_labels, worn_labels, strict_rows,
                  lenient_rows, sets, k, product_int8, strict_int8) -> dict:
    """The same precision@k with float embeddings of the int8 file's dequantised weights."""
    from edge.runtime import sha256_file
    from training.styles.float_embedding import build_float, embed_items_float

    model, _ = build_float(args.model)
    sha = sha256_file(args.model)
    train_f = embed_items_float(model, train.items, args.cache, "clothing-train", sha)
    val_f = embed_items_float(model, val.items, args.cache, "clothing-val", sha)
    worn_f = embed_items_float(model, worn.items, args.cache, "colorful-val-boxes", sha)
    product = precision_at(val_f, train_f, index_labels, [{x} for x in val_labels], k)
    strict = precision_at(worn_f[strict_rows], train_f, index_labels, [sets[worn_labels[n]] for n in strict_rows], k)
    lenient = precision_at(worn_f[lenient_rows], train_f, index_labels,
                           [sets[worn_labels[n]] for n in lenient_rows], k)
    return {
        "what": "Keras MobileNetV2 with the int8 file's dequantised weights (identity BN): no activation rounding",
        "product_to_product": {f"precision@{k}": round(float(product.mean()), 4),
                               "int8_minus_float_points": round(100 * float(product_int8.mean() - product.mean()), 2)},
        "worn_to_product_strict": {f"precision@{k}": round(float(strict.mean()), 4),
                                   "int8_minus_float_points": round(100 * float(strict_int8.mean() - strict.mean()), 2)},
        "worn_to_product_lenient": {f"precision@{k}": round(float(lenient.mean()), 4)},
        "cosine_int8_vs_float": {"clothing val mean": round(float(np.mean(np.sum(val_f * val.embeddings, 1))), 4),
                                 "worn boxes mean": round(float(np.mean(np.sum(worn_f * worn.embeddings, 1))), 4)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "garment-classifier.tflite")
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "styles")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    parser.add_argument("--float", action="store_true", dest="with_float",
                        help="also a float re-computation of the same network (training/styles/float_embedding.py)")
    args = parser.parse_args(argv)
    classifier = GarmentClassifier(args.model)
    clothing = args.shared / "datasets" / "clothing"
    split, label_map = REPO / "configs" / "splits" / "clothing.json", REPO / "configs" / "label_map.yaml"
    train = embed_items(classifier, clothing_items(clothing, split, label_map, "train"), args.cache, "clothing-train")
    val = embed_items(classifier, clothing_items(clothing, split, label_map, "validation"), args.cache, "clothing-val")
    worn = embed_items(classifier, worn_items(args.shared / "datasets" / "colorful-fashion", "val", per_box=True),
                       args.cache, "colorful-val-boxes")
    index_labels = np.array([i.labels[0] for i in train.items])
    k = args.k

    val_labels = [i.labels[0] for i in val.items]
    product = precision_at(val.embeddings, train.embeddings, index_labels, [{x} for x in val_labels], k)
    # top-1 label of the nearest neighbour: a kNN classifier's accuracy, for comparison with the head
    nearest = index_labels[np.argmax(val.embeddings @ train.embeddings.T, axis=1)]

    worn_labels = [i.labels[0] for i in worn.items]
    strict_rows = [n for n, label in enumerate(worn_labels) if label in WORN_TO_PRODUCT]
    lenient_rows = [n for n, label in enumerate(worn_labels) if label in WORN_TO_PRODUCT or label in WORN_SETS]
    sets = {**WORN_TO_PRODUCT, **WORN_SETS}
    strict = precision_at(worn.embeddings[strict_rows], train.embeddings, index_labels,
                          [sets[worn_labels[n]] for n in strict_rows], k)
    lenient = precision_at(worn.embeddings[lenient_rows], train.embeddings, index_labels,
                           [sets[worn_labels[n]] for n in lenient_rows], k)
    figures = {
        "model": args.model.name,
        "k": k,
        "index": {"clothing train photos": len(train.items)},
        "product_to_product": {"queries": len(val.items), f"precision@{k}": round(float(product.mean()), 4),
                               "nearest_label_accuracy": round(float(np.mean(nearest == np.array(val_labels))), 4),
                               "per_label": per_label(product, val_labels)},
        "worn_to_product": {
            "strict": {"queries": len(strict_rows), f"precision@{k}": round(float(strict.mean()), 4),
                       "per_label": per_label(strict, [worn_labels[n] for n in strict_rows])},
            "lenient": {"queries": len(lenient_rows), f"precision@{k}": round(float(lenient.mean()), 4),
                        "per_label": per_label(lenient, [worn_labels[n] for n in lenient_rows])},
        },
    }
    if args.with_float:
        figures["float_recomputed"] = float_figures(args, classifier, train, val, worn, index_labels, val_labels,
                                                    worn_labels, strict_rows, lenient_rows, sets, k, product, strict)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ship rule: a classifier replaces the shipped one only if it is better than what the daemon
would otherwise run.

A candidate ships when its **int8** model, run through the daemon's own code path
(``edge.classify.classifier.GarmentClassifier.classify`` on the validation crops, its letterbox,
quantisation and label map included), beats every reference model on every configured metric
(``export.ship_rule.metrics``, strictly greater), and the parity gate passed. The references are
listed in the config (the model the shipped configs use, the previous candidate) plus, with
``compare_shipped``, whatever is already at ``output.model``.

A reference that speaks other labels (the ImageNet baseline's garment map says ``suit``,
``cardigan``...) is scored through ``to_product`` (garment label -> product label); a product
label no garment maps to gets probability 0, a garment label that is no product label and is not
mapped scores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.errors import ModelError
from edge.paths import repo_relative
from edge.runtime import sha256_file

from ..data.cache import crop_bgr
from ..data.samples import Sample
from .evaluate import evaluate, summary


@dataclass
class Reference:
    name: str
    model: Path
    manifest: Path | None = None
    label_map: dict[str, str] | None = None
    to_product: dict[str, str | None] | None = None


def product_matrix(garment_labels: list[str], labels: list[str], to_product: dict[str, str | None] | None) -> np.ndarray:
    """(n_garment, n_product) 0/1 matrix: which product label each classifier label counts for."""
    to_product = to_product or {}
    matrix = np.zeros((len(garment_labels), len(labels)), np.float32)
    for i, garment in enumerate(garment_labels):
        product = to_product.get(garment, garment)
        if product is not None and product in labels:
            matrix[i, labels.index(product)] = 1.0
    return matrix


def daemon_probabilities(
    model_path: Path,
    crops_bgr: list[np.ndarray],
    labels: list[str],
    manifest: Path | None = None,
    label_map: dict[str, str] | None = None,
    to_product: dict[str, str | None] | None = None,
    threads: int = 2,
    desc: str | None = None,
) -> np.ndarray:
    """(N, len(labels)) product-label scores of each BGR crop through ``GarmentClassifier``."""
    from edge.classify.classifier import GarmentClassifier

    classifier = GarmentClassifier(model_path, manifest, label_map, threads=threads)
    matrix = product_matrix(classifier.labels, labels, to_product)
    if not matrix.any():
        raise ModelError(f"none of the model's labels {classifier.labels[:5]}... is a product label "
                         "(give to_product)", path=model_path)
    out = np.empty((len(crops_bgr), len(labels)), np.float32)
    for i, crop in enumerate(tqdm(crops_bgr, desc=desc or f"daemon path {Path(model_path).name}", unit="img", leave=False)):
        result = classifier.classify(crop)
        out[i] = np.array([result.scores[g] for g in classifier.labels], np.float32) @ matrix
    return out


def daemon_metrics(reference: Reference, samples: list[Sample], truth: np.ndarray, labels: list[str],
                   ten_classes: list[str], threads: int = 2, crops: list[np.ndarray] | None = None) -> dict:
    """``evaluate`` of one model on the validation samples through the daemon's classifier."""
    if not Path(reference.model).is_file():
        raise ModelError(f"ship rule: reference model {reference.name!r} not found", path=reference.model)
    crops = crops if crops is not None else [crop_bgr(s) for s in samples]
    probs = daemon_probabilities(reference.model, crops, labels, reference.manifest, reference.label_map,
                                 reference.to_product, threads)
    return evaluate(probs, truth, labels, ten_classes)


def decide(candidate: dict, references: list[dict], metrics: list[str]) -> tuple[bool, dict]:
    """(ship?, checks): the candidate must be strictly better than every reference on each metric.

    ``candidate`` / each reference's ``"metrics"``: dicts as ``evaluate`` returns them."""
    checks = {}
    for ref in references:
        checks[ref["name"]] = {
            m: {"candidate": float(candidate[m]), "reference": float(ref["metrics"][m]),
                "beaten": bool(candidate[m] > ref["metrics"][m])}
            for m in metrics
        }
    beats_all = all(c["beaten"] for per_ref in checks.values() for c in per_ref.values())
    return beats_all, checks


def references_of(config) -> list[Reference]:
    """The configured references, plus the model already at ``output.model`` (compare_shipped)."""
    rule = config.export.ship_rule
    refs = [Reference(r.name, Path(r.model), r.manifest, r.label_map, r.to_product) for r in rule.references]
    shipped = Path(config.output.model)
    if rule.compare_shipped and shipped.is_file() and all(Path(r.model).resolve() != shipped.resolve() for r in refs):
        refs.append(Reference(f"shipped {shipped.name}", shipped))
    return refs


def apply_ship_rule(config, candidate_path: Path, samples: list[Sample], truth: np.ndarray, labels: list[str],
                    ten_classes: list[str], log=print) -> dict:
    """Evaluate candidate and references through the daemon path; the record for metrics.json."""
    rule = config.export.ship_rule
    refs = references_of(config)
    for ref in refs:
        if Path(ref.model).resolve() == Path(candidate_path).resolve():
            raise ModelError("ship rule: a reference is the candidate file this run overwrites", path=ref.model)
    crops = [crop_bgr(s) for s in samples]
    threads = config.export.threads
    cand = daemon_metrics(Reference("candidate", Path(candidate_path)), samples, truth, labels, ten_classes, threads, crops)
    ref_records = []
    for ref in refs:
        metrics = daemon_metrics(ref, samples, truth, labels, ten_classes, threads, crops)
        ref_records.append({"name": ref.name, "model": repo_relative(ref.model), "sha256": sha256_file(ref.model),
                            "metrics": metrics})
        log(f"ship rule: {ref.name}: " + ", ".join(f"{m} {metrics[m]:.4f}" for m in rule.metrics))
    log("ship rule: candidate: " + ", ".join(f"{m} {cand[m]:.4f}" for m in rule.metrics))
    beats_all, checks = decide(cand, ref_records, rule.metrics)
    return {
        "metrics": list(rule.metrics),
        "code_path": "edge.classify.classifier.GarmentClassifier.classify on the validation crops",
        "candidate": summary(cand),
        "references": [{"name": r["name"], "model": r["model"], "sha256": r["sha256"], "metrics": summary(r["metrics"])}
                       for r in ref_records],
        "checks": checks,
        "beats_all": beats_all,
        "candidate_full": cand,
    }

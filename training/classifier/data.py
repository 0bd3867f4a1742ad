"""Assemble the training and validation arrays from the configured sources."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import DatasetError

from ..data.cache import load_images
from ..data.clothing import apply_split, load_clothing, load_or_make_split
from ..data.deepfashion import load_deepfashion
from ..data.folder import load_folder
from ..data.idx import load_idx
from ..data.samples import Sample, check_classes
from ..data.yolo_crops import load_yolo_crops
from ..labels import LabelMap
from .config import ClassifierConfig, SourceConfig


@dataclass
class Arrays:
    images: np.ndarray  # (N, S, S, 3) uint8 RGB, letterboxed
    labels: np.ndarray  # (N,) int64 index into LabelMap.labels
    sources: np.ndarray  # (N,) str: which source each image came from
    keys: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)  # the records behind the images (daemon-path evaluation)


@dataclass
class TrainingData:
    train: Arrays
    validation: Arrays
    provenance: list[dict]  # per source: name, format, root, counts (for the manifest)
    split: dict | None  # the clothing split record, if any
    # train-only images whose label is a set of product labels (source.partial_labels):
    # ``partial.labels`` is -1, ``partial_targets`` (N, n_labels) is 1 for each label of the set
    partial: Arrays | None = None
    partial_targets: np.ndarray | None = None


def _limit(samples: list[Sample], per_class: int | None, seed: int) -> list[Sample]:
    if per_class is None:
        return samples
    by_class: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_class[s.label].append(s)
    rng = random.Random(seed)
    kept = []
    for label in sorted(by_class):
        items = by_class[label]
        kept.extend(items if len(items) <= per_class else rng.sample(items, per_class))
    return kept


def _split_folder(root: Path) -> tuple[list[Sample], list[Sample]]:
    if (root / "train").is_dir():
        train = load_folder(root / "train")
        val = load_folder(root / "val") if (root / "val").is_dir() else []
        return train, val
    return load_folder(root), []


def load_source(source: SourceConfig, seed: int) -> tuple[list[Sample], list[Sample], dict | None]:
    """(train samples, validation samples, split record) with the dataset's own labels."""
    if source.format == "clothing":
        samples = load_clothing(source.root)
        split = load_or_make_split(samples, source.split_file, source.validation_fraction, seed)
        train, val = apply_split(samples, split)
        return train, val, split
    if source.format == "yolo_crops":
        train = load_yolo_crops(source.root, source.split, source.min_side_px, source.margin, None, seed)
        val = (
            load_yolo_crops(source.root, source.validation_split, source.min_side_px, source.margin, None, seed)
            if source.validation_split
            else []
        )
        return train, val, None
    if source.format == "folder":
        train, val = _split_folder(source.root)
        return train, val, None
    if source.format == "idx":
        train = load_idx(source.train_images, source.train_labels)
        val = load_idx(source.val_images, source.val_labels) if source.val_images and source.val_labels else []
        return train, val, None
    if source.format == "deepfashion":
        return (
            load_deepfashion(source.root, "train", source.use_bbox),
            load_deepfashion(source.root, "val", source.use_bbox),
            None,
        )
    raise DatasetError(f"unknown format {source.format!r}", field="data.format")


def _arrays(samples: list[Sample], label_map: LabelMap, size: int, cache_dir: Path | None, name: str) -> Arrays:
    images = load_images(samples, size, cache_dir, name)
    labels = np.array([label_map.index(s.label) for s in samples], dtype=np.int64)
    sources = np.array([s.source for s in samples])
    return Arrays(images, labels, sources, [s.key for s in samples], list(samples))


def _concat(parts: list[Arrays], size: int) -> Arrays:
    if not parts:
        return Arrays(np.zeros((0, size, size, 3), np.uint8), np.zeros((0,), np.int64), np.zeros((0,), str), [])
    return Arrays(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.sources for p in parts]),
        [k for p in parts for k in p.keys],
        [s for p in parts for s in p.samples],
    )


def build_training_data(config: ClassifierConfig, label_map: LabelMap) -> TrainingData:
    size = config.model.image_size
    train_parts, val_parts, provenance, split = [], [], [], None
    partial_parts, partial_targets = [], []
    for i, source in enumerate(config.data):
        train, val, source_split = load_source(source, config.seed)
        split = split or source_split
        if source.partial_labels:
            partial = [s for s in train if s.label in source.partial_labels]
            train = [s for s in train if s.label not in source.partial_labels]
            partial = _limit(partial, source.max_per_class or source.limit_per_class, config.seed)
            if partial:
                targets = np.zeros((len(partial), len(label_map.labels)), np.float32)
                for row, sample in enumerate(partial):
                    for product in source.partial_labels[sample.label]:
                        if product not in label_map.labels:
                            raise DatasetError(f"partial label {product!r} is not a product label",
                                               path=label_map.path, field=f"data[{i}].partial_labels.{sample.label}")
                        targets[row, label_map.labels.index(product)] = 1.0
                images = load_images(partial, size, config.cache_dir, f"{source.name}-{i}-partial")
                partial_parts.append(Arrays(images, np.full(len(partial), -1, np.int64), np.array([s.source for s in partial]),
                                            [s.key for s in partial], list(partial)))
                partial_targets.append(targets)
        # max_per_class caps the *product* classes (after the map), seeded
        train = _limit(label_map.apply(train, source.name), source.max_per_class or source.limit_per_class, config.seed)
        val = _limit(label_map.apply(val, source.name), source.limit_validation_per_class, config.seed)
        if not source.validate_on:
            val = []
        check_classes(train, source.root or source.train_images)
        tag = f"{source.name}-{i}"
        train_parts.append(_arrays(train, label_map, size, config.cache_dir, f"{tag}-train"))
        if val:
            val_parts.append(_arrays(val, label_map, size, config.cache_dir, f"{tag}-val"))
        provenance.append(
            {
                "name": source.name,
                "format": source.format,
                "root": str(source.root or source.train_images),
                "train": dict(sorted(Counter(s.label for s in train).items())),
                "validation": dict(sorted(Counter(s.label for s in val).items())),
                **({"partial": {label: {"images": sum(1 for p in partial if p.label == label), "labels": products}
                                for label, products in source.partial_labels.items()}} if source.partial_labels else {}),
            }
        )
    data = TrainingData(_concat(train_parts, size), _concat(val_parts, size), provenance, split)
    if partial_parts:
        data.partial = _concat(partial_parts, size)
        data.partial_targets = np.concatenate(partial_targets)
    if len(data.validation.labels) == 0:
        raise DatasetError("no validation images: set validate_on for at least one source with a validation side", field="data")
    missing = [label_map.labels[i] for i in range(len(label_map.labels)) if i not in set(data.train.labels.tolist())]
    if missing:
        raise DatasetError(f"product label(s) {', '.join(missing)} have no training images", path=label_map.path)
    return data

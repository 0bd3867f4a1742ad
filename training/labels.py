"""The label map: dataset labels -> product labels (configs/label_map.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from edge.errors import ConfigError, DatasetError

from .data.samples import Sample


@dataclass(frozen=True)
class LabelMap:
    labels: list[str]  # product labels in model output order
    ten_classes: list[str]
    datasets: dict[str, dict[str, str | None]]
    path: Path

    def index(self, label: str) -> int:
        return self.labels.index(label)

    def apply(self, samples: list[Sample], dataset: str) -> list[Sample]:
        """Samples relabelled to product labels; null-mapped labels dropped; unmapped -> error."""
        if dataset not in self.datasets:
            raise ConfigError(f"no label map for dataset {dataset!r}", path=self.path, field="datasets")
        mapping = self.datasets[dataset]
        unknown = sorted({s.label for s in samples} - set(mapping))
        if unknown:
            raise DatasetError(
                f"unknown label(s) {', '.join(map(repr, unknown))}: add them to datasets.{dataset}",
                path=self.path,
            )
        return [replace(s, label=mapping[s.label]) for s in samples if mapping[s.label] is not None]


def load_label_map(path: str | Path) -> LabelMap:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError("label map not found", path=path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML ({type(exc).__name__})", path=path) from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", path=path)
    labels = data.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ConfigError("must be a non-empty list of names", path=path, field="labels")
    if len(set(labels)) != len(labels):
        raise ConfigError("duplicate label", path=path, field="labels")
    ten = data.get("ten_classes") or []
    missing = [x for x in ten if x not in labels]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not in labels", path=path, field="ten_classes")
    datasets = data.get("datasets") or {}
    if not isinstance(datasets, dict):
        raise ConfigError("must map dataset -> {label: product label}", path=path, field="datasets")
    for name, mapping in datasets.items():
        if not isinstance(mapping, dict):
            raise ConfigError("must map dataset label -> product label or null", path=path, field=f"datasets.{name}")
        for source, target in mapping.items():
            if target is not None and target not in labels:
                raise ConfigError(f"{target!r} is not one of labels", path=path, field=f"datasets.{name}.{source}")
    clean = {str(n): {str(k): v for k, v in m.items()} for n, m in datasets.items()}
    return LabelMap(labels=list(labels), ten_classes=list(ten), datasets=clean, path=path)

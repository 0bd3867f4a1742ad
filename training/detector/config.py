"""configs/detector.yaml -> a resolved settings object (paths made absolute)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DetectorConfig:
    path: Path
    raw: dict
    shared: Path
    work_dir: Path

    def section(self, name: str) -> dict:
        value = self.raw.get(name)
        if not isinstance(value, dict):
            raise ConfigError("missing or not a mapping", path=self.path, field=name)
        return value

    def get(self, section: str, key: str):
        values = self.section(section)
        if key not in values:
            raise ConfigError("missing", path=self.path, field=f"{section}.{key}")
        return values[key]

    def repo_path(self, value: str | Path) -> Path:
        return (REPO / value).resolve() if not Path(value).is_absolute() else Path(value)

    def shared_path(self, value: str | Path) -> Path:
        return (self.shared / value).resolve()


def load_config(path: str | Path) -> DetectorConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping", path=path)
    shared = Path(os.environ.get("FASHION_EDGE_SHARED") or (REPO / raw.get("shared", "../shared"))).resolve()
    work_dir = (REPO / raw.get("work_dir", "runs/detector")).resolve()
    return DetectorConfig(path=path, raw=raw, shared=shared, work_dir=work_dir)

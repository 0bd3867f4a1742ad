"""The record every loader produces, and the checks shared by the loaders."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge.errors import DatasetError


@dataclass(frozen=True)
class Sample:
    """One training example before decoding.

    ``path`` is the image file; ``box`` an optional (x1, y1, x2, y2) crop in pixels of that file
    (YOLO and DeepFashion crops); ``label`` the dataset's own label, mapped to a product label
    later by the label map. ``group`` is what must not straddle train/validation (the
    photographer for the clothing dataset); ``key`` a stable id used in split files.
    ``pixels`` carries an already decoded image for sources that are not image files (IDX).
    """

    path: Path
    label: str
    key: str
    group: str = ""
    box: tuple[int, int, int, int] | None = None
    source: str = ""
    pixels: object = None  # numpy array (H, W, 3) uint8 BGR, only for in-memory sources

    def cache_token(self) -> str:
        box = "" if self.box is None else ",".join(str(v) for v in self.box)
        return f"{self.source}|{self.key}|{self.path}|{box}"


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found", path=path)
    return path


def check_classes(samples: list[Sample], where: str | Path, min_per_class: int = 1) -> None:
    """No empty dataset and no class with fewer than ``min_per_class`` images."""
    if not samples:
        raise DatasetError("no images found", path=where)
    counts = Counter(s.label for s in samples)
    thin = sorted(label for label, n in counts.items() if n < min_per_class)
    if thin:
        raise DatasetError(
            f"class(es) {', '.join(thin)} have fewer than {min_per_class} images", path=where
        )

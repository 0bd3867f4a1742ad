"""Folder-per-class trees: ``root/<class>/<image>`` (the format most users have)."""

from __future__ import annotations

from pathlib import Path

from edge.errors import DatasetError

from .samples import Sample

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_folder(root: Path) -> list[Sample]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("folder-per-class root not found", path=root)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError("no class folders (expected root/<class>/<image>)", path=root)
    samples = []
    for class_dir in classes:
        images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DatasetError("empty class folder (no .jpg/.png images)", path=class_dir)
        for image in images:
            key = f"{class_dir.name}/{image.name}"
            samples.append(Sample(path=image, label=class_dir.name, key=key, group=key, source=root.name))
    return samples

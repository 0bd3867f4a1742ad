"""DeepFashion "Category and Attribute Prediction" layout.

``Anno/list_category_cloth.txt`` (category names, 1-based), ``Anno/list_category_img.txt``
(image -> category), ``Anno/list_bbox.txt`` (image -> x1 y1 x2 y2) and
``Eval/list_eval_partition.txt`` (image -> train/val/test). Each list starts with a count line and
a header line. Images are cropped to their box; the 46 fine categories are merged into the
store's coarse labels by the label map (``datasets.deepfashion`` in configs/label_map.yaml).
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import DatasetError

from .samples import Sample, require_file

PARTITIONS = ("train", "val", "test")


def _find(root: Path, name: str) -> Path:
    for candidate in (root / name, root / "Anno" / name, root / "Eval" / name):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{name} not found (looked in ., Anno/, Eval/)", path=root)


def _rows(path: Path, n_fields: int) -> list[list[str]]:
    """Data rows of a DeepFashion list (count line, header line, then rows); count is checked."""
    lines = [line for line in require_file(path, "list file").read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise DatasetError("expected a count line and a header line", path=path)
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise DatasetError("first line must be the number of rows", path=path, field="line 1") from None
    rows = []
    for line_no, line in enumerate(lines[2:], start=3):
        # category names may contain spaces in some copies: split from the right
        parts = line.rsplit(maxsplit=n_fields - 1)
        if len(parts) != n_fields:
            raise DatasetError(f"expected {n_fields} fields", path=path, field=f"line {line_no}")
        rows.append(parts)
    if declared != len(rows):
        raise DatasetError(f"first line says {declared} rows, file has {len(rows)}", path=path)
    return rows


def load_deepfashion(root: Path, partition: str = "train", use_bbox: bool = True) -> list[Sample]:
    if partition not in PARTITIONS:
        raise DatasetError(f"partition must be one of {', '.join(PARTITIONS)}, got {partition!r}", field="partition")
    root = Path(root)
    cloth_path = _find(root, "list_category_cloth.txt")
    names = [row[0] for row in _rows(cloth_path, 2)]
    category_path = _find(root, "list_category_img.txt")
    categories = {}
    for image, number in _rows(category_path, 2):
        try:
            index = int(number)
        except ValueError:
            raise DatasetError(f"category {number!r} of {image} is not a number", path=category_path) from None
        if not 1 <= index <= len(names):
            raise DatasetError(f"category {index} of {image} not in list_category_cloth.txt (1..{len(names)})", path=category_path)
        categories[image] = names[index - 1]
    partition_path = _find(root, "list_eval_partition.txt")
    wanted = [image for image, status in _rows(partition_path, 2) if status == partition]
    boxes = {}
    if use_bbox:
        bbox_path = _find(root, "list_bbox.txt")
        for row in _rows(bbox_path, 5):
            try:
                boxes[row[0]] = tuple(int(v) for v in row[1:])
            except ValueError:
                raise DatasetError(f"non-integer box for {row[0]}", path=bbox_path) from None
    samples = []
    for image in wanted:
        if image not in categories:
            raise DatasetError(f"{image} has no category in list_category_img.txt", path=partition_path)
        if use_bbox and image not in boxes:
            raise DatasetError(f"{image} has no box in list_bbox.txt", path=partition_path)
        samples.append(
            Sample(path=root / image, label=categories[image], key=image, group=image,
                   box=boxes.get(image), source="deepfashion")
        )
    if not samples:
        raise DatasetError(f"no images in partition {partition!r}", path=partition_path)
    return samples

"""The clothing dataset (``labels.csv``: image,sender_id,label,kids) and its sender-grouped split.

The same photographer shoots several garments on the same floor or hanger; an image of theirs in
validation would be half-seen already. So train/validation are split **by sender_id**, balanced per
class, seeded, and written to a JSON file that every later run reads back unchanged.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from edge.errors import DatasetError

from .samples import Sample, require_file

REQUIRED_COLUMNS = ("image", "sender_id", "label")


def load_clothing(root: Path, csv_name: str = "labels.csv", check_images: bool = True) -> list[Sample]:
    """Rows of ``labels.csv`` as samples; images are ``<root>/images/<image>.jpg``."""
    root = Path(root)
    csv_path = require_file(root / csv_name, "labels file")
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"missing column(s) {', '.join(missing)}", path=csv_path)
        samples = []
        for line, row in enumerate(reader, start=2):
            image, label, sender = (row["image"] or "").strip(), (row["label"] or "").strip(), (row["sender_id"] or "").strip()
            if not image or not label:
                raise DatasetError("empty image or label", path=csv_path, field=f"line {line}")
            path = root / "images" / f"{image}.jpg"
            if check_images and not path.is_file():
                raise DatasetError(f"image {image}.jpg not found in {root / 'images'}", path=csv_path, field=f"line {line}")
            samples.append(Sample(path=path, label=label, key=image, group=sender or image, source="clothing"))
    if not samples:
        raise DatasetError("no rows", path=csv_path)
    return samples


def _greedy_folds(per_group: dict[str, Counter], totals: Counter, order: list[str], k: int) -> dict[str, int]:
    n_total = sum(totals.values())
    fold_counts = [Counter() for _ in range(k)]
    fold_sizes = [0] * k
    assignment: dict[str, int] = {}
    for group in order:
        counts = per_group[group]
        size = sum(counts.values())

        def cost(fold: int) -> float:
            # growth of the squared deviation from the ideal 1/k share, per class, plus size balance
            c = 0.0
            for label, n in counts.items():
                before = fold_counts[fold][label] / totals[label] - 1 / k
                c += (before + n / totals[label]) ** 2 - before**2
            return c + 0.5 * ((fold_sizes[fold] + size) / n_total - 1 / k) ** 2

        best = min(range(k), key=cost)
        assignment[group] = best
        fold_counts[best].update(counts)
        fold_sizes[best] += size
    return assignment


def _imbalance(per_group: dict[str, Counter], totals: Counter, assignment: dict[str, int], k: int) -> float:
    shares = defaultdict(float)
    for group, fold in assignment.items():
        for label, n in per_group[group].items():
            shares[(fold, label)] += n / totals[label]
    return sum((shares[(f, label)] - 1 / k) ** 2 for f in range(k) for label in totals)


def grouped_folds(samples: list[Sample], k: int, seed: int, attempts: int = 64) -> dict[str, int]:
    """Assign every group to one of ``k`` folds so each class is spread evenly (group -> fold).

    Greedy placement (large groups first, each to the fold whose per-class shares stay closest
    to 1/k), repeated over ``attempts`` seeded orders; the most even result wins. Deterministic
    for a given seed.
    """
    if k < 2:
        raise ValueError("k must be at least 2")
    per_group: dict[str, Counter] = defaultdict(Counter)
    for s in samples:
        per_group[s.group][s.label] += 1
    if len(per_group) < k:
        raise DatasetError(f"only {len(per_group)} sender group(s); cannot make {k} folds", field="split")
    totals = Counter(s.label for s in samples)
    rng = random.Random(seed)
    best, best_score = None, float("inf")
    for _ in range(attempts):
        # sizes jittered by up to 2x so the order varies, while big groups still go early
        order = sorted(per_group, key=lambda g: -sum(per_group[g].values()) * (1 + rng.random()))
        assignment = _greedy_folds(per_group, totals, order, k)
        score = _imbalance(per_group, totals, assignment, k)
        if score < best_score:
            best, best_score = assignment, score
    return best


def make_split(samples: list[Sample], validation_fraction: float, seed: int) -> dict:
    """Sender-grouped, class-balanced split as a JSON-ready dict."""
    k = max(2, round(1 / validation_fraction))
    folds = grouped_folds(samples, k, seed)
    val_groups = sorted(g for g, f in folds.items() if f == 0)
    val_keys = sorted(s.key for s in samples if folds[s.group] == 0)
    train_counts = Counter(s.label for s in samples if folds[s.group] != 0)
    val_counts = Counter(s.label for s in samples if folds[s.group] == 0)
    return {
        "dataset": "clothing",
        "group_by": "sender_id",
        "seed": seed,
        "k": k,
        "validation_fold": 0,
        "validation_groups": val_groups,
        "counts": {
            "train": dict(sorted(train_counts.items())),
            "validation": dict(sorted(val_counts.items())),
        },
        "validation_images": val_keys,
    }


def load_or_make_split(samples: list[Sample], split_file: Path, validation_fraction: float, seed: int) -> dict:
    """Read the committed split; create it (once) when the file does not exist."""
    split_file = Path(split_file)
    if split_file.is_file():
        try:
            split = json.loads(split_file.read_text())
            val_images = set(split["validation_images"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"malformed split file ({exc})", path=split_file) from None
        unknown = val_images - {s.key for s in samples}
        if unknown:
            raise DatasetError(
                f"{len(unknown)} validation image(s) are not in the dataset (e.g. {sorted(unknown)[0]})",
                path=split_file,
            )
        return split
    split = make_split(samples, validation_fraction, seed)
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps(split, indent=1) + "\n")
    return split


def apply_split(samples: list[Sample], split: dict) -> tuple[list[Sample], list[Sample]]:
    val_images = set(split["validation_images"])
    train = [s for s in samples if s.key not in val_images]
    val = [s for s in samples if s.key in val_images]
    leaked = {s.group for s in train} & {s.group for s in val}
    if leaked:  # a hand-edited split file must not leak a photographer across the split
        raise DatasetError(f"sender(s) {sorted(leaked)[:3]} on both sides of the split", field="split")
    return train, val

"""Retraining the person-attribute model on a store's own labelled crops is one command (issue 20):
``python -m training.attributes --config <store config>``, here on a tiny folder of real CCTV crops,
one epoch, without replacing the shipped model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from training.attributes.store_data import load_store_folder

pytest.importorskip("tensorflow")


def store_folder(shared_dir, tmp_path, count: int = 24):
    """A store-style labels.csv over real PETA crops (labels copied from PETA's, some left empty)."""
    root = tmp_path / "store"
    (root / "crops").mkdir(parents=True)
    with (shared_dir / "datasets" / "peta" / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subset"] == "3DPeS"][:count]
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "group", "suit", "pants", "shorts", "outwear", "dress_or_skirt"])
        for i, r in enumerate(rows):
            name = f"crops/{i:03d}.jpg"
            (root / name).write_bytes((shared_dir / "datasets" / "peta" / r["image"]).read_bytes())
            suit = "1" if r["upperBodySuit"] == "1" and r["lowerBodySuits"] == "1" else "0"
            pants = "1" if r["lowerBodyTrousers"] == "1" or r["lowerBodyJeans"] == "1" else "0"
            either = "1" if r["lowerBodyShortSkirt"] == "1" or r["lowerBodyLongSkirt"] == "1" else ""
            w.writerow([name, r["identity"], suit, pants, r["lowerBodyShorts"], "" if i % 3 else r["upperBodyJacket"], either])
    return root


def test_store_folder_labels_keep_empty_cells_unknown_and_split_by_group(shared_dir, tmp_path):
    root = store_folder(shared_dir, tmp_path)
    train = load_store_folder(root, "train", 0.3, 42)
    val = load_store_folder(root, "val", 0.3, 42)
    assert len(train) + len(val) == 24 and len(train) and len(val)
    t = train.target_matrix()
    assert (t[:, 1] == -1).all() and (t[:, 2] == -1).all()  # dress / skirt columns absent: unknown
    assert set(t[:, 5]) <= {-1.0, 0.0, 1.0} and (t[:, 5] == -1).any()  # empty outwear cells: unknown


def test_a_bad_store_label_names_file_line_and_column(shared_dir, tmp_path):
    from edge.errors import DatasetError

    root = store_folder(shared_dir, tmp_path, count=3)
    text = (root / "labels.csv").read_text().splitlines()
    text[2] = text[2].replace(",0,", ",yes,", 1)
    (root / "labels.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetError) as err:
        load_store_folder(root, "val", 0.5, 42)
    message = str(err.value)
    assert "labels.csv" in message and "line 3" in message and "'yes'" in message


def test_retraining_on_a_store_folder_is_one_command(shared_dir, tmp_path, repo_dir):
    root = store_folder(shared_dir, tmp_path)
    config = tmp_path / "attributes_store.yaml"
    config.write_text(f"""
seed: 1
data:
  - {{format: folder, root: {root}, val_fraction: 0.3, licence: "our own footage"}}
model:
  weights: {shared_dir / 'models' / 'imagenet' / 'mobilenet_v2_1.0_224_quant.tflite'}
  input_height: 96
  input_width: 48
train: {{head_epochs: 1, epochs: 1, batch_size: 8, unfreeze_from: block_14_expand}}
export: {{calibration_images: 10, max_auc_drop: 1.0}}
output:
  model: {tmp_path / 'shipped' / 'person-attributes.tflite'}
  report_dir: {tmp_path / 'report'}
  run_dir: {tmp_path / 'run'}
""")
    done = subprocess.run([sys.executable, "-m", "training.attributes", "--config", str(config)],
                          cwd=repo_dir, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    shipped = tmp_path / "shipped" / "person-attributes.tflite"
    manifest = json.loads(shipped.with_suffix(".json").read_text())
    assert manifest["task"] == "person_attributes" and manifest["input_height"] == 96
    assert [d["licence"] for d in manifest["training"]["data"]] == ["our own footage"]
    card = (tmp_path / "report" / "MODEL_CARD.md").read_text()
    assert "our own footage" in card and "Research use only" not in card and "No research-only data" in card
    # the retrained model runs in the daemon's reader
    import cv2

    from edge.attributes.model import PersonAttributeModel

    reader = PersonAttributeModel(shipped)
    scores = reader.read(cv2.imread(str(next((root / "crops").iterdir())))).scores
    assert set(scores) >= {"suit", "pants", "outwear"} and all(0.0 <= v <= 1.0 for v in scores.values())

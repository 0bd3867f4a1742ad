"""Classifier data loaders on tiny files: clothing CSV + sender split, YOLO crops, folders,
Fashion-MNIST IDX, DeepFashion lists, the label map and the image cache. Bad input -> one clear
DatasetError/ConfigError naming the file."""

from __future__ import annotations

import csv
import gzip
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import ConfigError, DatasetError
from edge.preprocess import classifier_input
from training.data.cache import load_images
from training.data.clothing import apply_split, grouped_folds, load_clothing, load_or_make_split, make_split
from training.data.deepfashion import load_deepfashion
from training.data.folder import load_folder
from training.data.idx import load_idx, read_idx
from training.data.samples import Sample
from training.data.yolo_crops import load_yolo_crops
from training.labels import load_label_map


def _write_image(path: Path, colour=(30, 60, 90), shape=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((*shape, 3), np.uint8)
    image[:] = colour
    cv2.imwrite(str(path), image)
    return path


# ---------------------------------------------------------------- clothing + split


@pytest.fixture
def clothing_root(shared_dir, tmp_path) -> Path:
    """A 60-image copy (symlinks) of the real dataset: 3 labels x 20, from many senders."""
    rows = list(csv.DictReader((shared_dir / "datasets/clothing/labels.csv").read_text().splitlines()))
    chosen = []
    for label in ("Dress", "Pants", "Shoes"):
        chosen += [r for r in rows if r["label"] == label][:20]
    root = tmp_path / "clothing"
    (root / "images").mkdir(parents=True)
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "sender_id", "label", "kids"])
        writer.writeheader()
        for r in chosen:
            writer.writerow(r)
            (root / "images" / f"{r['image']}.jpg").symlink_to(shared_dir / "datasets/clothing/images" / f"{r['image']}.jpg")
    return root


def test_clothing_split_is_grouped_stratified_seeded_and_persisted(clothing_root, tmp_path):
    samples = load_clothing(clothing_root)
    assert len(samples) == 60 and {s.label for s in samples} == {"Dress", "Pants", "Shoes"}
    split_file = tmp_path / "split.json"
    split = load_or_make_split(samples, split_file, 0.25, seed=3)
    train, val = apply_split(samples, split)
    assert len(train) + len(val) == 60 and val
    assert not {s.group for s in train} & {s.group for s in val}  # no sender on both sides
    assert {s.label for s in val} == {"Dress", "Pants", "Shoes"}  # stratified: every class validated
    # persisted: a different seed later still reads the same file back
    again = load_or_make_split(samples, split_file, 0.25, seed=99)
    assert again["validation_images"] == split["validation_images"]
    assert make_split(samples, 0.25, seed=3) == split  # deterministic for a seed


def test_grouped_folds_keep_each_sender_in_one_fold(shared_dir):
    samples = load_clothing(shared_dir / "datasets/clothing", check_images=False)
    folds = grouped_folds(samples, 5, seed=0)
    assert set(folds.values()) == {0, 1, 2, 3, 4}
    sizes = np.bincount([folds[s.group] for s in samples])
    assert sizes.min() > 0.12 * len(samples)  # no tiny fold


def test_clothing_bad_inputs_name_the_file(clothing_root, tmp_path):
    with pytest.raises(DatasetError, match="labels file not found"):
        load_clothing(tmp_path / "nowhere")
    csv_path = clothing_root / "labels.csv"
    text = csv_path.read_text()
    csv_path.write_text(text.replace("sender_id", "sender"))
    with pytest.raises(DatasetError, match=r"labels\.csv: missing column\(s\) sender_id"):
        load_clothing(clothing_root)
    csv_path.write_text(text + "no-such-image,1,Dress,False\n")
    with pytest.raises(DatasetError, match=r"labels\.csv: line 62: image no-such-image\.jpg not found"):
        load_clothing(clothing_root)
    csv_path.write_text(text)
    bad_split = tmp_path / "split.json"
    bad_split.write_text("{not json")
    with pytest.raises(DatasetError, match="split.json: malformed split file"):
        load_or_make_split(load_clothing(clothing_root), bad_split, 0.2, 0)


def test_hand_edited_split_that_leaks_a_sender_is_refused(clothing_root, tmp_path):
    samples = load_clothing(clothing_root)
    split = make_split(samples, 0.25, seed=1)
    leaked = next(s for s in samples if s.key not in split["validation_images"])
    twin = next(s for s in samples if s.group == leaked.group and s.key != leaked.key) if \
        sum(s.group == leaked.group for s in samples) > 1 else None
    if twin is None:  # make a twin: same sender on the other side
        twin = Sample(path=leaked.path, label=leaked.label, key="twin", group=leaked.group)
        samples.append(twin)
    split["validation_images"] = sorted(set(split["validation_images"]) | {twin.key})
    with pytest.raises(DatasetError, match="on both sides of the split"):
        apply_split(samples, split)


# ---------------------------------------------------------------- YOLO crops


def test_yolo_crops_cut_labelled_boxes(tmp_path):
    root = tmp_path / "det"
    (root / "classes.txt").parent.mkdir(parents=True)
    (root / "classes.txt").write_text("hat\ndress\n")
    image = np.full((200, 100, 3), 255, np.uint8)
    image[100:180, 20:80] = (0, 0, 255)  # a red "dress" (BGR)
    (root / "images").mkdir()
    cv2.imwrite(str(root / "images/a.jpg"), image)
    (root / "labels").mkdir()
    # dress box 60x80 px; hat box 4x4 px (skipped: smaller than min_side_px)
    (root / "labels/a.txt").write_text("1 0.5 0.7 0.6 0.4\n0 0.5 0.05 0.04 0.02\n")
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text("a\n")
    samples = load_yolo_crops(root, "train", min_side_px=16, margin=0.0)
    assert [s.label for s in samples] == ["dress"]
    assert samples[0].box == (20, 100, 80, 180)
    crop = load_images(samples, 32, None)[0]
    assert crop.shape == (32, 32, 3)
    centre = crop[12:20, 12:20].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 200 and centre[2] < 60  # RGB: red

    (root / "labels/a.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"labels/a\.txt: line 1: class id 7 not in classes\.txt"):
        load_yolo_crops(root, "train")
    (root / "labels/a.txt").write_text("1 0.5 0.5\n")
    with pytest.raises(DatasetError, match="expected 'class cx cy w h'"):
        load_yolo_crops(root, "train")
    with pytest.raises(DatasetError, match="split 'val' not found"):
        load_yolo_crops(root, "val")


def test_real_colorful_fashion_crops(shared_dir):
    samples = load_yolo_crops(shared_dir / "datasets/colorful-fashion", "train", min_side_px=40, max_per_class=3, seed=0)
    labels = {s.label for s in samples}
    assert {"dress", "skirt", "shoe"} <= labels and len(samples) <= 3 * 10
    val_ids = set((shared_dir / "datasets/colorful-fashion/splits/val.txt").read_text().split())
    assert not any(s.group in val_ids for s in samples)  # train split only


# ---------------------------------------------------------------- folder-per-class


def test_folder_per_class_and_its_errors(tmp_path):
    _write_image(tmp_path / "data/dress/a.jpg")
    _write_image(tmp_path / "data/dress/b.png")
    _write_image(tmp_path / "data/hat/c.jpg")
    samples = load_folder(tmp_path / "data")
    assert sorted((s.label, s.path.name) for s in samples) == [("dress", "a.jpg"), ("dress", "b.png"), ("hat", "c.jpg")]
    (tmp_path / "data/skirt").mkdir()
    with pytest.raises(DatasetError, match=r"data/skirt: empty class folder"):
        load_folder(tmp_path / "data")
    (tmp_path / "data/skirt/broken.jpg").write_bytes(b"not a jpeg")
    samples = load_folder(tmp_path / "data")
    with pytest.raises(DatasetError, match=r"broken\.jpg: cannot decode image"):
        load_images(samples, 32, None)
    with pytest.raises(DatasetError, match="folder-per-class root not found"):
        load_folder(tmp_path / "missing")


# ---------------------------------------------------------------- Fashion-MNIST IDX


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_idx_pair_reads_back_exactly(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 3, 5, 9, 3], np.uint8)
    ip = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, gz=True)
    lp = write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    assert np.array_equal(read_idx(ip), images)
    samples = load_idx(ip, lp)
    assert [s.label for s in samples] == ["T-shirt/top", "Dress", "Sandal", "Ankle boot", "Dress"]
    assert np.array_equal(samples[1].pixels[:, :, 2], images[1])
    square = load_images(samples, 56, None)
    assert square.shape == (5, 56, 56, 3)
    assert np.allclose(square[0].astype(int), classifier_input(samples[0].pixels, 56).astype(int))


def test_idx_bad_files(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)
    with pytest.raises(DatasetError, match="bad-idx: header: not an unsigned-byte IDX file"):
        read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 2, 28, 28) + b"\x00" * 100)
    with pytest.raises(DatasetError, match="header says 1568 bytes"):
        read_idx(short)
    images = write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "l", np.zeros((2,), np.uint8))
    with pytest.raises(DatasetError, match="2 labels for 3 images"):
        load_idx(images, labels)


# ---------------------------------------------------------------- DeepFashion


def _write_list(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(rows)}\n{header}\n" + "\n".join(rows) + "\n")


def deepfashion_tree(root: Path) -> Path:
    _write_list(root / "Anno/list_category_cloth.txt", "category_name category_type", ["Blazer 1", "Tee 1", "Dress 3"])
    images = ["img/Blazer_A/img_01.jpg", "img/Tee_B/img_01.jpg", "img/Dress_C/img_01.jpg", "img/Dress_C/img_02.jpg"]
    for name in images:
        _write_image(root / name, shape=(60, 40))
    _write_list(root / "Anno/list_category_img.txt", "image_name category_label",
                [f"{images[0]} 1", f"{images[1]} 2", f"{images[2]} 3", f"{images[3]} 3"])
    _write_list(root / "Anno/list_bbox.txt", "image_name x_1 y_1 x_2 y_2", [f"{n} 5 5 35 50" for n in images])
    _write_list(root / "Eval/list_eval_partition.txt", "image_name evaluation_status",
                [f"{images[0]} train", f"{images[1]} train", f"{images[2]} val", f"{images[3]} test"])
    return root


def test_deepfashion_layout_and_merge(tmp_path, repo_dir):
    root = deepfashion_tree(tmp_path / "df")
    train = load_deepfashion(root, "train")
    assert [(s.label, s.box) for s in train] == [("Blazer", (5, 5, 35, 50)), ("Tee", (5, 5, 35, 50))]
    assert [s.label for s in load_deepfashion(root, "val")] == ["Dress"]
    merged = load_label_map(repo_dir / "configs/label_map.yaml").apply(train, "deepfashion")
    assert [s.label for s in merged] == ["blazer", "t-shirt"]
    crops = load_images(train, 32, None)
    assert crops.shape == (2, 32, 32, 3)


def test_deepfashion_bad_lists(tmp_path):
    root = deepfashion_tree(tmp_path / "df")
    lines = (root / "Anno/list_category_img.txt").read_text().splitlines()
    (root / "Anno/list_category_img.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match="list_category_img.txt: first line says 4 rows, file has 3"):
        load_deepfashion(root, "train")
    (root / "Anno/list_category_img.txt").write_text("\n".join(lines[:-1] + [lines[-1].replace(" 3", " 9")]) + "\n")
    with pytest.raises(DatasetError, match=r"category 9 of img/Dress_C/img_02\.jpg not in list_category_cloth\.txt"):
        load_deepfashion(root, "train")
    (root / "Anno/list_category_img.txt").write_text("\n".join(lines) + "\n")
    (root / "Anno/list_bbox.txt").unlink()
    with pytest.raises(DatasetError, match="list_bbox.txt not found"):
        load_deepfashion(root, "train", use_bbox=True)


# ---------------------------------------------------------------- label map + cache


def test_shipped_label_map_keeps_the_required_classes(repo_dir):
    label_map = load_label_map(repo_dir / "configs/label_map.yaml")
    ten = {"dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"}
    assert ten <= set(label_map.labels) and "blazer" in label_map.labels
    assert set(label_map.ten_classes) == ten
    assert label_map.datasets["clothing"]["Blazer"] == "blazer"


def test_label_map_errors(tmp_path, repo_dir):
    label_map = load_label_map(repo_dir / "configs/label_map.yaml")
    weird = [Sample(path=Path("x.jpg"), label="Cravat", key="x")]
    with pytest.raises(DatasetError, match="unknown label\\(s\\) 'Cravat': add them to datasets.clothing"):
        label_map.apply(weird, "clothing")
    dropped = label_map.apply([Sample(path=Path("x.jpg"), label="Body", key="x")], "clothing")
    assert dropped == []
    bad = tmp_path / "lm.yaml"
    bad.write_text("labels: [dress]\ndatasets:\n  clothing: {Dress: gown}\n")
    with pytest.raises(ConfigError, match="lm.yaml: datasets.clothing.Dress: 'gown' is not one of labels"):
        load_label_map(bad)


def test_cache_is_written_once_and_reused(tmp_path):
    paths = [_write_image(tmp_path / f"img/{i}.jpg", colour=(i * 40, 0, 0)) for i in range(3)]
    samples = [Sample(path=p, label="x", key=p.name) for p in paths]
    first = load_images(samples, 24, tmp_path / "cache", "tiny")
    files = list((tmp_path / "cache").glob("tiny-24px-3-*.npy"))
    assert len(files) == 1
    paths[0].unlink()  # a second load must not need the JPEGs any more
    again = load_images(samples, 24, tmp_path / "cache", "tiny")
    assert np.array_equal(first, again)
    with pytest.raises(DatasetError, match="0.jpg: image file not found"):
        load_images(samples, 32, tmp_path / "cache", "tiny")  # other size -> other cache -> decode

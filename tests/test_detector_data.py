"""Detector dataset preparation and converters on tiny files (real images, hand-written labels)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from edge.errors import ConfigError, DatasetError
from training.detector_data import GARMENT_CLASSES, PRODUCT_CLASSES
from training.detector_data.convert import ClassMap, convert_deepfashion2, convert_modanet, main as convert_main
from training.detector_data.prepare import PrepareSettings, prepare
from training.detector_data.teacher import TeacherSettings
from training.detector_data.yolo_labels import read_labels

REPO = Path(__file__).resolve().parents[1]
FASHION_IDS = ["1", "100034", "100073"]  # first ids of colorful-fashion's train split


@pytest.fixture()
def tiny_fashion(tmp_path, shared_dir) -> Path:
    """Three real colorful-fashion images and labels; two train, one val."""
    src = shared_dir / "datasets" / "colorful-fashion"
    dst = tmp_path / "fashion"
    (dst / "images").mkdir(parents=True)
    (dst / "labels").mkdir()
    (dst / "splits").mkdir()
    for stem in FASHION_IDS:
        shutil.copy(src / "images" / f"{stem}.jpg", dst / "images")
        shutil.copy(src / "labels" / f"{stem}.txt", dst / "labels")
    shutil.copy(src / "classes.txt", dst)
    (dst / "splits" / "train.txt").write_text("\n".join(FASHION_IDS[:2]) + "\n")
    (dst / "splits" / "val.txt").write_text(FASHION_IDS[2] + "\n")
    return dst


def _settings(tiny_fashion, shared_dir, out, limit=None, **extra):
    teacher = TeacherSettings(model=shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite")
    return PrepareSettings(fashion_dir=tiny_fashion, media_dir=shared_dir / "media", out=out, teacher=teacher,
                           limit=limit, **extra)


def test_prepare_shifts_garments_and_adds_teacher_people(tiny_fashion, shared_dir, tmp_path):
    out = tmp_path / "data"
    data_yaml = prepare(_settings(tiny_fashion, shared_dir, out, limit=3))
    data = yaml.safe_load(data_yaml.read_text())
    assert [data["names"][i] for i in range(len(PRODUCT_CLASSES))] == PRODUCT_CLASSES
    for stem in FASHION_IDS[:2]:
        source = read_labels(tiny_fashion / "labels" / f"{stem}.txt", len(GARMENT_CLASSES))
        written = read_labels(out / "labels" / "train" / f"cf_{stem}.txt", len(PRODUCT_CLASSES))
        garments = [b for b in written if b.cls != 0]
        assert sorted(b.cls for b in garments) == sorted(b.cls + 1 for b in source)
        people = [b for b in written if b.cls == 0]
        assert len(people) >= 1, "a full-body fashion photo must get a teacher person box"
        assert all(p.h > 0.5 for p in people), "the person in a full-body photo is tall"
        assert (out / "images" / "train" / f"cf_{stem}.jpg").resolve().is_file()
    assert (out / "labels" / "val" / f"cf_{FASHION_IDS[2]}.txt").is_file()
    # store-like frames (limited to 3): images + person-only labels
    store = sorted((out / "labels").glob("*/store_*.txt"))
    assert len(store) == 3
    for label in store:
        assert all(b.cls == 0 for b in read_labels(label, len(PRODUCT_CLASSES)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"]["conf"] == 0.40 and summary["images"]["train"] == 2


def test_oversampling_and_denser_store_training_frames(tiny_fashion, shared_dir, tmp_path):
    # id "1" holds a dress (garment id 7), id "100034" does not
    out = tmp_path / "data"
    prepare(_settings(tiny_fashion, shared_dir, out, limit=3, oversample={"dress": 3}, train_frame_step=2))
    train = sorted(p.stem for p in (out / "images" / "train").glob("cf*"))
    assert train == ["cf_1", "cf_100034", "cfx2_1", "cfx3_1"]
    assert (out / "images" / "train" / "cfx3_1.jpg").resolve() == (tiny_fashion / "images" / "1.jpg").resolve()
    assert (out / "labels" / "train" / "cfx2_1.txt").read_text() == (out / "labels" / "train" / "cf_1.txt").read_text()
    assert sorted(p.stem for p in (out / "images" / "val").glob("cf*")) == [f"cf_{FASHION_IDS[2]}"], "val is never oversampled"
    # training part of the clip sampled every 2nd frame (the first 3 frames are all training frames)
    assert sorted(p.stem for p in (out / "images" / "train").glob("store_*")) == ["store_00000", "store_00002", "store_00004"]
    summary = json.loads((out / "summary.json").read_text())
    dresses_in_1 = sum(1 for b in read_labels(tiny_fashion / "labels" / "1.txt", len(GARMENT_CLASSES)) if b.cls == 7)
    assert summary["boxes"]["train"]["dress"] == 3 * dresses_in_1
    assert summary["store"]["train_frame_step"] == 2 and summary["store"]["frame_step"] == 10
    with pytest.raises(DatasetError, match="oversample: unknown class 'gown'"):
        prepare(_settings(tiny_fashion, shared_dir, tmp_path / "bad", limit=1, oversample={"gown": 2}))
    with pytest.raises(DatasetError, match="oversample: dress: copies must be an integer >= 1"):
        prepare(_settings(tiny_fashion, shared_dir, tmp_path / "bad", limit=1, oversample={"dress": 0}))


def test_unknown_class_id_is_one_line_error(tiny_fashion, shared_dir, tmp_path):
    (tiny_fashion / "labels" / "1.txt").write_text("12 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError) as err:
        prepare(_settings(tiny_fashion, shared_dir, tmp_path / "data"))
    assert "1.txt: line 1: class id 12 is not in 0..9" in str(err.value)
    assert "\n" not in str(err.value)


def test_box_out_of_range_is_error(tiny_fashion, shared_dir, tmp_path):
    (tiny_fashion / "labels" / "100034.txt").write_text("3 0.5 0.5 0.2 0.2\n4 0.95 0.5 0.3 0.2\n")
    with pytest.raises(DatasetError, match=r"100034.txt: line 2: box out of range"):
        prepare(_settings(tiny_fashion, shared_dir, tmp_path / "data"))


def test_missing_image_for_label_is_error(tiny_fashion, shared_dir, tmp_path):
    (tiny_fashion / "images" / "100034.jpg").unlink()
    with pytest.raises(DatasetError, match=r"100034.txt: no image 100034\.\* in .* for this label"):
        prepare(_settings(tiny_fashion, shared_dir, tmp_path / "data"))


# -- DeepFashion2 ----------------------------------------------------------------------------------


@pytest.fixture()
def tiny_df2(tmp_path, shared_dir) -> Path:
    """Two DeepFashion2-style images (real 400x600 photos) with hand-written annos."""
    src = tmp_path / "df2"
    (src / "image").mkdir(parents=True)
    (src / "annos").mkdir()
    for stem in ("000001", "000002"):
        shutil.copy(shared_dir / "datasets/colorful-fashion/images/1.jpg", src / "image" / f"{stem}.jpg")
    (src / "annos" / "000001.json").write_text(json.dumps({
        "source": "user", "pair_id": 1,
        "item1": {"category_id": 1, "category_name": "short sleeve top", "bounding_box": [100, 100, 300, 300]},
        "item2": {"category_id": 8, "category_name": "trousers", "bounding_box": [120, 280, 280, 600]},
    }))
    (src / "annos" / "000002.json").write_text(json.dumps({
        "source": "shop", "pair_id": 2,
        "item1": {"category_id": 13, "category_name": "sling dress", "bounding_box": [0, 0, 400, 600]},
    }))
    return src


def test_deepfashion2_default_map(tiny_df2, tmp_path):
    out = tmp_path / "out"
    cmap = ClassMap.load(REPO / "configs/detector_classmap_deepfashion2.yaml")
    assert convert_deepfashion2(tiny_df2, out, "train", cmap) == 2
    first = read_labels(out / "labels/train/df2_000001.txt", len(PRODUCT_CLASSES))
    assert [PRODUCT_CLASSES[b.cls] for b in first] == ["shirt", "pants"]
    assert first[0].cx == pytest.approx(200 / 400) and first[0].h == pytest.approx(200 / 600)
    second = read_labels(out / "labels/train/df2_000002.txt", len(PRODUCT_CLASSES))
    assert [PRODUCT_CLASSES[b.cls] for b in second] == ["dress"] and second[0].w == pytest.approx(1.0)
    assert (out / "images/train/df2_000001.jpg").resolve().is_file()


def test_deepfashion2_custom_map_drops_and_renames(tiny_df2, tmp_path):
    cmap = ClassMap({"short sleeve top": None, "trousers": "shorts", 13: "skirt"})
    convert_deepfashion2(tiny_df2, tmp_path / "out", "val", cmap)
    first = read_labels(tmp_path / "out/labels/val/df2_000001.txt", len(PRODUCT_CLASSES))
    assert [PRODUCT_CLASSES[b.cls] for b in first] == ["shorts"]
    second = read_labels(tmp_path / "out/labels/val/df2_000002.txt", len(PRODUCT_CLASSES))
    assert [PRODUCT_CLASSES[b.cls] for b in second] == ["skirt"]


def test_deepfashion2_errors(tiny_df2, tmp_path):
    cmap = ClassMap.load(REPO / "configs/detector_classmap_deepfashion2.yaml")
    anno = tiny_df2 / "annos" / "000002.json"
    anno.write_text(json.dumps({"item1": {"category_id": 14, "category_name": "cape", "bounding_box": [0, 0, 9, 9]}}))
    with pytest.raises(DatasetError, match=r"000002.json: item1: unknown class id 14 \('cape'\)"):
        convert_deepfashion2(tiny_df2, tmp_path / "o1", "train", cmap)
    anno.write_text(json.dumps({"item1": {"category_id": 9, "bounding_box": [10, 10, 450, 200]}}))
    with pytest.raises(DatasetError, match=r"item1.bounding_box: box out of range .* 400x600 image"):
        convert_deepfashion2(tiny_df2, tmp_path / "o2", "train", cmap)
    (tiny_df2 / "image" / "000002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"000002.json: no image 000002\.\*"):
        convert_deepfashion2(tiny_df2, tmp_path / "o3", "train", cmap)


def test_class_map_target_must_be_a_product_class():
    with pytest.raises(ConfigError, match=r"map.trousers: 'trouser' is not a product class"):
        ClassMap({"trousers": "trouser"}, "my_map.yaml")


# -- ModaNet -----------------------------------------------------------------------------------------


@pytest.fixture()
def tiny_modanet(tmp_path, shared_dir) -> tuple[Path, Path]:
    images = tmp_path / "modanet_images"
    images.mkdir()
    shutil.copy(shared_dir / "datasets/colorful-fashion/images/100034.jpg", images / "0000123.jpg")
    coco = {
        "images": [{"id": 123, "file_name": "0000123.jpg", "width": 400, "height": 600}],
        "categories": [{"id": 1, "name": "bag"}, {"id": 2, "name": "belt"}, {"id": 4, "name": "footwear"},
                       {"id": 5, "name": "outer"}, {"id": 8, "name": "pants"}],
        "annotations": [
            {"id": 1, "image_id": 123, "category_id": 1, "bbox": [10, 300, 80, 100]},
            {"id": 2, "image_id": 123, "category_id": 2, "bbox": [150, 280, 100, 20]},
            {"id": 3, "image_id": 123, "category_id": 4, "bbox": [150, 550, 60, 50]},
            {"id": 4, "image_id": 123, "category_id": 5, "bbox": [100, 100, 200, 220]},
        ],
    }
    path = tmp_path / "modanet.json"
    path.write_text(json.dumps(coco))
    return path, images


def test_modanet_default_map(tiny_modanet, tmp_path):
    annotations, images = tiny_modanet
    cmap = ClassMap.load(REPO / "configs/detector_classmap_modanet.yaml")
    assert convert_modanet(annotations, images, tmp_path / "out", "train", cmap) == 1
    boxes = read_labels(tmp_path / "out/labels/train/modanet_0000123.txt", len(PRODUCT_CLASSES))
    assert [PRODUCT_CLASSES[b.cls] for b in boxes] == ["bag", "shoe", "jacket"]  # belt dropped
    assert boxes[1].cy + boxes[1].h / 2 == pytest.approx(1.0)  # footwear touches the bottom edge


def test_modanet_errors_and_cli(tiny_modanet, tmp_path, capsys):
    annotations, images = tiny_modanet
    coco = json.loads(annotations.read_text())
    coco["annotations"].append({"id": 9, "image_id": 123, "category_id": 99, "bbox": [1, 1, 5, 5]})
    annotations.write_text(json.dumps(coco))
    rc = convert_main(["modanet", "--src", str(images), "--annotations", str(annotations), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and "annotations[4]: unknown class id 99" in err and "\n" not in err
    coco["annotations"].pop()
    coco["images"][0]["file_name"] = "missing.jpg"
    annotations.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"no image missing.jpg in .* for image id 123"):
        convert_modanet(annotations, images, tmp_path / "o2", "train", ClassMap.load(
            REPO / "configs/detector_classmap_modanet.yaml"))

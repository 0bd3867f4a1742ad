"""Person-attribute training data and loss (issue 20): labels from each source's own annotation,
partial labels never turned into guessed negatives, and the partial-label loss on a tiny batch."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from training.attributes import labels as L
from training.attributes.data import in_validation, load_co_parsing, load_colorful_fashion, load_peta

A = {name: i for i, name in enumerate(L.ATTRIBUTES)}


def peta_row(shared_dir, image: str) -> dict:
    with (shared_dir / "datasets" / "peta" / "labels.csv").open(newline="") as f:
        return next(r for r in csv.DictReader(f) if r["image"] == image)


def test_peta_skirt_is_the_dress_or_skirt_set_not_a_guessed_dress(shared_dir):
    row = peta_row(shared_dir, "images/3DPeS/125_480_FRAME_127_RGB.jpg")  # lowerBodyShortSkirt
    t = L.peta_target(row)
    assert t[L.SET_COLUMN] == 1.0
    assert t[A["dress"]] == L.UNKNOWN and t[A["skirt"]] == L.UNKNOWN  # PETA cannot say which
    assert t[A["shorts"]] == 0.0


def test_peta_suit_needs_both_halves_and_one_half_is_unknown(shared_dir):
    suit = L.peta_target(peta_row(shared_dir, "images/3DPeS/169_1296_FRAME_21_RGB.jpg"))
    assert suit[A["suit"]] == 1.0 and suit[A["pants"]] == 1.0
    assert suit[A["outwear"]] == 0.0  # a suit jacket is not outwear in the product's vocabulary
    half = L.peta_target({"upperBodySuit": "1", "lowerBodyJeans": "1"})
    assert half[A["suit"]] == L.UNKNOWN
    none = L.peta_target({"lowerBodyTrousers": "1", "upperBodyTshirt": "1"})
    assert none[A["suit"]] == 0.0 and none[A["outwear"]] == 0.0 and none[L.SET_COLUMN] == 0.0
    assert none[A["dress"]] == 0.0 and none[A["skirt"]] == 0.0


def test_peta_shorts_and_jacket_and_ambiguous_tops(shared_dir):
    shorts = L.peta_target(peta_row(shared_dir, "images/3DPeS/10_903_FRAME_150_RGB.jpg"))
    assert shorts[A["shorts"]] == 1.0 and shorts[A["pants"]] == 0.0
    jacket = L.peta_target(peta_row(shared_dir, "images/3DPeS/153_629_FRAME_173_RGB.jpg"))
    assert jacket[A["outwear"]] == 1.0
    other = L.peta_target({"upperBodyOther": "1", "lowerBodyTrousers": "1"})
    assert other[A["outwear"]] == L.UNKNOWN  # coats and hoodies may hide in 'other'


def test_colorful_fashion_person_labels_come_from_the_garment_boxes(shared_dir):
    dress = L.colorful_fashion_target([L.CF_DRESS, 9, 8])
    assert dress[A["dress"]] == 1.0 and dress[A["skirt"]] == 0.0 and dress[A["pants"]] == 0.0
    assert dress[A["suit"]] == L.UNKNOWN  # no suits as such in these photos
    jacket = L.colorful_fashion_target([L.CF_JACKET, L.CF_PANTS])
    assert jacket[A["outwear"]] == 1.0 and jacket[A["pants"]] == 1.0 and jacket[A["dress"]] == 0.0
    samples = load_colorful_fashion(shared_dir / "datasets" / "colorful-fashion", "val", limit=20)
    assert len(samples) > 0
    for image, box, target in zip(samples.images, samples.boxes, samples.targets):
        assert 0 <= box[0] < box[2] <= image.shape[1] + 1e-3 and box[3] <= image.shape[0] + 1e-3
        assert set(np.unique(target[: len(L.ATTRIBUTES)])) <= {-1.0, 0.0, 1.0}


def test_co_parsing_masks_give_the_person_box_and_the_suit_colour_check(shared_dir):
    import scipy.io

    root = shared_dir / "datasets" / "clothing-co-parsing"
    names = [str(x[0]) for x in scipy.io.loadmat(root / "label_list.mat")["label_list"][0]]
    gt = scipy.io.loadmat(root / "annotations_pixel_level" / "0008.mat")["groundtruth"]  # suit + pants
    regions = L.mask_regions(gt, names)
    assert {"person", "pants"} <= set(regions) and ("suit" in regions or "blazer" in regions)
    box = L.box_of(regions["person"])
    h, w = gt.shape
    assert box is not None and 0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h
    assert (box[2] - box[0]) < w or (box[3] - box[1]) < h or regions["person"].mean() < 0.9
    # tags: a tailored jacket over jeans is no suit; no tailored jacket at all is no suit either
    assert L.co_parsing_target({"blazer": "1", "jeans": "1"})[A["suit"]] == 0.0
    assert L.co_parsing_target({"pants": "1", "shirt": "1"})[A["suit"]] == 0.0
    assert L.co_parsing_target({"suit": "1", "pants": "1"})[A["suit"]] == L.UNKNOWN  # no mask: cannot check
    assert L.co_parsing_target({"suit": "1", "pants": "1"}, suit_matches=True)[A["suit"]] == 1.0
    assert L.co_parsing_target({"suit": "1", "pants": "1"}, suit_matches=False)[A["suit"]] == 0.0
    # colour check on synthetic regions: same cloth matches, navy vs light grey does not
    image = np.zeros((20, 20, 3), np.uint8)
    image[:10] = (90, 40, 30)  # navy (BGR)
    image[10:] = (80, 36, 27)  # the same navy in shade
    top, bottom = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    top[:10], bottom[10:] = True, True
    assert L.colours_match(image, top, bottom)
    image[10:] = (200, 200, 200)
    assert not L.colours_match(image, top, bottom)


def test_co_parsing_loader_frames_the_person_from_the_mask(shared_dir):
    samples = load_co_parsing(shared_dir / "datasets" / "clothing-co-parsing", "train", 0.2, 42, limit=12)
    assert len(samples) > 0
    for image, box in zip(samples.images, samples.boxes):
        assert image.shape[0] <= 256
        assert 0 <= box[0] < box[2] <= image.shape[1] + 1e-3 and 0 <= box[1] < box[3] <= image.shape[0] + 1e-3


def test_peta_split_is_by_identity(shared_dir):
    root = shared_dir / "datasets" / "peta"
    train = load_peta(root, "train", 0.2, 42, limit=300)
    val = load_peta(root, "val", 0.2, 42, limit=300)
    ids = lambda s: {k for k in s.keys}  # noqa: E731
    assert len(train) and len(val)
    with (root / "labels.csv").open(newline="") as f:
        identity = {f"peta:{r['image']}": r["identity"] for r in csv.DictReader(f)}
    assert not {identity[k] for k in ids(train)} & {identity[k] for k in ids(val)}
    assert all(in_validation(identity[k], 0.2, 42) for k in val.keys)


def test_partial_label_loss_skips_unknowns_and_scores_the_set():
    pytest.importorskip("tensorflow")
    from training.attributes.train import PartialBinaryLoss

    loss = PartialBinaryLoss([1.0] * len(L.ATTRIBUTES))
    d, s = A["dress"], A["skirt"]

    def value(target, probs):
        return float(np.asarray(loss.call(np.array([target], np.float32), np.array([probs], np.float32)))[0])

    unknown = L.empty_target()
    base = np.full(len(L.ATTRIBUTES), 0.5, np.float32)
    assert value(unknown, base) == pytest.approx(0.0, abs=1e-6)  # nothing known: no loss at all
    # the set "dress or skirt": either member carrying the mass is right, neither is wrong
    either = L.empty_target()
    either[L.SET_COLUMN] = 1.0
    as_dress, as_skirt, neither = base.copy(), base.copy(), base.copy()
    as_dress[[d, s]] = (0.95, 0.02)
    as_skirt[[d, s]] = (0.02, 0.95)
    neither[[d, s]] = (0.02, 0.02)
    assert value(either, as_dress) == pytest.approx(value(either, as_skirt), rel=1e-3)
    assert value(either, neither) > 10 * value(either, as_dress)
    # a known negative punishes a confident positive; the other (unknown) outputs do not matter
    no_suit = L.empty_target()
    no_suit[A["suit"]] = 0.0
    confident, unsure = base.copy(), base.copy()
    confident[A["suit"]], unsure[A["suit"]] = 0.95, 0.05
    assert value(no_suit, confident) > value(no_suit, unsure) * 20
    other = unsure.copy()
    other[A["outwear"]] = 0.99
    assert value(no_suit, other) == pytest.approx(value(no_suit, unsure), rel=1e-5)


def test_partial_label_loss_trains_a_tiny_batch():
    pytest.importorskip("tensorflow")
    import keras

    from training.attributes.train import PartialBinaryLoss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    targets = np.stack([L.empty_target() for _ in range(16)])
    targets[:, A["pants"]] = (x[:, 0] > 0).astype(np.float32)  # pants known and learnable
    targets[:8, L.SET_COLUMN] = 1.0  # half the batch: "dress or skirt"
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(len(L.ATTRIBUTES), activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), loss=PartialBinaryLoss([1.0] * len(L.ATTRIBUTES)))
    first = float(model.evaluate(x, targets, verbose=0))
    model.fit(x, targets, epochs=300, verbose=0)
    assert float(model.evaluate(x, targets, verbose=0)) < 0.5 * first
    p = model.predict(x, verbose=0)
    assert ((p[:, A["pants"]] > 0.5) == (x[:, 0] > 0)).mean() >= 0.9
    either = 1 - (1 - p[:8, A["dress"]]) * (1 - p[:8, A["skirt"]])
    assert either.mean() > 0.7

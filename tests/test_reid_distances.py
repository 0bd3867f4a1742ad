"""scripts/reid_distances.py on real PETA validation views (SARC3D: 4 views per identity) with the
shipped person-attribute model: the measurement the re-identification thresholds come from."""

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reid_distances", REPO / "scripts" / "reid_distances.py")
reid = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = reid  # its dataclasses look their module up
spec.loader.exec_module(reid)


@pytest.fixture(scope="module")
def sarc3d(shared_dir):
    views = reid.load_views(shared_dir / "datasets" / "peta", ("SARC3D",), 0.2, 42, max_identities=6)
    describer = reid.Describer(REPO / "models" / "person-attributes.tflite")
    return views, describer


def test_views_are_validation_identities_with_several_views(sarc3d):
    from training.attributes.data import in_validation

    views, _ = sarc3d
    identities = {v.identity for v in views}
    assert len(identities) == 6
    assert all(in_validation(i, 0.2, 42) for i in identities)
    assert all(sum(v.identity == i for v in views) >= 2 for i in identities)


def test_same_image_is_at_distance_zero_and_distances_are_in_range(sarc3d):
    views, describer = sarc3d
    frame, box = reid.frame_person(views[0].pixels)
    c1, e1 = describer(frame, box)
    c2, e2 = describer(frame.copy(), box)
    assert reid.colour_distance(c1, c2) < 1e-6
    assert reid.embedding_distance(e1, e2) < 1e-5
    colours, embeddings = reid.describe_views(views, describer, degraded=True)
    dist = reid.pairwise(colours, embeddings)
    assert dist["colour"].min() >= 0 and dist["colour"].max() <= 1
    assert dist["embedding"].min() >= -1e-5 and dist["embedding"].max() <= 2
    # the vectorised matrix is the daemon's pair function
    for i, j in itertools.combinations(range(4), 2):
        assert dist["colour"][i, j] == pytest.approx(reid.colour_distance(colours[i], colours[j]), abs=1e-5)
        assert dist["embedding"][i, j] == pytest.approx(reid.embedding_distance(embeddings[i], embeddings[j]), abs=1e-5)


def test_degraded_frame_is_store_camera_sized():
    person = np.full((300, 120, 3), 200, np.uint8)
    frame, box = reid.frame_person(person, height=90, jpeg=50)
    assert box[3] - box[1] == 90
    assert 0 <= box[0] < box[2] <= frame.shape[1] and 0 <= box[1] < box[3] <= frame.shape[0]


def test_colour_tells_these_identities_apart(sarc3d):
    views, describer = sarc3d
    pairs = reid.make_pairs(views)
    dist = reid.pairwise(*reid.describe_views(views, describer, degraded=False))
    same = dist["colour"][pairs.same[:, 0], pairs.same[:, 1]]
    other = dist["colour"][pairs.other[:, 0], pairs.other[:, 1]]
    assert len(same) and len(other)
    assert reid.auc(same, other) > 0.85  # SARC3D identities wear distinct colours (0.97 on all 10)
    assert np.median(same) < np.median(other)


def test_thresholds_keep_their_promised_shares():
    rng = np.random.default_rng(0)
    same, other = rng.normal(0.3, 0.1, 1000), rng.normal(0.7, 0.1, 1000)
    t = reid.accept_threshold(other, 0.05)
    assert np.mean(other <= t) <= 0.05 and np.mean(other <= t + 0.01) > 0.04
    t = reid.split_threshold(same, 0.01)
    assert np.mean(same > t) <= 0.01 and np.mean(same > t - 0.01) > 0.005
    assert reid.auc(same, other) > 0.99 and reid.auc(other, same) < 0.01
    assert reid.auc(np.zeros(3), np.zeros(3)) == 0.5

"""Style map (issue 14): k-means++ and silhouette on tiny embeddings, the map refusing another
model's embeddings, the embedding output of the shipped classifier, per-customer pooling, and the
style mix from the real pipeline through the analytics to the report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.analytics import Analytics, read_windows
from edge.classify.classifier import GarmentClassifier
from edge.config import ConsensusConfig, load_config
from edge.customer import Customer
from edge.consensus import GarmentVotes
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled
from edge.errors import ModelError
from edge.pipeline import CameraPipeline
from edge.runtime import TFLiteModel, sha256_file
from edge.sources import Frame
from edge.styles import StyleMap, kmeans, silhouette
from training.styles.__main__ import choose_k

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "garment-classifier.tflite"


def _blobs(seed: int = 0, per: int = 40, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated clusters of unit vectors."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3] * 1.0
    x = np.concatenate([c + 0.08 * rng.standard_normal((per, dim)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.repeat(np.arange(3), per)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def _silhouette_by_definition(x: np.ndarray, labels: np.ndarray) -> float:
    scores = []
    for i in range(len(x)):
        d = np.linalg.norm(x - x[i], axis=1)
        same = (labels == labels[i]) & (np.arange(len(x)) != i)
        a = d[same].mean()
        b = min(d[labels == c].mean() for c in set(labels.tolist()) if c != labels[i])
        scores.append((b - a) / max(a, b))
    return float(np.mean(scores))


def test_kmeans_finds_the_clusters_and_silhouette_picks_k():
    x, truth = _blobs()
    centres, labels, inertia = kmeans(x, 3, seed=1)
    assert centres.shape == (3, 16) and _same_partition(labels, truth)
    assert silhouette(x, labels) > 0.6
    assert np.isclose(silhouette(x, labels, sample=None), _silhouette_by_definition(x, labels))
    assert silhouette(x, np.zeros(len(x), int)) == 0.0
    _, worse, _ = kmeans(x, 2, seed=1)
    assert silhouette(x, worse) < silhouette(x, labels)
    best, scores, _ = choose_k(x, [2, 6], seed=0, n_init=2, sample=500)
    assert best == 3 and max(scores, key=scores.get) == 3
    # the map assigns a new point to the nearest centre (cosine)
    style_map = StyleMap(centres, ["a", "b", "c"], "x" * 64)
    probe = x[0] + 0.01
    assert style_map.assign(probe / np.linalg.norm(probe)).id == labels[0]
    assert list(style_map.assign_many(x)) == list(labels)


def test_style_map_refuses_another_models_embeddings(tmp_path):
    x, _ = _blobs()
    centres, _, _ = kmeans(x, 3)
    path = tmp_path / "styles.json"
    path.write_text(json.dumps({"model_sha256": "ab" * 32, "styles": [{"id": i, "name": f"s{i}"} for i in range(3)],
                                "centroids": centres.tolist()}))
    assert StyleMap.load(path, model_sha256="ab" * 32).names == ["s0", "s1", "s2"]
    with pytest.raises(ModelError) as caught:
        StyleMap.load(path, model_path=MODEL)
    message = str(caught.value)
    assert "\n" not in message and "styles.json" in message and "fitted on another classifier" in message


def test_daemon_with_a_mismatched_style_map_exits_2_with_one_line(tmp_path, shared_dir):
    from conftest import demo_config_data

    config = demo_config_data(shared_dir)
    config["service"] = {"state_dir": str(tmp_path / "state")}
    stale = tmp_path / "styles.json"
    stale.write_text(json.dumps({"model_sha256": "0" * 64, "styles": [{"id": 0, "name": "x"}],
                                 "centroids": [[1.0] * 1280]}))
    config["styles"] = {"enabled": True, "map": str(stale)}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(path), "--max-frames", "1"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert any("styles.json" in line and "fitted on another classifier" in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_classifier_has_the_embedding_output(shared_dir):
    manifest = json.loads(MODEL.with_suffix(".json").read_text())
    assert manifest["sha256"] == sha256_file(MODEL) and manifest["embedding"]["size"] == 1280
    model = TFLiteModel(MODEL)
    assert len(model.outputs) == 2 and model.outputs[1].shape[-1] == 1280
    classifier = GarmentClassifier(MODEL)
    photo = cv2.imread(str(shared_dir / "datasets" / "clothing" / "images" / "00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg"))
    result = classifier.classify(photo)
    assert result.embedding.shape == (1280,) and abs(float(np.linalg.norm(result.embedding)) - 1) < 1e-5
    assert np.array_equal(classifier.embed(photo), result.embedding)
    # the probabilities come from the same run as before the embedding was exposed
    assert np.isclose(sum(classifier.probabilities(photo)), 1.0, atol=0.05)


def test_customer_pools_voted_embeddings_per_label():
    customer = Customer(1, 0.0, 0.0, GarmentVotes(ConsensusConfig()))
    assert customer.outfit_embedding() is None
    a, b = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    customer.add_embedding("dress", a)
    customer.add_embedding("dress", a)
    customer.add_embedding("shoe", b)
    assert np.allclose(customer.garment_embedding(["dress"]), a)
    outfit = customer.outfit_embedding()
    assert np.isclose(np.linalg.norm(outfit), 1.0) and outfit[0] > outfit[1] > 0  # two dress crops, one shoe
    assert customer.garment_embedding(["pants"]) is None


def test_style_mix_from_the_pipeline_to_the_report(shared_dir, tmp_path):
    """The real pipeline on a real photo of a woman in a dress with styles.enabled: the settled
    customer gets the nearest style of a map fitted on this model, the closed window stores the
    style mix, reading it back keeps it and ``report`` draws style_mix.png."""
    classifier = GarmentClassifier(MODEL)
    photo = cv2.imread(str(shared_dir / "datasets" / "colorful-fashion" / "images" / "108416.jpg"))
    other = cv2.imread(str(shared_dir / "datasets" / "clothing" / "images" / "00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg"))
    centroids = np.stack([classifier.embed(photo[150:450, 100:300]), classifier.embed(other)])
    style_file = tmp_path / "styles.json"
    style_file.write_text(json.dumps({"model_sha256": sha256_file(MODEL), "centroids": centroids.tolist(),
                                      "styles": [{"id": 0, "name": "street dress"}, {"id": 1, "name": "flat t-shirt"}]}))
    config = load_config(REPO / "configs" / "demo.yaml")
    config.styles.enabled, config.styles.map = True, style_file
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path)
    canvas = np.full((720, 960, 3), 114, np.uint8)
    canvas[60:60 + photo.shape[0], 280:280 + photo.shape[1]] = photo
    start = 1_800_000_000.0
    for i in range(30):
        pipeline.process(Frame(canvas, i, start + i / 10, i / 10))
    styled = [c for c in list(pipeline.customers) if c.style]
    assert styled and styled[0].style == "street dress", [(c.id, c.style) for c in list(pipeline.customers)]
    windows = pipeline.finish().closed_windows
    assert windows and windows[-1]["styles"].get("street dress", 0) >= 1, windows
    stored = read_windows(tmp_path / "analytics.sqlite")
    assert stored[-1]["styles"] == windows[-1]["styles"]
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "edge", "report", "--db", str(tmp_path / "analytics.sqlite"),
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / "style_mix.png").is_file() and "style_mix.png" in result.stdout


def test_windows_without_styles_say_so(tmp_path):
    analytics = Analytics(tmp_path / "a.sqlite", "s", "c", window_s=60, min_dwell_s=0.0)
    analytics.record(CustomerSeen(1, 0.0))
    analytics.record(CustomerSeen(1, 5.0))
    analytics.record(CustomerSettled(1, {}, style="casual"))
    analytics.record(CustomerSeen(2, 1.0))
    analytics.record(CustomerSeen(2, 3.0))
    analytics.record(CustomerEnded(1, 5.0))
    analytics.record(CustomerEnded(2, 5.0))
    closed = analytics.flush(70.0)
    assert closed[0]["styles"] == {"casual": 1} and closed[0]["customers"] == 2
    # merged into the same row by a restart within the window
    again = Analytics(tmp_path / "a.sqlite", "s", "c", window_s=60, min_dwell_s=0.0)
    again.record(CustomerSeen(3, 10.0))
    again.record(CustomerSeen(3, 12.0))
    again.record(CustomerSettled(3, {}, style="casual"))
    again.record(CustomerEnded(3, 12.0))
    assert again.flush(70.0)[0]["styles"] == {"casual": 2}


def test_committed_style_map_fits_the_shipped_classifier():
    """models/styles.json belongs to models/garment-classifier.tflite. A new classifier needs the
    sequence in docs/styles.md (export.embedding -> training.styles -> catalog index)."""
    style_map = StyleMap.load(REPO / "models" / "styles.json", model_path=MODEL)
    data = json.loads((REPO / "models" / "styles.json").read_text())
    assert 2 <= len(style_map.names) == data["k"] and style_map.embedding_size == 1280
    assert style_map.centre is not None and style_map.centre.shape == (1280,)
    # the centre is subtracted before the nearest centroid is taken
    centred = style_map.centroids[1] + style_map.centre
    assert style_map.assign(centred / np.linalg.norm(centred)).id == 1
    assert (REPO / "models" / "reports" / "styles" / "contact_sheet.png").is_file()

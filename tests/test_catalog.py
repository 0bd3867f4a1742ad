"""The store's catalogue (issue 14): index/search through the CLI on real product photos, alerts
that carry the look-alike item ids, and nothing but ids on a real mosquitto."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
import yaml

from edge.catalog import CatalogIndex
from edge.classify.classifier import GarmentClassifier
from edge.config import load_config
from edge.errors import ModelError
from edge.mqtt.payloads import make_alert, validate_alert
from edge.pipeline import CameraPipeline
from edge.sources import Frame

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "garment-classifier.tflite"
DRESS_PHOTO = "108416"  # colorful-fashion val: a woman in a dress (tests/test_pipeline.py)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "catalog", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


@pytest.fixture(scope="module")
def products(shared_dir, tmp_path_factory) -> Path:
    """Twelve real product photos (four dresses, the rest other garments), named as a shop would."""
    root = shared_dir / "datasets" / "clothing"
    rows = list(csv.DictReader(open(root / "labels.csv")))
    chosen = [r for r in rows if r["label"] == "Dress"][:4] + [r for r in rows if r["label"] != "Dress"][:8]
    folder = tmp_path_factory.mktemp("products")
    for n, row in enumerate(chosen):
        shutil.copy(root / "images" / f"{row['image']}.jpg", folder / f"sku-{n:03d}-{row['label'].lower()}.jpg")
    return folder


@pytest.fixture(scope="module")
def index_file(products, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "catalog.npz"
    names = out.parent / "names.csv"
    names.write_text("id,name,price\n" + "".join(f"{p.stem},Item {p.stem[4:7]},9.99\n" for p in sorted(products.glob("*.jpg"))))
    result = cli("index", str(products), "--names", str(names), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "12 items" in result.stdout and out.is_file()
    return out


def test_index_search_an_items_own_photo_is_its_top_hit(products, index_file):
    index = CatalogIndex.load(index_file, model_path=MODEL)
    assert sorted(index.ids) == sorted(p.stem for p in products.glob("*.jpg"))
    assert index.names[index.ids.index("sku-000-dress")] == "Item 000"
    assert np.allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=2e-3)
    for photo in sorted(products.glob("*.jpg"))[:6]:
        result = cli("search", str(photo), "--index", str(index_file), "--top", "3", "--json")
        assert result.returncode == 0, result.stderr
        hits = [json.loads(line) for line in result.stdout.splitlines()]
        assert [h["rank"] for h in hits] == [1, 2, 3]
        assert hits[0]["id"] == photo.stem and hits[0]["score"] > 0.99, hits
        assert hits[1]["score"] < hits[0]["score"]


def test_bad_catalogue_input_is_one_line_and_exit_2(tmp_path, index_file, shared_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("index", str(empty), "--out", str(tmp_path / "x.npz"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no product photos" in result.stderr
    result = cli("search", str(REPO / "README.md"), "--index", str(index_file))
    assert result.returncode == 2 and "cannot decode image" in result.stderr
    # An index built by another model lives in another space: refused with one line.
    other = shared_dir / "models" / "imagenet" / "mobilenet_v2_1.0_224_quant.tflite"
    with pytest.raises(ModelError, match="indexed with another classifier"):
        CatalogIndex.load(index_file, model_path=other)


def _catalog_config(index_file: Path, tmp_path: Path):
    config = load_config(REPO / "configs" / "demo.yaml")
    config.catalog.enabled = True
    config.catalog.index = index_file
    config.service.state_dir = tmp_path / "state"
    return config


def _dress_canvas(shared_dir) -> np.ndarray:
    photo = cv2.imread(str(shared_dir / "datasets" / "colorful-fashion" / "images" / f"{DRESS_PHOTO}.jpg"))
    canvas = np.full((720, 960, 3), 114, np.uint8)
    canvas[60:60 + photo.shape[0], 280:280 + photo.shape[1]] = photo
    return canvas


def test_dress_alert_carries_catalogue_ids_that_exist_in_the_index(shared_dir, tmp_path, index_file):
    config = _catalog_config(index_file, tmp_path)
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path)
    canvas = _dress_canvas(shared_dir)
    alerts = [a for i in range(30) for a in pipeline.process(Frame(canvas, i, time.time(), i / 10)).alerts]
    assert [a.rule for a in alerts] == ["dress"], alerts
    matches = alerts[0].catalog
    index = CatalogIndex.load(index_file)
    assert len(matches) == 3 and all(m["id"] in index.ids for m in matches), matches
    assert [m["score"] for m in matches] == sorted((m["score"] for m in matches), reverse=True)
    # the worn dress looks most like one of the catalogue's dresses
    assert matches[0]["id"].endswith("-dress"), matches
    payload = make_alert("demo-store", "entrance", alerts[0].track_id, "dress", alerts[0].garments, alerts[0].box,
                         0, 0.0, catalog=matches)
    validate_alert(payload)
    jsonschema.validate(payload, json.loads((REPO / "edge" / "schemas" / "alert.schema.json").read_text()))
    # a rule the catalogue is not enabled for carries nothing
    config.catalog.rules = ["suit"]
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path / "suit-only")
    alerts = [a for i in range(30) for a in pipeline.process(Frame(canvas, i, time.time(), i / 10)).alerts]
    assert alerts and all(a.catalog is None for a in alerts)


def test_catalogue_from_another_model_stops_the_daemon_with_one_line(shared_dir, tmp_path, index_file):
    bad = tmp_path / "other.npz"
    data = dict(np.load(index_file))
    data["model_sha256"] = np.array("0" * 64)
    with open(bad, "wb") as fh:
        np.savez(fh, **data)
    with pytest.raises(ModelError, match=r"other\.npz: .*indexed with another classifier"):
        CameraPipeline(_catalog_config(bad, tmp_path), load_config(REPO / "configs" / "demo.yaml").cameras[0],
                       state_dir=tmp_path)


def test_only_item_ids_reach_mqtt(shared_dir, tmp_path, index_file, mosquitto):
    """The daemon on frames of the dress photo with catalog.enabled and styles.enabled against a real
    broker: the alert carries item ids and scores, the retained analytics window its style mix (names
    and counts), and no message holds an embedding, a crop or an image."""
    from test_daemon import Collector, run_daemon, write_config

    frames = tmp_path / "frames"
    frames.mkdir()
    canvas = _dress_canvas(shared_dir)
    for i in range(30):
        cv2.imwrite(str(frames / f"{i:03d}.jpg"), canvas)
    config = write_config(tmp_path, shared_dir, catalog={"enabled": True, "index": str(index_file), "top_k": 3,
                                                         "rules": []},
                          styles={"enabled": True, "map": str(REPO / "models" / "styles.json")})
    data = yaml.safe_load(config.read_text())
    data["cameras"][0]["source"] = str(frames)
    config.write_text(yaml.safe_dump(data))
    prefix = f"fashion-edge/{data['site']}"
    watcher = Collector(mosquitto.port, prefix)
    try:
        code, out = run_daemon(config, mosquitto.port, timeout=180)
        assert code == 0, out
        time.sleep(1.0)
        alerts = watcher.alerts()
        everything = watcher.topics(r".*")
    finally:
        watcher.stop()
    assert alerts, out
    ids = set(CatalogIndex.load(index_file).ids)
    schema = json.loads((REPO / "edge" / "schemas" / "alert.schema.json").read_text())
    for alert in alerts:
        jsonschema.validate(alert, schema)
        assert "snapshot" not in alert
        assert len(alert["catalog"]) == 3 and {m["id"] for m in alert["catalog"]} <= ids, alert
        assert all(set(m) == {"id", "score"} for m in alert["catalog"])
    windows = [json.loads(p) for t, p, retained in everything if t.endswith("/analytics")]
    assert windows and all(isinstance(w["styles"], dict) for w in windows), windows
    style_names = {s["name"] for s in json.loads((REPO / "models" / "styles.json").read_text())["styles"]}
    mix = {name: n for w in windows for name, n in w["styles"].items()}
    assert mix and set(mix) <= style_names and all(isinstance(n, int) for n in mix.values()), mix
    for topic, payload, _ in everything:
        assert len(payload) < 4000, (topic, len(payload))  # a 1280-d vector or a JPEG would not fit
        assert b"embedding" not in payload and b"/9j/" not in payload, topic  # no vector, no base64 JPEG

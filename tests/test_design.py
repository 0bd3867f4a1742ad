"""Design rules from issue 25 that a refactor must not undo (no mocks: real modules, real imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def imported_modules(module: str) -> set[str]:
    """The edge.* modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print('\\n'.join(m for m in sys.modules if m.startswith('edge')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_detector_does_not_depend_on_the_crop_stage():
    loaded = imported_modules("edge.detect.yolo")
    assert "edge.labels" in loaded  # where the detector learns which labels are garments
    assert "edge.garments" not in loaded


def test_garment_vocabulary_lives_in_the_labels_module():
    import edge.garments
    from edge.detect import yolo
    from edge.labels import GARMENT_VOCABULARY

    assert yolo.GARMENT_VOCABULARY is GARMENT_VOCABULARY
    assert not hasattr(edge.garments, "GARMENT_VOCABULARY")  # one home, no stale copy
    assert {"shirt", "dress", "pants"} <= GARMENT_VOCABULARY
    assert "person" not in GARMENT_VOCABULARY and "tie" not in GARMENT_VOCABULARY


def test_preflight_and_daemon_build_the_same_models(tmp_path, shared_dir):
    """The pre-flight loads each model through the daemon's builders (issue 25: one model factory):
    same files, thresholds and labels as ``pipeline.Models``, here with a changed config so that a
    builder that ignored a field would show."""
    import yaml

    from conftest import demo_config_data
    from edge import preflight
    from edge.config import load_config
    from edge.pipeline import Models

    data = demo_config_data(shared_dir)
    data["detector"]["conf"] = 0.45
    data["detector"]["class_conf"] = {"person": 0.2}
    data["detector"]["iou"] = 0.55
    data["garments"]["class_conf"] = {"dress": 0.6, "skirt": 0.35}
    data["service"] = {"state_dir": str(tmp_path / "state")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)

    out = preflight._Collector(path)
    checked = preflight._check_models(config, out)
    assert out.problems == []
    daemon = Models(config, config.cameras[0])

    for name, built in (("detector", daemon.detector), ("garments", daemon.garment_detector)):
        loaded = checked[name]
        assert loaded.model_path == built.model_path and loaded.manifest_file == built.manifest_file
        assert loaded.labels == built.labels and loaded.garment_labels == built.garment_labels
        assert (loaded.iou, loaded.conf, loaded.max_detections) == (built.iou, built.conf, built.max_detections)
        assert loaded.thresholds.tolist() == built.thresholds.tolist()
    person = daemon.detector.labels.index("person")
    assert daemon.detector.thresholds[person] == 0.2 and daemon.detector.iou == 0.55
    dress = daemon.garment_detector.labels.index("dress")
    assert abs(daemon.garment_detector.thresholds[dress] - 0.6) < 1e-6 and daemon.garment_detector.iou == 0.55
    assert checked["classifier"].model_path == daemon.classifier.model_path
    assert checked["classifier"].labels == daemon.classifier.labels


def test_customer_updates_wait_for_the_lock_the_web_thread_reads_under(tmp_path):
    """``Analytics.counts()`` runs on the web thread under ``_lock``: the pipeline's per-customer
    updates (garments, verdicts, style, alert) must wait for that lock instead of changing a track
    while counts() iterates it."""
    import threading

    from edge.analytics import Analytics

    analytics = Analytics(tmp_path / "analytics.db", "site", "cam")
    try:
        analytics.track_seen(1, 10.0)
        analytics.track_seen(1, 13.0)
        updates = [
            lambda: analytics.track_garments(1, {"dress": 0.9}),
            lambda: analytics.track_verdicts(1, {"red-dress"}),
            lambda: analytics.track_style(1, "formal"),
            lambda: analytics.track_alert(1, "red-dress"),
        ]
        for update in updates:
            done = threading.Event()

            def run(update=update, done=done):
                update()
                done.set()

            with analytics._lock:  # as counts() holds it on the web thread
                worker = threading.Thread(target=run)
                worker.start()
                assert not done.wait(0.2), "changed a track while the lock was held"
            worker.join(5)
            assert done.is_set()
        track = analytics._tracks[1]
        assert track.garments == {"dress": 0.9} and track.matched == {"red-dress"}
        assert track.style == "formal" and track.rules == {"red-dress"}
        assert analytics.counts()["garments_window"] == {"dress": 1}
    finally:
        analytics.close()

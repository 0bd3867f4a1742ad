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
    """``Analytics.counts()`` runs on the web thread under ``_lock``: the pipeline's customer events
    (settled garments, verdicts, style, alert) must wait for that lock instead of changing a customer
    while counts() iterates it."""
    import threading

    from edge.analytics import Analytics
    from edge.customer_events import CustomerAlerted, CustomerSeen, CustomerSettled

    analytics = Analytics(tmp_path / "analytics.db", "site", "cam")
    try:
        analytics.record(CustomerSeen(1, 10.0))
        analytics.record(CustomerSeen(1, 13.0))
        updates = [
            lambda: analytics.record(CustomerSettled(1, {"dress": 0.9}, frozenset({"red-dress"}))),
            lambda: analytics.record(CustomerSettled(1, {}, frozenset({"red-dress"}), "formal")),
            lambda: analytics.record(CustomerAlerted(1, "red-dress")),
        ]
        for update in updates:
            done = threading.Event()

            def run(update=update, done=done):
                update()
                done.set()

            with analytics._lock:  # as counts() holds it on the web thread
                worker = threading.Thread(target=run)
                worker.start()
                assert not done.wait(0.2), "changed a customer while the lock was held"
            worker.join(5)
            assert done.is_set()
        tally = analytics._windows.customers[1]
        assert tally.garments == {"dress": 0.9} and tally.matched == {"red-dress"}
        assert tally.style == "formal" and tally.rules == {"red-dress"}
        assert analytics.counts()["garments_window"] == {"dress": 1}
    finally:
        analytics.close()


def test_export_is_below_training():
    """Issue 25: one direction between training/ and export/. A fresh interpreter imports every
    export.* module; not one training.* module may come with them (training imports export)."""
    code = ("import importlib, pkgutil, sys, export\n"
            "names = [m.name for m in pkgutil.walk_packages(export.__path__, 'export.')]\n"
            "for name in names: importlib.import_module(name)\n"
            "print(' '.join(names)); print(' '.join(m for m in sys.modules if m.split('.')[0] == 'training'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    exported, training = (done.stdout.splitlines() + ["", ""])[:2]
    assert {"export.detector", "export.classifier", "export.ultralytics_env"} <= set(exported.split())
    assert training.split() == []


def _static_imports(package: str) -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports anywhere in its file (function-level
    imports too: a lazy import still ties two modules together), read with ast."""
    import ast

    files = {}
    for path in (REPO / package).rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    graph = {}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)  # submodules by name
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    reach, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in reach:
                reach.add(nxt)
                stack.append(nxt)
    return reach


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or round a longer loop."""
    reach = {name: _reachable(graph, name) for name in graph}
    groups = {tuple(sorted(other for other in reach[name] if name in reach[other]))
              for name in graph if name in reach[name]}
    return sorted(list(group) for group in groups)


def test_no_import_cycles_among_training_modules():
    """Issue 25: training/classifier/pipeline.py and ship.py imported each other; no training.*
    module may import itself round a loop (the checker must see such a loop: a made-up graph)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = _static_imports("training")
    assert "training.classifier.evaluate" in graph["training.classifier.ship"]
    assert "training.classifier.ship" in graph["training.classifier.pipeline"]
    assert "training.classifier.pipeline" not in graph["training.classifier.ship"]
    assert _cycles(graph) == []


def test_the_daemon_package_imports_no_training_export_or_benchmark_code():
    """edge/ is what a store installs: it never imports training/, export/ or the scenario harness
    (scenarios/, a checkout's benchmark since issue 25), not even inside a function."""
    import ast

    offenders = []
    for path in sorted((REPO / "edge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in ("training", "export", "scenarios")]
    assert offenders == []
    assert not (REPO / "edge" / "scenarios").exists()


def test_a_daemon_without_its_own_broker_does_not_load_asyncio():
    """Issue 26 (memory on a Pi): the pipeline and the daemon import the embedded broker (amqtt,
    asyncio: ~2.5 MB) only when they start one; `from edge.mqtt import EmbeddedBroker` still works."""
    code = ("import sys, edge.daemon, edge.pipeline, edge.mqtt.payloads; "
            "print('asyncio' in sys.modules, 'edge.mqtt.broker' in sys.modules); "
            "from edge.mqtt import EmbeddedBroker, MqttPublisher, Topics; print(EmbeddedBroker.__module__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["False False", "edge.mqtt.broker"], done.stdout

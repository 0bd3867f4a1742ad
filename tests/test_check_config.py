"""`check-config` is the pre-flight (edge/preflight.py): every model, source, secret and rule garment
checked on this machine, every problem one line, exit 2 on any error; `run` performs the same checks.
Real models, the real demo clip, the real CLI in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import demo_config_data, free_port

REPO = Path(__file__).resolve().parents[1]
CLIP = "media/one-by-one-person-detection.mp4"


def cli(*args, cwd: Path = REPO, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=environment)


def demo_data(shared: Path) -> dict:
    """configs/demo.yaml with absolute paths (it can be written anywhere)."""
    data = demo_config_data(shared)
    data.pop("service", None)
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def problems(result: subprocess.CompletedProcess, command: str = "check-config") -> tuple[list[str], list[str]]:
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    errors = [l for l in lines if l.startswith(f"fashion-edge {command}: error: ")]
    warnings = [l for l in lines if l.startswith(f"fashion-edge {command}: warning: ")]
    return errors, warnings


def test_the_demo_config_passes(tmp_path):
    result = cli("check-config", REPO / "configs" / "demo.yaml")
    assert result.returncode == 0, result.stderr
    errors, _ = problems(result)
    assert errors == [] and "ok (site demo-store" in result.stdout


def test_every_problem_is_reported_one_line_each(tmp_path, shared_dir):
    """A missing model, a folder and a README as models, a missing and a non-video source, an unset
    password variable, a missing TLS file: all of them in one run, each naming file and field."""
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    (tmp_path / "folder-model").mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("this is no video\n")
    data = demo_data(shared_dir)
    data["detector"]["model"] = str(tmp_path / "nope.tflite")
    data["garments"]["detector"] = str(tmp_path / "folder-model")
    data["classifier"]["model"] = str(readme)
    data["cameras"][0]["source"] = str(tmp_path / "missing.mp4")
    data["cameras"].append({"name": "back", "source": str(notes)})
    data["mqtt"] = {"host": "127.0.0.1", "username": "u", "password_env": "FASHION_EDGE_TEST_UNSET_PW",
                    "tls": {"ca": str(tmp_path / "ca.crt")}}
    config = write(tmp_path / "bad.yaml", data)
    result = cli("check-config", config)
    assert result.returncode == 2
    errors, _ = problems(result)
    expected = {
        "detector.model": "nope.tflite: model file not found",
        "garments.detector": "is a folder, not a .tflite model file",
        "classifier.model": "not a valid TFLite model",
        "cameras[0].source": "missing.mp4",
        "cameras[1].source": "notes.txt",
        "mqtt.password_env": "FASHION_EDGE_TEST_UNSET_PW is not set",
        "mqtt.tls.ca": "ca.crt not found",
    }
    for field, message in expected.items():
        hits = [l for l in errors if f"{config}: {field}: " in l and message in l]
        assert len(hits) == 1, (field, result.stderr)
    assert len(errors) == len(expected), result.stderr
    assert "7 problem(s)" in result.stdout

    # the same file with the variable set: that line goes, the others stay
    again = cli("check-config", config, env={"FASHION_EDGE_TEST_UNSET_PW": "secret"})
    assert len(problems(again)[0]) == len(expected) - 1


def test_a_garment_typo_names_the_rule_and_the_known_labels(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    data["rules"] = [{"name": "dress", "when": ["dres"], "unless": ["pants", "shortz"]},
                     {"name": "suit", "when": ["suit", "blazer+pants"], "cameras": ["entrance", "door"]}]
    result = cli("check-config", write(tmp_path / "typo.yaml", data))
    assert result.returncode == 2, result.stderr
    errors, warnings = problems(result)
    when = [l for l in errors if "rules[0].when:" in l]
    assert len(when) == 1 and "rule dress: unknown garment 'dres'" in when[0], result.stderr
    known = when[0].split("the configured models name: ")[1].split(", ")
    # the project's garment detector's classes and the classifier's refinements of them
    assert {"dress", "pants", "jacket", "blazer", "hoodie", "t-shirt"} <= set(known) and "dres" not in known
    assert "suit" not in known  # the shipped classifier has no suit; the ImageNet baseline's map has
    assert any("rules[0].unless:" in l and "'shortz'" in l for l in errors)
    assert any("rules[1].cameras:" in l and "door" in l for l in errors)
    assert len(errors) == 3, result.stderr
    # 'suit' is a real garment these models never name: a warning, not an error
    assert any("rules[1].when:" in l and "'suit'" in l for l in warnings), result.stderr


def test_the_label_set_follows_the_classifier(tmp_path, shared_dir):
    """With the ImageNet baseline in body-region mode, 'suit' is a label and 'jacket' is not."""
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    data["garments"] = {"mode": "body_regions"}
    data["classifier"] = {"model": str(shared_dir / "models/imagenet/mobilenet_v2_1.0_224_quant.tflite")}
    data["rules"] = [{"name": "suit", "when": ["suit"]}, {"name": "jacket", "when": ["jacket"]}]
    result = cli("check-config", write(tmp_path / "baseline.yaml", data))
    errors, warnings = problems(result)
    assert result.returncode == 0 and errors == [], result.stderr
    assert len(warnings) == 1 and "rules[1].when:" in warnings[0] and "'jacket'" in warnings[0], result.stderr


def test_sources_files_checked_live_ones_warned(tmp_path, shared_dir):
    from conftest import write_clip_frames

    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    (tmp_path / "empty").mkdir()
    data["cameras"] = [
        {"name": "clip", "source": str(shared_dir / CLIP)},
        {"name": "folder", "source": str(write_clip_frames(shared_dir, tmp_path / "frames", 2))},
        {"name": "empty", "source": str(tmp_path / "empty")},
        {"name": "rtsp", "source": f"rtsp://127.0.0.1:{free_port()}/stream"},
        {"name": "usb", "source": "9"},
    ]
    started = time.monotonic()
    result = cli("check-config", write(tmp_path / "sources.yaml", data))
    took = time.monotonic() - started
    errors, warnings = problems(result)
    assert result.returncode == 2
    assert len(errors) == 1 and "cameras[2].source" in errors[0] and "no frames" in errors[0], result.stderr
    live = [l for l in warnings if "source" in l and "live source" in l]
    assert {re.search(r"cameras\[(\d)\]", l).group(1) for l in live} == {"3", "4"}, result.stderr
    assert took < 30  # the live probes run at once, each bounded

    data["cameras"] = data["cameras"][:2] + data["cameras"][3:]
    result = cli("check-config", write(tmp_path / "sources.yaml", data))
    assert result.returncode == 0, result.stderr  # live sources that do not answer only warn


def test_run_performs_the_same_checks_before_starting(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": free_port(), "password_env": "FASHION_EDGE_TEST_UNSET_PW",
                    "username": "u"}
    data["rules"][0]["when"] = ["dres"]
    data["service"] = {"state_dir": str(tmp_path / "state")}
    config = write(tmp_path / "run.yaml", data)
    checked = problems(cli("check-config", config))[0]
    result = cli("run", "--config", config, "--max-frames", 5)
    assert result.returncode == 2
    ran = problems(result, "run")[0]
    assert len(ran) == 2 and [l.split(": error: ", 1)[1] for l in ran] == [l.split(": error: ", 1)[1] for l in checked]
    assert not (tmp_path / "state").exists()  # refused before anything started
    # --source is what run checks instead of the first camera's source
    del data["mqtt"]["password_env"]
    data["rules"][0]["when"] = ["dress"]
    result = cli("run", "--config", write(tmp_path / "run.yaml", data), "--source", tmp_path / "nope.mp4")
    errors = problems(result, "run")[0]
    assert result.returncode == 2 and len(errors) == 1 and ": --source: " in errors[0], result.stderr


def test_relative_state_is_beside_the_config_not_in_the_current_directory(tmp_path, shared_dir, monkeypatch):
    from edge.config import load_config

    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    site = tmp_path / "site"
    site.mkdir()
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    config = write(site / "store.yaml", data)
    monkeypatch.chdir(tmp_path)
    assert load_config(config).state_dir() == site / "state"
    data["service"] = {"state_dir": "var/db"}
    assert load_config(write(site / "store.yaml", data)).state_dir() == site / "var" / "db"
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd"))
    assert load_config(config).state_dir() == site / "var" / "db"  # an explicit state_dir wins
    del data["service"]
    assert load_config(write(site / "store.yaml", data)).state_dir() == tmp_path / "systemd"


def test_report_from_another_folder_finds_the_daemons_database(tmp_path, shared_dir):
    """The daemon runs in one folder, `report --config` in another: the same database (state/ beside
    the config), not an empty one in the current directory."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    data = demo_data(shared_dir)
    data["analytics"] = {"window_s": 1, "min_dwell_s": 0.5}
    config = write(site / "demo.yaml", data)
    run = cli("run", "--config", config, "--max-frames", 40, "--mqtt-port", free_port(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (site / "state" / "analytics.sqlite").is_file() and not (tmp_path / "state").exists()
    report = cli("report", "--config", config, "--out", elsewhere / "charts", cwd=elsewhere)
    assert report.returncode == 0, report.stderr
    assert "entrance" in report.stdout  # windows of the camera that ran
    assert not (elsewhere / "state").exists()


def guide_layout(tmp_path: Path, shared: Path) -> Path:
    """configs/store.yaml with /opt/fashion-edge, /etc/fashion-edge and /var/lib/fashion-edge moved
    under tmp_path, the models there as systemd/README.md step 3 lays them out, dummy TLS files."""
    models = tmp_path / "opt" / "models"
    (models / "coco-yolo").mkdir(parents=True)
    (models / "manifests").mkdir()
    for name in ("garment-detector.tflite", "garment-detector.json", "garment-classifier.tflite",
                 "garment-classifier.json", "person-attributes.tflite", "person-attributes.json"):
        (models / name).symlink_to(REPO / "models" / name)
    (models / "coco-yolo" / "yolo11n_full_integer_quant_416.tflite").symlink_to(
        shared / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite")
    (models / "manifests" / "coco-yolo.json").symlink_to(REPO / "models/manifests/coco-yolo.json")
    etc = tmp_path / "etc"
    (etc / "tls").mkdir(parents=True)
    # real PEM files: the pre-flight loads them as the publisher does (issue 22, 4); a self-signed
    # client certificate doubles as the CA
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-sha256", "-days", "2", "-nodes", "-keyout", "client.key", "-out", "client.crt",
                    "-subj", "/CN=fashion-edge test client"], cwd=etc / "tls", check=True, capture_output=True)
    (etc / "tls" / "ca.crt").write_bytes((etc / "tls" / "client.crt").read_bytes())
    text = (REPO / "configs" / "store.yaml").read_text()
    text = text.replace("/opt/fashion-edge/models", str(models)).replace("/etc/fashion-edge", str(etc))
    text = text.replace("/var/lib/fashion-edge", str(tmp_path / "state"))
    config = tmp_path / "store.yaml"
    config.write_text(text)
    return config


def test_store_config_passes_with_the_models_laid_out_as_the_guide_says(tmp_path, shared_dir):
    """configs/store.yaml with the models copied as systemd/README.md step 3 copies them: no error
    (the RTSP cameras are unreachable from here: warnings)."""
    guide = (REPO / "systemd" / "README.md").read_text()
    text = (REPO / "configs" / "store.yaml").read_text()
    # every model path store.yaml uses (outside comments) is one the guide's step 3 creates
    used = {m for line in text.splitlines() for m in re.findall(r"/opt/fashion-edge/models/([\w./-]+)", line.split("#")[0])}
    assert len(used) == 5, used  # person detector + its manifest, garment detector, classifier, attribute model
    for relative in used:
        folder, _, name = relative.rpartition("/")
        copied = f"$M/{relative}" in guide or (f"$M/{folder}/" in guide and f"/{name}" in guide) if folder \
            else f"models/{name}" in guide
        assert copied, f"systemd/README.md step 3 does not create {relative}"
    config = guide_layout(tmp_path, shared_dir)
    result = cli("check-config", config, env={"FASHION_EDGE_MQTT_PASSWORD": "change-me"})
    errors, warnings = problems(result)
    assert result.returncode == 0 and errors == [], result.stderr
    assert sum("live source rtsp://" in l for l in warnings) == 2, result.stderr
    # without the secret the guide puts in /etc/fashion-edge/env: an error
    result = cli("check-config", config)
    assert result.returncode == 2 and any("FASHION_EDGE_MQTT_PASSWORD" in l for l in problems(result)[0])


def test_every_bad_field_is_a_line(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["mqtt"] = {"port": 70000, "keepalive_s": 1}
    data["detector"]["confidence"] = 0.5
    result = cli("check-config", write(tmp_path / "fields.yaml", data))
    errors, _ = problems(result)
    assert result.returncode == 2
    assert sorted(l.split(": ")[3] for l in errors) == ["detector.confidence", "mqtt.keepalive_s", "mqtt.port"], errors


def test_demo_performs_the_same_checks(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["rules"][0]["when"] = ["dres"]
    data["service"] = {"state_dir": str(tmp_path / "state")}
    result = cli("demo", "--config", write(tmp_path / "demo.yaml", data), "--max-frames", 5)
    errors = problems(result, "demo")[0]
    assert result.returncode == 2 and len(errors) == 1 and "unknown garment 'dres'" in errors[0], result.stderr
    assert not (tmp_path / "state").exists()


def test_style_map_and_catalogue_index_are_checked(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    data["styles"] = {"enabled": True, "map": str(tmp_path / "styles.json")}
    data["catalog"] = {"enabled": True, "index": str(tmp_path / "catalog.npz")}
    result = cli("check-config", write(tmp_path / "styles.yaml", data))
    errors = problems(result)[0]
    assert result.returncode == 2 and len(errors) == 2, result.stderr
    assert ": styles.map: " in errors[0] and ": catalog.index: " in errors[1], errors
    if (REPO / "models" / "styles.json").is_file():  # the shipped map fits the shipped classifier
        data["styles"]["map"] = str(REPO / "models" / "styles.json")
        del data["catalog"]
        result = cli("check-config", write(tmp_path / "styles.yaml", data))
        assert result.returncode == 0, result.stderr


def test_label_typos_in_thresholds_and_the_label_map_name_their_field(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["mqtt"] = {"host": "127.0.0.1", "port": 1}
    data["detector"]["class_conf"] = {"persn": 0.2}
    data["garments"]["class_conf"] = {"dres": 0.7}
    data["classifier"]["label_map"] = {"blazr": "suit"}
    config = write(tmp_path / "labels.yaml", data)
    errors = problems(cli("check-config", config))[0]
    fields = [l.split(f"{config}: ", 1)[1].split(":")[0] for l in errors]
    assert fields == ["detector.class_conf.persn", "garments.class_conf.dres", "classifier.label_map"], errors


def test_a_rule_naming_a_person_reading_needs_the_attribute_model(tmp_path, shared_dir):
    data = demo_data(shared_dir)
    data["attributes"]["enabled"] = False
    result = cli("check-config", write(tmp_path / "off.yaml", data))
    errors, _ = problems(result)
    assert result.returncode == 2
    assert any("rules[1].when: rule suit: 'person.suit' needs attributes.enabled" in line for line in errors), errors
    data["attributes"]["enabled"] = True
    data["rules"][1]["when"] = ["person.tuxedo"]
    errors, _ = problems(cli("check-config", write(tmp_path / "typo.yaml", data)))
    assert any("'person.tuxedo' names no such attribute; the model reads: " in line and "person.suit" in line
               for line in errors), errors


def test_the_event_list_and_the_picture_opt_ins_are_checked(tmp_path, shared_dir):
    """snapshots.mqtt without snapshots.enabled takes no picture: a warning; another program's
    events.sqlite in the state folder (the run would exit 2 on it) is an error naming the file."""
    import sqlite3

    data = demo_data(shared_dir)
    data["snapshots"] = {"enabled": False, "mqtt": True}
    data["service"] = {"state_dir": str(tmp_path / "state")}
    config = write(tmp_path / "store.yaml", data)
    result = cli("check-config", config)
    errors, warnings = problems(result)
    assert result.returncode == 0 and errors == [], result.stderr
    assert [w for w in warnings if "snapshots.mqtt" in w and "snapshots.enabled" in w], result.stderr

    (tmp_path / "state").mkdir()
    conn = sqlite3.connect(tmp_path / "state" / "events.sqlite")
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    result = cli("check-config", config)
    errors, _ = problems(result)
    assert result.returncode == 2
    assert [e for e in errors if "service.state_dir" in e and "events.sqlite" in e and "invoices" in e], result.stderr


def test_a_cameras_own_detector_is_loaded_and_named_by_its_field(tmp_path, shared_dir):
    """A camera's own person-detector input (``cameras[].detector.model``) is loaded as the daemon
    would load it: a good one passes, a missing file and a non-model are reported under that
    camera's field, one line each, and the other cameras are not blamed."""
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    data = demo_data(shared_dir)
    source = data["cameras"][0]["source"]
    data["cameras"] += [
        {"name": "street", "source": source,
         "detector": {"model": str(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_224.tflite"),
                      "tiles": [2, 1]}},
        {"name": "back", "source": source, "detector": {"model": str(tmp_path / "nope.tflite")}},
        {"name": "side", "source": source, "detector": {"model": str(readme)}},
    ]
    good = {**data, "cameras": data["cameras"][:2]}
    assert cli("check-config", write(tmp_path / "good.yaml", good)).returncode == 0

    config = write(tmp_path / "bad.yaml", data)
    result = cli("check-config", config)
    assert result.returncode == 2
    errors, _ = problems(result)
    assert len(errors) == 2, result.stderr
    assert f"{config}: cameras[2].detector.model: " in errors[0] and "nope.tflite: model file not found" in errors[0]
    assert f"{config}: cameras[3].detector.model: " in errors[1] and "README.md" in errors[1], errors


def test_an_attribute_model_without_identity_thresholds_is_a_warning(tmp_path, shared_dir):
    """A retrained attribute model whose manifest has no identity_calibration runs, with the shipped
    model's identity thresholds: check-config says so on the field, in one line."""
    import json

    model = tmp_path / "person-attributes.tflite"
    model.write_bytes((REPO / "models" / "person-attributes.tflite").read_bytes())
    manifest = json.loads((REPO / "models" / "person-attributes.json").read_text())
    del manifest["identity_calibration"]
    model.with_suffix(".json").write_text(json.dumps(manifest))
    data = demo_data(shared_dir)
    data["attributes"]["model"] = str(model)
    result = cli("check-config", write(tmp_path / "retrained.yaml", data))
    assert result.returncode == 0, result.stderr
    errors, warnings = problems(result)
    assert errors == []
    mine = [l for l in warnings if "attributes.model:" in l and "identity_calibration" in l]
    assert len(mine) == 1 and "shipped attribute model" in mine[0] and "--write-manifest" in mine[0], result.stderr
    # the shipped model has them: no such warning
    shipped = cli("check-config", REPO / "configs" / "demo.yaml")
    assert "identity_calibration" not in shipped.stderr

"""The pre-flight: everything a config needs from this machine, checked before anything runs.

``check(path)`` returns a ``Preflight``: the loaded ``Config`` (None when the file does not
validate) and every ``Problem`` found, one line each (``FILE: field: message``). It never stops at
the first problem. ``fashion-edge check-config`` prints them; ``run`` and ``demo`` call the same
function at start (``edge/commands/run.py: checked_config``) and exit 2 on any error.

What is checked, in order:

1. the YAML and every field (all validation errors, not the first);
2. every model: header loaded by the runtime, manifest found and consistent with it (the same
   ``YoloDetector`` / ``GarmentClassifier`` constructors the daemon uses; a missing file, a
   folder or a README given as the model is an error), the person class, the garment detector,
   and the style map / catalogue index when enabled (built from this classifier's embedding);
3. every camera source: a file or folder must exist, open as a video / image folder and give a
   frame; a live source (camera index, URL) is tried for ``live_timeout_s`` and a failure is a
   *warning* (a camera may be off while a config is checked; the daemon retries it).
   ``run`` passes ``live_timeout_s=None``: live sources are left to the daemon, which opens them
   anyway and gives up after ``reconnect.first_frame_timeout_s`` (no extra delay at start);
4. secrets: ``password_env`` set in the environment, ``password_file`` readable, TLS files present;
5. what ``run`` would otherwise refuse only at start (issue 22, 4): the TLS files loaded into a paho
   client exactly as the publisher loads them; each enabled listener (metrics, web page) bound once
   and released (a host that does not resolve, a port in use: the daemon's line); the state
   directory neither a file, nor below one, nor on a kernel file system (/proc, /sys, /dev), nor
   unwritable by this user (a warning: the service may run as another user). Nothing is created;
   The frame read from each file source gives its size: ``cameras[].frame_size`` must match it and
   every pixel zone (``cameras[].zones`` and the rules' polygons) must lie inside it (a zone drawn
   for 1920x1080 on a 768x432 camera is an error);
6. rules: every garment in ``when`` / ``unless`` must be a label the configured models can produce
   (``producible_garments``); a name no model and no known vocabulary has (``dres``) is an error
   listing the labels, a real garment these models never name (``suit`` with the project's
   classifier) is a warning (that alternative never fires). ``rules[].cameras`` must name cameras.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .attributes.reader import ATTRIBUTE_PREFIX, attribute_label
from .config import Config, load_config, read_yaml, validation_errors
from .errors import FashionEdgeError
from .garments import GarmentNaming
from .labels import GARMENT_VOCABULARY

# check-config: how long a live source (camera index, RTSP/HTTP URL) may take to give a first frame.
LIVE_PROBE_S = 5.0


@dataclass(frozen=True)
class Problem:
    level: str  # "error" or "warning"
    text: str  # one line: FILE: field: message

    def __str__(self) -> str:
        return self.text


@dataclass
class Preflight:
    config: Config | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


class _Collector:
    def __init__(self, path: Path):
        self.path = path
        self.problems: list[Problem] = []

    def add(self, level: str, field_name: str | None, message: str) -> None:
        parts = [str(self.path)] + ([field_name] if field_name else []) + [message]
        self.problems.append(Problem(level, " ".join(": ".join(parts).split())))

    def error(self, field_name: str | None, message: str) -> None:
        self.add("error", field_name, message)

    def warning(self, field_name: str | None, message: str) -> None:
        self.add("warning", field_name, message)

    def attempt(self, field_name: str, build):
        """``build()``, or None with its one-line error recorded under ``field_name``."""
        try:
            return build()
        except FashionEdgeError as exc:
            text = str(exc)
            named = text.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
            # a message that already names its config field (detector.class_conf.dres: ...) is kept as is
            self.error(None if named in Config.model_fields else field_name, text)
            return None


def check(path: str | Path, *, source: str | None = None, live_timeout_s: float | None = LIVE_PROBE_S) -> Preflight:
    """Every problem of the config at ``path`` on this machine. ``source`` replaces the first camera's
    source (``run --source``); ``live_timeout_s=None`` leaves live sources unprobed."""
    path = Path(path)
    out = _Collector(path)
    try:
        data = read_yaml(path)
    except FashionEdgeError as exc:
        out.problems.append(Problem("error", str(exc)))
        return Preflight(None, out.problems)
    invalid = validation_errors(Config, data, path)  # all of them, not the first
    if invalid:
        return Preflight(None, [Problem("error", str(e)) for e in invalid])
    try:
        config = load_config(path)
    except FashionEdgeError as exc:  # e.g. a bound only checked after the paths are resolved
        return Preflight(None, [Problem("error", str(exc))])

    models = _check_models(config, out)
    sizes: dict[int, tuple[int, int]] = {}
    _check_sources(config, out, source, live_timeout_s, sizes)
    _check_zones(config, out, sizes)
    _check_secrets(config, out)
    _check_listeners(config, out)
    _check_state_dir(config, out)
    _check_events(config, out)
    _check_rules(config, out, models)
    return Preflight(config, out.problems)


# -- models ------------------------------------------------------------------------------------

def _model_file(out: _Collector, field_name: str, model: Path) -> bool:
    """A plain existing file (the runtime would call a folder 'not found')."""
    if model.is_dir():
        out.error(field_name, f"{model} is a folder, not a .tflite model file")
        return False
    if not model.is_file():
        out.error(field_name, f"{model}: model file not found")
        return False
    return True


def _no_person_class(detector, person_label: str) -> str | None:
    """What is wrong when a person detector lacks ``detector.person_label`` (None: it has it)."""
    if person_label in detector.labels:
        return None
    return (f"has no {person_label!r} class ({detector.manifest_file.name} labels: "
            f"{', '.join(detector.labels[:12])}...)")


def _check_models(config: Config, out: _Collector) -> dict:
    """Load each model as the daemon does, through the daemon's own builders (edge/pipeline.py), one
    interpreter thread each; returns those that loaded ('detector', 'garments', 'classifier', 'attributes')."""
    from .stages import build_classifier, build_detector, build_garment_detector

    loaded: dict = {}
    det = config.detector
    if _model_file(out, "detector.model", det.model):
        detector = out.attempt("detector.model", lambda: build_detector(config, threads=1))
        if detector is not None:
            loaded["detector"] = detector
            if (problem := _no_person_class(detector, det.person_label)) is not None:
                out.error("detector.person_label", f"the detector {problem}")
    for index, camera in enumerate(config.cameras):  # a camera's own person-detector input (issue 26)
        view = camera.detector
        if view is None or (view.model is None and view.manifest is None):
            continue
        field_name = f"cameras[{index}].detector.{'model' if view.model is not None else 'manifest'}"
        if view.model is not None and not _model_file(out, field_name, view.model):
            continue
        own = out.attempt(field_name, lambda camera=camera: build_detector(config, camera, threads=1))
        if own is not None and (problem := _no_person_class(own, det.person_label)) is not None:
            out.error(field_name, f"this camera's detector {problem}")
    garments = config.garments
    if garments.detector is not None:
        if _model_file(out, "garments.detector", garments.detector):
            garment_detector = out.attempt("garments.detector", lambda: build_garment_detector(config, threads=1))
            if garment_detector is not None:
                if garment_detector.garment_labels:
                    loaded["garments"] = garment_detector
                else:
                    out.error("garments.detector", f"{garments.detector}: the garment detector has no garment classes")
    elif "detector" in loaded and loaded["detector"].garment_labels:
        loaded["garments"] = loaded["detector"]
    elif garments.mode == "detector" and "detector" in loaded:
        out.error("garments.mode", "no garment detector: set garments.detector, or use mode auto or body_regions")
    cls = config.classifier
    if _model_file(out, "classifier.model", cls.model):
        classifier = out.attempt("classifier.model", lambda: build_classifier(config, threads=1))
        if classifier is not None:
            loaded["classifier"] = classifier
            _check_embedding_users(config, out, classifier)
    attrs = config.attributes
    if attrs.enabled and _model_file(out, "attributes.model", attrs.model):
        from .attributes.model import PersonAttributeModel

        reader = out.attempt("attributes.model", lambda: PersonAttributeModel.from_config(attrs, threads=1))
        if reader is not None:
            loaded["attributes"] = reader
            calibration = reader.identity_calibration
            if config.identity.enabled and reader.embedding_size is not None and not calibration.measured:
                field_name = "attributes.reid_head" if reader.reid_head is not None else "attributes.model"
                out.warning(field_name, f"no identity_calibration in its manifest: the identity stage uses "
                                        f"{calibration.source} (python scripts/reid_distances.py --write-manifest)")
    return loaded


def _check_embedding_users(config: Config, out: _Collector, classifier) -> None:
    """styles.map / catalog.index (issue 14): loaded as ``Models`` loads them, against this classifier."""
    if not (config.styles.enabled or config.catalog.enabled):
        return
    if classifier.embedding_size is None:
        out.error("classifier.model", f"{config.classifier.model}: styles/catalog need a classifier with an "
                  "embedding output (python -m export.embedding)")
        return
    from .catalog import CatalogIndex
    from .runtime import sha256_file
    from .styles import StyleMap

    digest = sha256_file(config.classifier.model)
    if config.styles.enabled:
        out.attempt("styles.map", lambda: StyleMap.load(config.styles.map, model_sha256=digest))
    if config.catalog.enabled:
        out.attempt("catalog.index", lambda: CatalogIndex.load(config.catalog.index, model_sha256=digest))


# -- sources -----------------------------------------------------------------------------------

class _LiveProbe:
    """Tries one camera / stream in a thread: ``result(deadline)`` -> None (a frame came) or why not.
    A probe still running at the deadline is abandoned (daemon thread; OpenCV's own timeouts end it)."""

    def __init__(self, uri: str, timeout_s: float):
        self.uri, self.timeout_s = uri, timeout_s
        self.done = threading.Event()
        self.failure: str | None = None
        threading.Thread(target=self._grab, name=f"probe {uri}", daemon=True).start()

    def _grab(self) -> None:
        import cv2

        ms = int(self.timeout_s * 1000)
        try:
            if self.uri.isdigit():
                capture = cv2.VideoCapture(int(self.uri))
            else:
                capture = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG,
                                           [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
            try:
                if not capture.isOpened():
                    self.failure = "cannot be opened from this machine"
                elif not capture.read()[0]:
                    self.failure = "opened but gave no frame"
            finally:
                capture.release()
        except Exception as exc:  # OpenCV raises cv2.error for odd URIs
            self.failure = f"cannot be opened ({type(exc).__name__})"
        self.done.set()

    def result(self, deadline: float) -> str | None:
        if not self.done.wait(max(0.0, deadline - time.monotonic())):
            return f"gave no frame within {self.timeout_s:g} s"
        return self.failure


def _check_sources(config: Config, out: _Collector, override: str | None, live_timeout_s: float | None,
                   sizes: dict[int, tuple[int, int]] | None = None) -> None:
    """``sizes``: filled with camera index -> (width, height) of the frame read from each file source."""
    from .config import is_live_uri
    from .sources import open_source

    sizes = {} if sizes is None else sizes

    probes: list[tuple[str, _LiveProbe]] = []  # all live sources are tried at once
    for index, camera in enumerate(config.cameras):
        uri, field_name = camera.source, f"cameras[{index}].source"
        if index == 0 and override:
            uri, field_name = override, "--source"
        if is_live_uri(uri):
            if live_timeout_s is not None:
                probes.append((field_name, _LiveProbe(uri.strip(), live_timeout_s)))
            continue
        sources_log = logging.getLogger("edge.sources")
        level = sources_log.level
        sources_log.setLevel(logging.WARNING)  # not the "source ... ended" of this one-frame look
        try:
            source = open_source(uri)
            try:
                first = next(iter(source))
                sizes[index] = (int(first.image.shape[1]), int(first.image.shape[0]))  # the frames zones meet
            except StopIteration:
                out.error(field_name, f"{uri}: no frames (nothing readable in it)")
            finally:
                source.close()
        except FashionEdgeError as exc:
            out.error(field_name, str(exc))
        finally:
            sources_log.setLevel(level)
    deadline = time.monotonic() + (live_timeout_s or 0)
    for field_name, probe in probes:
        failure = probe.result(deadline)
        if failure:
            out.warning(field_name, f"live source {probe.uri} {failure} (the daemon keeps trying it for "
                        "cameras[].reconnect.first_frame_timeout_s)")


# -- zones -------------------------------------------------------------------------------------

def _check_zones(config: Config, out: _Collector, sizes: dict[int, tuple[int, int]]) -> None:
    """Zones against the frame size read from each file source (a live source's size is known only
    from ``cameras[].frame_size``, which the config itself checks its zones against): frame_size
    must be the real one, pixel zones (named or a rule's polygon) must lie in the frame."""
    from .config import zone_outside

    for index, camera in enumerate(config.cameras):
        size = sizes.get(index)
        if size is None:
            continue
        width, height = size
        if camera.frame_size is not None and tuple(camera.frame_size) != size:
            out.error(f"cameras[{index}].frame_size", f"{camera.frame_size[0]}x{camera.frame_size[1]}, but "
                      f"{camera.source} gives {width}x{height} frames")
            continue
        for name, zone in camera.zones.items():
            if zone.units == "pixels":
                outside = zone_outside(zone.points, size)
                if outside:
                    out.error(f"cameras[{index}].zones.{name}", outside)
        for r, rule in enumerate(config.rules):
            if rule.cameras and camera.name not in rule.cameras:
                continue
            for z, zone in enumerate(rule.zones):
                if isinstance(zone, str):
                    continue
                outside = zone_outside(zone, size)
                if outside:
                    out.error(f"rules[{r}].zones[{z}]", f"{outside} of camera {camera.name}")


# -- secrets -----------------------------------------------------------------------------------

def _check_secret(out: _Collector, section: str, env_name: str | None, file: Path | None) -> None:
    if env_name and not os.environ.get(env_name):
        out.error(f"{section}.password_env", f"environment variable {env_name} is not set (or empty) here")
    if file is not None:
        try:
            if not file.read_text(encoding="utf-8").strip():
                out.error(f"{section}.password_file", f"{file} is empty")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            out.error(f"{section}.password_file", f"cannot read {file} ({reason})")


def _check_secrets(config: Config, out: _Collector) -> None:
    mqtt = config.mqtt
    _check_secret(out, "mqtt", mqtt.password_env, mqtt.password_file)
    _check_password_length(mqtt, out)
    if mqtt.tls is not None:
        missing = False
        for name in ("ca", "cert", "key"):
            file = getattr(mqtt.tls, name)
            if file is not None and not file.is_file():
                out.error(f"mqtt.tls.{name}", f"{file} not found")
                missing = True
        if not missing:
            _check_tls(mqtt.tls, out)
    web = config.service.web
    if web.enabled:
        _check_secret(out, "service.web", web.password_env, web.password_file)


def _check_password_length(mqtt, out: _Collector) -> None:
    """The password exactly as the publisher reads it must fit MQTT's 65535-byte field (paho's network
    thread died packing a longer one). Its text is never printed."""
    from .config import MQTT_STRING_BYTES
    from .mqtt.connection import read_password

    try:
        password = read_password(mqtt.password_env, mqtt.password_file)
    except FashionEdgeError:
        return  # reported by _check_secret
    size = len(password.encode("utf-8", "surrogateescape")) if password else 0
    if size > MQTT_STRING_BYTES:
        where = "mqtt.password_env" if mqtt.password_env else "mqtt.password_file"
        out.error(where, f"the password is {size} bytes: longer than MQTT allows ({MQTT_STRING_BYTES} bytes)")


def _check_tls(tls, out: _Collector) -> None:
    """The files loaded into a paho client by the publisher's own ``apply_tls`` (a CA that is no
    certificate, a key that does not match: its line, before run starts anything)."""
    import paho.mqtt.client as mqtt

    from .mqtt.connection import apply_tls

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    out.attempt("mqtt.tls", lambda: apply_tls(client, tls))


# -- what run needs from this machine at start -------------------------------------------------

def listen_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` (the metrics and web servers' own words,
    edge/integrations.py), or None. Bound once with SO_REUSEADDR as those servers bind, then
    released: a name that does not resolve, an address not on this machine, a port in use."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(1)  # a port in use by a listener is refused here at the latest
    except OSError as exc:
        return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def _check_listeners(config: Config, out: _Collector) -> None:
    for name in ("metrics", "web"):
        section = getattr(config.service, name)
        if section.enabled:
            problem = listen_problem(*section.address)
            if problem:
                out.error(f"service.{name}.listen", problem)


# /proc, /sys, /dev: kernel file systems, never storage (a state_dir there fails at start or writes
# into the kernel's files).
KERNEL_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def state_dir_problem(state_dir: Path) -> tuple[str, str] | None:
    """("error" | "warning", why) when ``run`` cannot create or write ``state_dir``, else None.
    Nothing is created. Not writable by this user is a warning: the service may run as another."""
    resolved = Path(os.path.abspath(state_dir))
    try:
        resolved = resolved.resolve()
    except OSError:
        pass
    for kernel in KERNEL_FILE_SYSTEMS:
        if resolved == kernel or kernel in resolved.parents:
            return "error", f"{state_dir} is on a kernel file system ({kernel}), not storage"
    existing = resolved
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == resolved else f" ({existing} is not a folder)"
        return "error", f"{state_dir} is not a folder{where}"
    if not os.access(existing, os.W_OK | os.X_OK):
        target = "" if existing == resolved else f" (its parent {existing} is not: cannot create it)"
        return "warning", (f"{state_dir} is not writable by this user (uid {os.geteuid()}){target}; "
                           "run as this user would exit 2")
    return None


def _check_state_dir(config: Config, out: _Collector) -> None:
    problem = state_dir_problem(config.state_dir())
    if problem:
        level, why = problem
        out.add(level, "service.state_dir", f"cannot create or write the state directory: {why}")


def _check_events(config: Config, out: _Collector) -> None:
    """The event list the daemon opens at start (docs/events.md) and the picture opt-ins."""
    import sqlite3

    from .events import DB_NAME
    from .state_db import foreign, tables_in

    snapshots = config.snapshots
    if snapshots.mqtt and not snapshots.enabled:
        out.warning("snapshots.mqtt", "has no effect without snapshots.enabled: no picture is taken")
    db_path = config.state_dir() / DB_NAME
    if not db_path.is_file():
        return
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            tables = tables_in(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        out.error("service.state_dir", f"{db_path}: not a readable events database ({exc}); the run would exit 2 "
                  "(move the file away)")
        return
    problem = foreign(tables, "events", "events database")
    if problem is not None:
        out.error("service.state_dir", f"{db_path}: {problem}; the run would exit 2 (move the file away or set "
                  "service.state_dir)")


# -- rules -------------------------------------------------------------------------------------

def producible_garments(config: Config, models: dict) -> set[str] | None:
    """Lower-case garment labels a customer can settle on with these models (what rules see), or
    None when a model needed to know did not load. The crops are named by the pipeline's own
    ``garments.GarmentNaming``; the person-attribute readings come on top."""
    classifier = models.get("classifier")
    if classifier is None:
        return None
    garment_detector = models.get("garments")
    wants_boxes = config.garments.detector is not None or config.garments.mode == "detector"
    if garment_detector is None and wants_boxes:
        return None  # the garment detector did not load: its labels are unknown
    if garment_detector is None and "detector" not in models:
        return None  # cannot tell whether the detector itself has garment classes
    if config.attributes.enabled and models.get("attributes") is None:
        return None  # the attribute model did not load: its labels are unknown
    readings = attribute_labels(models.get("attributes"))
    naming = GarmentNaming(config.garments.refinements, classifier.labels)
    boxes = None if garment_detector is None or config.garments.mode == "body_regions" else garment_detector.garment_labels
    return naming.producible(boxes) | readings


def attribute_labels(reader) -> set[str]:
    """The labels a person-attribute reader settles on (``person.<name>`` and ``person.no-<name>``)."""
    if reader is None:
        return set()
    return {attribute_label(name, worn).lower() for name in reader.names for worn in (True, False)}


def _known_vocabulary(config: Config) -> set[str]:
    """Garment names fashion-edge knows anywhere (models it ships manifests for, refinements)."""
    import json

    from .resources import MANIFESTS_DIR

    names = set(GARMENT_VOCABULARY)
    for values in config.garments.refinements.values():
        names |= {v.lower() for v in values}
    for manifest in sorted(MANIFESTS_DIR.glob("*.json")):
        try:
            names |= {str(v).lower() for v in (json.loads(manifest.read_text()).get("garment_map") or {}).values()}
        except (OSError, ValueError, AttributeError):
            continue
    return names


def _check_rules(config: Config, out: _Collector, models: dict) -> None:
    cameras = {c.name for c in config.cameras}
    for index, rule in enumerate(config.rules):
        unknown_cameras = [c for c in rule.cameras if c not in cameras]
        if unknown_cameras:
            out.error(f"rules[{index}].cameras", f"rule {rule.name}: no camera named {', '.join(unknown_cameras)} "
                      f"(cameras: {', '.join(sorted(cameras))})")
    produced = producible_garments(config, models)
    if produced is None or not config.rules:
        return
    known = _known_vocabulary(config) | produced
    listing = ", ".join(sorted(produced))
    for index, rule in enumerate(config.rules):
        for key, names in (("when", [n for alt in rule.when for n in alt.split("+")]), ("unless", rule.unless)):
            names = [n for n in dict.fromkeys(n.strip().lower() for n in names) if n and n not in produced]
            where = f"rules[{index}].{key}"
            readings = [n for n in names if n.startswith(ATTRIBUTE_PREFIX)]
            if readings:
                names = [n for n in names if n not in readings]
                needs = "names no such attribute" if config.attributes.enabled else "needs attributes.enabled (the person-attribute model)"
                out.error(where, f"rule {rule.name}: {', '.join(map(repr, readings))} {needs}"
                          + (f"; the model reads: {', '.join(sorted(n for n in produced if n.startswith(ATTRIBUTE_PREFIX)))}"
                             if config.attributes.enabled else ""))
            typos = [n for n in names if n not in known]  # an empty name is refused by the rule engine
            unused = [n for n in names if n in known]
            if typos:
                out.error(where, f"rule {rule.name}: unknown garment {', '.join(map(repr, typos))}; "
                          f"the configured models name: {listing}")
            if unused:
                effect = "those alternatives never fire" if key == "when" else "they never veto"
                out.warning(where, f"rule {rule.name}: the configured models never name "
                            f"{', '.join(map(repr, unused))}, so {effect}")

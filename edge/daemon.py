"""The daemon: sources -> CameraPipeline (one thread per camera) -> MQTT, plus systemd glue.

Lifecycle
1. Resolve the broker: config/CLI host, or start the embedded broker on 127.0.0.1.
2. Open the durable outbox and connect (asynchronously: a broker outage never stops the cameras).
3. Load the models (one set per camera thread), zero the retained counts, publish availability.
4. Camera threads process frames; the main thread publishes stats, pets the systemd watchdog and
   waits for SIGTERM/SIGINT or for every file source to end. The watchdog is fed only while every
   thread the service depends on is alive and making progress: the camera threads, each live
   camera's frame grabber, paho's network thread and the outbox worker, the stage monitor. A dead
   grabber or network thread is restarted once by its owner (with a line); a second death ends
   the service with exit 1.
5. Shutdown: close analytics windows, publish final counts, flush the outbox, publish 'offline'.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from .config import CameraConfig, Config
from .errors import ConfigError, SourceError
from .events import EventStore
from .exit_policy import (EXIT_THREAD_DIED, CameraFacts, DeliveryFacts, RunProblem, camera_problems,
                          delivery_problems, exit_code)
from .mqtt.publisher import MqttPublisher
from .alerts import Alert
from .pipeline import CameraPipeline, FrameResult, Models
from .integrations import Integrations
from .service import ServiceNotifier, StageWatchdog, install_signal_handlers, limit_malloc_arenas
from .sinks import ConsoleSink, EventListSink, MqttSink, ResultSink, deliver
from .sources import open_source
from .stats import RateMeter, StageTimer

if TYPE_CHECKING:
    from .mqtt.broker import EmbeddedBroker

log = logging.getLogger("fashion-edge")

ANALYTICS_FINAL_RETRY_S = 3.0
SOURCES_CLOSE_S = 4.0  # all sources are closed in parallel within this (a wedged stream is abandoned)
CAMERA_JOIN_S = 3.0  # then all camera threads, together
STOP_BUDGET_S = 14.0  # sources + cameras + outbox flush; 'offline' and the broker stop come after
EVENTS_RETENTION_INTERVAL_S = 3600.0  # event/picture retention also runs this often (a quiet shop has no writes)
PROGRESS_INTERVAL_S = 10.0  # file sources: one "frame x/y" line this often (a long file is otherwise silent)
BROKER_FILE = "broker.json"  # in the state directory while the embedded broker runs: `alerts` reads it
DEMO_MARKER = ".fashion-edge-demo"  # a state folder the demo owns and clears at every demo start
STATE_LOCK = ".lock"  # held (flock) by the run using the state directory; holds its pid
STATE_UMASK = 0o027  # what the service writes is not readable by other users (systemd's UMask= does the same)


@dataclass
class RunOptions:
    """Command-line overrides of the config (``fashion-edge run`` flags)."""

    source: str | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    max_frames: int | None = None
    loop: bool = False
    on_alert: object = None  # callable(payload: dict) for console output (demo); replaces the alert log line
    on_broker: object = None  # callable(host, port, moved_from, embedded) once the broker is known (demo)
    progress_interval_s: float = PROGRESS_INTERVAL_S
    demo: bool = False  # False: a real run, whose state folder the demo must never clear again


@dataclass
class CameraState:
    config: CameraConfig
    thread: threading.Thread | None = None
    frames: int = 0
    alerts: int = 0
    status: dict = field(default_factory=dict)
    source_stats: dict = field(default_factory=dict)
    error: str | None = None
    done: bool = False
    analytics_unstored: int = 0  # closed windows that could not be written to analytics.sqlite
    analytics_error: str | None = None
    source: object = None  # the open FrameSource (a live one reports its grabber's health)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


class Daemon:
    def __init__(self, config: Config, options: RunOptions | None = None):
        self.config = config
        self.options = options or RunOptions()
        self.stop_event = threading.Event()
        self.timer = StageTimer()
        self.rate = RateMeter()
        self.notifier = ServiceNotifier()
        self.watchdog = StageWatchdog(config.service.stuck_inference_s, self._on_stuck)
        self.broker: EmbeddedBroker | None = None
        self.broker_moved_from: int | None = None  # the configured port, when the embedded broker had to move
        self.run_seconds = 0.0  # wall time of run(), for the demo's fps
        self.publisher: MqttPublisher | None = None
        self.cameras = [CameraState(c) for c in config.cameras]
        if self.options.source:
            self.cameras[0].config = self.cameras[0].config.model_copy(update={"source": self.options.source})
        if self.options.loop:
            for cam in self.cameras:
                cam.config = cam.config.model_copy(update={"loop": True})
        self.state_dir = config.state_dir()
        # where results go, in order (edge/sinks.py): MQTT, the event list, the console, then the integrations
        self.sinks: list[ResultSink] = []
        self.fatal_error: str | None = None  # a supervised thread died for good (exit 1, this line)
        # HA discovery, Prometheus metrics, web page (all optional); they read the daemon's state only
        # through status_snapshot()
        self.integrations = Integrations(config, self.state_dir, self.timer, self.status_snapshot)
        self.events: EventStore | None = None  # the device's event list (edge/events), opened in run()

    # -- start-up ------------------------------------------------------------------------
    def _broker_address(self) -> tuple[str, int]:
        host = self.options.mqtt_host or self.config.mqtt.host
        port = self.options.mqtt_port or self.config.mqtt.port
        if host:
            return host, port
        wanted = port
        if not _port_free("127.0.0.1", port):
            port = 0
        from .mqtt.broker import EmbeddedBroker  # here: asyncio only for a daemon that runs its own broker

        self.broker = EmbeddedBroker(host="127.0.0.1", port=port)
        self.broker.start()
        self.broker_moved_from = wanted if self.broker.port != wanted else None
        if self.broker_moved_from is not None:
            # Another broker (Frigate's, Home Assistant's mosquitto) holds the port: the demo's alerts must
            # not land in a store's broker, so the embedded one takes a free port and says where, loudly.
            log.warning("port %d is taken (another MQTT broker?): the embedded broker listens on 127.0.0.1:%d "
                        "instead; `fashion-edge alerts` finds it (or pass --port %d)", wanted, self.broker.port,
                        self.broker.port)
        else:
            log.info("no broker configured: embedded broker on 127.0.0.1:%d", self.broker.port)
        self._write_broker_file(self.broker.port)
        return "127.0.0.1", self.broker.port

    def _write_broker_file(self, port: int) -> None:
        """Where the embedded broker listens, for `fashion-edge alerts` (removed at stop)."""
        path = self.state_dir / BROKER_FILE
        try:
            path.write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": os.getpid(),
                                        "prefix": self.config.topic_prefix}) + "\n")
        except OSError as exc:
            log.warning("cannot write %s (%s): `fashion-edge alerts` needs --port %d", path, exc.strerror, port)

    def _remove_broker_file(self) -> None:
        try:
            (self.state_dir / BROKER_FILE).unlink(missing_ok=True)
        except OSError:
            pass

    def _start_publisher(self) -> None:
        host, port = self._broker_address()
        client_id = self.config.mqtt.client_id or f"fashion-edge-{self.config.site}-{socket.gethostname()}"
        self.integrations.claim_client_id(host, port, client_id)  # refused while a live daemon uses the id
        self.publisher = MqttPublisher(
            self.config.mqtt,
            prefix=self.config.topic_prefix,
            client_id=client_id,
            outbox_path=self.state_dir / "outbox.sqlite",
            host=host,
            port=port,
        )
        self.publisher.start()
        self.broker_address = (host, port)
        snapshots = self.config.snapshots
        # privacy: a picture is taken only with snapshots.enabled, and leaves the device only with .mqtt too
        self.sinks = [MqttSink(self.publisher, pictures=snapshots.enabled and snapshots.mqtt)]
        if self.events is not None:  # the outbox first: the event list can never hold an alert back
            self.sinks.append(EventListSink(self.events))
        self.sinks.append(ConsoleSink(self.options.on_alert if callable(self.options.on_alert) else None))
        if callable(self.options.on_broker):
            self.options.on_broker(host, port, self.broker_moved_from, self.broker is not None)

    # -- camera threads --------------------------------------------------------------------
    def _open_source(self, cam: CameraState):
        return open_source(
            cam.config.source,
            fps_cap=cam.config.fps_cap,
            loop=cam.config.loop,
            reconnect=cam.config.reconnect,
            on_status=lambda stats: self._camera_status(cam, stats),
        )

    def _camera_loop(self, cam: CameraState, pipeline: CameraPipeline, source) -> None:
        name = cam.config.name
        max_frames = self.options.max_frames
        try:
            with source:
                self._camera_status(cam, source.stats)
                last_counts = None
                for frame in source:
                    if self.stop_event.is_set():
                        break
                    with self.watchdog.stage(f"{name}:pipeline"):
                        result = pipeline.process(frame)
                    cam.frames += 1
                    cam.source_stats = dict(source.stats)
                    self.rate.tick()
                    self._handle_result(cam, pipeline, result)
                    counts = pipeline.counts()
                    if counts != last_counts:
                        deliver(self.sinks, lambda sink: sink.on_counts(name, counts))
                        last_counts = counts
                    if max_frames and cam.frames >= max_frames:
                        break
                cam.source_stats = dict(source.stats)
        except SourceError as exc:  # e.g. a camera that never gave a frame: one line, no traceback
            cam.error = str(exc)  # the exit line says it (_exit_code)
            log.debug("camera %s stopped: %s", name, exc)
            self.stop_event.set()
        except Exception as exc:  # a dead camera ends the service (exit 1): never half-alive
            cam.error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s stopped", name)
            self.stop_event.set()
        finally:
            try:
                self._finish_camera(cam, pipeline)
            finally:
                cam.done = True  # the source itself reports 'ended' through on_status

    def _finish_camera(self, cam: CameraState, pipeline: CameraPipeline) -> None:
        """Last windows and counts; a failure here is logged, it never leaves the camera unfinished."""
        name = cam.config.name
        try:
            final = pipeline.finish()  # customers still in view leave: exit decisions, last windows
            if final is not None:
                self._handle_result(cam, pipeline, final)
            counts = pipeline.counts()
            deliver(self.sinks, lambda sink: sink.on_counts(name, counts))
        except Exception as exc:
            log.exception("camera %s: finishing failed", name)
            cam.error = cam.error or f"{type(exc).__name__}: {exc}"
        analytics = getattr(pipeline, "analytics", None)
        if analytics is not None and getattr(analytics, "unstored", 0):
            # one more try within the stop budget; what is still not written is reported (exit 5)
            cam.analytics_unstored = analytics.retry_unstored(timeout_s=ANALYTICS_FINAL_RETRY_S)
            cam.analytics_error = analytics.last_store_error

    def _handle_result(self, cam: CameraState, pipeline: CameraPipeline, result: FrameResult) -> None:
        """A frame's alerts and closed windows to every sink, then the frame itself (metrics, web page)."""
        name = cam.config.name
        for alert in result.alerts:
            payload = alert.payload(self.config.site)
            picture = self._snapshot(alert) if self.config.snapshots.enabled else None
            deliver(self.sinks, lambda sink: sink.on_alert(alert, payload, picture))
            cam.alerts += 1
        for window in result.closed_windows:
            deliver(self.sinks, lambda sink: sink.on_window(name, window))
        deliver(self.sinks, lambda sink: sink.on_frame(name, result, pipeline))

    def _snapshot(self, alert: Alert) -> bytes | None:
        """JPEG of the customer (the pixels the pipeline kept: at an exit decision those of the last
        frame they were in); only with snapshots.enabled (privacy default: off). None when there is
        nothing to encode: the alert goes out without a picture."""
        try:
            if alert.picture is None or alert.picture.size == 0:
                return None
            ok, jpeg = cv2.imencode(".jpg", alert.picture, [cv2.IMWRITE_JPEG_QUALITY, self.config.snapshots.jpeg_quality])
        except (cv2.error, AttributeError, TypeError, ValueError) as exc:
            log.warning("alert of customer #%d: no snapshot (%s)", alert.track_id, exc)
            return None
        return jpeg.tobytes() if ok else None

    def _apply_event_retention(self) -> None:
        """Old events and pictures go even when no alert comes for days (a failure is logged)."""
        if self.events is None:
            return
        try:
            removed = self.events.apply_retention()
            if removed["events"] or removed["pictures"]:
                log.info("events: retention removed %d event(s) and %d picture(s)", removed["events"],
                         removed["pictures"])
        except Exception as exc:
            log.warning("events: retention not applied (%s)", exc)

    def _camera_status(self, cam: CameraState, stats: dict) -> None:
        cam.status = {"state": stats.get("state", "streaming"), "since": round(time.time(), 3),
                      **{k: v for k, v in stats.items() if k != "state"}}
        status = cam.status
        deliver(self.sinks, lambda sink: sink.on_status(cam.config.name, status))

    def _on_stuck(self, stage: str, seconds: float) -> None:
        camera = stage.split(":")[0]
        log.error("inference stuck: %s running for %.1f s", stage, seconds)
        self.notifier.status(f"stuck: {stage} {seconds:.0f}s")
        status = {"state": "stuck", "since": round(time.time(), 3), "detail": f"{stage} running {seconds:.1f}s"}
        deliver(self.sinks, lambda sink: sink.on_status(camera, status))

    # -- main loop ---------------------------------------------------------------------------
    def stats(self) -> dict:
        return {
            "fps": self.rate.read(),
            "latency": self.timer.summary(),
            "frames": {c.config.name: c.frames for c in self.cameras},
            "dropped_frames": sum(int(c.source_stats.get("frames_dropped", 0)) for c in self.cameras),
            "outbox_depth": self.publisher.outbox_depth if self.publisher else 0,
            "connected": bool(self.publisher and self.publisher.connected),
            "time": round(time.time(), 3),
        }

    def status_snapshot(self) -> dict:
        """The cameras' and MQTT's state now, for the web page and the metrics (read from their threads)."""
        cameras = {cam.config.name: {"status": dict(cam.status or {}), "frames": cam.frames, "alerts_sent": cam.alerts,
                                     "error": cam.error, "source_stats": dict(cam.source_stats or {})}
                   for cam in self.cameras}
        pub = self.publisher
        host, port = getattr(self, "broker_address", (None, None))
        mqtt = {"connected": bool(pub and pub.connected), "host": host, "port": port,
                "outbox_depth": pub.outbox_depth if pub else 0, "outbox_dropped": pub.outbox_dropped if pub else 0,
                "last_error": pub.last_error if pub else None}
        return {"cameras": cameras, "mqtt": mqtt}

    def run(self) -> int:
        """Run until every file source ends (or SIGTERM); returns the process exit code."""
        previous_umask = os.umask(STATE_UMASK)
        os.umask(previous_umask | STATE_UMASK)  # never looser than the caller's
        try:
            return self._run()
        finally:
            os.umask(previous_umask)
            if self.events is not None:
                self.events.close()
            self._release_state_lock()

    def _take_state_lock(self) -> None:
        """One run per state directory: a second one would take the first one's MQTT session (same
        client id) and share its outbox. Exit 2 (a restart cannot fix it) with the other run's pid."""
        import fcntl

        path = self.state_dir / STATE_LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            except OSError:
                other = "unknown"
            os.close(fd)
            raise ConfigError(f"another fashion-edge run (pid {other}) uses the state directory {self.state_dir}; "
                              "stop it first, or give this one its own service.state_dir",
                              field="service.state_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._state_lock_fd = fd

    def _release_state_lock(self) -> None:
        fd = getattr(self, "_state_lock_fd", None)
        if fd is not None:
            self._state_lock_fd = None
            os.close(fd)  # releases the flock

    def _run(self) -> int:
        limit_malloc_arenas()  # before any thread of ours allocates
        install_signal_handlers(self.stop_event)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / ".write-test"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot create or write the state directory {self.state_dir} ({exc.strerror or exc})",
                              field="service.state_dir") from None
        self._take_state_lock()  # before anything in the state directory or on the broker is touched
        # the device's event list: another program's or a damaged file is one line and exit 2, before the models
        self.events = EventStore.for_config(self.config, self.state_dir)
        if not self.options.demo:
            try:
                (self.state_dir / DEMO_MARKER).unlink(missing_ok=True)
            except OSError:
                pass
        # Models first: a bad model is an operator error and must fail before anything starts.
        pipelines = [
            CameraPipeline(self.config, cam.config, Models(self.config, cam.config), self.state_dir, self.timer)
            for cam in self.cameras
        ]
        # A file that cannot be opened is an operator error too; live sources retry instead.
        sources = [self._open_source(cam) for cam in self.cameras]
        try:
            self._start_publisher()
        except BaseException:
            self._close_sources(sources)
            raise
        try:
            self.integrations.start(pipelines, self.publisher, self.events)
            self.sinks += self.integrations.sinks()  # metrics and the web page, when on
            for cam, pipeline, source in zip(self.cameras, pipelines, sources):
                cam.source = source
                counts = pipeline.counts()
                deliver(self.sinks, lambda sink: sink.on_counts(cam.config.name, counts))
                cam.thread = threading.Thread(target=self._camera_loop, args=(cam, pipeline, source),
                                              name=f"camera-{cam.config.name}", daemon=True)
                cam.thread.start()
            self.notifier.ready()
            self.notifier.status(f"running {len(self.cameras)} camera(s)")
            run_started = time.monotonic()
            next_stats = run_started + self.config.mqtt.stats_interval_s
            next_retention = run_started + EVENTS_RETENTION_INTERVAL_S
            progress = _Progress(self.cameras, self.options.progress_interval_s)
            unhealthy: str | None = None
            while not self.stop_event.is_set() and not all(c.done for c in self.cameras):
                self.stop_event.wait(0.2)
                problem = self.health_problem()
                if problem is None and self.watchdog.healthy:
                    self.notifier.watchdog()
                elif problem is not None and problem != unhealthy:
                    log.error("not feeding the watchdog: %s", problem)
                    self.notifier.status(f"unhealthy: {problem}")
                unhealthy = problem
                if self.publisher.failure is not None:  # paho's thread died again: nothing will be sent
                    self.fatal_error = self.publisher.failure
                    break
                if time.monotonic() >= next_stats:
                    stats = self.stats()
                    deliver(self.sinks, lambda sink: sink.on_stats(stats))
                    next_stats = time.monotonic() + self.config.mqtt.stats_interval_s
                progress.maybe_log()
                if time.monotonic() >= next_retention:
                    self._apply_event_retention()
                    next_retention = time.monotonic() + EVENTS_RETENTION_INTERVAL_S
            self.run_seconds = time.monotonic() - run_started
        finally:
            self.notifier.stopping()
            stop_started = time.monotonic()
            self.stop_event.set()
            # A camera thread blocked on a dead stream only wakes up when its source closes.
            self._close_sources(sources)
            deadline = time.monotonic() + CAMERA_JOIN_S + ANALYTICS_FINAL_RETRY_S
            for cam in self.cameras:
                if cam.thread is not None:
                    cam.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            stats = self.stats()
            deliver(self.sinks, lambda sink: sink.on_stats(stats))
            # every wait is bounded so that SIGTERM completes within the unit's TimeoutStopSec (20 s)
            left_s = STOP_BUDGET_S - (time.monotonic() - stop_started)
            self.publisher.stop(flush_timeout_s=max(1.0, min(10.0, left_s)))
            if self.broker is not None:
                self._remove_broker_file()
                self.broker.stop()
            self.watchdog.close()
            self.integrations.stop()
        return self._exit_code()

    def health_problem(self) -> str | None:
        """None while every thread the service depends on is alive and making progress; else the
        first problem, in words (the watchdog is not fed then)."""
        for cam in self.cameras:
            if cam.error:  # the exit line gives the reason
                return f"camera {cam.config.name} failed"
            if not cam.done and (cam.thread is None or not cam.thread.is_alive()):
                return f"camera {cam.config.name}: its thread is not running"
            health = getattr(cam.source, "health", None)
            problem = health() if callable(health) and not cam.done else None
            if problem:
                return f"camera {cam.config.name}: {problem}"
        if self.publisher is not None:
            problem = self.publisher.health()
            if problem:
                return problem
        if not self.watchdog.monitoring:
            return "the stuck-stage monitor thread is not running"
        return None

    def _close_sources(self, sources) -> None:
        """Close every source at once (a live one may wait for a stalled read) within SOURCES_CLOSE_S."""
        closers = [threading.Thread(target=s.close, name="close-source", daemon=True) for s in sources]
        for closer in closers:
            closer.start()
        deadline = time.monotonic() + SOURCES_CLOSE_S
        for closer in closers:
            closer.join(timeout=max(0.0, deadline - time.monotonic()))

    def _exit_code(self) -> int:
        """One line on stderr per problem; the most serious decides the code (edge/exit_policy.py)."""
        running = self.watchdog.running()
        problems: list[RunProblem] = []
        for cam in self.cameras:
            hung = None
            if cam.thread is not None and cam.thread.is_alive() and not cam.done:
                hung = ", ".join(f"{stage} running for {seconds:.0f} s" for stage, seconds in running.items()
                                 if stage.startswith(f"{cam.config.name}:")) or "no stage running"
            problems += camera_problems(CameraFacts(cam.config.name, cam.config.source, hung, cam.error,
                                                    cam.analytics_unstored, cam.analytics_error, cam.source_stats),
                                        self.state_dir / "analytics.sqlite")
        if self.fatal_error:
            problems.append(RunProblem(EXIT_THREAD_DIED, self.fatal_error))
        publisher = self.publisher
        windows_pending = publisher.windows_pending  # closed windows for the head office (not alerts)
        if windows_pending:
            log.warning("MQTT: %d closed analytics window(s) kept in %s for the next start", windows_pending,
                        self.state_dir / "outbox.sqlite")
        host, port = getattr(self, "broker_address", (None, None))
        problems += delivery_problems(DeliveryFacts(
            self.state_dir / "outbox.sqlite", host, port, alerts_lost=list(publisher.alerts_lost),
            store_error=publisher.store_error, pending_alerts=publisher.outbox_depth - windows_pending,
            last_error=publisher.last_error, ever_connected=publisher.ever_connected))
        for problem in problems:
            print(f"fashion-edge: {problem.line}", file=sys.stderr)
        return exit_code(problems)


class _Progress:
    """``camera X: frame 340/1394 (24 %), 9.8 fps`` every ``interval_s`` for file sources (live ones
    publish stats on MQTT instead); a long file would otherwise print nothing for minutes."""

    def __init__(self, cameras: list[CameraState], interval_s: float):
        self.cameras = [c for c in cameras if not c.config.is_live]
        self.interval_s = interval_s
        self.last = time.monotonic()
        self.last_frames = {c.config.name: 0 for c in self.cameras}

    def maybe_log(self) -> None:
        now = time.monotonic()
        if not self.cameras or not self.interval_s or self.interval_s <= 0 or now - self.last < self.interval_s:
            return
        elapsed, self.last = now - self.last, now
        for cam in self.cameras:
            if cam.done:
                continue
            name = cam.config.name
            fps = (cam.frames - self.last_frames[name]) / elapsed
            self.last_frames[name] = cam.frames
            expected = cam.source_stats.get("frames_expected")
            position = cam.frames + int(cam.source_stats.get("frames_skipped", 0)) + \
                int(cam.source_stats.get("corrupt_frames", 0))
            if expected and not cam.config.loop:
                where = f"frame {position}/{expected} ({100 * position / expected:.0f} %)"
            else:
                where = f"{cam.frames} frames"
            log.info("camera %s: %s, %.1f fps, %d alert(s)", name, where, fps, cam.alerts)


class _QuietPahoRetries(logging.Filter):
    """paho logs "Client is not connected. Socket: None). Last known Connection State: ..." and
    "failed to receive on socket: ..." at ERROR on every retry while the broker is down; the
    publisher already reports the outage in one plain line. They are kept at DEBUG."""

    REPEATED = ("Client is not connected", "failed to receive on socket")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and any(text in record.getMessage() for text in self.REPEATED):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, os.environ.get("FASHION_EDGE_LOG", level)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    paho = logging.getLogger("paho.mqtt")
    if not any(isinstance(f, _QuietPahoRetries) for f in paho.filters):
        paho.addFilter(_QuietPahoRetries())


def default_demo_config() -> Path:
    """configs/demo.yaml of the fashion-edge home (edge/resources.py: $FASHION_EDGE_HOME, cwd, checkout)."""
    from .resources import demo_config

    return demo_config()

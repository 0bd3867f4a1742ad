"""The daemon's optional integrations: Home Assistant discovery, Prometheus metrics, the local web page.

``Daemon`` calls ``start(pipelines)`` once the MQTT publisher runs (before the camera threads),
takes ``sinks()`` (the metrics and the web page as result sinks, fed after each processed frame
on the camera thread) and calls ``stop()`` at the very end. Each integration is off by default
and costs nothing when off (prometheus-client is imported only when metrics are on). A failing
sink never stops a camera.
"""

from __future__ import annotations

import logging
import os

from .config import is_loopback
from .errors import ConfigError
from .sinks import ResultSink

log = logging.getLogger("fashion-edge")


def web_password(web) -> str | None:
    """The page's password from ``service.web.password_env`` / ``password_file`` (None when neither)."""
    if web.password_env:
        value = os.environ.get(web.password_env)
        if not value:
            raise ConfigError(f"environment variable {web.password_env} is not set", field="service.web.password_env")
        return value
    if web.password_file:
        try:
            text = web.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {web.password_file} ({exc.strerror or exc})",
                              field="service.web.password_file") from None
        if not text:
            raise ConfigError(f"{web.password_file} is empty", field="service.web.password_file")
        return text.splitlines()[0].strip()
    return None


class Integrations:
    """``status``: the daemon's ``status_snapshot()`` (cameras and MQTT, read at scrape and page time);
    nothing here reaches into the daemon itself."""

    def __init__(self, config, state_dir, timer, status):
        self.config = config
        self.state_dir = state_dir
        self.timer = timer
        self.status = status
        self.publisher = None
        self.events = None
        self.pipelines: dict = {}
        self.metrics = None
        self.web = None
        self.web_state = None
        self.discovery = None
        self.presence = None
        # a missing password file or variable stops the start before the models load
        self._web_password = web_password(self.config.service.web) if self.config.service.web.enabled else None

    # -- before the publisher connects ------------------------------------------------------------
    def claim_client_id(self, host: str, port: int, client_id: str) -> None:
        """Refuse to start (ConfigError, exit 2) while a live daemon uses ``client_id`` on this broker,
        before our publisher's CONNECT would take its session; then hold the id and this device's
        availability topic (edge/mqtt/presence.py)."""
        from .mqtt.discovery import device_id
        from .mqtt.presence import Presence

        presence = Presence(self.config.mqtt, host, port, client_id, self.config.topic_prefix,
                            device_id(self.config))
        presence.claim()
        self.presence = presence

    # -- start ---------------------------------------------------------------------------------
    def start(self, pipelines, publisher, events) -> None:
        """Once the MQTT publisher runs (before the camera threads); ``events``: the device's event list."""
        self.pipelines = {p.camera.name: p for p in pipelines}
        self.publisher, self.events = publisher, events
        service = self.config.service
        from .mqtt.discovery import Discovery

        self.discovery = Discovery(self.config, self.state_dir)
        if publisher is not None:
            self.discovery.start(publisher)
        if service.metrics.enabled:
            self._start_metrics()
        if service.web.enabled:
            self._start_web()

    def _start_metrics(self) -> None:
        from .metrics import Metrics, metrics_snapshot

        self.metrics = Metrics(lambda: metrics_snapshot(self.status(), self.config, self.pipelines, self.events),
                               min_dwell_s=self.config.analytics.min_dwell_s)
        self.metrics.wrap_timer(self.timer)
        for name, pipeline in self.pipelines.items():
            self.metrics.declare_rules(name, [r.name for r in self.config.rules if not r.cameras or name in r.cameras])
        host, port = self.config.service.metrics.address
        try:
            self.metrics.start(host, port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                              field="service.metrics.listen") from None

    def _start_web(self) -> None:
        from .web.server import WebServer, WebState

        web = self.config.service.web
        password = self._web_password
        host, port = web.address
        if not is_loopback(host) and password is None:  # the config refuses this too
            raise ConfigError(f"{web.listen} is not loopback: set a password", field="service.web.listen")
        zones = {}
        for cam in self.config.cameras:
            rules = [r for r in self.config.rules if not r.cameras or cam.name in r.cameras]
            # the camera's named zones (in pixels, normalized ones scaled), then the rules' own polygons
            zones[cam.name] = [
                {"name": name, "polygon": [list(p) for p in cam.zone_polygon(name)],
                 "rules": [r.name for r in rules if name in r.zones]} for name in cam.zones]
            zones[cam.name] += [{"rule": r.name, "polygon": [list(p) for p in poly], "rules": [r.name]}
                                for r in rules for poly in r.zones if not isinstance(poly, str)]
        from .localtime import store_time_zone

        # a live camera's frames carry the wall clock; a file's carry the run's start + the video's time
        clocks = {c.name: "wall" if c.is_live else "video" for c in self.config.cameras}
        self.web_state = WebState(
            site=self.config.site, cameras=[c.name for c in self.config.cameras], zones=zones,
            analytics_db=self.state_dir / "analytics.sqlite", status=self._web_status,
            live_counts=self._live_counts, jpeg_quality=web.jpeg_quality, frame_interval_s=web.frame_interval_s,
            time_zone=store_time_zone(self.config), clocks=clocks, events=self.events)
        try:
            self.web = WebServer(self.web_state, host, port, web.username, password).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                              field="service.web.listen") from None
        if not is_loopback(host):
            log.warning("web page on %s is reachable from the network (password required)", web.listen)

    def _web_status(self) -> dict:
        status = self.status()
        cams = {name: {key: cam[key] for key in ("status", "frames", "alerts_sent", "error")}
                for name, cam in status["cameras"].items()}
        return {"cameras": cams, "mqtt": status["mqtt"]}

    def _live_counts(self, camera: str) -> dict | None:
        pipeline = self.pipelines.get(camera)
        return pipeline.counts() if pipeline is not None else None

    # -- per frame (camera threads) ------------------------------------------------------------------
    def sinks(self) -> list[ResultSink]:
        """The started integrations that take each processed frame (edge/sinks.py)."""
        out: list[ResultSink] = []
        if self.metrics is not None:
            out.append(MetricsSink(self.metrics))
        if self.web_state is not None:
            out.append(WebPageSink(self.web_state))
        return out

    # -- stop -------------------------------------------------------------------------------------
    def stop(self) -> None:
        for part in (self.web, self.metrics):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("integrations: stop failed")
        if self.discovery is not None and self.publisher is not None:
            self.discovery.stop(self.publisher)
        if self.presence is not None:  # after the publisher stopped: availability offline, the id's lock removed
            try:
                self.presence.release()
            except Exception:
                log.exception("integrations: releasing the MQTT presence failed")
            self.presence = None


class MetricsSink(ResultSink):
    """Per-frame counters for Prometheus (classifier and garment-detector calls, alerts, customers)."""

    name = "metrics"

    def __init__(self, metrics):
        self.metrics = metrics

    def on_frame(self, camera: str, result, pipeline) -> None:
        self.metrics.on_frame(camera, result, pipeline)


class WebPageSink(ResultSink):
    """The web page's last alerts and live frame (kept in memory, served under the page's auth)."""

    name = "web page"

    def __init__(self, web_state):
        self.web_state = web_state

    def on_frame(self, camera: str, result, pipeline) -> None:
        from .web.server import customers_of

        for alert in result.alerts:
            self.web_state.add_alert(alert.web_entry())
        frame = result.frame
        self.web_state.update_frame(camera, frame.image, frame.index, frame.timestamp, customers_of(pipeline))

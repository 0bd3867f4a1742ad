"""``fashion-edge demo``: the daemon on the demo clip with the embedded broker, alerts printed live.

The clip (../shared/media/one-by-one-person-detection.mp4, Intel sample videos, CC BY 4.0) is
not part of the repo: outside this workspace download it from GitHub
intel-iot-devkit/sample-videos, or point ``--source`` at a camera (``--source 0``).

Every demo run starts clean: the demo's own analytics and outbox (``state/demo/``) of the previous
run are removed first, so ``fashion-edge report`` shows this run only (a store's state is never
touched: only a folder the demo marked as its own, or the default demo config's, is cleared; a
``fashion-edge run`` in a folder removes the mark).
When port 1883 is taken (a Frigate / Home Assistant mosquitto), the embedded broker takes a free
port and the demo says so; ``fashion-edge alerts`` finds it through ``state/demo/broker.json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import is_live_uri, load_config
from ..daemon import DEMO_MARKER, Daemon, default_demo_config, setup_logging
from ..errors import ConfigError, SourceError
from ..resources import is_demo_config
from .run import checked_config, options_from_args, summarise

DEMO_STATE_FILES = ("analytics.sqlite", "outbox.sqlite", "events.sqlite")  # with their -wal / -shm companions
DEMO_STATE_FOLDERS = ("snapshots",)  # pictures of a demo run with snapshots.enabled
STAGE_ORDER = ("detect", "track", "garment_detect", "garments", "rules+analytics", "total")


def _print_alert(payload: dict) -> None:
    garments = ", ".join(f"{g['label']} {g['score']:.2f}" for g in payload["garments"])
    at = payload["source_time_s"]
    where = f"t={at:6.1f}s" if at is not None else payload["time"]
    how = {"early": ", decided early", "exit": ", decided as the customer left"}.get(payload.get("decided"), "")
    print(f"ALERT {where} camera={payload['camera']} customer #{payload['track_id']}: "
          f"{payload['rule']} ({garments}{how})", flush=True)


def _print_broker(host: str, port: int, moved_from: int | None, embedded: bool) -> None:
    if not embedded:
        print(f"MQTT: publishing to the broker at {host}:{port}; watch the alerts with: "
              f"fashion-edge alerts --host {host} --port {port}", flush=True)
    elif moved_from is not None:
        print(f"MQTT: port {moved_from} is taken (another broker, e.g. Frigate's or Home Assistant's): the demo's "
              f"own broker listens on {host}:{port}; `fashion-edge alerts` finds it (or: --port {port})", flush=True)
    else:
        print(f"MQTT: embedded broker on {host}:{port}; watch the alerts with: fashion-edge alerts", flush=True)


def _queued_alerts(outbox: Path) -> int:
    """Alerts in a previous run's outbox (read-only; 0 when there is none or it cannot be read). Its
    analytics windows (``windows/`` topics) are not counted: the demo's analytics start clean anyway."""
    import sqlite3

    if not outbox.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=2)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE topic LIKE '%/alerts/%'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def start_clean(state_dir: Path, owned: bool) -> str:
    """Remove the previous demo run's analytics, outbox, events and pictures from ``state_dir``; one
    line saying what. An outbox that still holds alerts is kept: the previous run said they were kept
    for the next start, and this run sends them."""
    queued = _queued_alerts(state_dir / "outbox.sqlite")
    keep = ("outbox.sqlite",) if queued else ()
    files = [p for name in DEMO_STATE_FILES if name not in keep for p in state_dir.glob(f"{name}*") if p.is_file()]
    if not (owned or (state_dir / DEMO_MARKER).is_file()):
        if any(p.name in DEMO_STATE_FILES for p in files):
            return (f"demo: {state_dir} is not a demo state folder: its analytics are kept and this run "
                    "adds to them")
        owned = True  # empty or new folder: the demo takes it
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / DEMO_MARKER).write_text("a fashion-edge demo state folder: cleared at every demo start\n")
        for path in files:
            path.unlink()
        for name in DEMO_STATE_FOLDERS:
            shutil.rmtree(state_dir / name, ignore_errors=True)
    except OSError as exc:
        raise ConfigError(f"cannot clear the demo state folder ({exc.strerror or exc})", path=state_dir,
                          field="service.state_dir") from None
    kept = (f"; its outbox still holds {queued} undelivered alert(s): kept, sent by this run" if queued else "")
    if any(p.name in DEMO_STATE_FILES for p in files):
        removed = "analytics" if queued else "analytics and outbox"
        return f"demo: clean start (the previous demo run's {removed} in {state_dir} were removed{kept})"
    return f"demo: clean start (state in {state_dir}{kept})"


def latency_table(latency: dict) -> list[str]:
    """Per-stage p50/p95 in ms, pipeline order first."""
    stages = [s for s in STAGE_ORDER if s in latency] + sorted(s for s in latency if s not in STAGE_ORDER)
    if not stages:
        return []
    n = max(v.get("n", 0) for v in latency.values())
    lines = [f"  {'stage':<18}{'p50 ms':>8}{'p95 ms':>8}   (last {n} frames)"]
    lines += [f"  {stage:<18}{latency[stage]['p50_ms']:>8.1f}{latency[stage]['p95_ms']:>8.1f}" for stage in stages]
    return lines


def summary(daemon: Daemon, config_path: Path, code: int = 0) -> list[str]:
    frames = sum(c.frames for c in daemon.cameras)
    alerts = sum(c.alerts for c in daemon.cameras)
    seconds = daemon.run_seconds
    fps = f", {frames / seconds:.1f} fps" if seconds > 0 else ""
    host, port = daemon.broker_address
    if code and not frames:  # nothing ran (e.g. no camera): the reason is the line on stderr
        return [f"demo stopped (exit {code}) before any frame; the reason is on the line above"]
    ended = "finished" if not code else f"stopped (exit {code}, see the line above)"
    lines = [f"demo {ended}: {frames} frames in {seconds:.1f} s{fps}, {alerts} alert(s)"]
    lines += latency_table(daemon.stats()["latency"])
    lines.append(f"alerts published to {host}:{port} under {daemon.config.topic_prefix}/alerts/")
    lines.append(f"analytics of this run: {daemon.state_dir / 'analytics.sqlite'}")
    lines.append(f"see the windows: fashion-edge report --config {config_path}")
    return lines


def main(args) -> int:
    config_path = Path(args.config) if args.config else default_demo_config()
    config = load_config(config_path)
    setup_logging(config.service.log_level)
    source = args.source or config.cameras[0].source
    if not args.source and not is_live_uri(source) and not Path(source).exists():
        raise SourceError(
            "demo clip not found; get one-by-one-person-detection.mp4 from GitHub "
            "intel-iot-devkit/sample-videos into ../shared/media/, or pass --source 0 for a camera",
            path=source,
        )
    if checked_config(config_path, source=args.source, command="demo") is None:  # the pre-flight of run
        return 2
    is_default = is_demo_config(config_path)  # False without a home: demo --config from a wheel
    print(start_clean(config.state_dir(), owned=is_default), flush=True)
    daemon = Daemon(config, options_from_args(args, on_alert=_print_alert, on_broker=_print_broker, demo=True))
    code = daemon.run()
    summarise(daemon)
    print("\n".join(summary(daemon, config_path, code)), flush=True)
    return code

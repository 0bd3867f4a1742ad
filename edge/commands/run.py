"""``fashion-edge run --config FILE [--source URI] [--mqtt-host H] [--mqtt-port P] [--max-frames N] [--loop]``."""

from __future__ import annotations

import logging
import resource
import sys

from .. import preflight
from ..config import Config
from ..daemon import Daemon, RunOptions, setup_logging

log = logging.getLogger("fashion-edge")


def options_from_args(args, **extra) -> RunOptions:
    return RunOptions(
        source=args.source,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        max_frames=args.max_frames,
        loop=args.loop,
        **extra,
    )


def summarise(daemon: Daemon) -> None:
    for cam in daemon.cameras:
        stats = cam.source_stats
        line = f"camera {cam.config.name}: {cam.frames} frames, {cam.alerts} alerts"
        if stats:
            line += f", dropped {stats.get('frames_dropped', 0)}, corrupt {stats.get('corrupt_frames', 0)}"
        if cam.error:
            line += f", error: {cam.error}"
        log.info(line)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info("peak RSS %.0f MB", peak_mb)
    if daemon.publisher is not None:
        log.info("outbox depth at exit: %d (kept for the next start)", daemon.publisher.outbox_depth)


def checked_config(path, source: str | None = None, command: str = "run") -> Config | None:
    """The config at ``path`` after the pre-flight (the checks of ``check-config``, one code path):
    warnings and errors printed one a line on stderr; None when there is an error (exit 2).
    Live sources are not probed here: the daemon opens them at once and bounds the wait itself."""
    result = preflight.check(path, source=source, live_timeout_s=None)
    for problem in result.problems:
        print(f"fashion-edge {command}: {problem.level}: {problem}", file=sys.stderr)
    return None if result.errors else result.config


def main(args) -> int:
    config = checked_config(args.config, source=args.source)
    if config is None:
        return 2
    setup_logging(config.service.log_level)
    daemon = Daemon(config, options_from_args(args))
    code = daemon.run()
    summarise(daemon)
    return code

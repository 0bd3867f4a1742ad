"""``fashion-edge demo``: the daemon on the demo clip with the embedded broker, alerts printed live.

The clip (../shared/media/one-by-one-person-detection.mp4, Intel sample videos, CC BY 4.0) is
not part of the repo: outside this workspace download it from GitHub
intel-iot-devkit/sample-videos, or point ``--source`` at a camera (``--source 0``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import load_config
from ..daemon import Daemon, default_demo_config, setup_logging
from ..errors import SourceError
from .run import options_from_args, summarise


def _print_alert(payload: dict) -> None:
    garments = ", ".join(f"{g['label']} {g['score']:.2f}" for g in payload["garments"])
    at = payload["source_time_s"]
    where = f"t={at:6.1f}s" if at is not None else payload["time"]
    how = {"early": ", decided early", "exit": ", decided as the customer left"}.get(payload.get("decided"), "")
    print(f"ALERT {where} camera={payload['camera']} customer #{payload['track_id']}: "
          f"{payload['rule']} ({garments}{how})", flush=True)


def main(args) -> int:
    config_path = Path(args.config) if args.config else default_demo_config()
    config = load_config(config_path)
    setup_logging(config.service.log_level)
    source = args.source or config.cameras[0].source
    if not args.source and not source.isdigit() and "://" not in source and not Path(source).exists():
        raise SourceError(
            "demo clip not found; get one-by-one-person-detection.mp4 from GitHub "
            "intel-iot-devkit/sample-videos into ../shared/media/, or pass --source 0 for a camera",
            path=source,
        )
    daemon = Daemon(config, options_from_args(args, on_alert=_print_alert))
    code = daemon.run()
    summarise(daemon)
    host, port = daemon.broker_address
    print(f"demo finished: {sum(c.frames for c in daemon.cameras)} frames, "
          f"{sum(c.alerts for c in daemon.cameras)} alerts published to {host}:{port} "
          f"under {config.topic_prefix}/; analytics in {config.state_dir() / 'analytics.sqlite'}")
    print(f"see the windows: fashion-edge report --config {config_path}")
    print(json.dumps(daemon.stats()["latency"]))
    return code

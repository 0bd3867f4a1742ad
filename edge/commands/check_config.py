"""``fashion-edge check-config FILE``: validate, print a one-line summary or the bad field."""

from __future__ import annotations

from ..config import load_config


def main(args) -> int:
    config = load_config(args.config)
    broker = f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt.host else "embedded broker"
    print(
        f"{args.config}: ok (site {config.site}, {len(config.cameras)} camera(s), "
        f"{len(config.rules)} rule(s), {broker})"
    )
    return 0

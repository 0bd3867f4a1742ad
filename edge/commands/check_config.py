"""``fashion-edge check-config FILE``: validate, print a one-line summary or the bad field.

Files the config points at (models, manifests, TLS files) are checked too; a missing one is a
warning, not an error, because configs are often checked on a laptop before they reach the store.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import Config, load_config


def referenced_files(config: Config) -> dict[str, Path]:
    files = {
        "detector.model": config.detector.model,
        "detector.manifest": config.detector.manifest,
        "classifier.model": config.classifier.model,
        "classifier.manifest": config.classifier.manifest,
        "garments.detector": config.garments.detector,
        "garments.manifest": config.garments.manifest,
        "mqtt.password_file": config.mqtt.password_file,
    }
    if config.mqtt.tls:
        files.update({f"mqtt.tls.{k}": getattr(config.mqtt.tls, k) for k in ("ca", "cert", "key")})
    return {field: path for field, path in files.items() if path is not None}


def main(args) -> int:
    config = load_config(args.config)
    for field, path in referenced_files(config).items():
        if not Path(path).is_file():
            print(f"{args.config}: {field}: warning: {path} not found on this machine", file=sys.stderr)
    broker = f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt.host else "embedded broker"
    print(
        f"{args.config}: ok (site {config.site}, {len(config.cameras)} camera(s), "
        f"{len(config.rules)} rule(s), {broker})"
    )
    return 0

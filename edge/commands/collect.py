"""``fashion-edge collect --config hq.yaml``: the head office's collector (docs/chain.md).

Every alert and analytics window the stores' brokers bridge to the head-office broker is written
once into PostgreSQL (``edge/chain/collector.py``). Runs until SIGTERM / SIGINT. A bad DSN, bad
database or broker credentials: one line, exit 2.
"""

from __future__ import annotations

import logging

from ..errors import FashionEdgeError

log = logging.getLogger("fashion-edge")


def main(args) -> int:
    try:
        import psycopg  # noqa: F401 - the chain extra
    except ImportError:
        raise FashionEdgeError("psycopg is not installed: pip install 'fashion-edge[chain]'") from None
    from ..chain.collector import Collector
    from ..chain.config import load_hq_config
    from ..daemon import setup_logging
    from ..service import install_signal_handlers

    config = load_hq_config(args.config)
    setup_logging("INFO")
    collector = Collector(config, args.config)
    install_signal_handlers(collector.stop_event)
    log.info("collecting %s:%d -> PostgreSQL", config.mqtt.host, config.mqtt.port)
    return collector.run()

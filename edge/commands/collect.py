"""``fashion-edge collect --config hq.yaml``: the head office's collector (docs/chain.md).

Every alert and analytics window the stores' brokers bridge to the head-office broker is written
once into PostgreSQL (``edge/chain/collector.py``). Runs until SIGTERM / SIGINT. A bad DSN, bad
database or broker credentials: one line, exit 2. With ``web.enabled`` the chain view
(``edge/chain/web.py``) is served beside it.
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
    view = _start_chain_view(config, args.config) if config.web.enabled else None
    log.info("collecting %s:%d -> PostgreSQL", config.mqtt.host, config.mqtt.port)
    try:
        return collector.run()
    finally:
        if view is not None:
            view.stop()


def _start_chain_view(config, config_path):
    """The chain view (``web:``, edge/chain/web.py) in a thread beside the collector, on the same database."""
    from ..chain.config import database_password, web_password
    from ..chain.web import ChainView, start_chain_view

    web = config.web
    password = web_password(web, config_path)  # read before binding: a missing secret is one line, exit 2
    view = ChainView(config.database.dsn, database_password(config.database, config_path),
                     config.database.connect_timeout_s, web.period_days)
    host, port = web.address
    try:
        return start_chain_view(view, host, port, web.username, password)
    except OSError as exc:
        raise FashionEdgeError(f"cannot listen on {web.listen} ({exc.strerror or exc})", path=config_path,
                               field="web.listen") from None

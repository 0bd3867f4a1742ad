"""``hq.yaml``: the head office's collector config (example: configs/hq.yaml, docs/chain.md).

Same rules as the store config (``edge/config.py``): unknown keys are refused, every problem is one
line naming the file and the field, secrets come from an environment variable or a file, never from
the YAML itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from ..config import ListenAddress, PasswordedPage, Strict, TLSConfig, read_yaml, validate
from ..errors import ConfigError
from . import TOPIC_ROOT


class HQBrokerConfig(Strict):
    host: str = Field("127.0.0.1", description="head-office broker the stores bridge into")
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = Field(None, description="the collector's account on the broker")
    password_env: str | None = Field(None, description="environment variable holding the broker password")
    password_file: Path | None = None
    tls: TLSConfig | None = None
    client_id: str = Field("fashion-edge-collector", min_length=1, max_length=128,
                           description="stable: the broker keeps the session (unacknowledged messages) under it")
    keepalive_s: int = Field(30, ge=5, le=65535)
    session_expiry_s: int = Field(7 * 86400, ge=60, le=0xFFFFFFFF,
                                  description="how long the broker keeps the session while the collector is down")
    receive_maximum: int = Field(1000, ge=1, le=65535,
                                 description="messages the broker may have unacknowledged with the collector")
    shared_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="several collectors share the load: $share/<group>/...")
    topic_root: str = Field(TOPIC_ROOT, pattern=r"^[A-Za-z0-9_-]+$",
                            description="the stores publish under <topic_root>/<site>/...")

    @model_validator(mode="after")
    def _one_password_source(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self


class DatabaseConfig(Strict):
    dsn: str = Field(..., min_length=1, description="postgresql://user@host:port/dbname (no password in it)")
    password_env: str | None = Field(None, description="environment variable holding the database password")
    password_file: Path | None = None
    connect_timeout_s: int = Field(5, ge=1, le=300)

    @model_validator(mode="after")
    def _checks(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if not self.dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn must start with postgresql://")
        return self


class CollectorConfig(Strict):
    batch_max: int = Field(500, ge=1, le=100_000, description="messages written in one transaction at most")
    batch_wait_s: float = Field(0.1, ge=0, le=60, description="how long a batch waits to fill")
    retry_min_s: float = Field(1.0, gt=0, le=600, description="database / broker retry back-off, first wait")
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="back-off ceiling")
    stats_interval_s: float = Field(60.0, ge=1, le=86400, description="how often a progress line is logged")


class ChainWebConfig(PasswordedPage):
    """The chain view (``edge/chain/web.py``): the stores' figures from the database, served by the
    collector beside its work, behind the store page's Host check, basic auth and limits."""

    enabled: bool = Field(False, description="serve the chain view")
    listen: ListenAddress = Field("127.0.0.1:8090", description="HOST:PORT; a non-loopback host needs a password")
    period_days: int = Field(7, ge=1, le=366, description="the default period: this many days up to today (UTC)")


class HQConfig(Strict):
    mqtt: HQBrokerConfig = HQBrokerConfig()
    database: DatabaseConfig
    collector: CollectorConfig = CollectorConfig()
    web: ChainWebConfig = ChainWebConfig()


def _resolve(path: Path | None, base: Path) -> Path | None:
    return None if path is None or path.is_absolute() else (base / path).resolve()


def load_hq_config(path: str | Path) -> HQConfig:
    path = Path(path)
    config = validate(HQConfig, read_yaml(path), path)
    base = path.resolve().parent
    for holder, field in ((config.mqtt, "password_file"), (config.database, "password_file"),
                          (config.web, "password_file")):
        value = getattr(holder, field)
        if value is not None and not value.is_absolute():
            setattr(holder, field, _resolve(value, base))
    if config.mqtt.tls is not None:
        for field in ("ca", "cert", "key"):
            value = getattr(config.mqtt.tls, field)
            if value is not None and not value.is_absolute():
                setattr(config.mqtt.tls, field, _resolve(value, base))
    return config


def database_password(cfg: DatabaseConfig, path: str | Path = "<config>") -> str | None:
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if value is None:
            raise ConfigError(f"environment variable {cfg.password_env} is not set", path=path,
                              field="database.password_env")
        return value
    if cfg.password_file:
        try:
            return Path(cfg.password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the password file ({exc.strerror})", path=cfg.password_file,
                              field="database.password_file") from None
    return None


def web_password(cfg: ChainWebConfig, path: str | Path = "<config>") -> str | None:
    """The chain view's password (``web.password_env`` / ``password_file``), None when neither."""
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if not value:
            raise ConfigError(f"environment variable {cfg.password_env} is not set or empty", path=path,
                              field="web.password_env")
        return value
    if cfg.password_file:
        try:
            value = Path(cfg.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the password file ({exc.strerror})", path=cfg.password_file,
                              field="web.password_file") from None
        if not value:
            raise ConfigError("the password file is empty", path=cfg.password_file, field="web.password_file")
        return value
    return None

"""Credentials and TLS for a paho client, shared by the daemon and ``fashion-edge alerts``.

The password never comes from the config file itself: it is read from an environment variable
(``mqtt.password_env``) or a file (``mqtt.password_file``, e.g. a systemd credential). It is never
logged.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt

from ..config import MQTTConfig, TLSConfig
from ..errors import ConfigError


def read_password(
    password_env: str | None = None, password_file: str | Path | None = None, env_field: str = "mqtt.password_env"
) -> str | None:
    """The password, or None when no source is configured; ConfigError naming the field when missing."""
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise ConfigError(f"environment variable {password_env} is not set", field=env_field)
        return value
    if password_file:
        try:
            return Path(password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the password file ({exc.strerror})", path=password_file, field="mqtt.password_file"
            ) from None
    return None


def _check_file(path: Path | None, field: str) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError("file not found", path=path, field=field)
    return str(path)


def apply_tls(client: mqtt.Client, tls: TLSConfig) -> None:
    ca = _check_file(tls.ca, "mqtt.tls.ca")
    cert = _check_file(tls.cert, "mqtt.tls.cert")
    key = _check_file(tls.key, "mqtt.tls.key")
    if (cert is None) != (key is None):
        raise ConfigError("a client certificate needs both cert and key", field="mqtt.tls")
    try:
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot load TLS files ({exc})", field="mqtt.tls") from None
    if tls.insecure:
        client.tls_insecure_set(True)


def configure_client(client: mqtt.Client, cfg: MQTTConfig) -> None:
    """Username/password and TLS from the config (call before connect)."""
    password = read_password(cfg.password_env, cfg.password_file)
    if cfg.username is not None or password is not None:
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        apply_tls(client, cfg.tls)


def refusal_text(reason_code) -> str:
    """A CONNACK refusal an operator can act on."""
    name = str(reason_code)
    lowered = name.lower()
    if "not authorized" in lowered or "bad user name" in lowered or "bad username" in lowered:
        return f"broker refused the connection: {name} (check mqtt.username and the password)"
    return f"broker refused the connection: {name}"

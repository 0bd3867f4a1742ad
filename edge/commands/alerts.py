"""``fashion-edge alerts``: subscribe to ``{prefix}/alerts/#`` and print each alert once.

One readable line per alert (time, camera, rule, garments with scores, track), or the raw JSON
with ``--json``. QoS 1 may deliver an alert twice (at-least-once): alerts are deduplicated on
their ``id``. The client reconnects by itself; an unreachable broker at start is one error line
and exit 1.

Which broker, when neither ``--host`` nor ``--port`` is given: with ``--config FILE`` the config's
``mqtt.host``/``port`` or, with no host configured, the embedded broker its daemon recorded in
``<state dir>/broker.json`` while running; without ``--config`` the running demo's embedded broker
(its ``broker.json``; the demo moves off 1883 when another broker holds it), else 127.0.0.1:1883.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import ssl
import sys
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import FashionEdgeError
from ..mqtt.connection import configure_client, read_password, refusal_text
from ..mqtt.topics import Topics, default_prefix

_SEEN_IDS_KEPT = 10000
_CONNECT_TIMEOUT_S = 10.0
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 1883


def _running_embedded_broker(state_dir) -> tuple[str, int] | None:
    """``(host, port)`` from ``state_dir/broker.json`` if the daemon that wrote it still runs."""
    from ..daemon import BROKER_FILE

    try:
        data = json.loads((state_dir / BROKER_FILE).read_text())
        host, port, pid = str(data["host"]), int(data["port"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a daemon that was killed
    except PermissionError:
        pass  # runs as another user (systemd): alive
    return host, port


def resolve_broker(args) -> tuple[str, int, str | None, str | None, object]:
    """``(host, port, topic prefix or None, where they came from or None, the config's MQTTConfig for
    credentials and TLS or None)``; see the module doc."""
    if args.host is not None or args.port is not None:
        return args.host or DEFAULT_HOST, args.port or DEFAULT_PORT, None, None, None
    from ..config import load_config
    from ..daemon import default_demo_config

    if args.config:
        config = load_config(args.config)  # a bad config is one line (exit 2)
        if config.mqtt.host:  # the store's broker, with the daemon's account and TLS
            return config.mqtt.host, config.mqtt.port, config.topic_prefix, f"mqtt in {args.config}", config.mqtt
        running = _running_embedded_broker(config.state_dir())
        if running:
            return *running, config.topic_prefix, f"the embedded broker recorded in {config.state_dir()}", None
        return DEFAULT_HOST, config.mqtt.port, config.topic_prefix, None, None
    try:
        config = load_config(default_demo_config())
    except FashionEdgeError:
        return DEFAULT_HOST, DEFAULT_PORT, None, None, None
    running = _running_embedded_broker(config.state_dir())
    if running and running[1] != DEFAULT_PORT:
        return *running, None, "the running demo's embedded broker", None
    return DEFAULT_HOST, DEFAULT_PORT, None, None, None


def format_alert(alert: dict) -> str:
    garments = ", ".join(f"{g.get('label')} {float(g.get('score', 0)):.2f}" for g in alert.get("garments", []))
    where = f" @ {alert['source_time_s']:.1f}s" if isinstance(alert.get("source_time_s"), (int, float)) else ""
    how = {"early": ", decided early", "exit": ", decided as the customer left"}.get(alert.get("decided"), "")
    return (
        f"{alert.get('time', '?')}  {alert.get('site', '?')}/{alert.get('camera', '?')}  "
        f"{alert.get('rule', '?')}: {garments or '-'}  (customer #{alert.get('track_id', '?')}, "
        f"frame {alert.get('frame_index', '?')}{where}{how})"
    )


def matches(alert: dict, labels: list[str] | None) -> bool:
    if not labels:
        return True
    wanted = {label.lower() for label in labels}
    names = {str(alert.get("rule", "")).lower()}
    names |= {str(g.get("label", "")).lower() for g in alert.get("garments", []) if isinstance(g, dict)}
    return bool(wanted & names)


def _fail(message: str) -> int:
    print(f"fashion-edge alerts: error: {message}", file=sys.stderr)
    return 1


def main(args) -> int:
    host, port, config_prefix, found_in, account = resolve_broker(args)
    args.host, args.port = host, port
    if found_in:
        print(f"broker {host}:{port} from {found_in}", file=sys.stderr, flush=True)
    if args.prefix is None and args.site == "+" and config_prefix:
        args.prefix = config_prefix
    prefix = (args.prefix or default_prefix(args.site)).rstrip("/")
    topic_filter = Topics(prefix).alerts_filter
    password = read_password(args.password_env, env_field="--password-env") if args.password_env else None

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fashion-edge-alerts-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    if account is not None and not (args.username or args.password_env or args.ca):
        configure_client(client, account)  # --config: the config's username, password source and TLS
    if args.username or password is not None:
        client.username_pw_set(args.username, password)
    if args.ca:
        try:
            client.tls_set(ca_certs=args.ca, cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError) as exc:
            return _fail(f"{args.ca}: cannot load the CA file ({exc})")
    client.reconnect_delay_set(1, 30)

    events: queue.Queue = queue.Queue()  # ("connack", reason) | ("suback", [reasons]) | ("message", payload)

    def on_connect(client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            client.subscribe(topic_filter, qos=1)  # again after every reconnect
        events.put(("connack", reason_code))

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        events.put(("suback", reason_codes))

    def on_message(client, userdata, message):
        # amqtt (the demo's embedded broker) has been seen handing a subscriber retained messages of
        # other topics (the presence lock under availability/): only the subscribed tree is an alert
        if mqtt.topic_matches_sub(topic_filter, message.topic):
            events.put(("message", message.payload))

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    try:
        client.connect(args.host, args.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        return _fail(f"cannot reach the MQTT broker at {args.host}:{args.port} ({exc.strerror or exc})")
    client.loop_start()
    try:
        try:
            kind, reason = events.get(timeout=_CONNECT_TIMEOUT_S)
        except queue.Empty:
            return _fail(f"no answer from the MQTT broker at {args.host}:{args.port}")
        if reason.is_failure:
            return _fail(refusal_text(reason))
        early = []  # alerts the broker sent before its SUBACK reached this loop: printed after it
        kind, granted = "", []
        while kind != "suback":  # "listening" only once the broker confirmed the subscription
            try:
                kind, granted = events.get(timeout=_CONNECT_TIMEOUT_S)
            except queue.Empty:
                return _fail(f"the MQTT broker at {args.host}:{args.port} did not confirm the subscription")
            if kind == "message":
                early.append((kind, granted))
            elif kind == "connack" and granted.is_failure:
                return _fail(refusal_text(granted))
        if any(code.is_failure for code in granted):
            return _fail(f"the broker refused the subscription to {topic_filter} (check the account's ACL)")
        print(f"listening on {topic_filter} at {args.host}:{args.port}", file=sys.stderr, flush=True)
        return _print_alerts(events, args, early)
    finally:
        client.disconnect()
        client.loop_stop()


def _print_alerts(events: queue.Queue, args, early: list | None = None) -> int:
    seen: collections.OrderedDict[str, None] = collections.OrderedDict()
    printed = 0
    early = list(early or [])
    while args.count is None or printed < args.count:
        kind, value = early.pop(0) if early else events.get()
        if kind in ("connack", "suback"):
            if kind == "connack" and value.is_failure:
                print(f"fashion-edge alerts: {refusal_text(value)}", file=sys.stderr, flush=True)
            continue
        try:
            alert = json.loads(value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            print("fashion-edge alerts: skipped a message that is not JSON", file=sys.stderr, flush=True)
            continue
        if not isinstance(alert, dict):
            continue
        alert_id = str(alert.get("id"))
        if alert_id in seen:  # QoS 1 redelivery
            continue
        seen[alert_id] = None
        if len(seen) > _SEEN_IDS_KEPT:
            seen.popitem(last=False)
        if not matches(alert, args.label):
            continue
        print(json.dumps(alert, separators=(",", ":")) if args.json else format_alert(alert), flush=True)
        printed += 1
    return 0

"""fashion-edge: the in-store camera daemon and its tools.

The flags below are a contract: keep them. Each sub-command lives in ``edge/commands/<name>.py``
with a ``main(args) -> int``; this file only parses arguments and turns bad input
(``FashionEdgeError``) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import FashionEdgeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fashion-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fashion-edge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon with a config file")
    run.add_argument("--config", required=True, help="YAML config (see configs/)")
    run.add_argument("--source", help="override the first camera's source (file, folder, index, URL)")
    run.add_argument("--mqtt-host", help="broker host (overrides the config; default: embedded broker)")
    run.add_argument("--mqtt-port", type=int, help="broker port")
    run.add_argument("--max-frames", type=int, help="stop after N frames per camera")
    run.add_argument("--loop", action="store_true", help="loop file sources instead of stopping at the end")

    demo = sub.add_parser("demo", help="run configs/demo.yaml on the demo clip with an embedded broker")
    demo.add_argument("--config", help="demo config (default: configs/demo.yaml)")
    demo.add_argument("--source", help="another clip or camera")
    demo.add_argument("--max-frames", type=int)
    demo.add_argument("--mqtt-host")
    demo.add_argument("--mqtt-port", type=int)
    demo.add_argument("--loop", action="store_true")

    detect = sub.add_parser("detect", help="run a YOLO TFLite detector on images, videos or folders")
    detect.add_argument("--model", required=True)
    detect.add_argument("--manifest", help="the model's manifest JSON (default: beside the model, or shipped)")
    detect.add_argument("--conf", type=float, default=0.25, help="score threshold (0..1)")
    detect.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold (0..1)")
    _add_input_flags(detect)

    classify = sub.add_parser("classify", help="run a TFLite garment classifier on images, videos or folders")
    classify.add_argument("--model", required=True)
    classify.add_argument("--manifest", help="the model's manifest JSON (default: beside the model, or shipped)")
    classify.add_argument("--top", type=int, default=3, help="labels shown (and drawn with --save)")
    _add_input_flags(classify)

    # issue 20: clothing read from the whole person crop, edge/commands/attributes.py
    attributes = sub.add_parser("attributes", help="person-attribute scores (suit, dress, ...) of person crops or videos")
    attributes.add_argument("--config", help="take the attribute model (and the person detector) from this config "
                                             "(default: configs/demo.yaml of the home)")
    attributes.add_argument("--model", help="person-attribute TFLite model (instead of --config's attributes.model)")
    attributes.add_argument("--manifest", help="the model's manifest JSON (default: beside the model)")
    attributes.add_argument("--detect", action="store_true",
                            help="find the people in images with the config's detector (videos always do)")
    attributes.add_argument("--every", type=int, default=10, help="videos: read every N-th frame (default 10)")
    attributes.add_argument("--json", action="store_true", help="one JSON object per line and image or person")
    attributes.add_argument("images", nargs="+", metavar="SOURCE", help="person crop image, video or folder")

    report = sub.add_parser("report", help="print analytics windows and write PNG charts")
    report.add_argument("--config", help="config whose state directory holds analytics.sqlite")
    report.add_argument("--db", help="analytics SQLite file (instead of --config)")
    report.add_argument("--out", help="folder for PNG charts (default: report/ in the config's state directory, "
                                      "or beside --db)")
    report.add_argument("--camera", help="only this camera")
    # issue 24: the chain report (--db postgresql://...), edge/chain/report.py
    report.add_argument("--since", help="chain report: first day (YYYY-MM-DD, UTC; default: 7 days before --until)")
    report.add_argument("--until", help="chain report: day after the last (YYYY-MM-DD, UTC; default: tomorrow)")

    # issue 24: from one store to a chain (docs/chain.md)
    collect = sub.add_parser("collect", help="head office: write the stores' alerts and windows into PostgreSQL")
    collect.add_argument("--config", required=True, help="hq.yaml (see configs/hq.yaml)")
    bridge = sub.add_parser("bridge-config", help="mosquitto bridge stanza: store broker -> head-office broker")
    bridge.add_argument("--config", required=True, help="the store's config (its site and topic prefix)")
    bridge.add_argument("--remote-host", required=True, help="head-office broker")
    bridge.add_argument("--remote-port", type=int, default=8883, help="default 8883 (TLS)")
    bridge.add_argument("--username", help="the store's account at the head office (default: the site name)")
    bridge.add_argument("--password-file", help="file holding that account's password (written into the stanza)")
    bridge.add_argument("--ca", help="CA certificate of the head-office broker (TLS)")
    bridge.add_argument("--cert", help="client certificate (optional)")
    bridge.add_argument("--key", help="client key (with --cert)")
    bridge.add_argument("--no-tls", action="store_true", help="plain MQTT (a private link or a test only)")
    bridge.add_argument("--max-queued", type=int, default=200_000,
                        help="messages kept while the link is down (default 200000)")
    bridge.add_argument("--out", help="write the stanza here (mode 0600) instead of printing it")
    bridge.add_argument("--acl-out", help="write the head office's ACL block for this store here")

    alerts = sub.add_parser("alerts", help="subscribe and print alerts as they arrive (staff)")
    alerts.add_argument("--host", help="broker host (default: see --config, else the running demo's, else 127.0.0.1)")
    alerts.add_argument("--port", type=int, help="broker port (default 1883, or where the running demo's broker is)")
    alerts.add_argument("--config", help="the daemon's config: its broker (or its embedded broker) and topic prefix")
    alerts.add_argument("--site", default="+", help="site name ('+' = all)")
    alerts.add_argument("--prefix", help="topic prefix (default fashion-edge/<site>)")
    alerts.add_argument("--label", action="append", help="only alerts with this garment/rule (repeatable)")
    alerts.add_argument("--username")
    alerts.add_argument("--password-env", help="environment variable holding the password")
    alerts.add_argument("--ca", help="CA file for TLS")
    alerts.add_argument("--count", type=int, help="exit after N alerts")
    alerts.add_argument("--json", action="store_true", help="print raw JSON payloads")

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config", metavar="FILE")

    # the store's catalogue look-alikes (docs/styles.md), edge/commands/catalog.py
    catalog = sub.add_parser("catalog", help="index the store's product photos / search similar items")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    for action, text in (("index", "embed a folder of product photos (id = file stem)"),
                         ("search", "print the catalogue items most like a photo (cosine)")):
        p = catalog_sub.add_parser(action, help=text)
        p.add_argument("--model", help="classifier with an embedding (default: --config's, else models/)")
        p.add_argument("--config", help="take the classifier from this daemon config")
        if action == "index":
            p.add_argument("dir", metavar="DIR", help="folder of product photos")
            p.add_argument("--names", help="CSV with id,name columns (other columns ignored)")
            p.add_argument("--out", default="catalog.npz", help="index file to write")
        else:
            p.add_argument("image", metavar="IMAGE")
            p.add_argument("--index", default="catalog.npz", help="index from 'catalog index'")
            p.add_argument("--top", type=int, default=5, help="items shown")
            p.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vid-stride", type=int, default=1, help="videos: use every N-th frame (default 1)")
    parser.add_argument("--save", metavar="DIR", help="write annotated images into DIR")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("images", nargs="+", metavar="SOURCE", help="image, video or folder")


# Numeric flags and their ranges: a value outside is bad input (one line, exit 2), never clamped.
FLAG_RANGES = {
    "mqtt_port": ("--mqtt-port", 1, 65535),
    "port": ("--port", 1, 65535),
    "max_frames": ("--max-frames", 1, 10**12),
    "count": ("--count", 1, 10**9),
    "top": ("--top", 1, 1000),
    "vid_stride": ("--vid-stride", 1, 10**6),
    "every": ("--every", 1, 10**6),
    "remote_port": ("--remote-port", 1, 65535),
    "max_queued": ("--max-queued", 1, 10**9),
}
FLOAT_FLAG_RANGES = {"conf": ("--conf", 0.0, 1.0), "iou": ("--iou", 0.0, 1.0)}


def check_flag_ranges(args) -> None:
    for attr, (flag, low, high) in {**FLAG_RANGES, **FLOAT_FLAG_RANGES}.items():
        value = getattr(args, attr, None)
        if value is None:
            continue
        if not (low <= value <= high):  # also false for nan
            raise FashionEdgeError(f"{value} is outside {low}..{high}", field=flag)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_flag_ranges(args)
        module = importlib.import_module(f"edge.commands.{args.command.replace('-', '_')}")
        return int(module.main(args) or 0)
    except FashionEdgeError as exc:
        print(f"fashion-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `fashion-edge report | head`: the reader left; no traceback
        try:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit must not fail
        except OSError:
            pass
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())

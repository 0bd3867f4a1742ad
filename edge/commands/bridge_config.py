"""``fashion-edge bridge-config --config store.yaml --remote-host HQ [...]``

Prints (or writes with ``--out``, mode 0600) the mosquitto bridge stanza that forwards a store's
alerts and analytics windows to the head-office broker, and with ``--acl-out`` the head office's ACL
block for the store's account (``edge/chain/bridge.py``, docs/chain.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import FashionEdgeError


def _write(path: Path, text: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, mode)
    except OSError as exc:
        raise FashionEdgeError(f"cannot write ({exc.strerror or exc})", path=path) from None


def main(args) -> int:
    from ..chain.bridge import BridgeOptions, bridge_stanza, hq_acl, read_password_file
    from ..config import load_config

    config = load_config(args.config)
    opts = BridgeOptions(
        remote_host=args.remote_host,
        remote_port=args.remote_port,
        username=args.username,
        password=read_password_file(args.password_file) if args.password_file else None,
        tls=not args.no_tls,
        cafile=args.ca,
        certfile=args.cert,
        keyfile=args.key,
        max_queued_messages=args.max_queued,
    )
    stanza = bridge_stanza(config.site, config.topic_prefix, opts)
    if args.out:
        _write(Path(args.out), stanza, 0o600)
        print(f"wrote {args.out} (bridge {config.site} -> {opts.remote_host}:{opts.remote_port})")
    else:
        sys.stdout.write(stanza)
    if args.acl_out:
        _write(Path(args.acl_out), hq_acl(config.site, opts.username), 0o644)
        print(f"wrote {args.acl_out} (head-office ACL block for {opts.username or config.site})", file=sys.stderr)
    if opts.password is None:
        print("note: no --password-file: add remote_password to the stanza before starting the bridge",
              file=sys.stderr)
    return 0

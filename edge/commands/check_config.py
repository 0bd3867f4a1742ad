"""``fashion-edge check-config FILE``: the pre-flight (edge/preflight.py) of a config on this machine.

Every problem is printed, one line each on stderr (``fashion-edge check-config: error: FILE: field:
message``, warnings alike), then a summary on stdout. Exit 2 when there is any error, else 0: a
missing model, source or secret is an error here, so check a store's config on the store's box
(live cameras that do not answer in time are warnings).
"""

from __future__ import annotations

import sys

from .. import preflight


def main(args) -> int:
    result = preflight.check(args.config, live_timeout_s=preflight.LIVE_PROBE_S)
    for problem in result.problems:
        print(f"fashion-edge check-config: {problem.level}: {problem}", file=sys.stderr)
    warnings = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    if result.errors:
        print(f"{args.config}: not ok ({len(result.errors)} problem(s) to fix{warnings})")
        return 2
    config = result.config
    broker = f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt.host else "embedded broker"
    print(
        f"{args.config}: ok (site {config.site}, {len(config.cameras)} camera(s), "
        f"{len(config.rules)} rule(s), {broker}, state in {config.state_dir()}{warnings})"
    )
    return 0
